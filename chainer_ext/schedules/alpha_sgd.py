"""ELU-shaped transition of alpha_SGD from RMSprop to SGD (Akiba et al. 2017, Appendix A.1).

With e the epoch as a real number (updated every iteration)::

    alpha_SGD(e) = 0.5 * exp(2 * (e - beta_center) / beta_period)  if e < beta_center
                 = 0.5 + (e - beta_center) / beta_period            if beta_center <= e
                                                                     < beta_center + beta_period/2
                 = 1                                                otherwise

alpha_SGD is 0.5 * exp(-4) ~= 0.00916 at e = 0 (with the paper's beta_center = 10,
beta_period = 5), reaches 1/2 at beta_center with value and slope (1 / beta_period)
continuous there, and reaches 1 at beta_center + beta_period / 2 = 12.5, staying 1.

For a run of ``total_epochs`` instead of 90, :func:`compressed_beta` scales both betas by
``total_epochs / 90`` like every other epoch boundary of the schedules.
"""
import math

from chainer_ext.schedules._epochs import check_epoch
from chainer_ext.schedules._epochs import check_positive
from chainer_ext.schedules._epochs import compress

#: The paper's transition centre and period, in epochs of a 90-epoch run.
BETA_CENTER = 10
BETA_PERIOD = 5


def elu_alpha_sgd(epoch, beta_center=BETA_CENTER, beta_period=BETA_PERIOD):
    """alpha_SGD at real-valued ``epoch`` (>= 0) for the ELU-shaped transition.

    ``beta_center`` must be >= 0 and ``beta_period`` > 0.
    """
    check_epoch(epoch)
    if not beta_center >= 0:
        raise ValueError(
            'beta_center must be >= 0, got beta_center={!r}'.format(beta_center))
    check_positive('beta_period', beta_period)
    if epoch < beta_center:
        return 0.5 * math.exp(2.0 * (epoch - beta_center) / beta_period)
    if epoch < beta_center + beta_period / 2.0:
        return 0.5 + (epoch - beta_center) / beta_period
    return 1.0


def compressed_beta(total_epochs):
    """``(beta_center, beta_period)`` for a ``total_epochs`` run: (10, 5) * total_epochs / 90."""
    return (compress(BETA_CENTER, total_epochs), compress(BETA_PERIOD, total_epochs))
