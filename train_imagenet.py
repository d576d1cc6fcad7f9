#!/usr/bin/env python
"""Train ResNet-50 on ImageNet with the recipe of Akiba, Suzuki and Fukuda (2017).

    mpiexec -n 1024 python train_imagenet.py --train train.txt --val val.txt --root /data/ILSVRC2012

The defaults are the paper's recipe (Sections 2-3, Appendix A): 32 images per worker, 90
epochs, ResNet-50 at 224 px, the RMSprop->SGD hybrid optimizer with the slow-start rate, BN
from the last minibatch averaged over workers, float16 gradient all-reduce.  ``--epoch 18``
compresses every schedule by 18/90; ``--demo`` trains on built-in digits; ``--optimizer
momentum`` or ``lars`` and ``--bn-moving-average`` are the baselines.
"""
import functools
import os
import sys

import chainer_ext  # noqa: F401  (installs compatibility shims before chainer loads)
from chainer_ext import stop_signals

if __name__ == '__main__':  # a stop signal during the imports below is recorded
    stop_signals.catch_early(sys.argv[1:])

import numpy
import chainer
import chainer.links as L
import chainermn
from chainer import training

from chainer_ext import blas_setup
from chainer_ext import communicators
from chainer_ext import cores
from chainer_ext import data_parallel
from chainer_ext import datasets
from chainer_ext import except_hook
from chainer_ext import out_guard
from chainer_ext.extensions import stop_on_signal
from chainer_ext import report
from chainer_ext import run_length
from chainer_ext import schedules
from chainer_ext import snapshots
from chainer_ext import startup_checks as checks
from chainer_ext import validation
from chainer_ext.batchnorm import use_last_batch_statistics
from chainer_ext.extensions import BatchNormStatsAllreduce
from chainer_ext.extensions import EpochSchedule
from chainer_ext.nonfinite import SkipNonFiniteUpdate
from chainer_ext import optimizers
from chainer_ext.optimizers import add_weight_decay
from chainer_ext.reproducible_order import EpochSeededDataset
from chainer_ext.reproducible_order import EpochTaggedOrderSampler
from chainer_ext.run_info import record_run
from models import archs

PROG = 'train_imagenet.py'
# --demo: ResNet-18 on 32 px digits (sizes explained in chainer_ext.datasets.demo).
DEMO_DEFAULTS = dict(arch='resnet18', epoch=18, batchsize=32, val_batchsize=64,
                     loaderjob=0, out=os.path.join('result', 'demo'),
                     insize=datasets.DEMO_INSIZE, min_area=datasets.DEMO_MIN_AREA)
PAPER_DEFAULTS = dict(arch='resnet50', insize=224, epoch=90, batchsize=32,
                      val_batchsize=50, loaderjob=None, min_area=0.08, out='result')


def build_parser():
    p = checks.RankZeroParser(prog=PROG, description='ResNet-50 on ImageNet with extremely '
                              'large minibatches (Akiba et al. 2017) on Chainer/ChainerMN.')
    arg = p.add_argument
    arg('--train', help='training list file ("relative/path label" per line)')
    arg('--val', help='validation list file')
    arg('--root', default='.', help='folder the list paths are relative to')
    arg('--arch', choices=sorted(archs), help='network (default resnet50; resnet18 with --demo)')
    arg('--batchsize', type=checks.positive_int, help='images per worker per iteration (paper: 32)')
    arg('--val-batchsize', type=checks.positive_int, help='validation images per worker per batch')
    arg('--epoch', type=checks.positive_int, help='epochs to train (paper: 90); fewer '
        'compresses every schedule boundary and beta by epoch/90')
    arg('--insize', type=checks.positive_int, help='input crop side in pixels (paper: 224)')
    arg('--communicator', choices=communicators.NAMES, help='ChainerMN communicator (default: '
        'pure_nccl on GPUs, naive on CPUs, both with float16 all-reduce)')
    arg('--allreduce-dtype', default='float16', choices=('float16', 'float32'),
        help='dtype of the gradient all-reduce (paper: float16)')
    arg('--loaderjob', type=checks.nonnegative_int,
        help='data-loading worker processes per rank (0: load in-process)')
    arg('--out', help='output folder (default result, result/demo with --demo)')
    arg('--resume', default='', help='snapshot folder OUT/snapshots/epoch-N (or iter-N) to '
        'continue from, or "auto" for the newest complete one in --out')
    arg('--seed', type=checks.seed, default=0,
        help='seed of initial weights, data order and augmentation')
    arg('--stop-signals', type=checks.stop_signals, default='TERM,USR1',
        help='signals that stop every rank at the next iteration with a snapshot and exit '
        'status {} (preempted: requeue with --resume auto)'.format(
            stop_signals.PREEMPTED_STATUS))
    arg('--wait-for-lock', type=checks.nonnegative_float, default=0.0, metavar='SECONDS',
        help='if another job holds --out, wait up to this long for it to end (0: refuse)')
    arg('--optimizer', default='rmsprop_warmup', choices=optimizers.NAMES,
        help='rmsprop_warmup (paper), momentum (Goyal et al. baseline) or lars (You et al. '
        'baseline: LARS, linear warm-up and polynomial decay of its global rate)')
    arg('--lr-rmsprop', type=checks.nonnegative_float, default=3e-4,
        help='eta_RMSprop of Appendix A.1 (paper: 0.0003)')
    arg('--lars-eta', type=checks.positive_finite, default=0.001,
        help='trust coefficient eta of LARS (You et al.: 0.001)')
    arg('--weight-decay', type=checks.nonnegative_float, default=1e-4,
        help='weight decay on conv/linear weights (Goyal et al.: 1e-4; inside the update '
        'with lars)')
    arg('--bn-moving-average', action='store_true',
        help="baseline: keep Chainer's moving averages in batch normalization")
    arg('--min-area', type=checks.area_fraction,
        help='smallest crop area fraction of the scale augmentation (paper: 0.08)')
    arg('--demo', action='store_true', help='build a small digits data set in the ImageNet '
        'list format and train resnet18 on it with a compressed schedule')
    arg('--demo-cache', help='where --demo keeps its data (default ~/.cache/akiba2017/demo-digits)')
    arg('--synthetic', action='store_true', help='random data of the right shape, no I/O')
    arg('--synthetic-size', type=checks.positive_int, default=1281167,
        help='images per epoch with --synthetic (default: ImageNet-1k train)')
    arg('--n-class', type=checks.at_least_two, default=1000, help='classes with --synthetic')
    arg('--max-iterations', type=checks.nonnegative_int, default=0,
        help='stop at this iteration, counted from the start of the run (a resumed run '
        'included), if the last epoch has not ended before (0: run all epochs)')
    arg('--log-interval', type=checks.nonnegative_int, default=0,
        help='LogReport every N iterations (0: every epoch)')
    arg('--no-plots', action='store_true', help='skip the per-epoch PNG plots (about 0.16 s '
        'per epoch on rank 0, which every rank waits for; python -m chainer_ext.report '
        'draws them afterwards)')
    arg('--no-validation', action='store_true', help='skip per-epoch validation')
    arg('--check-dataset', action='store_true', help='check the train and val lists (files '
        'exist, decode, labels in range), print every bad line, exit 1 if any is bad')
    arg('--keep-snapshots', type=checks.nonnegative_int, default=3,
        help='complete snapshots to keep (0: all)')
    arg('--snapshot-iterations', type=checks.nonnegative_int, default=0,
        help='also snapshot every N iterations (0: only at epoch ends)')
    arg('--max-nonfinite', type=checks.positive_int, default=20,
        help='stop after this many consecutive updates with non-finite gradients')
    arg('--device', default='auto', choices=('auto', 'cpu', 'gpu'),
        help='auto: one GPU per rank (intra-node rank) when CuPy is present')
    return p


def parse_args(argv=None):
    """Flags with the paper's (or the demo's) defaults filled in; exits 2 on bad flags."""
    args = build_parser().parse_args(argv)
    for key, value in (DEMO_DEFAULTS if args.demo else PAPER_DEFAULTS).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.demo_cache is None:
        cache = os.environ.get('XDG_CACHE_HOME') or os.path.join(os.path.expanduser('~'), '.cache')
        args.demo_cache = os.path.join(cache, 'akiba2017', 'demo-digits')
    checks.resolve_device(args)
    return args


def make_optimizer(args, model, comm):
    """The paper's hybrid optimizer (A.1), the momentum or LARS baseline, and its schedules."""
    recipe = schedules.recipe(args.optimizer, comm.size * args.batchsize, args.epoch)
    start = {attr: schedule(0.0) for attr, schedule in recipe.items()}
    if args.optimizer == 'lars':   # weight decay inside its update (Algorithm 1)
        actual = optimizers.for_recipe('lars', eta=args.lars_eta,
                                       weight_decay=args.weight_decay, **start)
    else:
        actual = optimizers.for_recipe(args.optimizer, lr_rmsprop=args.lr_rmsprop, **start)
    optimizer = chainermn.create_multi_node_optimizer(actual, comm)
    optimizer.setup(model)
    if args.weight_decay > 0 and args.optimizer != 'lars':
        add_weight_decay(model, rate=args.weight_decay)
    optimizer.add_hook(SkipNonFiniteUpdate(comm, max_consecutive=args.max_nonfinite))
    return optimizer, [EpochSchedule(attr, schedule) for attr, schedule in recipe.items()]


def load_data(args, comm):
    """This rank's shards of the training and validation sets, and facts about the data.

    Rank 0 reads the lists; the index arrays are scattered as by
    ``chainermn.scatter_dataset``; examples are seeded per epoch and index.
    """
    if args.synthetic:
        train_all = datasets.SyntheticImageDataset(args.synthetic_size, args.insize,
                                                   args.n_class, seed=args.seed)
        val_all = datasets.SyntheticImageDataset(2 * args.val_batchsize * comm.size,
                                                 args.insize, args.n_class, seed=args.seed + 1)
        n_class = args.n_class
    else:
        train_all, val_all = checks.read_lists(args, comm)
        n_class = train_all.n_class
    checks.check_world(args, comm, len(train_all), -(-len(train_all) // comm.size))
    train_idx = data_parallel.shard_indices(len(train_all), comm, train=True, seed=args.seed)
    val_idx = data_parallel.shard_indices(len(val_all), comm, train=False)
    if args.synthetic:
        train = data_parallel.IndexedView(train_all, train_idx)
        val = data_parallel.IndexedView(val_all, val_idx)
    else:
        checks.check_images_exist(comm, (train_all, train_idx), (val_all, val_idx))
        train = datasets.ImageNetDataset(train_all.subset(train_idx), args.root, args.insize,
                                         train=True, min_area=args.min_area)
        val = validation.centre_crops(val_all.subset(val_idx), args.root, args.insize)
    facts = dict(n_class=n_class, n_train=len(train_all), n_val=len(val_all),
                 train_list=None if args.synthetic else train_all.identity())
    return (EpochSeededDataset(train, seed=rank_seed(args.seed, comm.rank)),
            EpochSeededDataset(val, seed=args.seed), facts)


def make_iterators(args, train, val, order):
    """Training and validation iterators; loader processes raise their workers' errors."""
    make = chainer.iterators.SerialIterator
    if args.loaderjob > 0:
        make = functools.partial(datasets.StrictMultiprocessIterator, n_processes=args.loaderjob)
    return (make(train, args.batchsize, order_sampler=order, shuffle=None),
            make(val, args.val_batchsize, repeat=False, shuffle=False))


def run(args, guard=None):
    """Start MPI and check the paths; train while holding --out's lock (which ``guard``,
    rank 0's :class:`chainer_ext.out_guard.OutGuard`, removes if rank 0 is killed)."""
    comm = communicators.create_communicator(args.communicator, allreduce_grad_dtype=(
        'float16' if args.allreduce_dtype == 'float16' else None))  # None: ChainerMN's own
    checks.check_paths(args, comm)
    if args.check_dataset:
        if args.demo:
            checks.use_demo_lists(args, comm)
        return checks.check_dataset(args, comm)
    lock = checks.lock_output(args, comm)  # one job per output folder, before anything slow
    if lock is not None and guard is not None:
        guard.watch(args.out, lock.holder)
    try:
        if args.demo:
            checks.use_demo_lists(args, comm)
        return train(args, comm)
    finally:
        if lock is not None:
            lock.release()


def train(args, comm):
    """The training procedure; every rank runs all of it (the steps are collective)."""
    device = checks.choose_device(args, comm)
    owned = cores.of_rank(comm)  # the CPU cores this rank owns on its node
    if args.loaderjob is None:
        args.loaderjob = checks.default_loaderjob(owned)
    blas_setup.limit_threads(owned, args.loaderjob)

    train, val, facts = load_data(args, comm)
    resume = checks.resolve_resume(args, comm, snapshot_info(args, facts))

    model = make_model(args, facts['n_class'], device)
    optimizer, schedule_extensions = make_optimizer(args, model, comm)
    # Identical initial weights on every rank, broadcast here rather than at the
    # multi-node optimizer's first update(), so that iteration 1 (fresh or
    # resumed) is a real update.
    data_parallel.broadcast_params(model, comm)
    optimizer.is_changed(model)

    order = EpochTaggedOrderSampler(len(train), seed=rank_seed(args.seed, comm.rank))
    train_iter, val_iter = make_iterators(args, train, val, order)

    updater = training.StandardUpdater(train_iter, optimizer, device=device)
    length = run_length.RunLength(args.epoch, args.max_iterations, len(train) / args.batchsize)
    trainer = training.Trainer(updater, length, out=args.out)
    for extension in schedule_extensions:
        trainer.extend(extension)
    # BN statistics averaged over workers before every validation and snapshot (Section 2).
    trainer.extend(BatchNormStatsAllreduce(model, comm), trigger=(1, 'epoch'))
    if not args.no_validation:
        trainer.extend(validation.make_evaluator(val_iter, model, comm, device=device),
                       trigger=(1, 'epoch'))
    info = snapshot_info(args, facts)
    trainer.extend(snapshots.MultiNodeSnapshot(comm, args.out, keep=args.keep_snapshots,
                                               info=info), trigger=(1, 'epoch'))
    by_iteration = snapshots.MultiNodeSnapshot(comm, args.out, keep=args.keep_snapshots,
                                               info=info, by='iteration')
    if args.snapshot_iterations:
        every = (args.snapshot_iterations, 'iteration')
        trainer.extend(BatchNormStatsAllreduce(model, comm), trigger=every,
                       name='BatchNormStatsAllreduceIterations')
        trainer.extend(by_iteration, trigger=every, name='MultiNodeSnapshotIterations')
    # A stop signal on any rank: all stop after this iteration's extensions, with a snapshot.
    trainer.extend(stop_on_signal.StopOnSignal(
        comm, by_iteration, before_snapshot=BatchNormStatsAllreduce(model, comm)))
    if comm.rank == 0:
        for extension, trigger in report.training_reporters(
                args.optimizer, args.log_interval, plots=not args.no_plots):
            trainer.extend(extension, trigger=trigger)

    total_batch = comm.size * args.batchsize
    record_run(os.path.join(args.out, 'config.json'), args, comm, device, dict(
        facts, eta_base=schedules.eta_base(total_batch), total_batch=total_batch,
        resumed_from=resume, communicator=args.communicator, blas=blas_setup.describe()))
    if resume:
        snapshots.load_snapshot(resume, trainer, comm)
        if comm.rank == 0:
            print('resumed from {} (iteration {})'.format(resume, updater.iteration), flush=True)
            moved = report.restore_log(trainer, args.out)
            if moved:
                print('resuming from {}: {} of the later iterations set aside as '
                      '.superseded-*'.format(resume, ', '.join(moved)), flush=True)
    if comm.rank == 0 and length.stops_early():
        print(length.describe(), flush=True)

    try:
        # The global except hook prints a failure once, with its rank; Chainer's
        # own loop message would print it a second time.
        trainer.run(show_loop_exception_msg=False)
    except stop_on_signal.Preempted as stop:
        if comm.rank == 0:
            print(stop.line, flush=True)
        return stop_signals.PREEMPTED_STATUS
    finally:
        train_iter.finalize()
        val_iter.finalize()

    BatchNormStatsAllreduce(model, comm)()  # the final model holds the workers' average
    if comm.rank == 0:
        path = os.path.join(args.out, 'model.npz')
        tmp = '{}.tmp-{}.npz'.format(path, os.getpid())
        chainer.serializers.save_npz(tmp, model.predictor)
        os.replace(tmp, path)
        print(report.final_summary(args.out, updater.iteration, updater.epoch_detail,
                                   trainer.elapsed_time, length), flush=True)
    return 0


def make_model(args, n_class, device):
    """The classifier; BN keeps the last minibatch's statistics (Section 2) unless
    --bn-moving-average.  Chainer's initializers draw from NumPy's global generator:
    seeding it makes rank 0's initial weights, which every rank receives, repeatable."""
    numpy.random.seed(args.seed)
    model = L.Classifier(archs[args.arch](n_class=n_class))
    if not args.bn_moving_average:
        use_last_batch_statistics(model)
    if device >= 0:
        model.to_gpu(device)
    return model


def snapshot_info(args, facts):
    """What a snapshot must agree with to be resumed by this job."""
    return {'batchsize': args.batchsize, 'arch': args.arch, 'optimizer': args.optimizer,
            'epochs': args.epoch, 'train_list': facts['train_list']}


def rank_seed(seed, rank):
    """Distinct, reproducible seed of one rank's data order and augmentation."""
    return int(seed) * 100003 + int(rank)


def main(argv=None):
    # Stop signals are recorded from here on; the BLAS re-exec carries them over.
    stop_signals.catch_early(sys.argv[1:] if argv is None else argv)
    with stop_signals.held():
        blas_setup.ensure_kernel(rank=checks.env_rank())  # may re-execute this process
    args = parse_args(argv)
    stop_signals.catch(args.stop_signals)
    problems = checks.flag_problems(args, archs[args.arch].min_insize)
    if problems:
        return checks.report_before_mpi(checks.InputError(problems, status=2), PROG)
    if not args.check_dataset and args.loaderjob != 0:
        with stop_signals.ignored_by_forkserver(args.stop_signals):  # and by the loaders
            checks.start_forkserver()  # before the communicator starts MPI
    # Any uncaught exception on any rank ends the whole MPI job at once
    # instead of leaving the other ranks waiting in a collective.
    except_hook.install(PROG)
    # Rank 0's lock and unfinished snapshots are removed even if it is killed.
    guard = out_guard.start() if checks.env_rank() == 0 and not args.check_dataset else None
    try:
        status = run(args, guard)
    except checks.InputError as e:  # raised on every rank alike: no abort needed
        checks.print_input_error(e, PROG)
        checks.remove_created_if_empty()
        status = e.status
    except run_length.NothingToTrain as e:
        if checks.env_rank() == 0:
            print('{}: {}'.format(PROG, e.line), flush=True)
        status = 0
    finally:
        if guard is not None:
            guard.close()
    except_hook.end_together()
    return status


if __name__ == '__main__':
    sys.exit(main())
