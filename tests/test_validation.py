"""Top-k accuracy of the validation against numpy's stable sort, and top-1 against F.accuracy."""
import numpy
import pytest

import chainer_ext  # noqa: F401  (compatibility shims before chainer loads)
import chainer.functions as F

from chainer_ext.extensions.multi_node_evaluator import top_k_accuracy


@pytest.mark.parametrize('k', [1, 2, 5, 9])
def test_top_k_against_a_stable_argsort_with_ties(k):
    rng = numpy.random.RandomState(k)
    y = rng.randint(0, 4, (200, 9)).astype(numpy.float32)   # many ties
    t = rng.randint(0, 9, 200).astype(numpy.int32)
    order = numpy.argsort(-y, axis=1, kind='stable')         # ties: lower class first
    rank = numpy.argmax(order == t[:, None], axis=1)
    got = top_k_accuracy(y, t, k)
    assert got.dtype == numpy.float32 and got.shape == ()
    assert float(got) == numpy.float32((rank < k).sum() / 200.0)
    if k == 1:
        assert float(got) == float(F.accuracy(y, t).array)
    if k == 9:
        assert float(got) == 1.0
