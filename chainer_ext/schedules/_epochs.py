"""Shared checks and epoch compression for the schedules (Akiba et al. 2017, Appendix A.2).

The paper's schedules are written for a 90-epoch run.  For a run of ``total_epochs``
epochs every epoch boundary is compressed proportionally: a boundary at epoch ``b`` of 90
sits at ``b * total_epochs / 90``.
"""

#: Length of the paper's (and Goyal et al.'s) training run, in epochs.
REFERENCE_EPOCHS = 90


def check_epoch(epoch):
    """Raises ``ValueError`` unless ``epoch`` is a number >= 0 (NaN is rejected)."""
    if not epoch >= 0:
        raise ValueError('epoch must be >= 0, got epoch={!r}'.format(epoch))


def check_positive(name, value):
    """Raises ``ValueError`` naming ``name`` unless ``value`` > 0 (NaN is rejected)."""
    if not value > 0:
        raise ValueError('{} must be > 0, got {}={!r}'.format(name, name, value))


def compress(epoch_of_90, total_epochs):
    """Moves an epoch boundary of the 90-epoch schedule into a ``total_epochs`` run."""
    check_positive('total_epochs', total_epochs)
    return epoch_of_90 * total_epochs / REFERENCE_EPOCHS


def piecewise_constant(epoch, boundaries, values):
    """``values[i]`` for ``boundaries[i-1] <= epoch < boundaries[i]`` (len(values) =
    len(boundaries) + 1); the last value holds from the last boundary on."""
    for boundary, value in zip(boundaries, values):
        if epoch < boundary:
            return value
    return values[-1]
