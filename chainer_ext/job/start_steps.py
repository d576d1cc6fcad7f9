"""The steps of ``train_imagenet.py``'s start that change something, each named for what it does.

Starting the loaders' forkserver, making ``--out``, taking its lock, building the demo's
data, reading the lists, choosing the snapshot to resume from (setting newer ones aside)
and making this rank's GPU current.  ``train_imagenet.py`` calls them in the order they
happen; the checks that only check are in :mod:`chainer_ext.job.checks`.  The
collective steps are called by every rank and end alike on every rank
(:mod:`chainer_ext.job.input_error`).
"""
import multiprocessing
import os
import sys

from chainer_ext.job import except_hook
from chainer_ext.job import input_error
from chainer_ext import datasets
from chainer_ext.job import output_lock
from chainer_ext.job import run_length
from chainer_ext.extensions import multi_node_snapshot as snapshots
from chainer_ext.job.input_error import InputError


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
    multiprocessing.set_forkserver_preload(['chainer_ext', 'chainer_ext.job.stop_signals'])
    p = multiprocessing.Process(target=int)
    p.start()
    p.join()


class OutputFolder(object):
    """``--out``: made at start when it is missing (with its missing parents), and removed
    again when the start fails before anything is written in it."""

    def __init__(self, path):
        self.path = path
        self.made = []  # the folders missing at start, deepest first
        self.comm = None

    def make(self, comm=None):
        """Make the folder (and its parents) if missing, on every rank (a shared file
        system or not), and write a file into it; returns the problem line, or None.
        ``comm``: the job's ranks, which :meth:`remove_if_empty` waits for."""
        self.comm = comm
        folder = os.path.abspath(self.path)
        while not os.path.lexists(folder) and folder != os.path.dirname(folder):
            self.made.append(folder)  # missing now: made by this job, whichever rank
            folder = os.path.dirname(folder)
        try:
            try:
                os.makedirs(self.path)
            except FileExistsError:
                pass  # there already, or made by another rank meanwhile
            probe = os.path.join(self.path, '.write-test-{}'.format(os.getpid()))
            with open(probe, 'w') as f:
                f.write('ok')
            os.remove(probe)
        except OSError as e:
            return '--out {}: output folder not writable ({})'.format(self.path,
                                                                      e.strerror or e)
        return None

    def remove_if_empty(self, together=True):
        """Remove the folders :meth:`make` made, as far as nothing was written in them.

        ``together`` (a failure every rank raises alike): first wait for every rank, so
        that rank 0 has released --out's lock whichever rank made the folder."""
        made, self.made = self.made, []
        if together and self.comm is not None:  # every rank, whether it made one or not
            except_hook.wait_for_all(self.comm.mpi_comm, timeout=60.0)
        for folder in made:
            try:
                os.rmdir(folder)
            except FileNotFoundError:
                continue  # removed by another rank
            except OSError:
                break  # not empty: it holds what was written, and so do its parents


def take_output_lock(args, comm):
    """Rank 0 takes ``--out``'s lock (waiting up to --wait-for-lock s); every rank
    learns the outcome.  Returns the lock on rank 0 (``None`` elsewhere).

    The other ranks wait without spinning (a polled non-blocking barrier).
    """
    held = []

    def stale(holder):
        print('--out {}: taking over the lock of {}, which has ended'.format(
            args.out, output_lock.describe(holder)), flush=True)

    def waiting(holder):
        print('--out {}: in use by {}; waiting up to {:g} s for it to end'.format(
            args.out, output_lock.describe(holder), args.wait_for_lock), flush=True)

    def take():
        try:
            held.append(output_lock.acquire(args.out, wait=args.wait_for_lock,
                                            on_stale=stale, on_wait=waiting))
        except output_lock.LockHeld as e:
            raise InputError([str(e)], in_data=False)
        return True

    input_error.rank0_then_bcast(comm, take, poll=0.05)
    return held[0] if held else None


def build_demo_lists(args, comm):
    """``--demo``: rank 0 builds (or reuses) the digits data set; all ranks use its lists
    (``args.train``, ``args.val`` and ``args.root`` are set to them)."""
    args.train, args.val, args.root = input_error.rank0_then_bcast(
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
    return input_error.rank0_then_bcast(comm, read)


def choose_resume_snapshot(args, comm, info):
    """The snapshot to resume from (None for a fresh run), chosen by rank 0.

    A compatible older snapshot resumed in place sets newer ones aside
    (``.superseded-*``, nothing is deleted), and so a ``model.npz`` in ``--out`` that
    does not hold the snapshot's weights; ``--resume auto`` says which damaged newer
    snapshots it skipped.  A snapshot at the end of the run raises
    :class:`run_length.NothingToTrain` on every rank when ``model.npz`` holds its
    weights; without it, the job finishes the run (trains nothing, writes model.npz).
    """
    def choose():
        path = snapshots.resolve_resume(args.resume, args.out, skipped=_say_skipped)
        if path:
            manifest = snapshots.check_compatible(path, comm.size, args.batchsize, info=info)
            model = os.path.join(args.out, 'model.npz')
            other = os.path.exists(model) and not snapshots.holds_weights_of(model, path)
            try:
                finishing = run_length.check_resume(
                    path, manifest, args.epoch, args.max_iterations,
                    model if os.path.exists(model) and not other else None)
            except run_length.NothingToTrain as e:
                return {'nothing_to_train': e.line}
            except ValueError as e:
                raise InputError([str(e)], status=2)
            if other:  # another run's, or of other iterations: kept, not overwritten
                print('resuming from {}: {} holds other weights than the snapshot, set aside '
                      'as {}'.format(path, model, snapshots.set_aside(args.out, model,
                                                                       '.superseded-')),
                      flush=True)
            if finishing:
                print('{} is the end of this run, which stopped before writing {}: finishing '
                      'it'.format(path, model), flush=True)
            moved = snapshots.supersede_newer(args.out, path)
            if moved:
                print('resuming from {}: newer snapshots {} set aside as .superseded-*'
                      .format(path, ', '.join(moved)), flush=True)
        return path
    path = input_error.rank0_then_bcast(comm, choose, status=2)
    if isinstance(path, dict):
        raise run_length.NothingToTrain(path['nothing_to_train'])
    return path


def _say_skipped(path, reason):
    print('--resume auto: skipping {} ({})'.format(path, reason), flush=True)


def activate_device(args, comm, gpus):
    """Make this rank's GPU (its intra-node rank) current; returns its id, or -1 for the
    CPU.  ``gpus`` is :func:`chainer_ext.machine.cuda_env.survey`'s answer."""
    if not args.gpu:
        return -1
    n = gpus['gpus']
    input_error.agree_on_problems(
        comm, ['more ranks on its node than its {} GPU(s): start one rank per GPU'.format(n)]
        if comm.intra_rank >= n else [])
    import chainer
    chainer.backends.cuda.get_device_from_id(comm.intra_rank).use()
    if not chainer.backends.cuda.cudnn_enabled and comm.rank == 0:
        sys.stderr.write('train_imagenet.py: note: {}, slower than cuDNN (gpu_check measures '
                         'both; config.json records cudnn_used)\n'.format(gpus['cudnn_missing']))
    return comm.intra_rank
