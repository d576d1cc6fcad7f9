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

import chainer_ext  # noqa: F401  (compatibility stand-ins before chainer loads)
from chainer_ext.job import stop_signals

if __name__ == '__main__':  # a stop signal during the imports below is recorded
    stop_signals.catch_early(sys.argv[1:])

import numpy
import chainer
import chainer.links as L
import chainermn
from chainer import training

from chainer_ext import communicators
from chainer_ext import datasets
from chainer_ext import extensions
from chainer_ext import links
from chainer_ext import optimizer_hooks
from chainer_ext.datasets import scatter
from chainer_ext.extensions import multi_node_evaluator
from chainer_ext.extensions import multi_node_snapshot as snapshots
from chainer_ext.job import atomic_files
from chainer_ext.job import checks
from chainer_ext.job import except_hook
from chainer_ext.job import input_error
from chainer_ext.job import lock_watcher
from chainer_ext.job import mpiexec
from chainer_ext.job import run_info
from chainer_ext.job import run_length
from chainer_ext.job import start_steps
from chainer_ext.job import train_flags
from chainer_ext.job import training_log
from chainer_ext.job.input_error import InputError
from chainer_ext.machine import blas
from chainer_ext.machine import cores
from chainer_ext.machine import cuda_env
from chainer_ext.optimizers import schedules
from chainer_ext.optimizers.recipe import recipe
from models import archs

PROG = train_flags.PROG


def make_communicator(args):
    """The ChainerMN communicator, its gradient all-reduce in float16 (Section 3) unless
    --allreduce-dtype float32 (then ChainerMN's own float32 all-reduce).  Creating it
    starts MPI."""
    return communicators.create_communicator(args.communicator, allreduce_grad_dtype=(
        'float16' if args.allreduce_dtype == 'float16' else None))


def rank_seed(seed, rank):
    """Distinct, reproducible seed of one rank's data order and augmentation."""
    return int(seed) * 100003 + int(rank)


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
        train_all, val_all = start_steps.read_lists(args, comm)
        n_class = train_all.n_class
    checks.check_world(args, comm, len(train_all),
                       scatter.training_shard_size(len(train_all), comm.size))
    train_idx = scatter.shard_indices(len(train_all), comm, train=True, seed=args.seed)
    val_idx = scatter.shard_indices(len(val_all), comm, train=False)
    if args.synthetic:
        train = scatter.IndexedView(train_all, train_idx)
        val = scatter.IndexedView(val_all, val_idx)
    else:
        checks.check_images_exist(comm, (train_all, train_idx), (val_all, val_idx))
        train = datasets.ImageNetDataset(train_all.subset(train_idx), args.root, args.insize,
                                         train=True, min_area=args.min_area)
        val = datasets.ImageNetDataset(val_all.subset(val_idx), args.root, args.insize,
                                       train=False)
    facts = dict(n_class=n_class, n_train=len(train_all), n_val=len(val_all),
                 train_list=None if args.synthetic else train_all.identity())
    return (datasets.EpochSeededDataset(train, seed=rank_seed(args.seed, comm.rank)),
            datasets.EpochSeededDataset(val, seed=args.seed), facts)


def snapshot_info(args, facts):
    """What a snapshot must agree with to be resumed by this job: every setting that changes
    the weights it leads to (None where a flag does not apply to this recipe)."""
    return {'batchsize': args.batchsize, 'arch': args.arch, 'optimizer': args.optimizer,
            'epochs': args.epoch, 'train_list': facts['train_list'], 'insize': args.insize,
            'seed': args.seed, 'min_area': args.min_area, 'n_class': facts['n_class'],
            'weight_decay': args.weight_decay, 'allreduce_dtype': args.allreduce_dtype,
            'bn_moving_average': args.bn_moving_average, 'synthetic': args.synthetic,
            'synthetic_size': args.synthetic_size if args.synthetic else None,
            'lr_rmsprop': args.lr_rmsprop if args.optimizer == 'rmsprop_warmup' else None,
            'lars_eta': args.lars_eta if args.optimizer == 'lars' else None}


def make_model(args, n_class, device, comm):
    """ResNet-50 (or --arch) as a classifier, and its batch normalization (Section 2).

    Chainer's initializers draw from NumPy's global generator: seeding it makes rank 0's
    initial weights, which every rank receives, repeatable.  BN keeps the last minibatch's
    statistics without moving averages (unless --bn-moving-average); the returned
    extension averages them over the workers before every validation and snapshot, and
    at the end.
    """
    numpy.random.seed(args.seed)
    model = L.Classifier(archs[args.arch](n_class=n_class))
    if not args.bn_moving_average:
        links.use_last_batch_statistics(model)
    if device >= 0:
        model.to_gpu(device)
    return model, extensions.BatchNormStatsAllreduce(model, comm)


def make_optimizer(args, model, comm):
    """The run's recipe (Appendix A): the paper's hybrid RMSprop-to-momentum-SGD update
    (A.1) with its slow-start learning rate from eta_base and its alpha_SGD ramp (A.2), or
    the momentum or LARS baseline; its gradients averaged over the workers (ChainerMN),
    weight decay on conv/linear weights, and non-finite updates skipped on every rank."""
    if args.optimizer == 'lars':   # weight decay inside its update (Algorithm 1)
        hyperparams = dict(eta=args.lars_eta, weight_decay=args.weight_decay)
    else:
        hyperparams = dict(lr_rmsprop=args.lr_rmsprop)
    actual, run_schedules = recipe(args.optimizer, comm.size * args.batchsize, args.epoch,
                                   **hyperparams)
    optimizer = chainermn.create_multi_node_optimizer(actual, comm)
    optimizer.setup(model)
    if args.weight_decay > 0 and args.optimizer != 'lars':
        optimizer_hooks.add_weight_decay(model, rate=args.weight_decay)
    optimizer.add_hook(optimizer_hooks.SkipNonFiniteUpdate(comm,
                                                           max_consecutive=args.max_nonfinite))
    return optimizer, [extensions.EpochSchedule(attr, schedule)
                       for attr, schedule in run_schedules.items()]


def make_iterators(args, train, val, order):
    """Training and validation iterators; loader processes raise their workers' errors."""
    make = chainer.iterators.SerialIterator
    if args.loaderjob > 0:
        make = functools.partial(datasets.StrictMultiprocessIterator, n_processes=args.loaderjob)
    return (make(train, args.batchsize, order_sampler=order, shuffle=None),
            make(val, args.val_batchsize, repeat=False, shuffle=False))


def extend_trainer(trainer, args, comm, model, bn_sync, val_iter, device, info):
    """What runs around the updates, in the order the trainer runs it at an epoch's end:
    BN statistics averaged, validation, snapshots; then the stop on a signal and rank 0's
    reporting."""
    # BN statistics averaged over the workers (Section 2) before every validation and
    # snapshot; its priority runs it before both.
    trainer.extend(bn_sync, trigger=(1, 'epoch'))
    if not args.no_validation:
        trainer.extend(multi_node_evaluator.make_evaluator(val_iter, model, comm, device=device),
                       trigger=(1, 'epoch'))
    trainer.extend(snapshots.MultiNodeSnapshot(comm, args.out, keep=args.keep_snapshots,
                                               info=info), trigger=(1, 'epoch'))
    by_iteration = snapshots.MultiNodeSnapshot(comm, args.out, keep=args.keep_snapshots,
                                               info=info, by='iteration')
    if args.snapshot_iterations:
        every = (args.snapshot_iterations, 'iteration')
        trainer.extend(bn_sync, trigger=every, name='BatchNormStatsAllreduceIterations')
        trainer.extend(by_iteration, trigger=every, name='MultiNodeSnapshotIterations')
    # A --max-iterations stop mid-epoch leaves a snapshot there, for --resume auto.
    trainer.extend(functools.partial(by_iteration.ensure_at, before=bn_sync),
                   trigger=trainer.stop_trigger.ends_early, priority=-150,
                   name='MultiNodeSnapshotAtMaxIterations')
    # A stop signal on any rank: all stop after this iteration's extensions, with a snapshot.
    trainer.extend(extensions.StopOnSignal(comm, by_iteration, before_snapshot=bn_sync))
    if comm.rank == 0:
        for extension, trigger in training_log.training_reporters(
                args.optimizer, args.log_interval, plots=not args.no_plots):
            trainer.extend(extension, trigger=trigger)


def load_resume_snapshot(path, trainer, comm):
    """Continue from the snapshot ``path``: every rank's trainer state and, on rank 0, the
    log up to it (later entries set aside)."""
    snapshots.load_snapshot(path, trainer, comm)
    if comm.rank == 0:
        print('resumed from {} (iteration {})'.format(path, trainer.updater.iteration),
              flush=True)
        moved = training_log.restore_log(trainer, trainer.out)
        if moved:
            print('resuming from {}: {} of the later iterations set aside as '
                  '.superseded-*'.format(path, ', '.join(moved)), flush=True)


def train(args, comm, gpus, blas_warning):
    """The training procedure; every rank runs all of it (the steps are collective).

    Device and cores, data shards, the snapshot to resume from; the model, its hybrid
    optimizer and schedules, with rank 0's initial weights on every rank; the trainer and
    its extensions (BN statistics sync, evaluator, snapshots, stop on signal, reporting);
    then training, and the final model with the workers' BN statistics.
    """
    device = start_steps.activate_device(args, comm, gpus)
    owned = cores.of_rank(comm)  # the CPU cores this rank owns on its node
    if args.loaderjob is None:
        args.loaderjob = cores.default_loaderjob(owned)
    blas.limit_threads(owned, args.loaderjob)

    train, val, facts = load_data(args, comm)
    info = snapshot_info(args, facts)
    # Chosen before any model is built: a resume that cannot work fails fast.
    resume = start_steps.choose_resume_snapshot(args, comm, info)
    if blas_warning and comm.rank == 0:  # once every start-up check has passed
        print(blas_warning, file=sys.stderr, flush=True)

    model, bn_sync = make_model(args, facts['n_class'], device, comm)
    optimizer, schedule_extensions = make_optimizer(args, model, comm)
    scatter.broadcast_initial_weights(model, optimizer, comm)

    order = datasets.EpochTaggedOrderSampler(len(train), seed=rank_seed(args.seed, comm.rank))
    train_iter, val_iter = make_iterators(args, train, val, order)
    updater = training.StandardUpdater(train_iter, optimizer, device=device)
    length = run_length.RunLength(args.epoch, args.max_iterations, len(train) / args.batchsize)
    trainer = training.Trainer(updater, length, out=args.out)
    for extension in schedule_extensions:
        trainer.extend(extension)
    extend_trainer(trainer, args, comm, model, bn_sync, val_iter, device, info)

    total_batch = comm.size * args.batchsize
    run_info.record_run(os.path.join(args.out, 'config.json'), args, comm, device, dict(
        facts, eta_base=schedules.eta_base(total_batch), total_batch=total_batch,
        resumed_from=resume, communicator=args.communicator, blas=blas.describe()))
    if resume:
        load_resume_snapshot(resume, trainer, comm)
    # where --max-iterations stops this run, unless its snapshot is the end already
    if comm.rank == 0 and length.stops_early() and not length(trainer):
        print(length.describe(), flush=True)

    try:
        # The global except hook prints a failure once, with its rank; Chainer's
        # own loop message would print it a second time.
        trainer.run(show_loop_exception_msg=False)
    except extensions.Preempted as stop:
        if comm.rank == 0:
            print(stop.line, flush=True)
        return stop_signals.PREEMPTED_STATUS
    finally:
        train_iter.finalize()
        val_iter.finalize()

    bn_sync()  # the final model holds the workers' average
    if comm.rank == 0:
        with atomic_files.replacing(os.path.join(args.out, 'model.npz'), suffix='.npz') as tmp:
            chainer.serializers.save_npz(tmp, model.predictor)
        print(training_log.final_summary(args.out, updater.iteration, updater.epoch_detail,
                                         trainer.elapsed_time, length,
                                         validated=not args.no_validation), flush=True)
    return 0


def run(args, gpus, blas_warning, out, guard):
    """From MPI's start to the end of training or of --check-dataset; every rank runs
    all of it.  ``blas_warning``: :func:`chainer_ext.machine.blas.ensure_kernel`'s line,
    or None.  ``guard`` (rank 0's :class:`chainer_ext.job.lock_watcher.OutGuard`) removes
    --out's lock if rank 0 is killed."""
    # The float16 gradient all-reduce (Section 3); creating the communicator starts MPI.
    comm = make_communicator(args)
    # --out is made now if it is missing; every rank checks the paths as it sees them.
    checks.check_paths(args, comm, None if args.check_dataset else out.make(comm))
    if args.check_dataset:
        if args.demo:
            start_steps.build_demo_lists(args, comm)
        return checks.print_dataset_check(args, comm)
    lock = start_steps.take_output_lock(args, comm)  # one job per --out, before anything slow
    if lock is not None and guard is not None:
        guard.watch(args.out, lock.holder)
    try:
        if args.demo:
            start_steps.build_demo_lists(args, comm)
        return train(args, comm, gpus, blas_warning)
    finally:
        if lock is not None:
            lock.release()


def main(argv=None):
    except_hook.check_mpi_can_start()  # a second main() in one process
    # Stop signals are recorded from here on; the BLAS re-exec carries them over.
    stop_signals.catch_early(sys.argv[1:] if argv is None else argv)
    with stop_signals.held():
        kernel = blas.ensure_kernel(warn=False)  # may re-execute this process
    gpus = cuda_env.survey()  # what CUDA offers this process, or why it cannot be used
    args = train_flags.parse_args(argv, gpus)
    stop_signals.catch(args.stop_signals)
    problems = checks.flag_problems(args, archs[args.arch].min_insize, gpus)
    if problems:
        return input_error.report_before_mpi(InputError(problems, status=2), PROG)
    if not args.check_dataset and args.loaderjob != 0:
        with stop_signals.ignored_by_forkserver(args.stop_signals):  # and by the loaders
            start_steps.start_forkserver()  # before the communicator starts MPI
    # Any uncaught exception on any rank ends the whole MPI job at once
    # instead of leaving the other ranks waiting in a collective.
    except_hook.add_hook(PROG)
    # Rank 0's lock and unfinished snapshots are removed even if it is killed.
    guard = (lock_watcher.start() if mpiexec.rank_from_env() == 0 and not args.check_dataset
             else None)
    out = start_steps.OutputFolder(args.out)
    try:
        status = run(args, gpus, kernel['warning'], out, guard)
    except InputError as e:  # raised on every rank alike: no abort needed
        input_error.print_input_error(e, PROG)
        out.remove_if_empty()
        status = e.status
    except run_length.NothingToTrain as e:
        if mpiexec.rank_from_env() == 0:
            print('{}: {}'.format(PROG, e.line), flush=True)
        status = 0
    except BaseException:  # the except hook reports it; an empty --out is not left
        out.remove_if_empty(together=False)
        raise
    finally:
        if guard is not None:
            guard.close()
    except_hook.end_together()
    return status


if __name__ == '__main__':
    sys.exit(main())
