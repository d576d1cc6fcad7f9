"""Bad input found at start: :class:`InputError`, how the ranks agree on it, and how it is
printed.

A start-up problem is found before any model exists and, through :func:`agree_on_problems`
(problems that depend on what a rank sees) and :func:`rank0_then_bcast` (what only rank 0
does), is raised alike on every rank, so the job ends without an ``MPI_Abort`` and rank 0
prints each problem once, naming the flag, or the file and line.  Every rank must call the
two collectives.
"""
import sys
import time

from chainer_ext.job import except_hook
from chainer_ext import datasets
from chainer_ext.extensions import multi_node_snapshot as snapshots
from chainer_ext.job.mpiexec import rank_from_env


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


def rank0_then_bcast(comm, compute, status=1, poll=None):
    """``compute()`` on rank 0 only, its result on every rank.

    An :class:`InputError`, ``DatasetError`` or ``SnapshotError`` raised by
    ``compute`` is raised as :class:`InputError` on every rank (with ``status``
    unless it was an InputError of its own).  With ``poll`` (seconds), the other
    ranks wait without spinning, testing a non-blocking barrier that often: for a
    ``compute`` that may take minutes.
    """
    if poll is not None:
        if comm.rank != 0:
            except_hook.wait_for_all(comm.mpi_comm, poll)
        compute = _then_barrier(comm, compute)
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


def _then_barrier(comm, compute):
    def run():
        try:
            return compute()
        finally:
            comm.mpi_comm.Ibarrier().Wait()
    return run


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
