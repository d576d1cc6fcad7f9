"""Drive an optimizer hyperparameter by the real-valued epoch, every iteration (Appendix A).

The paper sets eta_SGD and alpha_SGD from e = iteration x b_total / |dataset|.
:class:`EpochSchedule` sets ``optimizer.<attr> = schedule_fn(epoch_detail)`` so that
the update starting at epoch e runs with ``schedule_fn(e)``, reports the value each
update ran with, and serializes like Chainer's ``ExponentialShift``.  Timing and
resume details: docs/DESIGN.md.
"""
import math
import warnings

import numpy

import chainer
from chainer.training import extension


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


def _to_float(value):
    # NpzDeserializer hands scalars back as 0-d arrays (and None as None).
    if isinstance(value, numpy.ndarray):
        return value.item()
    return value
