"""The CPU cores each process owns: one rule for BLAS threads, data loaders and parallel runs.

A process may run on the CPUs of its affinity mask, which Slurm (``--cpus-per-task``,
``--cpu-bind``), a cgroup cpuset or mpiexec's ``--bind-to`` may have narrowed.  Processes of
one node whose masks overlap share those CPUs: each CPU counts for ``1/k`` of each of the
``k`` processes allowed on it.  Ranks that all see the node's (or the job's) CPUs thus split
them evenly, and ranks a launcher bound to cores of their own own those cores whole.
:func:`owned` is that rule; :func:`of_rank` and :func:`of_process` apply it to the ranks of
a node and to a pool of processes, and :func:`default_loaderjob` gives a rank's loaders
all but one of its cores.
"""
import collections
import os


def allowed():
    """The CPUs this process may run on: its affinity mask, else every CPU."""
    if hasattr(os, 'sched_getaffinity'):
        return frozenset(os.sched_getaffinity(0))
    return frozenset(range(os.cpu_count() or 1))


def owned(mine, node):
    """Whole cores owned by a process allowed on CPUs ``mine``, among the processes of its
    node allowed on the CPU sets ``node`` (its own included); at least 1."""
    users = collections.Counter(cpu for cpus in node for cpu in set(cpus))
    share = sum(1.0 / users[cpu] for cpu in set(mine) if users[cpu])
    return max(1, int(share + 1e-9))


def of_rank(comm):
    """The cores this rank owns among the ranks of its node (a collective on ``comm``, a
    ChainerMN communicator: every rank calls it)."""
    mine = sorted(allowed())
    node = comm.mpi_comm.Split(comm.inter_rank, comm.intra_rank)
    try:
        masks = node.allgather(mine)
    finally:
        node.Free()
    return owned(mine, masks)


def of_process(processes=1):
    """The cores each of ``processes`` processes owns when all run on this process's CPUs
    (a pool it starts, for example); ``of_process()`` is every CPU it may use."""
    mine = allowed()
    return owned(mine, [mine] * max(1, int(processes)))


def default_loaderjob(cores):
    """Loader processes per rank (``--loaderjob``'s default): the ``cores`` it owns, less
    one for the rank itself; at least 1."""
    return max(1, int(cores) - 1)
