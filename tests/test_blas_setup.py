"""chainer_ext.machine.blas: the CPU's own OpenBLAS kernel and per-rank thread counts."""
import json
import os
import subprocess
import sys
import textwrap

import pytest

from chainer_ext.machine import blas as blas_setup
from chainer_ext.job.mpiexec import run_mpi

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
    BF16 = AVX512 | {'avx512_bf16'}
    AVX2 = {'sse3', 'avx', 'avx2', 'fma'}
    # OpenBLAS misread the CPU: an older vector generation than the CPU's
    assert plan('Prescott', AVX512, {}) == ('reexec', 'SkylakeX')
    assert plan('Haswell', AVX512, {}) == ('reexec', 'SkylakeX')
    assert plan('Prescott', AVX2, {}) == ('reexec', 'Haswell')
    assert plan('Zen', BF16, {}) == ('reexec', 'Cooperlake')  # AVX2 kernel, AVX-512 CPU
    # OpenBLAS picked a kernel of the CPU's generation itself: left alone
    assert plan('Cooperlake', BF16, {}) == (None, None)   # NumPy 1.26's pick on this EPYC
    assert plan('SkylakeX', BF16, {}) == (None, None)     # NumPy 2.4's pick on this EPYC
    assert plan('SapphireRapids', BF16 | {'amx_bf16', 'avx512_fp16'}, {}) == (None, None)
    assert plan('Zen', AVX2, {}) == (None, None)          # AMD's own kernel on Zen 2/3
    assert plan('Haswell', AVX2, {}) == (None, None)
    assert plan('SkylakeX', AVX512, {blas_setup.REEXEC_MARK: 'SkylakeX',
                                     'OPENBLAS_CORETYPE': 'SkylakeX'}) == (None, None)
    # a build without Cooperlake runs SkylakeX for it: same generation, no warning
    assert plan('SkylakeX', BF16, {
        blas_setup.REEXEC_MARK: 'Prescott', 'OPENBLAS_CORETYPE': 'Cooperlake'}) == (None, None)
    # a kernel this module does not know, another BLAS, a CPU with nothing better
    assert plan('NewKernel2031', AVX512, {}) == (None, None)
    assert plan(None, AVX512, {}) == (None, None)
    assert plan('Prescott', {'sse3'}, {}) == (None, None)
    # a value the user set is kept, with one line saying what to set
    action, line = plan('Prescott', AVX512, {'OPENBLAS_CORETYPE': 'Prescott'})
    assert action == 'warn' and 'OPENBLAS_CORETYPE=Prescott' in line and 'SkylakeX' in line
    assert plan('SkylakeX', AVX512, {'OPENBLAS_CORETYPE': 'SkylakeX'}) == (None, None)
    assert plan('Cooperlake', BF16, {'OPENBLAS_CORETYPE': 'Cooperlake'}) == (None, None)
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


@pytest.mark.parametrize('pin, flags, own', [
    ('SkylakeX', {'sse3', 'avx', 'avx2', 'fma'}, 'Haswell'),  # AVX-512 pin, AVX2 node
    ('Cooperlake', AVX512, 'SkylakeX'),                        # bf16 kernel, no avx512_bf16
    ('Haswell', {'sse3', 'avx'}, None),                        # AVX2 pin, AVX-only node
])
def test_an_inherited_pin_newer_than_this_cpu_is_named(pin, flags, own):
    """A job's environment from another host: kept, with one line, before OpenBLAS runs
    an instruction this CPU lacks."""
    for env in ({'OPENBLAS_CORETYPE': pin},
                {'OPENBLAS_CORETYPE': pin, blas_setup.REEXEC_MARK: 'Prescott'}):
        action, line = blas_setup.plan(pin, flags, env)
        assert action == 'warn', (pin, env)
        assert 'OPENBLAS_CORETYPE={} is set, a kernel this CPU cannot run'.format(pin) in line
        assert 'illegal instruction' in line
        assert 'set OPENBLAS_CORETYPE={}'.format(own or 'Prescott') in line


@pytest.mark.parametrize('argv, program', [
    (['python', 'train.py', '--x'], ('file', 'train.py')),
    (['python', '-X', 'dev', '-Wignore', '-O', '-m', 'train_imagenet', '-a'],
     ('-m', 'train_imagenet')),
    (['python', '-mtrain_imagenet'], ('-m', 'train_imagenet')),
    (['python', '-Su', '-c', 'print(1)', 'x'], ('-c', 'print(1)')),
    (['python', '-W', 'error', '--check-hash-based-pycs', 'never', 'a.py'], ('file', 'a.py')),
    (['python'], ('stdin', None)),
    (['python', '-u', '-'], ('stdin', None)),
    (['python', '-m', 'pdb', 'train.py'], ('-m', 'pdb')),
])
def test_program_of_a_command_line(argv, program):
    assert blas_setup._program(argv) == program


@pytest.mark.parametrize('cores,loaders,expected', [
    (2, 0, 2), (1, 0, 1), (6, 3, 3), (8, 7, 1), (2, 4, 1)])
def test_threads_are_the_owned_cores_less_the_loaders(monkeypatch, cores, loaders, expected):
    from threadpoolctl import threadpool_limits
    for var in blas_setup.THREAD_VARS:
        monkeypatch.delenv(var, raising=False)
    with threadpool_limits(limits=None, user_api='blas'):  # restored on leaving
        assert blas_setup.limit_threads(cores, loaders) == expected


# Pretends OpenBLAS misread this CPU as Prescott until the project set the kernel,
# then reports what really runs.  START counts how often the program began.
_FAKE_MISREAD = textwrap.dedent('''
    import json, os, sys
    print('START', flush=True)
    sys.path.insert(0, {repo!r})
    from chainer_ext.machine import blas as blas_setup
    real = blas_setup.openblas_kernel
    blas_setup.cpu_flags = lambda path=None: set({flags!r})
    if not os.environ.get('OPENBLAS_CORETYPE'):
        blas_setup.openblas_kernel = lambda: 'Prescott'
    if os.environ.get('FAKE_PYTHON39'):
        del sys.orig_argv
    if os.environ.get('FAKE_MPI_FIRST'):
        from mpi4py import MPI


    def main():
        info = blas_setup.ensure_kernel(rank=int(os.environ.get('OMPI_COMM_WORLD_RANK', 0)))
        info.update(real=real(), argv=sys.argv[1:], utf8=sys.flags.utf8_mode,
                    warnoptions=sys.warnoptions)
        print('RESULT ' + json.dumps(info), flush=True)


    if __name__ == '__main__':
        main()
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


def _run(argv, tmp_path, stdin=None, **env):
    return subprocess.run(argv, env=_env(**env), cwd=str(tmp_path), input=stdin,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          timeout=120)


def _reexecuted(proc):
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (res,) = _results(proc.stdout)
    assert proc.stdout.count('START') == 2 and 'warning' not in proc.stderr, proc.stderr
    assert res['openblas_coretype'] == 'SkylakeX' and res['real'] == 'SkylakeX'
    assert res['detected_kernel'] == 'Prescott'
    return res


def _kept(proc, why):
    """Not re-executed: ran once, on its kernel, with one line naming what to set."""
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (res,) = _results(proc.stdout)
    assert proc.stdout.count('START') == 1, proc.stdout
    assert res['openblas_coretype'] is None
    lines = [l for l in proc.stderr.splitlines() if l.startswith('warning:')]
    assert len(lines) == 1 and 'set OPENBLAS_CORETYPE=SkylakeX before starting it' in lines[0]
    assert why in lines[0], lines[0]
    return res


def test_reexec_sets_the_kernel_once_and_keeps_arguments(tmp_path):
    res = _reexecuted(_run([sys.executable, _script(tmp_path), '--flag', 'a b'], tmp_path))
    assert res['argv'] == ['--flag', 'a b']


def test_reexec_of_python_m_keeps_the_interpreter_options(tmp_path):
    _script(tmp_path)
    res = _reexecuted(_run([sys.executable, '-X', 'utf8', '-W', 'ignore::UserWarning', '-m',
                            'misread', '--flag'], tmp_path, PYTHONPATH=str(tmp_path)))
    assert res['argv'] == ['--flag'] and res['utf8'] == 1
    assert res['warnoptions'] == ['ignore::UserWarning']


def test_reexec_of_python_c_keeps_its_code(tmp_path):
    code = 'exec(open({!r}).read())'.format(_script(tmp_path))
    res = _reexecuted(_run([sys.executable, '-c', code, 'x'], tmp_path))
    assert res['argv'] == ['x']


def test_main_called_by_another_program_is_not_restarted(tmp_path):
    """train_imagenet.main([...]) from a notebook, a test or a driver script."""
    _script(tmp_path)
    (tmp_path / 'driver.py').write_text('print("DRIVER", flush=True)\n'
                                        'import misread\nmisread.main()\n')
    proc = _run([sys.executable, 'driver.py', '--driver-flag'], tmp_path)
    _kept(proc, 'called from inside another program')
    assert proc.stdout.count('DRIVER') == 1


def test_a_program_read_from_stdin_is_not_restarted(tmp_path):
    with open(_script(tmp_path)) as f:
        proc = _run([sys.executable, '-', 'arg'], tmp_path, stdin=f.read())
    _kept(proc, 'read from standard input')


def test_under_python_m_pdb_or_mpi4py_the_process_is_kept(tmp_path):
    """A debugger's session, a launcher that starts MPI: neither is run again."""
    script = _script(tmp_path)
    _kept(_run([sys.executable, '-m', 'pdb', script], tmp_path, stdin='continue\nquit\n'),
          'started by python -m pdb')
    _kept(_run([sys.executable, '-m', 'mpi4py', script], tmp_path),
          'started by python -m mpi4py')


def test_after_mpi_init_the_process_is_kept(tmp_path):
    _kept(_run([sys.executable, _script(tmp_path)], tmp_path, FAKE_MPI_FIRST='1'),
          'MPI is already initialised')


def test_without_sys_orig_argv_the_process_is_kept(tmp_path):
    """Python 3.9: the interpreter's options and -c code are not known."""
    _kept(_run([sys.executable, _script(tmp_path)], tmp_path, FAKE_PYTHON39='1'),
          'keeps no sys.orig_argv')


def test_no_reexec_where_openblas_picked_this_cpus_generation(tmp_path):
    """This machine, unpinned: NumPy 1.26's OpenBLAS picks Cooperlake, NumPy 2.4's
    SkylakeX, both of the CPU's generation: the process must go on as it is."""
    code = ('import json, sys; sys.path.insert(0, {!r}); print("START"); '
            'from chainer_ext.machine import blas as blas_setup; '
            'print("RESULT " + json.dumps(blas_setup.ensure_kernel()))').format(REPO)
    proc = _run([sys.executable, '-c', code], tmp_path)
    assert proc.returncode == 0, proc.stderr
    (res,) = _results(proc.stdout)
    best = blas_setup.cpu_kernel(blas_setup.cpu_flags())
    if best is None or blas_setup.older(res['kernel'], best):
        pytest.skip('OpenBLAS misreads this CPU ({} for {})'.format(res['kernel'], best))
    assert proc.stdout.count('START') == 1 and res['openblas_coretype'] is None
    assert 'warning' not in proc.stderr


def test_user_value_is_never_overridden(tmp_path):
    proc = _run([sys.executable, _script(tmp_path)], tmp_path, OPENBLAS_CORETYPE='Haswell')
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


def test_thread_limit_follows_cores_unless_user_set():
    """A child pinned to one CPU after OpenBLAS sized its pool to all of them: the limit
    follows the one core (OpenBLAS's own count stays that of all the CPUs), and a count the
    user set (all the CPUs again) is kept although it exceeds the core."""
    n = len(os.sched_getaffinity(0))
    if n < 2:
        pytest.skip('one CPU: the limit would equal OpenBLAS\'s own count')
    code = textwrap.dedent('''
        import os, sys
        sys.path.insert(0, {!r})
        import numpy  # loads OpenBLAS, which sizes its pool to the CPUs allowed now
        from chainer_ext.machine import blas as blas_setup, cores
        os.sched_setaffinity(0, {{min(os.sched_getaffinity(0))}})
        print(blas_setup.describe()['threads'],
              blas_setup.limit_threads(cores.of_process(), loader_processes=0))
    ''').format(REPO)

    def threads(**user):
        env = _env(**user)
        for var in set(blas_setup.THREAD_VARS) - set(user):
            env.pop(var, None)
        out = subprocess.run([sys.executable, '-c', code], env=env, stdout=subprocess.PIPE,
                             text=True, timeout=120, check=True).stdout
        return [int(word) for word in out.split()]
    openblas_own, limited = threads()
    assert openblas_own == n, 'OpenBLAS does not size its pool to the CPUs: no contrast'
    assert limited == 1
    assert threads(OMP_NUM_THREADS=str(n)) == [n, n]
