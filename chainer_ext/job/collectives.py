"""How the ranks agree at start, so that they all go on or all stop alike.

Problems that depend on what a rank sees (its files, its GPUs) are gathered from every
rank (:func:`agree_on_problems`); what only rank 0 does (read the lists, take the lock,
pick a snapshot) it broadcasts, its result or its problems (:func:`rank0_then_bcast`).
Either way every rank raises the same :class:`~chainer_ext.job.input_error.InputError`, and
the job ends without an ``MPI_Abort``.  Every rank must call each of them.
"""
import time

from chainer_ext import datasets
from chainer_ext.extensions import multi_node_snapshot as snapshots
from chainer_ext.job.input_error import InputError


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
            _wait_for_barrier(comm, poll)
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


def _wait_for_barrier(comm, every):
    request = comm.mpi_comm.Ibarrier()
    while not request.Test():
        time.sleep(every)


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
