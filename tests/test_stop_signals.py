"""Stop signals on a rank's way to training, the launch wrapper's relay, and what rank 0's
watcher removes; each in a process of its own where signal state is involved."""
import json
import os
import signal
import subprocess
import sys
import textwrap
import types

import pytest

from conftest import REPO_ROOT
from chainer_ext.job import signal_relay as launch
from chainer_ext.job import lock_watcher as out_guard
from chainer_ext.job import output_lock
from chainer_ext.job import stop_signals


@pytest.mark.parametrize('argv,names', [
    ([], ['SIGTERM', 'SIGUSR1']),
    (['--demo', '--stop-signals', 'INT,USR2'], ['SIGINT', 'SIGUSR2']),
    (['--stop-signals=HUP'], ['SIGHUP']),
    (['--stop', 'USR2'], ['SIGUSR2']),                 # argparse's abbreviation
    (['--stop-signals', 'KILL'], ['SIGTERM', 'SIGUSR1']),  # argparse refuses it later
    (['--stop-signals'], ['SIGTERM', 'SIGUSR1']),
])
def test_the_signals_a_command_line_names(argv, names):
    assert [s.name for s in stop_signals.named_in(argv)] == names


def run_python(code, tmp_path=None):
    """Run ``code`` in a new interpreter (from a file when ``tmp_path`` is given, so that it
    can execute itself again); return its output's words."""
    code = textwrap.dedent(code)
    argv = [sys.executable, '-c', code]
    if tmp_path is not None:
        script = tmp_path / 'script.py'
        script.write_text(code)
        argv = [sys.executable, str(script)]
    proc = subprocess.run(argv, cwd=REPO_ROOT, capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, PYTHONPATH=REPO_ROOT))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout.split()


@pytest.mark.parametrize('when', ['before', 'inside'])
def test_a_stop_signal_survives_the_re_exec(tmp_path, when):
    """The BLAS re-exec replaces the program image: handlers are reset, the signal mask
    and pending signals are not.  The new image records a signal the old one recorded
    before the block, or got inside it (pending, or taken by another thread: NumPy's
    OpenBLAS starts threads that do not block it)."""
    assert run_python('''
        import os, signal, sys, time
        from chainer_ext.job import stop_signals
        stop_signals.catch_early(['--stop-signals', 'USR1'])
        if sys.argv[1:] == ['again']:  # the new image
            print('new', stop_signals.received(), flush=True)
            sys.exit(0)
        if 'WHEN' == 'before':
            os.kill(os.getpid(), signal.SIGUSR1)
        with stop_signals.held():
            if 'WHEN' == 'inside':
                os.kill(os.getpid(), signal.SIGUSR1)
                time.sleep(0.2)
            os.execv(sys.executable, [sys.executable, __file__, 'again'])
    '''.replace('WHEN', when), tmp_path) == ['new', '10']


def test_loaders_ignore_usr1_while_the_rank_records_it(tmp_path):
    """The loaders' forkserver (and every loader it forks) ignores SIGUSR1, which Open
    MPI forwards to each rank's process group; SIGTERM keeps its default there.  The
    rank never ignores it: one sent while the forkserver starts is recorded."""
    assert run_python('''
        import multiprocessing, os, signal
        from chainer_ext.job import start_steps, stop_signals
        if __name__ == '__main__':
            stop_signals.catch([signal.SIGUSR1, signal.SIGTERM])
            with stop_signals.ignored_by_forkserver([signal.SIGUSR1, signal.SIGTERM]):
                start_steps.start_forkserver()
                os.kill(os.getpid(), signal.SIGUSR1)
            for sig in (signal.SIGUSR1, signal.SIGTERM):
                loader = multiprocessing.Process(target=signal.raise_signal, args=(sig,))
                loader.start()
                loader.join()
                print(loader.exitcode)
            print(stop_signals.received(), signal.getsignal(signal.SIGUSR1) is not None)
    ''', tmp_path) == ['0', '-15', '10', 'True']


def test_catch_gives_signals_no_longer_named_their_default_back():
    assert run_python('''
        import signal
        from chainer_ext.job import stop_signals
        stop_signals.catch_early(['--stop-signals', 'TERM,USR1'])
        stop_signals.catch([signal.SIGUSR1])
        print(signal.getsignal(signal.SIGTERM) == signal.SIG_DFL)
    ''') == ['True']


def test_the_relay_asks_once_then_ends_at_once(monkeypatch):
    sent = []
    monkeypatch.setattr(launch.os, 'kill', lambda pid, signum: sent.append((pid, signum)))
    out = types.SimpleNamespace(lines=[], write=lambda text: out.lines.append(text),
                                flush=lambda: None)
    relay = launch.Relay(out=out)
    relay(signal.SIGTERM, None)   # before the launcher runs: kept for it
    assert sent == []
    relay.started(types.SimpleNamespace(pid=4242))
    relay(signal.SIGUSR2, None)
    relay(signal.SIGINT, None)
    assert sent == [(4242, signal.SIGUSR1), (4242, signal.SIGUSR2), (4242, signal.SIGTERM)]
    assert out.lines == [
        'python -m chainer_ext.launch: SIGTERM: asking every rank to stop at the next '
        'iteration with a snapshot (SIGUSR1 to the launcher); SIGTERM again ends them at '
        'once\n',
        'python -m chainer_ext.launch: SIGINT again: ending the ranks at once (SIGTERM to the '
        'launcher); what they did since their last snapshot is lost\n']
    assert launch.exit_status(-signal.SIGKILL) == 137 and launch.exit_status(75) == 75


def test_the_wrapper_passes_on_the_status_and_a_missing_program():
    assert launch.main([sys.executable, '-c', 'raise SystemExit(75)']) == 75
    assert launch.main(['/no/such/launcher']) == 127


def _holder(pid=12345):
    return {'host': 'node7', 'pid': pid, 'boot_id': None, 'job_id': None, 'started': 'then'}


def test_the_watcher_removes_the_lock_and_unfinished_snapshots(tmp_path):
    out = str(tmp_path)
    (tmp_path / '.lock').write_text(json.dumps(_holder()))
    for name in ('.partial-iter-8', '.deleting-epoch-1', 'epoch-2', '.superseded-epoch-3'):
        (tmp_path / 'snapshots' / name).mkdir(parents=True)
    assert out_guard.remove_leftovers(out, _holder()) == [
        os.path.join('snapshots', '.deleting-epoch-1'),
        os.path.join('snapshots', '.partial-iter-8'), output_lock.LOCK]
    assert sorted(os.listdir(str(tmp_path / 'snapshots'))) == ['.superseded-epoch-3',
                                                              'epoch-2']
    assert not (tmp_path / '.lock').exists()


def test_the_watcher_leaves_a_lock_another_job_took_over(tmp_path):
    (tmp_path / '.lock').write_text(json.dumps(_holder(pid=999)))
    (tmp_path / 'snapshots' / '.partial-iter-8').mkdir(parents=True)
    assert out_guard.remove_leftovers(str(tmp_path), _holder()) == []
    assert (tmp_path / '.lock').exists()
    assert (tmp_path / 'snapshots' / '.partial-iter-8').exists()
