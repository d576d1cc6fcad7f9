"""Goyal et al.'s reference learning-rate schedule (as quoted by Akiba et al. 2017, A.2).

    eta(e) = eta_base          for  0 <= e < 30
             0.1   * eta_base  for 30 <= e < 60
             0.01  * eta_base  for 60 <= e < 80
             0.001 * eta_base  for 80 <= e        (to the end, epoch 90)

plus Goyal et al.'s gradual warm-up: when eta_base exceeds the reference rate 0.1 (batch
256), the rate rises linearly from 0.1 at e = 0 to eta_base at e = warmup_epochs (5) and
the table applies from there; with eta_base <= 0.1 there is no warm-up, and
``warmup_epochs=0`` disables it.  For ``total_epochs`` != 90 every boundary, the warm-up
length included, is scaled by total_epochs / 90 (``warmup_epochs`` is given on the 90-epoch
scale, like the table).
"""
from chainer_ext.schedules._epochs import check_epoch
from chainer_ext.schedules._epochs import check_positive
from chainer_ext.schedules._epochs import compress
from chainer_ext.schedules._epochs import piecewise_constant
from chainer_ext.schedules.linear_scaling import REFERENCE_LR

#: Epoch boundaries (of 90) and the multipliers of eta_base between them.
BOUNDARIES = (30, 60, 80)
FACTORS = (1.0, 0.1, 0.01, 0.001)
#: Goyal et al.'s warm-up length, in epochs of a 90-epoch run.
WARMUP_EPOCHS = 5


def goyal_lr(epoch, eta_base, total_epochs=90, warmup_epochs=WARMUP_EPOCHS):
    """Learning rate at real-valued ``epoch`` (>= 0) of a ``total_epochs`` (> 0) run.

    ``warmup_epochs`` must lie in [0, 30] (the warm-up ends before the first step).
    """
    check_epoch(epoch)
    check_positive('eta_base', eta_base)
    if not 0 <= warmup_epochs <= BOUNDARIES[0]:
        raise ValueError(
            'warmup_epochs must lie in [0, {}], got warmup_epochs={!r}'.format(
                BOUNDARIES[0], warmup_epochs))
    warmup_end = compress(warmup_epochs, total_epochs)
    if eta_base > REFERENCE_LR and epoch < warmup_end:
        return REFERENCE_LR + (eta_base - REFERENCE_LR) * epoch / warmup_end
    boundaries = [compress(b, total_epochs) for b in BOUNDARIES]
    return piecewise_constant(epoch, boundaries, FACTORS) * eta_base
