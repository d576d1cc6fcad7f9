"""Launched with mpiexec -n 2: format-2 ("slim") snapshots of a multi-node run.

    mpiexec -n 2 python tests/mpi/snapshot_slim.py OUT OPTIMIZER

OUT is a folder every rank sees; OPTIMIZER is ``adam`` or ``rmsprop_warmup``
(both keep two state arrays per parameter, and a step count ``t``).

A conv+BN+linear net is trained with a multi-node optimizer on different data
per rank (so the batch-normalization statistics and the iterators differ per
rank) for 16 iterations, with one snapshot at iteration 9 (mid-epoch). Checks:
  * rank 1's file is much smaller than rank 0's and holds none of the
    parameter and optimizer state arrays, but its own BN statistics, iterator
    state and the update rules' ``t``; rank 0's file holds everything;
  * a fresh trainer per rank (other initial weights, no optimizer state)
    loaded from the snapshot has rank 0's parameters and optimizer state,
    bit-identical on both ranks, its own BN statistics, iterator position and
    order, and rank 0's LogReport;
  * training on from there ends bit-identical to the uninterrupted run;
  * a format-1 snapshot (full files on every rank) still loads;
  * a truncated rank-1 file makes load_snapshot raise SnapshotError on both
    ranks (no rank is left waiting in a broadcast).
Prints ``SIZES rank0=... rank1=...`` (bytes) on rank 0.
"""
import hashlib
import os
import shutil
import sys

import numpy as np

import chainer_ext  # noqa: F401  (compatibility stand-ins before chainer loads)
import chainer
import chainer.functions as F
import chainer.links as L
import chainermn
from chainer import training
from chainer.training import extensions, triggers

from chainer_ext.extensions import multi_node_snapshot as snapshots
from chainer_ext.communicators import create_communicator
from chainer_ext.datasets.scatter import broadcast_params
from chainer_ext.optimizers import RMSpropWarmup
from chainer_ext.datasets.reproducible_order import EpochTaggedOrderSampler
from rank_checks import abort_on_exception

comm = create_communicator('naive')
p, r = comm.size, comm.rank
check = abort_on_exception(comm)
OUT, OPT = sys.argv[1], sys.argv[2]
N_DATA, BATCH, SNAP_AT, TOTAL = 24, 4, 9, 16  # 6 iterations per epoch


class Net(chainer.Chain):
    def __init__(self):
        super(Net, self).__init__()
        with self.init_scope():
            self.conv = L.Convolution2D(3, 4, 3, pad=1)
            self.bn1 = L.BatchNormalization(4)
            self.fc = L.Linear(4 * 8 * 8, 64)
            self.bn2 = L.BatchNormalization(64)
            self.out = L.Linear(64, 3)

    def forward(self, x):
        h = F.relu(self.bn1(self.conv(x)))
        return self.out(F.relu(self.bn2(self.fc(h))))


class Shard(chainer.dataset.DatasetMixin):
    """This rank's examples; strips the epoch tag of EpochTaggedOrderSampler."""

    def __init__(self):
        rng = np.random.RandomState(10 + r)
        self.t = rng.randint(0, 3, N_DATA).astype(np.int32)
        self.x = rng.randn(N_DATA, 3, 8, 8).astype(np.float32)
        self.x[np.arange(N_DATA), self.t] += 1.0 + r  # per-rank statistics

    def __len__(self):
        return N_DATA

    def get_example(self, j):
        return self.x[j % N_DATA], self.t[j % N_DATA]


def make_trainer(init_seed):
    np.random.seed(init_seed)
    model = L.Classifier(Net())
    if OPT == 'adam':
        actual = chainer.optimizers.Adam(alpha=0.01)
    else:
        actual = RMSpropWarmup(lr=0.05, lr_rmsprop=0.01, alpha_sgd=0.5)
    opt = chainermn.create_multi_node_optimizer(actual, comm)
    opt.setup(model)
    broadcast_params(model, comm)  # as train_imagenet: iteration 1 updates
    opt.is_changed(model)
    it = chainer.iterators.SerialIterator(
        Shard(), BATCH, order_sampler=EpochTaggedOrderSampler(N_DATA, seed=100 + r))
    trainer = training.Trainer(training.StandardUpdater(it, opt), (TOTAL, 'iteration'),
                               out=os.path.join(OUT, 'trainer-{}'.format(r)))
    if r == 0:
        trainer.extend(extensions.LogReport(trigger=(1, 'iteration')))
    return trainer, model, opt


def params_of(model):
    return {n: p.array.copy() for n, p in model.namedparams()}


def states_of(model):
    out = {}
    for n, p in model.namedparams():
        state = p.update_rule.state
        out[n] = (p.update_rule.t, None if state is None else
                  {k: np.array(v, copy=True) for k, v in state.items()})
    return out


def bn_of(model):
    out = {}
    for path, link in model.namedlinks():
        for name in link._persistent:
            out[path + '/' + name] = np.array(getattr(link, name), copy=True)
    return out


def iter_of(trainer):
    it = trainer.updater.get_iterator('main')
    return it.current_position, it.epoch, it.is_new_epoch, it._state.order.copy()


def same(a, b):
    """Bit-identical nested dicts/tuples of arrays and scalars."""
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(
            same(a[k], b[k]) for k in a)
    if isinstance(a, (tuple, list)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, np.ndarray):
        return (isinstance(b, np.ndarray) and a.dtype == b.dtype and a.shape == b.shape
                and a.tobytes() == b.tobytes())
    return a == b


# -- the uninterrupted run, recording its state at the snapshot -------------
trainer_a, model_a, opt_a = make_trainer(init_seed=1 + r)
at_snap = {}


@training.make_extension(trigger=triggers.ManualScheduleTrigger([SNAP_AT], 'iteration'),
                         priority=-200)  # after the snapshot
def record(trainer):
    at_snap.update(params=params_of(model_a), states=states_of(model_a),
                   bn=bn_of(model_a), iter=iter_of(trainer),
                   iteration=trainer.updater.iteration,
                   shared=snapshots.shared_keys(trainer))
    if r == 0:
        at_snap['log'] = list(trainer.get_extension('LogReport').log)
    # what a format-1 snapshot held on this rank
    chainer.serializers.save_npz(os.path.join(OUT, 'fmt1-rank{}.npz'.format(r)), trainer,
                                 compression=False)


trainer_a.extend(snapshots.MultiNodeSnapshot(comm, OUT, keep=0, by='iteration'),
                 trigger=triggers.ManualScheduleTrigger([SNAP_AT], 'iteration'))
trainer_a.extend(record)
trainer_a.run()
final_a = params_of(model_a), bn_of(model_a)
check(at_snap['iteration'] == SNAP_AT, at_snap.get('iteration'))

# parameters and optimizer state are identical on every rank, BN statistics
# and iterator orders are not (else the test would prove little)
everyone = comm.mpi_comm.allgather(at_snap)
check(same(everyone[0]['params'], everyone[1]['params']), 'params differ across ranks')
check(same(everyone[0]['states'], everyone[1]['states']), 'states differ across ranks')
for name in ('/predictor/bn1/avg_mean', '/predictor/bn2/avg_var'):
    check(not np.array_equal(everyone[0]['bn'][name], everyone[1]['bn'][name]),
          'BN statistics', name, 'equal across ranks')
check(not np.array_equal(everyone[0]['iter'][3], everyone[1]['iter'][3]), 'same order')
rank0 = everyone[0]

# -- the files ----------------------------------------------------------------
path = os.path.join(OUT, 'snapshots', 'iter-{}'.format(SNAP_AT))
check(snapshots.is_complete(path), path, 'is not complete')
manifest = snapshots.read_manifest(path)
check(manifest['format'] == 2 and manifest['full_rank'] == 0 and manifest['world_size'] == 2,
      manifest)
sizes = [os.path.getsize(os.path.join(path, snapshots.rank_file(i))) for i in range(p)]
check(sizes == [manifest['files'][snapshots.rank_file(i)] for i in range(p)], sizes, manifest)
check(sizes[1] * 10 < sizes[0], 'rank 1 file not much smaller:', sizes)
digests = {}
for i in range(p):
    with open(os.path.join(path, snapshots.rank_file(i)), 'rb') as f:
        digests[snapshots.rank_file(i)] = hashlib.sha256(f.read()).hexdigest()
check(manifest['sha256'] == digests, 'manifest SHA-256', manifest.get('sha256'), 'files', digests)
shared = at_snap['shared']
n_params = len(list(model_a.namedparams()))
check(len(shared) == 3 * n_params, 'params and two states each:', shared)
check('updater/model:main/predictor/fc/W' in shared
      and 'updater/optimizer:main/predictor/fc/W/' + sorted(
          model_a.predictor.fc.W.update_rule.state)[0] in shared, shared)
with np.load(os.path.join(path, snapshots.rank_file(r)), allow_pickle=True) as npz:
    keys = set(npz.files)
    if r == 0:
        check(set(shared) <= keys, 'rank 0 lacks', set(shared) - keys)
        check(snapshots.DROPPED not in keys)
    else:
        check(not set(shared) & keys, 'rank 1 holds', set(shared) & keys)
        check(snapshots._dropped_keys(npz) == set(shared), npz[snapshots.DROPPED])
        for k in ('updater/model:main/predictor/bn1/avg_mean',
                  'updater/model:main/predictor/bn2/N',
                  'updater/optimizer:main/predictor/fc/W/t',
                  'updater/optimizer:main/t', 'updater/iterator:main/order'):
            check(k in keys, 'rank 1 lacks', k)
        check(np.array_equal(npz['updater/model:main/predictor/bn1/avg_mean'],
                             at_snap['bn']['/predictor/bn1/avg_mean']), 'BN in rank 1 file')
        # nothing but scalars, persistents and the iterator order are left
        big = [k for k in keys if npz[k].size > 64 and not k.endswith('/order')]
        check(not big, 'large arrays in rank 1 file:', big)
if r == 0:
    print('SIZES rank0={} rank1={}'.format(*sizes), flush=True)

# -- resume in a fresh trainer -------------------------------------------------
trainer_b, model_b, opt_b = make_trainer(init_seed=50 + r)
check(not same(params_of(model_b), rank0['params']), 'fresh params equal the snapshot')
check(all(s is None for _, s in states_of(model_b).values()), 'fresh trainer has state')
snapshots.load_snapshot(path, trainer_b, comm)
check(trainer_b.updater.iteration == SNAP_AT, trainer_b.updater.iteration)
check(same(params_of(model_b), rank0['params']), 'params are not rank 0\'s')
check(same(states_of(model_b), rank0['states']), 'optimizer state is not rank 0\'s')
check(same(bn_of(model_b), at_snap['bn']), 'BN statistics not this rank\'s')
check(same(iter_of(trainer_b), at_snap['iter']), 'iterator', iter_of(trainer_b), at_snap['iter'])
if r == 0:
    check(trainer_b.get_extension('LogReport').log == at_snap['log'], 'LogReport')
trainer_b.run()
final_b = params_of(model_b), bn_of(model_b)
check(same(final_b, final_a), 'resumed run ends elsewhere than the uninterrupted one')
check(same(comm.mpi_comm.allgather(final_b[0])[0], final_b[0]), 'final params differ')

# -- a format-1 snapshot (full files on every rank) still loads ---------------
fmt1 = os.path.join(OUT, 'fmt1')
if r == 0:
    shutil.copytree(path, fmt1)
    for i in range(p):
        os.replace(os.path.join(OUT, 'fmt1-rank{}.npz'.format(i)),
                   os.path.join(fmt1, snapshots.rank_file(i)))
comm.mpi_comm.Barrier()
trainer_c, model_c, _ = make_trainer(init_seed=70 + r)
snapshots.load_snapshot(fmt1, trainer_c, comm)
check(same(params_of(model_c), rank0['params']) and same(states_of(model_c), rank0['states'])
      and same(bn_of(model_c), at_snap['bn']) and same(iter_of(trainer_c), at_snap['iter']),
      'format-1 snapshot not restored')

# -- a truncated rank-1 file: an error on every rank, nobody hangs ------------
broken = os.path.join(OUT, 'broken')
if r == 0:
    shutil.copytree(path, broken)
    victim = os.path.join(broken, snapshots.rank_file(1))
    with open(victim, 'rb') as f:
        head = f.read(200)
    with open(victim, 'wb') as f:
        f.write(head)
comm.mpi_comm.Barrier()
trainer_d, _, _ = make_trainer(init_seed=90 + r)
try:
    snapshots.load_snapshot(broken, trainer_d, comm)
except snapshots.SnapshotError as e:
    want = 'cannot load snapshot file' if r == 1 else 'failed on another rank'
    check(want in str(e), e)
else:
    check(False, 'a truncated rank-1 file was loaded')

comm.mpi_comm.Barrier()
print('rank {} OK'.format(r), flush=True)
