"""eta_base from Goyal et al.'s linear scaling rule (Akiba et al. 2017, Appendix A.2).

    eta_base = 0.1 * b_total / 256,   b_total = n * b_local

With n = 1024 workers and b_local = 32 the paper's eta_base is 12.8.
"""
from chainer_ext.schedules._epochs import check_positive

#: Learning rate of the reference batch (Goyal et al.).
REFERENCE_LR = 0.1
#: Reference batch size of the linear scaling rule.
REFERENCE_BATCH = 256


def eta_base(total_batch):
    """Returns ``0.1 * total_batch / 256``; ``total_batch`` (= n * b_local) must be > 0."""
    check_positive('total_batch', total_batch)
    return REFERENCE_LR * total_batch / REFERENCE_BATCH
