"""chainer_ext.machine.cores: the one rule for the cores a process owns, and its users."""
import os

import pytest

from chainer_ext.machine import cores


def test_ranks_sharing_cpus_split_them_evenly():
    node = [range(16)] * 4                               # mpiexec --bind-to none, 16 CPUs
    assert all(cores.owned(m, node) == 4 for m in node)
    assert cores.owned(range(16), [range(16)] * 3) == 5  # 5.33: whole cores only


def test_ranks_bound_to_their_own_cpus_own_them_whole():
    # srun --cpus-per-task=8, 8 ranks on a 64-CPU node: each its own 8 CPUs,
    # where dividing the rank's mask by the ranks per node would give 1
    node = [range(8 * r, 8 * r + 8) for r in range(8)]
    assert [cores.owned(m, node) for m in node] == [8] * 8
    # bound to one of two 32-CPU sockets, two ranks per socket
    node = [range(32 * (r % 2), 32 * (r % 2) + 32) for r in range(4)]
    assert [cores.owned(m, node) for m in node] == [16] * 4


def test_at_least_one_core_each():
    assert cores.owned({0}, [{0}] * 8) == 1
    assert cores.owned({0}, [{0}]) == 1
    # a rank allowed on part of another's CPUs: CPU 1 is shared, CPU 0 is its own
    assert cores.owned({0, 1}, [{0, 1}, {1, 2, 3}]) == 1    # 1 + 1/2
    assert cores.owned({1, 2, 3}, [{0, 1}, {1, 2, 3}]) == 2  # 1/2 + 1 + 1


def test_of_process_splits_this_process_cpus(monkeypatch):
    monkeypatch.setattr(cores, 'allowed', lambda: frozenset(range(4, 10)))  # a 6-CPU cpuset
    assert cores.of_process() == 6
    assert cores.of_process(2) == 3 and cores.of_process(4) == 1 and cores.of_process(9) == 1


def test_allowed_is_the_affinity_mask():
    if not hasattr(os, 'sched_getaffinity'):
        pytest.skip('no sched_getaffinity on this platform')
    assert cores.allowed() == frozenset(os.sched_getaffinity(0))


def test_loaders_default_to_the_owned_cores_less_one():
    assert cores.default_loaderjob(8) == 7
    assert cores.default_loaderjob(1) == 1


class _Stop(Exception):
    pass


def test_large_batch_runs_one_job_per_owned_core_by_default(monkeypatch, tmp_path):
    from chainer_ext.experiments import large_batch
    seen = []

    def sweep(plan, out, jobs, recipes, **data):
        seen.append(jobs)
        raise _Stop

    monkeypatch.setattr(cores, 'allowed', lambda: frozenset({3, 5, 7}))
    monkeypatch.setattr(large_batch.blas_setup, 'ensure_kernel', lambda **kw: {'warning': None})
    monkeypatch.setattr(large_batch, 'sweep', sweep)
    with pytest.raises(_Stop):
        large_batch.main(['--quick', '--out', str(tmp_path)])
    assert seen == [3]


@pytest.mark.parametrize('n', [2, 3])
def test_of_rank_under_mpi(mpirun, n):
    proc = mpirun(n, 'cores_of_rank.py', timeout=120)
    assert proc.stdout.count(' ok') == n
