"""chainer_ext.blas_setup: the CPU's own OpenBLAS kernel and per-rank thread counts."""
import json
import os
import subprocess
import sys
import textwrap

import pytest

from chainer_ext import blas_setup
from chainer_ext.mpi_launch import run_mpi

AVX512 = {'sse3', 'avx', 'avx2', 'fma', 'avx512f', 'avx512bw', 'avx512vl', 'avx512dq',
          'avx512cd'}
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_kernel_for_cpu():
    assert blas_setup.cpu_kernel(AVX512) == 'SkylakeX'
    assert blas_setup.cpu_kernel(AVX512 | {'avx512_bf16'}) == 'Cooperlake'
    assert blas_setup.cpu_kernel({'sse3', 'avx', 'avx2', 'fma'}) == 'Haswell'
    assert blas_setup.cpu_kernel({'sse3', 'avx'}) is None
    assert blas_setup.cpu_kernel(set()) is None


def test_plan():
    plan = blas_setup.plan
    assert plan('Prescott', AVX512, {}) == ('reexec', 'SkylakeX')
    assert plan('Haswell', AVX512, {}) == ('reexec', 'SkylakeX')
    assert plan('Prescott', {'avx2', 'fma'}, {}) == ('reexec', 'Haswell')
    # OpenBLAS's own pick varies between processes on some VMs: one kernel, pinned
    assert plan('Cooperlake', AVX512 | {'avx512_bf16'}, {}) == ('reexec', 'Cooperlake')
    # found by OpenBLAS itself: pinned all the same (its blocking follows CPUID too)
    assert plan('SkylakeX', AVX512 | {'avx512_bf16'}, {}) == ('reexec', 'Cooperlake')
    assert plan('Haswell', {'avx2', 'fma'}, {}) == ('reexec', 'Haswell')
    assert plan('SkylakeX', AVX512, {blas_setup.REEXEC_MARK: 'SkylakeX',
                                     'OPENBLAS_CORETYPE': 'SkylakeX'}) == (None, None)
    # a build without Cooperlake runs SkylakeX for it: same generation, no warning
    assert plan('SkylakeX', AVX512 | {'avx512_bf16'}, {
        blas_setup.REEXEC_MARK: 'Prescott', 'OPENBLAS_CORETYPE': 'Cooperlake'}) == (None, None)
    # a kernel this module does not know, another BLAS, a CPU with nothing better
    assert plan('NewKernel2031', AVX512, {}) == (None, None)
    assert plan(None, AVX512, {}) == (None, None)
    assert plan('Prescott', {'sse3'}, {}) == (None, None)
    # a value the user set is kept, with one line saying what to set
    action, line = plan('Prescott', AVX512, {'OPENBLAS_CORETYPE': 'Prescott'})
    assert action == 'warn' and 'OPENBLAS_CORETYPE=Prescott' in line and 'SkylakeX' in line
    assert plan('SkylakeX', AVX512, {'OPENBLAS_CORETYPE': 'SkylakeX'}) == (None, None)
    assert plan('Cooperlake', AVX512, {'OPENBLAS_CORETYPE': 'Cooperlake'}) == (None, None)
    # after our re-exec the kernel is still old: one line, never a second re-exec
    action, line = plan('Prescott', AVX512, {'OPENBLAS_CORETYPE': 'SkylakeX',
                                             blas_setup.REEXEC_MARK: 'Prescott'})
    assert action == 'warn' and 'lack' in line
    # a child started without the pinned value but with the parent's mark still decides
    assert plan('Prescott', AVX512, {blas_setup.REEXEC_MARK: 'Prescott'}) == (
        'reexec', 'SkylakeX')
    action, line = plan('Prescott', AVX512, {blas_setup.REEXEC_MARK: 'Prescott',
                                             'OPENBLAS_CORETYPE': 'Prescott'})
    assert action == 'warn' and 'OPENBLAS_CORETYPE=Prescott is set' in line


@pytest.mark.parametrize('cores,loaders,expected', [
    (2, 0, 2), (1, 0, 1), (6, 3, 3), (8, 7, 1), (2, 4, 1)])
def test_threads_are_the_owned_cores_less_the_loaders(monkeypatch, cores, loaders, expected):
    from threadpoolctl import threadpool_limits
    for var in blas_setup.THREAD_VARS:
        monkeypatch.delenv(var, raising=False)
    with threadpool_limits(limits=None, user_api='blas'):  # restored on leaving
        assert blas_setup.limit_threads(cores, loaders) == expected


# Pretends OpenBLAS misread this CPU as Prescott until the project set the kernel,
# then reports what really runs.
_FAKE_MISREAD = textwrap.dedent('''
    import json, os, sys
    sys.path.insert(0, {repo!r})
    from chainer_ext import blas_setup
    real = blas_setup.openblas_kernel
    blas_setup.cpu_flags = lambda path=None: set({flags!r})
    if not os.environ.get('OPENBLAS_CORETYPE'):
        blas_setup.openblas_kernel = lambda: 'Prescott'
    info = blas_setup.ensure_kernel(rank=int(os.environ.get('OMPI_COMM_WORLD_RANK', 0)))
    info['real'] = real()
    info['argv'] = sys.argv[1:]
    print('RESULT ' + json.dumps(info), flush=True)
''')


def _script(tmp_path):
    path = tmp_path / 'misread.py'
    path.write_text(_FAKE_MISREAD.format(repo=REPO, flags=sorted(AVX512)))
    return str(path)


def _results(output):
    return [json.loads(line[7:]) for line in output.splitlines() if line.startswith('RESULT ')]


def _env(**extra):
    env = {k: v for k, v in os.environ.items()
           if k not in ('OPENBLAS_CORETYPE', blas_setup.REEXEC_MARK)}
    env.update(extra)
    return env


def test_reexec_sets_the_kernel_once_and_keeps_arguments(tmp_path):
    proc = subprocess.run([sys.executable, _script(tmp_path), '--flag', 'a b'],
                          env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout
    (res,) = _results(proc.stdout)
    assert res['openblas_coretype'] == 'SkylakeX' and res['real'] == 'SkylakeX'
    assert res['detected_kernel'] == 'Prescott' and res['argv'] == ['--flag', 'a b']


def test_user_value_is_never_overridden(tmp_path):
    proc = subprocess.run([sys.executable, _script(tmp_path)],
                          env=_env(OPENBLAS_CORETYPE='Haswell'), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    (res,) = _results(proc.stdout)
    assert res['openblas_coretype'] == 'Haswell' and res['real'] == 'Haswell'
    # Haswell on an AVX-512 CPU: kept, and one line says what to set
    assert proc.stderr.count('warning: OPENBLAS_CORETYPE=Haswell is set') == 1
    assert 'OPENBLAS_CORETYPE=SkylakeX' in proc.stderr


@pytest.mark.parametrize('n', [2])
def test_every_rank_reexecs_before_mpi_starts(tmp_path, n):
    proc = run_mpi(n, [sys.executable, _script(tmp_path)],
                   env={'OPENBLAS_CORETYPE': '', 'PYTHONPATH': REPO}, timeout=120)
    # mpi_env passes this environment on; an empty OPENBLAS_CORETYPE counts as unset
    results = _results(proc.stdout)
    assert proc.returncode == 0 and len(results) == n, proc.stdout
    assert all(r['real'] == 'SkylakeX' for r in results)


def test_thread_limit_follows_cores_unless_user_set(tmp_path):
    code = ('import sys; sys.path.insert(0, {!r}); from chainer_ext import blas_setup, cores; '
            'print(blas_setup.limit_threads(cores.of_process(), loader_processes=0))').format(REPO)
    env = _env()
    for var in blas_setup.THREAD_VARS:
        env.pop(var, None)
    out = subprocess.run([sys.executable, '-c', code], env=env, stdout=subprocess.PIPE,
                         text=True, timeout=120, check=True).stdout
    cores = len(os.sched_getaffinity(0))
    assert int(out) == cores
    env['OMP_NUM_THREADS'] = '1'
    out = subprocess.run([sys.executable, '-c', code], env=env, stdout=subprocess.PIPE,
                         text=True, timeout=120, check=True).stdout
    assert int(out) == 1
