"""Batch normalization without moving averages (paper, Section 2).

"With the larger minibatch sizes, the batch normalization moving averages of
the mean and variance became inaccurate estimates of the actual mean and
variance.  To cope with this problem, we only considered the last minibatch,
instead of the moving average, and used all-reduce communication on these
statistics to obtain the average over all workers before validation."

This module does the first half: every ``L.BatchNormalization`` keeps only the
statistics of the last training minibatch.  The all-reduce before validation
is :class:`chainer_ext.extensions.BatchNormStatsAllreduce`.

Chainer updates the statistics as (``chainer/functions/normalization/
batch_normalization.py``, 7.8.1; ``m`` = number of values per channel)::

    avg_mean = decay * avg_mean + (1 - decay) * mean
    avg_var  = decay * avg_var  + (1 - decay) * m / (m - 1) * var

so ``decay = 0`` leaves exactly the last batch's mean and its unbiased
variance ``m/(m-1) * var``, computed by Chainer's own code on every path: the
NumPy/CuPy path above, iDeep's ``inplace_axpby(decay, 1 - decay, ...)``, and
the fused cuDNN path, which gets ``exponentialAverageFactor = 1 - decay = 1``
(cuDNN also stores the unbiased variance).  One caveat of the formula: if a
statistic ever becomes inf/NaN, ``0 * inf`` keeps it NaN; a diverged batch
(whose update the non-finite guard skips) therefore poisons the statistics of
that link until the model is reloaded.
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
