"""A run's recipe: its update rule and the schedules that drive it (Appendix A, Table 1).

By the name ``train_imagenet.py --optimizer`` takes: the paper's ``'rmsprop_warmup'`` (A.1's
hybrid RMSprop-to-momentum-SGD update, A.2's slow start from eta_base, alpha_SGD's ELU ramp),
Goyal et al.'s ``'momentum'`` (warm-up, then steps) and You et al.'s ``'lars'``.
:func:`recipe` gives both parts of a run; :func:`schedules_of` the schedules alone (the
report recomputes them) and :func:`update_rule` the optimizer alone (the batch-size sweep's
ablations mix them).
"""
import functools

from chainer_ext.optimizers import schedules
from chainer_ext.optimizers.lars import LARS
from chainer_ext.optimizers.rmsprop_warmup import RMSpropWarmup

#: Recipe names: the paper's hybrid, Goyal et al.'s momentum SGD, You et al.'s LARS.
NAMES = ('rmsprop_warmup', 'momentum', 'lars')


def recipe(name, total_batch, epochs, **hyperparams):
    """``(optimizer, schedules)`` of one run of ``epochs`` epochs at ``total_batch``.

    The optimizer is :func:`update_rule`'s, started at its schedules' values at epoch 0;
    ``hyperparams`` are its others (``lr_rmsprop``; LARS's ``eta`` and ``weight_decay``).
    The schedules are :func:`schedules_of`'s, ``{optimizer attribute: f(epoch)}``.
    """
    run_schedules = schedules_of(name, total_batch, epochs)
    start = {attr: schedule(0.0) for attr, schedule in run_schedules.items()}
    return update_rule(name, **hyperparams, **start), run_schedules


def schedules_of(name, total_batch, epochs):
    """The schedules of one run: ``{optimizer attribute: f(epoch)}``.

    ``'rmsprop_warmup'`` (the paper): slow-start ``lr`` and ELU ``alpha_sgd``;
    ``'momentum'`` (Goyal et al.'s baseline): ``lr`` with the 5-epoch warm-up;
    ``'lars'`` (You et al.'s): ``lr`` = gamma, warm-up and polynomial decay.
    """
    # A.2 and Goyal et al.'s linear scaling rule: eta_base = 0.1 * total_batch / 256
    base = schedules.eta_base(total_batch)
    schedules._check_positive('epochs', epochs)
    if name == 'momentum':
        return {'lr': functools.partial(schedules.goyal_lr, eta_base=base, total_epochs=epochs)}
    if name == 'lars':
        gamma, warmup = schedules.lars_peak(total_batch)
        return {'lr': functools.partial(schedules.lars_lr, gamma_peak=gamma,
                                        total_epochs=epochs, warmup_epochs=warmup)}
    if name != 'rmsprop_warmup':
        raise ValueError("optimizer must be 'rmsprop_warmup', 'momentum' or 'lars', got "
                         "{!r}".format(name))
    center, period = schedules.compressed_beta(epochs)
    # A.2's slow start: eta_SGD steps down from 0.5 eta_base; A.1's alpha_SGD: an ELU ramp
    # from RMSprop (0) to momentum SGD (1) around beta_center
    return {'lr': functools.partial(schedules.slow_start_lr, eta_base=base,
                                    total_epochs=epochs),
            'alpha_sgd': functools.partial(schedules.elu_alpha_sgd, beta_center=center,
                                           beta_period=period)}


def update_rule(name, **hyperparams):
    """The optimizer of a recipe, with ``hyperparams`` (the schedules' starting ``lr`` and
    ``alpha_sgd`` among them).

    ``'rmsprop_warmup'``: A.1's hybrid, :class:`RMSpropWarmup` (``lr_rmsprop``, ``alpha_sgd``,
    ...).  ``'momentum'``: Goyal et al.'s momentum SGD with their momentum correction, which
    is A.1 at alpha_SGD = 1 without the RMSprop term (a given ``lr_rmsprop`` is ignored).
    ``'lars'``: :class:`LARS` (``lr`` = gamma, ``eta``, ``weight_decay`` = beta,
    ``momentum``), which applies weight decay itself: do not add it with
    :func:`~chainer_ext.optimizer_hooks.add_weight_decay` as well (that raises).
    """
    if name == 'rmsprop_warmup':
        return RMSpropWarmup(**hyperparams)
    if name == 'momentum':
        hyperparams.pop('lr_rmsprop', None)
        return RMSpropWarmup(lr_rmsprop=0.0, alpha_sgd=1.0, **hyperparams)
    if name == 'lars':
        return LARS(**hyperparams)
    raise ValueError('optimizer must be one of {}, got {!r}'.format(
        ', '.join(map(repr, NAMES)), name))
