"""Schedules of Akiba et al. (2017) as plain functions of the real-valued epoch.

* :func:`eta_base` -- 0.1 * b_total / 256 (A.2, Goyal et al.'s linear scaling rule).
* :func:`slow_start_lr` -- the paper's slow-start eta_SGD schedule (A.2).
* :func:`goyal_lr` -- Goyal et al.'s reference schedule with its 5-epoch warm-up (A.2).
* :func:`elu_alpha_sgd` -- the ELU-shaped alpha_SGD transition RMSprop -> SGD (A.1).
* :func:`compressed_beta` -- (beta_center, beta_period) for runs shorter than 90 epochs.

All epoch boundaries are given for 90 epochs and scale by ``total_epochs / 90``.  Each
function raises ``ValueError`` naming the value for a negative epoch, ``total_epochs <= 0``,
``eta_base <= 0`` or ``beta_period <= 0``.  :mod:`chainer_ext.extensions.schedules` applies
them to an optimizer every iteration.
"""
from chainer_ext.schedules._epochs import REFERENCE_EPOCHS  # NOQA
from chainer_ext.schedules.alpha_sgd import compressed_beta  # NOQA
from chainer_ext.schedules.alpha_sgd import elu_alpha_sgd  # NOQA
from chainer_ext.schedules.goyal_schedule import goyal_lr  # NOQA
from chainer_ext.schedules.linear_scaling import eta_base  # NOQA
from chainer_ext.schedules.slow_start import slow_start_lr  # NOQA
