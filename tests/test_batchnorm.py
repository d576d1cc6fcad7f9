"""Batch normalization without moving averages (paper, Section 2)."""
import numpy as np
import pytest

import chainer_ext  # noqa: F401  (compatibility stand-ins before chainer loads)
import chainer
import chainer.links as L
from chainer.training import extensions

from chainer_ext.links.last_batch_bn import use_last_batch_statistics
from chainer_ext.extensions import BatchNormStatsAllreduce


def _unbiased(x, axes):
    x = x.astype(np.float64)
    m = x.size // x.shape[1]
    return x.mean(axis=axes), x.var(axis=axes) * m / (m - 1)


@pytest.mark.parametrize('shape,axes', [((6, 3), (0,)),
                                        ((4, 3, 5, 2), (0, 2, 3))])
def test_statistics_are_the_last_batch(shape, axes):
    bn = L.BatchNormalization(3)
    assert use_last_batch_statistics(bn) == 1
    assert bn.decay == 0
    rng = np.random.RandomState(0)
    with chainer.using_config('train', True):
        for k in range(3):
            x = (rng.standard_normal(shape) * (k + 1) + 3 * k).astype(np.float32)
            bn(x)
    mean, var = _unbiased(x, axes)
    np.testing.assert_allclose(bn.avg_mean, mean, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(bn.avg_var, var, rtol=1e-5)
    with chainer.using_config('train', False):  # validation uses them as is
        y = bn(x).array
    want = (x - mean.reshape((1, 3) + (1,) * (len(shape) - 2))) / np.sqrt(
        var.reshape((1, 3) + (1,) * (len(shape) - 2)) + bn.eps)
    np.testing.assert_allclose(y, want, rtol=1e-4, atol=1e-5)


def test_counts_links_and_refuses_bad_input():
    chain = chainer.Sequential(L.Linear(3, 4), L.BatchNormalization(4),
                               L.Linear(4, 2), L.BatchNormalization(2))
    assert use_last_batch_statistics(chain) == 2
    assert use_last_batch_statistics(chainer.Sequential(L.Linear(3, 4))) == 0
    with pytest.raises(ValueError, match='BatchRenormalization'):
        use_last_batch_statistics(chainer.Sequential(L.BatchRenormalization(3)))
    with pytest.raises(TypeError, match='ndarray'):
        use_last_batch_statistics(np.zeros(3))


def test_extension_priority_and_single_rank_identity():
    import chainermn
    comm = chainermn.create_communicator('naive')
    bn = L.BatchNormalization(3)
    bn.avg_mean[...] = [0.1, 0.2, 0.3]
    ext = BatchNormStatsAllreduce(bn, comm)
    assert ext.priority > extensions.Evaluator.priority
    assert ext.priority > extensions.snapshot().priority
    assert ext.trigger == (1, 'epoch')
    before = bn.avg_mean.copy()
    ext()
    assert np.array_equal(bn.avg_mean, before)
    with pytest.raises(TypeError, match='ndarray'):
        BatchNormStatsAllreduce(np.zeros(3), comm)


@pytest.mark.parametrize('n', [2, 3])
def test_statistics_allreduce_multiprocess(mpirun, n):
    mpirun(n, 'bn_stats.py', timeout=180)
