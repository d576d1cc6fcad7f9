"""Start-up checks of ``train_imagenet.py``: bad flags and input fail before any model exists.

Single flags are checked by argparse ``type=`` validators, combinations by
:func:`flag_problems`, files and data by the collective checks below.  Every
rank raises :class:`InputError` alike, so the job ends without an MPI_Abort and
rank 0 prints each problem once, in one line naming the flag or the file and line.
"""
import argparse
import multiprocessing
import os
import sys
import time

from chainer_ext import datasets
from chainer_ext.flag_types import OneLineParser
from chainer_ext.mpi_launch import rank_from_env
from chainer_ext.flag_types import (  # noqa: F401  (train_imagenet's flag types)
    area_fraction, at_least_two, nonnegative_float, nonnegative_int, positive_finite,
    positive_int, seed)
from chainer_ext import output_lock
from chainer_ext import run_length
from chainer_ext import snapshots
from chainer_ext.stop_signals import parse_signals

GPU_ONLY_COMMUNICATORS = ('pure_nccl', 'non_cuda_aware')


class InputError(Exception):
    """Flags (status 2) or data (status 1) unusable; ``problems`` are one line each.

    ``in_data`` (default: status 1) says the problems are in the lists or images,
    which ``--check-dataset`` lists in full.
    """

    def __init__(self, problems, status=1, in_data=None):
        self.problems = list(problems)
        self.status = status
        self.in_data = status == 1 if in_data is None else bool(in_data)
        super(InputError, self).__init__('\n'.join(self.problems))


# --- single flags ------------------------------------------------------------

class RankZeroParser(OneLineParser):
    """:class:`~chainer_ext.flag_types.OneLineParser` that prints (help, errors) on rank 0
    only."""

    def _print_message(self, message, file=None):
        if rank_from_env() == 0:
            super(RankZeroParser, self)._print_message(message, file)

    def error(self, message):
        if rank_from_env() != 0:
            time.sleep(3.0)  # the same flags everywhere: let rank 0 speak first
        super(RankZeroParser, self).error(message)


def stop_signals(text):
    """``--stop-signals TERM,USR1`` -> signal numbers."""
    try:
        return parse_signals(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError('{} (got {}); e.g. TERM,USR1'.format(e, text))


# --- combinations of flags, and the device -----------------------------------

def gpus():
    """:func:`chainer_ext.cuda_env.probe`'s answer for this process, or the NoGPU it raised."""
    global _GPUS
    if _GPUS is None:
        from chainer_ext import cuda_env
        try:
            _GPUS = cuda_env.probe()
        except cuda_env.NoGPU as e:
            _GPUS = e
    return _GPUS


_GPUS = None
_CUPY_FIX = 'pip install ".[gpu-cuda13]" (CUDA 13 driver) or ".[gpu-cuda12]" (CUDA 12)'


def resolve_device(args):
    """Set ``args.gpu`` from --device and ``args.communicator`` from the device."""
    args.gpu = args.device == 'gpu' or (args.device == 'auto' and isinstance(gpus(), dict))
    if args.communicator is None:
        args.communicator = 'pure_nccl' if args.gpu else 'naive'


def flag_problems(args, min_insize):
    """Problems of flag combinations (no MPI, no files): one line each."""
    errors = []
    if args.insize < min_insize:
        errors.append('--insize {} is too small for {} (at least {})'.format(
            args.insize, args.arch, min_insize))
    modes = [m for m in ('demo', 'synthetic') if getattr(args, m)]
    if len(modes) > 1:
        errors.append('--demo and --synthetic cannot be combined')
    if modes and (args.train or args.val):
        errors.append('--{} builds its own data; drop --train/--val'.format(modes[0]))
    if not modes:
        errors += ['{} is required (or use --demo / --synthetic)'.format(flag)
                   for flag, path in (('--train', args.train), ('--val', args.val)) if not path]
    if args.check_dataset and args.synthetic:
        errors.append('--check-dataset needs list files, not --synthetic')
    return errors + communicator_problems(args)


def communicator_problems(args):
    """Communicator x all-reduce dtype x device combinations that cannot run.

    float16 gradient exchange (Section 3) exists in ChainerMN's ``pure_nccl``
    on GPUs and in the project's ring behind ``naive``/``flat`` on CPUs.
    """
    found = gpus()
    if args.device != 'cpu' and not isinstance(found, dict) and found.fatal:
        return ['--device {}: {}; or run on CPUs with --device cpu'.format(args.device, found)]
    if args.device == 'gpu' and not isinstance(found, dict):
        fix = _CUPY_FIX if 'not installed' in str(found) else 'check nvidia-smi and ' \
            'CUDA_VISIBLE_DEVICES'
        return ['--device gpu: {}; {}'.format(found, fix)]
    name, fp16 = args.communicator, args.allreduce_dtype == 'float16'
    if args.gpu and name == 'pure_nccl' and found['nccl'] is None:
        return ['--communicator pure_nccl: {}'.format(found['nccl_missing'])]
    if args.gpu and fp16 and name != 'pure_nccl':
        return ['--communicator {} with --allreduce-dtype float16: on GPUs float16 '
                'all-reduce needs pure_nccl (or use --allreduce-dtype float32)'.format(name)]
    if not args.gpu and name in GPU_ONLY_COMMUNICATORS:
        return ['--communicator {} needs GPUs (none in use here); on CPUs use naive or '
                'flat'.format(name)]
    if not args.gpu and name == 'flat' and not fp16:
        return ["--communicator flat with --allreduce-dtype float32: ChainerMN's flat "
                'communicator needs GPUs; on CPUs use naive']
    return []


def start_forkserver():
    """Start the data loaders' forkserver now, before the communicator starts MPI.

    Forking a process that holds InfiniBand resources crashes it (Open MPI
    FAQ; ChainerMN's tips), so loader processes come from a forkserver
    started before MPI_Init; starting one process makes it start now.
    """
    try:
        multiprocessing.set_start_method('forkserver')
    except RuntimeError:
        pass  # already set (e.g. by a test harness)
    # loaders unpickle Chainer objects first: chainer_ext's compat must precede them;
    # stop_signals makes the forkserver ignore what stop_signals.ignored_by_forkserver lists
    multiprocessing.set_forkserver_preload(['chainer_ext', 'chainer_ext.stop_signals'])
    p = multiprocessing.Process(target=int)
    p.start()
    p.join()


# --- collective checks (every rank calls them) ------------------------------

def rank0_then_bcast(comm, compute, status=1):
    """``compute()`` on rank 0 only, its result on every rank.

    An :class:`InputError`, ``DatasetError`` or ``SnapshotError`` raised by
    ``compute`` is raised as :class:`InputError` on every rank (with
    ``status`` unless it was an InputError of its own).
    """
    message = None
    if comm.rank == 0:
        try:
            message = {'value': compute(), 'problems': []}
        except InputError as e:
            message = {'value': None, 'problems': e.problems, 'status': e.status,
                       'in_data': e.in_data}
        except (datasets.DatasetError, snapshots.SnapshotError) as e:
            message = {'value': None, 'problems': [str(e)], 'status': status,
                       'in_data': None}
    message = comm.bcast_obj(message)
    if message['problems']:
        raise InputError(message['problems'], message['status'], message['in_data'])
    return message['value']


def agree_on_problems(comm, problems, status=2):
    """Raise the union of every rank's problems on every rank, naming the ranks that
    saw a problem when not all did."""
    seen = {}
    for rank, part in enumerate(comm.mpi_comm.allgather(list(problems))):
        for p in part:
            seen.setdefault(p, []).append(rank)
    out = []
    for p, ranks in sorted(seen.items()):
        if len(ranks) < comm.size:
            p = '{} (on rank {}{})'.format(p, ', '.join(map(str, ranks[:8])),
                                           ' ...' if len(ranks) > 8 else '')
        out.append(p)
    if out:
        raise InputError(out, status)


def _file_problem(flag, path):
    if not os.path.exists(path):
        return '{} {}: no such file'.format(flag, path)
    if not os.path.isfile(path):
        return '{} {}: not a file'.format(flag, path)
    if os.path.getsize(path) == 0:
        return '{} {}: file is empty'.format(flag, path)
    try:
        open(path, 'rb').close()
    except OSError as e:
        return '{} {}: cannot read ({})'.format(flag, path, e.strerror)
    return None


def _dir_problem(flag, path):
    try:
        try:
            os.makedirs(path)
            _created.append(path)
        except FileExistsError:
            pass  # there already, or made by another rank meanwhile
        probe = os.path.join(path, '.write-test-{}'.format(os.getpid()))
        with open(probe, 'w') as f:
            f.write('ok')
        os.remove(probe)
    except OSError as e:
        return '{} {}: output folder not writable ({})'.format(flag, path, e.strerror or e)
    return None


_created = []  # output folders this process created (removed again if left empty)


def remove_created_if_empty():
    """Remove the output folders :func:`check_paths` created if nothing was written."""
    while _created:
        try:
            os.rmdir(_created.pop())
        except OSError:
            pass


def check_paths(args, comm):
    """Lists, --root, --out and --resume as every rank sees them (shared or not)."""
    problems = []
    if not (args.demo or args.synthetic):
        problems += [_file_problem('--train', args.train), _file_problem('--val', args.val)]
        if not os.path.isdir(args.root):
            problems.append('--root {}: no such folder'.format(args.root))
    if not args.check_dataset:
        problems.append(_dir_problem('--out', args.out))
    if args.resume and args.resume != 'auto' and not os.path.isdir(args.resume):
        problems.append('--resume {}: no such snapshot folder'.format(args.resume))
    agree_on_problems(comm, [p for p in problems if p])


def choose_device(args, comm):
    """GPU id of this rank (its intra-node rank), made current, or -1 for the CPU."""
    if not args.gpu:
        return -1
    n = gpus()['gpus']
    agree_on_problems(comm, ['more ranks on its node than its {} GPU(s): start one rank '
                             'per GPU'.format(n)] if comm.intra_rank >= n else [])
    import chainer
    chainer.backends.cuda.get_device_from_id(comm.intra_rank).use()
    if not chainer.backends.cuda.cudnn_enabled and comm.rank == 0:
        sys.stderr.write('train_imagenet.py: note: {}, slower than cuDNN (gpu_check measures '
                         'both; config.json records cudnn_used)\n'.format(
                             gpus()['cudnn_missing']))
    return comm.intra_rank


def default_loaderjob(cores):
    """Loader processes per rank: the ``cores`` it owns (:mod:`chainer_ext.cores`), less one."""
    return max(1, int(cores) - 1)


def lock_output(args, comm):
    """Rank 0 takes ``--out``'s lock (waiting up to --wait-for-lock s); every rank
    learns the outcome.  Returns the lock on rank 0 (``None`` elsewhere).

    The other ranks wait without spinning (a polled non-blocking barrier).
    """
    held = []

    def take():
        def stale(holder):
            print('--out {}: taking over the lock of {}, which has ended'.format(
                args.out, output_lock.describe(holder)), flush=True)

        def waiting(holder):
            print('--out {}: in use by {}; waiting up to {:g} s for it to end'.format(
                args.out, output_lock.describe(holder), args.wait_for_lock), flush=True)
        try:
            held.append(output_lock.acquire(args.out, wait=args.wait_for_lock,
                                            on_stale=stale, on_wait=waiting))
        except output_lock.LockHeld as e:
            raise InputError([str(e)], in_data=False)
        return True

    if comm.rank != 0:
        _poll_barrier(comm)
    rank0_then_bcast(comm, lambda: _after_barrier(comm, take))
    return held[0] if held else None


def _after_barrier(comm, compute):
    try:
        return compute()
    finally:
        comm.mpi_comm.Ibarrier().Wait()


def _poll_barrier(comm, every=0.05):
    request = comm.mpi_comm.Ibarrier()
    while not request.Test():
        time.sleep(every)


def resolve_resume(args, comm, info):
    """The snapshot to resume from (None for a fresh run), checked by rank 0.

    A compatible older snapshot resumed in place sets newer ones aside;
    ``--resume auto`` says which damaged newer snapshots it skipped.  A snapshot
    at the end of the run raises :class:`run_length.NothingToTrain` on every rank.
    """
    def resolve():
        path = snapshots.resolve_resume(args.resume, args.out, skipped=_say_skipped)
        if path:
            manifest = snapshots.check_compatible(path, comm.size, args.batchsize, info=info)
            try:
                run_length.check_resume(path, manifest, args.epoch, args.max_iterations,
                                        args.out)
            except run_length.NothingToTrain as e:
                return {'nothing_to_train': e.line}
            except ValueError as e:
                raise InputError([str(e)], status=2)
            moved = snapshots.supersede_newer(args.out, path)
            if moved:
                print('resuming from {}: newer snapshots {} set aside as .superseded-*'
                      .format(path, ', '.join(moved)), flush=True)
        return path
    path = rank0_then_bcast(comm, resolve, status=2)
    if isinstance(path, dict):
        raise run_length.NothingToTrain(path['nothing_to_train'])
    return path


def _say_skipped(path, reason):
    print('--resume auto: skipping {} ({})'.format(path, reason), flush=True)


def check_world(args, comm, n_train, shard):
    """The training set must give every rank at least one example per iteration."""
    where = 'the training set ({})'.format(args.train or '--synthetic-size')
    if n_train < comm.size:
        raise InputError(['{} has {} example(s) for {} ranks: every rank needs at least '
                          'one; start at most {} ranks'.format(where, n_train, comm.size,
                                                               n_train)], status=2)
    if args.batchsize > shard:
        raise InputError(['--batchsize {} is larger than each rank\'s share of {} ({} of {} '
                          'examples over {} ranks): one iteration would run several epochs; '
                          'use --batchsize {} or less, or fewer ranks'.format(
                              args.batchsize, where, shard, n_train, comm.size, shard)],
                         status=2)


def use_demo_lists(args, comm):
    """``--demo``: rank 0 builds (or reuses) the digits data set; all ranks use its lists."""
    args.train, args.val, args.root = rank0_then_bcast(
        comm, lambda: datasets.build_demo_dataset(args.demo_cache))


def read_lists(args, comm):
    """Both lists, read and checked (duplicates, foreign labels) by rank 0."""
    def read():
        train = datasets.read_image_list(args.train, args.root)
        val = datasets.read_image_list(args.val, args.root)
        problems = (datasets.list_problems(train)
                    + datasets.list_problems(val, n_class=train.n_class))
        if problems:
            raise InputError(problems)
        return train, val
    return rank0_then_bcast(comm, read)


def check_images_exist(comm, *shards):
    """Every rank stats the images of its own ``(ImageList, indices)`` shards.

    Cheap at any scale and catches a wrong --root or a half-copied data set
    before any model is built; decoding every image is --check-dataset's job.
    """
    problems = []
    for pairs, indices in shards:
        for i in map(int, indices):
            path = pairs.full_path(i)
            try:
                if os.path.getsize(path) == 0:
                    problems.append('{}: image is empty: {}'.format(pairs.where(i), path))
            except OSError:
                problems.append('{}: image missing: {}'.format(pairs.where(i), path))
    found = sorted(set(p for part in comm.mpi_comm.allgather(problems) for p in part))
    if found:
        raise InputError(found)


def check_dataset(args, comm):
    """``--check-dataset``: every rank checks its share of lines; rank 0 prints.

    Returns the exit status (1 if anything is wrong), the same on every rank.
    """
    try:  # validation labels must be classes of the training list
        n_class = datasets.read_image_list(args.train, args.root).n_class
    except datasets.DatasetError:
        n_class = None  # check_dataset reports the training list's own problems
    problems = []
    for path, classes in ((args.train, None), (args.val, n_class)):
        problems += datasets.check_dataset(path, args.root, n_class=classes,
                                           rank=comm.rank, size=comm.size)
    gathered = comm.gather_obj(problems)
    status = None
    if comm.rank == 0:
        found = datasets.merge_problems(gathered)
        for line in found:
            print(line)
        print('check-dataset: {} problem(s) in {} and {}'.format(
            len(found), args.train, args.val))
        status = 1 if found else 0
    return comm.bcast_obj(status)


def report_before_mpi(error, prog, grace=3.0):
    """Report start-up problems found before MPI starts; returns the exit status.

    The ranks cannot agree yet: rank 0 prints at once; another rank prints (as
    itself) only ``grace`` seconds later, so that when rank 0 has the same problem
    the launcher ends the job on rank 0's exit and one line is read, and when the
    problem is this node's alone it is still said.
    """
    rank = rank_from_env()
    if rank != 0:
        time.sleep(grace)
        error = InputError(['rank {}: {}'.format(rank, p) for p in error.problems],
                           error.status)
    print_input_error(error, prog, rank_zero_only=False)
    return error.status


def print_input_error(error, prog, shown=50, rank_zero_only=True):
    """Rank 0 prints an :class:`InputError`'s problems, one line each."""
    if rank_zero_only and rank_from_env() != 0:
        return
    for line in error.problems[:shown]:
        sys.stderr.write('{}: error: {}\n'.format(prog, line))
    if len(error.problems) > shown:
        sys.stderr.write('{}: error: ... {} more\n'.format(prog, len(error.problems) - shown))
    if error.in_data:
        sys.stderr.write('{}: {} problem(s) in the input; --check-dataset lists them '
                         'all\n'.format(prog, len(error.problems)))
