"""Launched with mpiexec -n 2 / -n 3: the cores each rank owns, from the CPU sets of its node.

Each case gives every rank a CPU set as a launcher would (``cores.allowed`` stands in for
the affinity mask) and compares ``cores.of_rank`` with the count worked out here.
"""
import chainer_ext  # noqa: F401  (compatibility stand-ins before chainer loads)
from chainer_ext.machine import cores
from chainer_ext.communicators import create_communicator
from rank_checks import abort_on_exception

comm = create_communicator('naive')
check = abort_on_exception(comm)
n, r = comm.size, comm.rank
cases = {
    # srun --cpus-per-task=8: each rank bound to 8 CPUs of its own
    'bound': (set(range(8 * r, 8 * r + 8)), 8),
    # mpiexec --bind-to none in a 24-CPU cpuset: every rank sees all 24
    'shared': (set(range(24)), 24 // n),
    # bound to one of two 12-CPU sockets, ranks round-robin: socket 0 has ceil(n/2) ranks
    'socket': (set(range(12 * (r % 2), 12 * (r % 2) + 12)),
               12 // ((n + 1) // 2) if r % 2 == 0 else 12 // (n // 2)),
    # fewer CPUs than ranks: still one thread each
    'crowded': ({0}, 1),
}
for name, (mine, want) in sorted(cases.items()):
    cores.allowed = lambda: frozenset(mine)
    got = cores.of_rank(comm)
    check(got == want, name, 'owns', got, 'cores, expected', want)
print('rank', r, 'ok', flush=True)
