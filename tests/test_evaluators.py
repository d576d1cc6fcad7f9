"""Multi-node evaluator weighted by examples, and the data-parallel wiring."""
import sys

import numpy as np
import pytest

import chainer_ext  # noqa: F401  (compatibility stand-ins before chainer loads)
import chainer
import chainer.functions as F
import chainer.links as L
from chainer.training import extensions
import chainermn

from chainer_ext.datasets import scatter as dp
from chainer_ext.extensions.multi_node_evaluator import MultiNodeEvaluator
from conftest import MPI_SCRIPTS

sys.path.insert(0, MPI_SCRIPTS)
from rank_checks import params_digest, params_identical  # noqa: E402


def _data(n=11):
    rng = np.random.RandomState(0)
    x = rng.standard_normal((n, 4)).astype(np.float32)
    t = rng.randint(0, 3, n).astype(np.int32)
    return x, t


def _iterator(dataset, repeat=False):
    return chainer.iterators.SerialIterator(dataset, 4, repeat=repeat,
                                            shuffle=False)


def test_per_example_mean_with_a_short_last_batch():
    comm = chainermn.create_communicator('naive')
    np.random.seed(0)
    model = L.Classifier(L.Linear(4, 3))
    x, t = _data()
    ds = chainer.datasets.TupleDataset(x, t)
    ev = MultiNodeEvaluator(_iterator(ds), model, comm)
    ev.name = 'validation'
    res = ev()
    with chainer.using_config('train', False):
        y = model.predictor(x)
    acc = float((y.array.argmax(axis=1) == t).mean())
    loss = float(F.softmax_cross_entropy(y, t).array)
    assert sorted(res) == ['validation/main/accuracy', 'validation/main/loss']
    assert res['validation/main/accuracy'] == pytest.approx(acc, abs=1e-6)
    assert res['validation/main/loss'] == pytest.approx(loss, abs=1e-5)
    # Chainer's own Evaluator weights the batches (4, 4, 3) equally instead.
    plain = extensions.Evaluator(_iterator(ds), model)
    plain.name = 'validation'
    batch_mean = float(plain()['validation/main/accuracy'])
    assert batch_mean != pytest.approx(acc, abs=1e-6)


def test_counted_accuracy_is_an_exact_ratio_of_counts():
    """float32(c / n) * n is not c (1/5 is 0.2000000030 in float32): summed as whole
    counts, the accuracy is exactly correct / N whatever the batches."""
    comm = chainermn.create_communicator('naive')
    np.random.seed(1)
    model = L.Classifier(L.Linear(4, 3))
    x, t = _data(23)
    with chainer.using_config('train', False):
        correct = int((model.predictor(x).array.argmax(axis=1) == t).sum())
    for batch in (5, 7, 23):
        ev = MultiNodeEvaluator(chainer.iterators.SerialIterator(
            chainer.datasets.TupleDataset(x, t), batch, repeat=False, shuffle=False),
            model, comm, counted=('accuracy',))
        ev.name = 'validation'
        assert ev()['validation/main/accuracy'] == correct / 23, batch


def test_refuses_repeating_iterators():
    comm = chainermn.create_communicator('naive')
    model = L.Classifier(L.Linear(4, 3))
    ds = chainer.datasets.TupleDataset(*_data())
    with pytest.raises(ValueError, match='repeat'):
        MultiNodeEvaluator(_iterator(ds, repeat=True), model, comm)


def test_broadcast_params_single_rank():
    comm = chainermn.create_communicator('naive')
    model = L.Classifier(L.Linear(4, 3))
    digest = params_digest(model)
    dp.broadcast_params(model, comm)
    assert params_digest(model) == digest
    assert params_identical(model, comm)
    with pytest.raises(ValueError, match='predictor/W'):
        dp.broadcast_params(L.Classifier(L.Linear(None, 3)), comm)


@pytest.mark.parametrize('n', [2, 3])
def test_uneven_validation_split_multiprocess(mpirun, n):
    mpirun(n, 'eval_uneven.py', timeout=180)
