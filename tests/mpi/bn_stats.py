"""Launched with mpiexec -n 2 / -n 3: batch normalization without moving averages.

Checks on every rank:
  * after use_last_batch_statistics, avg_mean/avg_var are the last training
    minibatch's mean and unbiased variance (recomputed here with NumPy);
  * BatchNormStatsAllreduce replaces them by their average over ranks
    (recomputed here from the gathered statistics), bit-identical on all ranks,
    leaves other persistents alone, and is a no-op before the first forward;
  * inside a Trainer it runs before the evaluator on the same trigger, even
    when registered after it.
"""
import sys

import numpy as np

import chainer_ext  # noqa: F401  (compatibility stand-ins before chainer loads)
import chainer
import chainer.functions as F
import chainer.links as L
import chainermn
from chainer import training
from chainer.training import extensions

from chainer_ext.links.last_batch_bn import use_last_batch_statistics
from chainer_ext.communicators import create_communicator
from rank_checks import abort_on_exception
from chainer_ext.extensions.multi_node_evaluator import MultiNodeEvaluator
from chainer_ext.extensions import BatchNormStatsAllreduce

comm = create_communicator('naive', allreduce_grad_dtype='float16')
p, r = comm.size, comm.rank

check = abort_on_exception(comm)


class Net(chainer.Chain):
    """conv -> BN (4-D) -> relu -> linear -> BN (2-D); keeps the BN inputs."""

    def __init__(self):
        super(Net, self).__init__()
        with self.init_scope():
            self.conv = L.Convolution2D(3, 4, 3, pad=1)
            self.bn1 = L.BatchNormalization(4)
            self.fc = L.Linear(4 * 5 * 5, 6)
            self.bn2 = L.BatchNormalization(6)
        self.add_persistent('other', np.full(3, float(r), np.float32))

    def forward(self, x):
        h = self.conv(x)
        self.bn1_in = h.array.copy()
        h = F.relu(self.bn1(h))
        h = self.fc(h)
        self.bn2_in = h.array.copy()
        return self.bn2(h)


def unbiased(h, axes):
    h = h.astype(np.float64)
    m = h.size // h.shape[1]
    return h.mean(axis=axes), h.var(axis=axes) * m / (m - 1)


def bn_stats(model):
    return [model.bn1.avg_mean.copy(), model.bn1.avg_var.copy(),
            model.bn2.avg_mean.copy(), model.bn2.avg_var.copy()]


np.random.seed(10 + r)
model = Net()
moving = Net()                      # Chainer's default decay, for contrast
check(use_last_batch_statistics(model) == 2, 'links changed')
check(model.bn1.decay == 0 and model.bn2.decay == 0, 'decay')
rng = np.random.RandomState(20 + r)
for batch in (8, 8, 5):
    x = (rng.standard_normal((batch, 3, 5, 5)) * 2 + 1 + r).astype(np.float32)
    with chainer.using_config('train', True):
        model(x)
        moving(x)

mean1, var1 = unbiased(model.bn1_in, (0, 2, 3))
mean2, var2 = unbiased(model.bn2_in, (0,))
for got, want, what in [(model.bn1.avg_mean, mean1, 'bn1 mean'),
                        (model.bn1.avg_var, var1, 'bn1 var'),
                        (model.bn2.avg_mean, mean2, 'bn2 mean'),
                        (model.bn2.avg_var, var2, 'bn2 var')]:
    check(got.dtype == np.float32, what, got.dtype)
    check(np.allclose(got, want, rtol=1e-5, atol=1e-6), what, got, want)
check(not np.allclose(moving.bn1.avg_mean, mean1, rtol=1e-3),
      'the moving average should differ from the last batch')

# -- all-reduce of the statistics ---------------------------------------------------
before = bn_stats(model)
everyone = comm.mpi_comm.allgather(before)
expected = [np.mean([np.asarray(s[i], np.float64) for s in everyone], axis=0)
            for i in range(4)]
ext = BatchNormStatsAllreduce(model, comm)
check(ext.priority > extensions.Evaluator.priority, 'priority vs evaluator')
check(ext.priority > extensions.snapshot().priority, 'priority vs snapshot')
ext()
after = bn_stats(model)
for got, want in zip(after, expected):
    check(np.allclose(got, want, rtol=1e-6, atol=1e-9), 'average', got, want)
if p > 1:
    check(any(not np.array_equal(a, b) for a, b in zip(before, after)),
          'statistics unchanged: ranks had different data')
hashes = comm.mpi_comm.allgather(b''.join(a.tobytes() for a in after))
check(all(h == hashes[0] for h in hashes), 'averaged statistics differ by rank')
check(np.all(model.other == r), 'a non-BN persistent was averaged')
check(model.bn1.N == 0, 'integer persistent changed')

fresh = L.BatchNormalization(axis=0)  # size unknown until the first forward
BatchNormStatsAllreduce(fresh, comm)()
check(fresh.avg_mean is None, 'uninitialised statistics were created')

# -- inside a Trainer: runs before the evaluator on the same trigger ----------------
np.random.seed(30 + r)
net = Net()
use_last_batch_statistics(net)
clf = L.Classifier(net)
data = rng.standard_normal((12, 3, 5, 5)).astype(np.float32) + r
labels = rng.randint(0, 6, 12).astype(np.int32)
train = chainer.datasets.TupleDataset(data, labels)
val = chainer.datasets.TupleDataset(data[:5], labels[:5])
optimizer = chainermn.create_multi_node_optimizer(chainer.optimizers.MomentumSGD(0.01), comm)
optimizer.setup(clf)
updater = training.StandardUpdater(
    chainer.iterators.SerialIterator(train, 4), optimizer)
trainer = training.Trainer(updater, (3, 'iteration'), out='/tmp/bn_stats_unused')
seen = []


def eval_hook(evaluator):
    stats = [net.bn1.avg_mean, net.bn1.avg_var, net.bn2.avg_mean, net.bn2.avg_var]
    h = comm.mpi_comm.allgather(b''.join(s.tobytes() for s in stats))
    seen.append(all(x == h[0] for x in h))


evaluator = MultiNodeEvaluator(
    chainer.iterators.SerialIterator(val, 4, repeat=False, shuffle=False),
    clf, comm, eval_hook=eval_hook)
trainer.extend(evaluator, trigger=(1, 'iteration'))              # registered first
trainer.extend(BatchNormStatsAllreduce(net, comm), trigger=(1, 'iteration'))
trainer.run()
check(len(seen) == 3 and all(seen), 'evaluation saw unaveraged statistics', seen)

comm.finalize()
if r == 0:
    print('bn_stats: all checks passed on {} ranks'.format(p))
sys.stdout.flush()
