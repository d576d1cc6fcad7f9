"""Launched with mpiexec -n 2 / -n 3: data-parallel wiring and the multi-node evaluator.

Checks on every rank:
  * broadcast_params makes different initial weights identical (params_identical);
  * shard_indices splits 11 validation examples into disjoint shards covering all
    of them (lengths differ by <= 1) and training examples into equal lengths;
  * the multi-node evaluator's loss and top-1 on that uneven split equal one
    process's on the whole set, under Chainer's keys, on every rank, twice in a
    row (iterators reset); also with an empty shard (2 examples, 3 ranks).
"""
import numpy as np

import chainer_ext  # noqa: F401  (compatibility stand-ins before chainer loads)
import chainer
import chainer.functions as F
import chainer.links as L

from chainer_ext.datasets import scatter as dp
from chainer_ext.communicators import create_communicator
from chainer_ext.extensions.multi_node_evaluator import MultiNodeEvaluator
from rank_checks import abort_on_exception, params_identical

comm = create_communicator('naive', allreduce_grad_dtype='float16')
p, r = comm.size, comm.rank

check = abort_on_exception(comm)


# -- initial weights ----------------------------------------------------------------
np.random.seed(r)                           # different initialisation per rank
model = L.Classifier(L.Linear(4, 3))
check(p == 1 or not params_identical(model, comm), 'weights equal before')
dp.broadcast_params(model, comm)
check(params_identical(model, comm), 'weights differ after broadcast_params')
lazy = L.Classifier(L.Linear(None, 3))
try:
    dp.broadcast_params(lazy, comm)
    check(False, 'uninitialised parameters not refused')
except ValueError as e:
    check('predictor/W' in str(e), str(e))

# -- data sets ----------------------------------------------------------------------
N = 11
rng = np.random.RandomState(0)
x_all = rng.standard_normal((N, 4)).astype(np.float32)
x_all[:, 0] = np.arange(N)                  # the example's index, to identify it
t_all = rng.randint(0, 3, N).astype(np.int32)

val_idx = dp.shard_indices(N, comm, train=False)
val = chainer.datasets.TupleDataset(x_all[val_idx], t_all[val_idx])
idx = sorted(int(val[i][0][0]) for i in range(len(val)))
all_idx = comm.mpi_comm.allgather(idx)
lengths = [len(i) for i in all_idx]
check(sorted(sum(all_idx, [])) == list(range(N)), 'validation shards', all_idx)
check(max(lengths) - min(lengths) <= 1, 'validation lengths', lengths)
if p > 1:
    check(len(set(lengths)) > 1, 'want an uneven split for this test', lengths)
train = dp.shard_indices(N, comm, train=True, seed=3)
check(len(set(comm.mpi_comm.allgather(len(train)))) == 1, 'train lengths')
check(set(sum(comm.mpi_comm.allgather(train.tolist()), [])) == set(range(N)), 'train shards')
check(len(train) == -(-N // p), 'train shard length', len(train))

# -- reference: one process on the whole set -------------------------------------------
with chainer.using_config('train', False), chainer.no_backprop_mode():
    y = model.predictor(x_all)
    want_loss = float(F.softmax_cross_entropy(y, t_all).array)
    want_acc = float((y.array.argmax(axis=1) == t_all).mean())
check(0 < want_acc < 1, 'degenerate accuracy', want_acc)


def run_evaluator(evaluator):
    evaluator.name = 'validation'           # what trainer.extend would set
    return evaluator()


def check_result(res, what):
    check(set(res) == {'validation/main/loss', 'validation/main/accuracy'},
          what, sorted(res))
    check(abs(res['validation/main/accuracy'] - want_acc) < 1e-6, what,
          res['validation/main/accuracy'], want_acc)
    check(abs(res['validation/main/loss'] - want_loss) < 1e-5, what,
          res['validation/main/loss'], want_loss)
    everyone = comm.mpi_comm.allgather(sorted(res.items()))
    check(all(e == everyone[0] for e in everyone), what, 'differs by rank')


def val_iter(dataset):
    return chainer.iterators.SerialIterator(dataset, 4, repeat=False,
                                            shuffle=False)


ev = MultiNodeEvaluator(val_iter(val), model, comm)
check_result(run_evaluator(ev), 'MultiNodeEvaluator')
check_result(run_evaluator(ev), 'MultiNodeEvaluator, second call')
try:
    MultiNodeEvaluator(chainer.iterators.SerialIterator(val, 4), model, comm)
    check(False, 'repeating iterator accepted')
except ValueError as e:
    check('repeat' in str(e), str(e))

# An empty shard (2 examples over 3 ranks): the rank still takes part.
small_idx = dp.shard_indices(2, comm, train=False)
shard = chainer.datasets.TupleDataset(x_all[small_idx], t_all[small_idx])
res = run_evaluator(MultiNodeEvaluator(val_iter(shard), model, comm))
with chainer.using_config('train', False), chainer.no_backprop_mode():
    acc2 = float((model.predictor(x_all[:2]).array.argmax(axis=1)
                  == t_all[:2]).mean())
check(abs(res['validation/main/accuracy'] - acc2) < 1e-6, 'empty shard', res)

comm.finalize()
if r == 0:
    print('eval_uneven: all checks passed on {} ranks (top-1 {:.4f})'.format(
        p, want_acc))
