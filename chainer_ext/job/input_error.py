"""Bad input found at start: :class:`InputError`, its problems one line each, and how they
are printed.

A start-up problem is found before any model exists and is the same on every rank (the
collectives of :mod:`chainer_ext.job.collectives` make it so), so the job ends without an
``MPI_Abort`` and rank 0 prints each problem once, naming the flag, or the file and line.
"""
import sys
import time

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
