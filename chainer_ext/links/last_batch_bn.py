"""Batch normalization without moving averages (paper, Section 2): keep the last minibatch only.

Every ``L.BatchNormalization`` gets ``decay = 0``, so Chainer's own update leaves the
last batch's mean and unbiased variance; averaging them over workers before
validation is :class:`chainer_ext.extensions.BatchNormStatsAllreduce`.  Why this is
exact on every Chainer path: docs/DESIGN.md.
"""
import chainer.links as L


def use_last_batch_statistics(model):
    """Make every batch-normalization link of ``model`` keep the last batch only.

    Sets ``decay = 0`` on each ``chainer.links.BatchNormalization`` in
    ``model`` (the model itself included).  Fine-tuning mode
    (``finetune=True``) is unaffected: it computes its own decay.

    Args:
        model (chainer.Link): the model.

    Returns:
        int: number of links changed; 0 for a model without batch
        normalization (not an error: the caller can check).

    Raises:
        TypeError: ``model`` is not a ``chainer.Link``.
        ValueError: ``model`` contains ``BatchRenormalization``, whose
            running statistics also drive its corrections during training,
            so dropping their averaging would change the method.
    """
    if not hasattr(model, 'namedlinks'):
        raise TypeError('use_last_batch_statistics expects a chainer.Link, '
                        'got {}'.format(type(model).__name__))
    changed = 0
    for name, link in model.namedlinks():
        if isinstance(link, L.BatchRenormalization):
            raise ValueError(
                'link {} is a BatchRenormalization; batch normalization '
                'without moving averages applies to BatchNormalization '
                'only'.format(name or '/'))
        if isinstance(link, L.BatchNormalization):
            link.decay = 0.0
            changed += 1
    return changed
