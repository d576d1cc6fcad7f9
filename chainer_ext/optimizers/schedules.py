"""The paper's schedules as functions of the real-valued epoch e (Appendix A.1, A.2),
and those of the baselines it is compared with in Table 1 (Goyal et al.; You et al.'s LARS).

Formulas are written for a 90-epoch run; a run of ``total_epochs`` compresses
every epoch boundary (and beta_center, beta_period) by ``total_epochs / 90``.
:func:`chainer_ext.optimizers.recipe.schedules_of` picks those of one run, for the trainer
(:class:`chainer_ext.extensions.EpochSchedule`) and for the report alike.
Bad arguments raise ``ValueError`` naming the value.
"""
import math

from chainer_ext.paper.numbers import IMAGENET_TRAIN

#: Length of the paper's (and Goyal et al.'s) training run, in epochs.
REFERENCE_EPOCHS = 90
#: Learning rate and batch size of the linear scaling rule's reference (Goyal et al.).
REFERENCE_LR = 0.1
REFERENCE_BATCH = 256
#: A.2 slow-start schedule: boundaries (of 90 epochs) and multipliers of eta_base.
SLOW_START_BOUNDARIES = (40, 70, 85)
SLOW_START_FACTORS = (0.5, 0.075, 0.01, 0.001)
#: Goyal et al.'s schedule (the baseline quoted in A.2) and its warm-up length.
GOYAL_BOUNDARIES = (30, 60, 80)
GOYAL_FACTORS = (1.0, 0.1, 0.01, 0.001)
WARMUP_EPOCHS = 5
#: A.1 transition centre and period, in epochs of a 90-epoch run.
BETA_CENTER = 10
BETA_PERIOD = 5
#: LARS (You, Gitman & Ginsburg 2017) on ResNet-50: peak global rate gamma and linear
#: warm-up (epochs of 90) by total batch, ``(below this batch, gamma, warm-up)``, as in the
#: reference code (tensorflow/tpu, models/official/resnet/lars_util.py).
LARS_PEAKS = ((16384, 10.0, 5), (32768, 25.0, 5), (65536, 32.0, 14), (math.inf, 35.6, 40))
#: Power of Algorithm 1's polynomial decay gamma_t = gamma_0 (1 - t / T) ** 2.
LARS_POWER = 2


def _check_epoch(epoch):
    if not epoch >= 0:  # NaN is rejected too
        raise ValueError('epoch must be >= 0, got epoch={!r}'.format(epoch))


def _check_positive(name, value):
    if not value > 0:
        raise ValueError('{} must be > 0, got {}={!r}'.format(name, name, value))


def compress(epoch_of_90, total_epochs):
    """An epoch boundary of the 90-epoch schedule, moved into a ``total_epochs`` run."""
    _check_positive('total_epochs', total_epochs)
    return epoch_of_90 * total_epochs / REFERENCE_EPOCHS


def _piecewise(epoch, boundaries, factors, total_epochs):
    for boundary, factor in zip(boundaries, factors):
        if epoch < compress(boundary, total_epochs):
            return factor
    return factors[-1]


def eta_base(total_batch):
    """A.2, Goyal et al.'s linear scaling rule: eta_base = 0.1 * b_total / 256."""
    _check_positive('total_batch', total_batch)
    return REFERENCE_LR * total_batch / REFERENCE_BATCH


def imagenet_equivalent_batch(total_batch, n_train):
    """The ImageNet total batch that takes the same share of its training set per update
    as ``total_batch`` takes of ``n_train`` images: ``total_batch`` times the ratio of the
    sets, rounded (128 for 10,000 images: batch 256 is the paper's 32,768, Section 4).

    Given to the learning-rate rules instead of ``total_batch`` (A.2's
    eta_base = 0.1 * b / 256 and :func:`lars_peak`), a run on a small data set takes the
    steps, and has the SGD noise scale eta * N / B, of the ImageNet run it stands for.
    """
    _check_positive('total_batch', total_batch)
    _check_positive('n_train', n_train)
    return total_batch * int(round(IMAGENET_TRAIN / n_train))


def slow_start_lr(epoch, eta_base, total_epochs=REFERENCE_EPOCHS):
    """A.2 slow start: eta_SGD = 0.5, 0.075, 0.01, 0.001 x eta_base from epochs 0, 40, 70, 85."""
    _check_epoch(epoch)
    _check_positive('eta_base', eta_base)
    return _piecewise(epoch, SLOW_START_BOUNDARIES, SLOW_START_FACTORS, total_epochs) * eta_base


def goyal_lr(epoch, eta_base, total_epochs=REFERENCE_EPOCHS, warmup_epochs=WARMUP_EPOCHS):
    """Goyal et al.'s schedule (A.2): 1, 0.1, 0.01, 0.001 x eta_base from epochs 0, 30, 60, 80,
    after a linear warm-up from 0.1 over ``warmup_epochs`` (in [0, 30]) when eta_base > 0.1."""
    _check_epoch(epoch)
    _check_positive('eta_base', eta_base)
    if not 0 <= warmup_epochs <= GOYAL_BOUNDARIES[0]:
        raise ValueError('warmup_epochs must lie in [0, {}], got warmup_epochs={!r}'.format(
            GOYAL_BOUNDARIES[0], warmup_epochs))
    warmup_end = compress(warmup_epochs, total_epochs)
    if eta_base > REFERENCE_LR and epoch < warmup_end:
        return REFERENCE_LR + (eta_base - REFERENCE_LR) * epoch / warmup_end
    return _piecewise(epoch, GOYAL_BOUNDARIES, GOYAL_FACTORS, total_epochs) * eta_base


def lars_peak(total_batch):
    """``(gamma_peak, warm-up epochs of 90)`` of LARS for a total batch (:data:`LARS_PEAKS`)."""
    _check_positive('total_batch', total_batch)
    for below, gamma, warmup in LARS_PEAKS:
        if total_batch < below:
            return gamma, warmup
    raise ValueError('total_batch must be finite, got total_batch={!r}'.format(total_batch))


def lars_lr(epoch, gamma_peak, total_epochs=REFERENCE_EPOCHS, warmup_epochs=5):
    """LARS's global rate gamma (You, Gitman & Ginsburg 2017, Algorithm 1, with their
    ResNet-50 warm-up)::

        gamma(e) = gamma_peak e / w                          e < w
                 = gamma_peak (1 - (e - w) / (E - w)) ** 2   w <= e <= E,   0 after E

    with E = ``total_epochs`` and w = ``warmup_epochs`` (of 90, in [0, 90)) compressed to
    E.  With w = 0 it is Algorithm 1's gamma_0 (1 - t / T) ** 2 in epochs.
    """
    _check_epoch(epoch)
    _check_positive('gamma_peak', gamma_peak)
    if not 0 <= warmup_epochs < REFERENCE_EPOCHS:
        raise ValueError('warmup_epochs must lie in [0, {}), got warmup_epochs={!r}'.format(
            REFERENCE_EPOCHS, warmup_epochs))
    warmup_end = compress(warmup_epochs, total_epochs)
    if epoch < warmup_end:
        return gamma_peak * epoch / warmup_end
    left = 1.0 - (epoch - warmup_end) / (total_epochs - warmup_end)
    return gamma_peak * max(0.0, left) ** LARS_POWER


def elu_alpha_sgd(epoch, beta_center=BETA_CENTER, beta_period=BETA_PERIOD):
    """A.1 ELU-shaped transition RMSprop -> SGD::

        alpha_SGD(e) = 0.5 exp(2 (e - beta_center) / beta_period)  if e < beta_center
                     = 0.5 + (e - beta_center) / beta_period
                                                  if e < beta_center + beta_period / 2
                     = 1                          otherwise
    """
    _check_epoch(epoch)
    if not beta_center >= 0:
        raise ValueError('beta_center must be >= 0, got beta_center={!r}'.format(beta_center))
    _check_positive('beta_period', beta_period)
    if epoch < beta_center:
        return 0.5 * math.exp(2.0 * (epoch - beta_center) / beta_period)
    if epoch < beta_center + beta_period / 2.0:
        return 0.5 + (epoch - beta_center) / beta_period
    return 1.0


def compressed_beta(total_epochs):
    """``(beta_center, beta_period)`` of a ``total_epochs`` run: (10, 5) x total_epochs / 90."""
    return compress(BETA_CENTER, total_epochs), compress(BETA_PERIOD, total_epochs)
