"""Trainer extensions that drive optimizer hyperparameters by the real-valued epoch
(Akiba et al. 2017, Appendix A.1 for alpha_SGD, A.2 for eta_SGD).

The paper updates e = iteration * b_total / |dataset| every iteration.  An
:class:`EpochSchedule` sets ``optimizer.<attr> = schedule_fn(e)`` with e =
``trainer.updater.epoch_detail``:

* in ``initialize`` (before the first update, and after a resume) from the epoch at the
  start -- 0, or the resumed point -- so the first update uses ``schedule_fn(e_start)``;
* in ``__call__``, which the Trainer runs after each ``updater.update()``, from the epoch
  as it is *after* that update, i.e. the epoch of the upcoming update.

Hence the update that starts at epoch e always runs with ``schedule_fn(e)``.  Before
setting the new value, ``__call__`` reports the value the finished update ran with under
``attr`` (``lr``, ``alpha_sgd``) via :func:`chainer.reporter.report`, so LogReport shows per
iteration the value actually in force.  Priority is ``PRIORITY_WRITER`` so the report is
in the observation before readers (LogReport) run; trigger is every iteration.

The optimizer defaults to the updater's ``'main'`` optimizer.  A ChainerMN multi-node
optimizer (``chainermn.create_multi_node_optimizer``) forwards attribute get/set to the
wrapped optimizer (its ``__getattr__``/``__setattr__``), so it works unchanged.

``serialize`` stores the last value set and the epoch it was computed for (as Chainer's
``ExponentialShift`` keeps ``_last_value``).  The value is a function of the epoch only, so
after a resume ``initialize`` recomputes it from the restored ``epoch_detail`` -- which
gives the stored value when the updater was restored with the extension -- and warns if
the stored epoch and the updater's epoch disagree (an updater/iterator not restored).

Example (the paper's schedules for a ``total_epochs`` run)::

    import functools
    from chainer_ext import schedules
    from chainer_ext.extensions import AlphaSGDSchedule, LearningRateSchedule

    lr_fn = functools.partial(schedules.slow_start_lr,
                              eta_base=schedules.eta_base(n * b_local),
                              total_epochs=total_epochs)
    trainer.extend(LearningRateSchedule(lr_fn))
    trainer.extend(AlphaSGDSchedule(*schedules.compressed_beta(total_epochs)))
"""
import functools
import math
import warnings

import numpy

import chainer
from chainer.training import extension

from chainer_ext.schedules.alpha_sgd import BETA_CENTER
from chainer_ext.schedules.alpha_sgd import BETA_PERIOD
from chainer_ext.schedules.alpha_sgd import elu_alpha_sgd


class EpochSchedule(extension.Extension):

    """Sets ``optimizer.<attr>`` to ``schedule_fn(epoch_detail)`` every iteration.

    Args:
        attr (str): Name of the optimizer attribute (hyperparameter proxy) to set.
        schedule_fn (callable): ``schedule_fn(epoch) -> float`` with ``epoch`` the real
            epoch (``updater.epoch_detail``).
        optimizer (~chainer.Optimizer): Optimizer to drive; ``None`` means the
            updater's ``'main'`` optimizer (a ChainerMN multi-node wrapper is fine).

    Raises:
        ValueError: ``attr`` is not a non-empty string.
        TypeError: ``schedule_fn`` is not callable.
    """

    trigger = 1, 'iteration'
    priority = extension.PRIORITY_WRITER

    def __init__(self, attr, schedule_fn, optimizer=None):
        if not isinstance(attr, str) or not attr:
            raise ValueError(
                'attr must be a non-empty attribute name, got attr={!r}'.format(attr))
        if not callable(schedule_fn):
            raise TypeError(
                'schedule_fn must be callable, got schedule_fn={!r}'.format(schedule_fn))
        self._attr = attr
        self._schedule_fn = schedule_fn
        self._optimizer = optimizer
        self._last_value = None   # value set for the upcoming update
        self._last_epoch = None   # epoch_detail it was computed for

    @property
    def default_name(self):
        return '{}_{}'.format(type(self).__name__, self._attr)

    @property
    def attr(self):
        """Name of the optimizer attribute driven by this extension."""
        return self._attr

    def initialize(self, trainer):
        epoch = trainer.updater.epoch_detail
        value = self._schedule_fn(epoch)
        if self._last_epoch is not None and not math.isclose(
                epoch, self._last_epoch, rel_tol=1e-12, abs_tol=1e-12):
            warnings.warn(
                '{}: the resumed state was computed at epoch {!r} ({}={!r}) but the '
                'updater is at epoch {!r}; setting {}={!r} from the updater\'s epoch. '
                'Was the updater restored from the same snapshot?'.format(
                    self.default_name, self._last_epoch, self._attr, self._last_value,
                    epoch, self._attr, value))
        self._set(trainer, epoch, value)

    def __call__(self, trainer):
        optimizer = self._get_optimizer(trainer)
        chainer.reporter.report({self._attr: getattr(optimizer, self._attr)})
        epoch = trainer.updater.epoch_detail
        self._set(trainer, epoch, self._schedule_fn(epoch))

    def serialize(self, serializer):
        self._last_value = _to_float(serializer('_last_value', self._last_value))
        self._last_epoch = _to_float(serializer('_last_epoch', self._last_epoch))

    def _get_optimizer(self, trainer):
        if self._optimizer is not None:
            return self._optimizer
        return trainer.updater.get_optimizer('main')

    def _set(self, trainer, epoch, value):
        setattr(self._get_optimizer(trainer), self._attr, value)
        self._last_value = value
        self._last_epoch = epoch


class LearningRateSchedule(EpochSchedule):

    """:class:`EpochSchedule` for the learning rate (A.2).

    Args:
        schedule_fn (callable): ``schedule_fn(epoch) -> lr``, e.g.
            ``functools.partial(chainer_ext.schedules.slow_start_lr, eta_base=12.8)``.
        attr (str): Optimizer attribute; ``'lr'`` (eta_SGD of
            :class:`~chainer_ext.optimizers.RMSpropWarmup`, or MomentumSGD's lr).
        optimizer (~chainer.Optimizer): ``None`` for the updater's main optimizer.
    """

    def __init__(self, schedule_fn, attr='lr', optimizer=None):
        super(LearningRateSchedule, self).__init__(attr, schedule_fn, optimizer)


class AlphaSGDSchedule(EpochSchedule):

    """:class:`EpochSchedule` for alpha_SGD along the ELU-shaped transition (A.1).

    Args:
        beta_center (float): Epoch at which alpha_SGD = 1/2 (10 for 90 epochs).
        beta_period (float): Transition period (5 for 90 epochs); alpha_SGD = 1 from
            ``beta_center + beta_period / 2``.  Use
            :func:`chainer_ext.schedules.compressed_beta` for shorter runs.
        attr (str): Optimizer attribute; ``'alpha_sgd'``.
        optimizer (~chainer.Optimizer): ``None`` for the updater's main optimizer.

    Raises:
        ValueError: ``beta_center < 0`` or ``beta_period <= 0``.
    """

    def __init__(self, beta_center=BETA_CENTER, beta_period=BETA_PERIOD,
                 attr='alpha_sgd', optimizer=None):
        elu_alpha_sgd(0.0, beta_center, beta_period)  # validates the betas now
        self.beta_center = beta_center
        self.beta_period = beta_period
        super(AlphaSGDSchedule, self).__init__(
            attr, functools.partial(elu_alpha_sgd, beta_center=beta_center,
                                    beta_period=beta_period), optimizer)


def _to_float(value):
    # NpzDeserializer hands scalars back as 0-d arrays (and None as None).
    if isinstance(value, numpy.ndarray):
        return value.item()
    return value
