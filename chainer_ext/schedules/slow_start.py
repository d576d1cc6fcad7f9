"""Slow-start learning-rate schedule (Akiba et al. 2017, Appendix A.2).

    eta_SGD(e) = 0.5   * eta_base   for  0 <= e < 40
                 0.075 * eta_base   for 40 <= e < 70
                 0.01  * eta_base   for 70 <= e < 85
                 0.001 * eta_base   for 85 <= e        (to the end, epoch 90)

A longer first phase at a lower rate than Goyal et al.'s schedule; no linear warm-up (the
RMSprop warm-up of A.1 replaces it).  For ``total_epochs`` != 90 the boundaries become
(40, 70, 85) * total_epochs / 90, e.g. 8 / 14 / 17 for an 18-epoch run.
"""
from chainer_ext.schedules._epochs import check_epoch
from chainer_ext.schedules._epochs import check_positive
from chainer_ext.schedules._epochs import compress
from chainer_ext.schedules._epochs import piecewise_constant

#: Epoch boundaries (of 90) and the multipliers of eta_base between them.
BOUNDARIES = (40, 70, 85)
FACTORS = (0.5, 0.075, 0.01, 0.001)


def slow_start_lr(epoch, eta_base, total_epochs=90):
    """eta_SGD at real-valued ``epoch`` (>= 0) of a ``total_epochs`` (> 0) run."""
    check_epoch(epoch)
    check_positive('eta_base', eta_base)
    boundaries = [compress(b, total_epochs) for b in BOUNDARIES]
    return piecewise_constant(epoch, boundaries, FACTORS) * eta_base
