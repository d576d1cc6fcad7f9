"""Stop signals on a rank's way to training, the launch wrapper's relay, and what rank 0's
watcher removes; each in a process of its own where signal state is involved."""
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import types

import pytest

from conftest import REPO_ROOT
from chainer_ext.job import signal_relay as launch
from chainer_ext.job import lock_watcher as out_guard
from chainer_ext.job import output_lock
from chainer_ext.job import stop_signals
from chainer_ext.job.mpiexec import mpi_env, mpiexec_command


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
    rank never ignores it: one sent while the forkserver starts is recorded, and so is one
    sent afterwards."""
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
            print(stop_signals.received())
            # still recorded afterwards (SIGTERM in between, so that a SIGUSR1 ignored
            # from now on would leave 15)
            for sig in (signal.SIGTERM, signal.SIGUSR1):
                os.kill(os.getpid(), sig)
                print(stop_signals.received())
    ''', tmp_path) == ['0', '-15', '10', '15', '10']


def test_the_resource_tracker_outlives_a_stop_signal(tmp_path):
    """The forkserver's resource tracker, started inside the shield, keeps SIGUSR1
    blocked: one sent to it waits, pending, and the tracker ends normally (status 0)
    when the rank closes its pipe.  Unblocked, SIGUSR1's default action ends it before
    it can read the end of its pipe: status -10."""
    assert run_python('''
        import os, signal
        from multiprocessing import resource_tracker
        from chainer_ext.job import start_steps, stop_signals
        if __name__ == '__main__':
            stop_signals.catch([signal.SIGUSR1, signal.SIGTERM])
            with stop_signals.ignored_by_forkserver([signal.SIGUSR1, signal.SIGTERM]):
                start_steps.start_forkserver()
            tracker = resource_tracker._resource_tracker
            os.kill(tracker._pid, signal.SIGUSR1)
            os.close(tracker._fd)  # the tracker ends at the end of its pipe
            print(os.waitstatus_to_exitcode(os.waitpid(tracker._pid, 0)[1]))
    ''', tmp_path) == ['0']


def test_catch_gives_signals_no_longer_named_their_default_back():
    assert run_python('''
        import signal
        from chainer_ext.job import stop_signals
        stop_signals.catch_early(['--stop-signals', 'TERM,USR1'])
        stop_signals.catch([signal.SIGUSR1])
        print(signal.getsignal(signal.SIGTERM) == signal.SIG_DFL)
    ''') == ['True']


def _lines():
    out = types.SimpleNamespace(lines=[], flush=lambda: None)
    out.write = out.lines.append
    return out


def test_the_relay_asks_once_then_ends_at_once(monkeypatch):
    sent = []
    monkeypatch.setattr(launch.os, 'kill', lambda pid, signum: sent.append((pid, signum)))
    out, ready = _lines(), []
    relay = launch.Relay(out=out, ready=lambda pid: bool(ready))
    relay(signal.SIGTERM, None)   # before the launcher runs: kept until its ranks can take it
    relay.started(types.SimpleNamespace(pid=4242))
    relay.poll()
    assert sent == []
    ready.append(True)
    relay.poll()
    relay.poll()                  # sent once
    relay(signal.SIGUSR2, None)
    relay(signal.SIGINT, None)
    assert sent == [(4242, signal.SIGUSR1), (4242, signal.SIGUSR2), (4242, signal.SIGTERM)]
    assert out.lines == [
        'python -m chainer_ext.launch: SIGTERM: the ranks are still starting: asking them to '
        'stop as soon as they can take it (SIGUSR1 to the launcher), before their first '
        'iteration, with nothing to save; SIGTERM again ends them at once\n',
        'python -m chainer_ext.launch: SIGINT again: ending the ranks at once (SIGTERM to the '
        'launcher); what they did since their last snapshot is lost\n']
    # ranks that take it: asked at once, with a snapshot
    out, sent[:] = _lines(), []
    relay = launch.Relay(out=out, ready=lambda pid: True)
    relay.started(types.SimpleNamespace(pid=4242))
    relay(signal.SIGINT, None)
    assert sent == [(4242, signal.SIGUSR1)]
    assert out.lines == [
        'python -m chainer_ext.launch: SIGINT: asking every rank to stop at the next '
        'iteration with a snapshot (SIGUSR1 to the launcher); Ctrl-C again ends them at '
        'once\n']
    # ranks never seen to take it (not descendants of the launcher): asked after a while
    out, sent[:] = _lines(), []
    relay = launch.Relay(out=out, ready=lambda pid: False, ready_wait=0.0)
    relay.started(types.SimpleNamespace(pid=4242))
    relay(signal.SIGTERM, None)
    relay.poll()
    assert sent == [(4242, signal.SIGUSR1)]
    assert out.lines[-1] == ('python -m chainer_ext.launch: the ranks still cannot be seen '
                             'to take a stop request after 0 s: asking them now (SIGUSR1 to '
                             'the launcher)\n')
    assert launch.exit_status(-signal.SIGKILL) == 137 and launch.exit_status(75) == 75


def _launched(wrapper):
    """Whether the wrapper's launcher runs, in its own process group (a signal to the
    wrapper's group before that reaches the forked launcher too)."""
    for name in filter(str.isdigit, os.listdir('/proc')):
        try:
            with open('/proc/{}/stat'.format(name)) as f:
                parent, group = f.read().rsplit(')', 1)[1].split()[1:3]
        except OSError:
            continue
        if int(parent) == wrapper and int(group) == int(name):
            return True
    return False


@pytest.mark.skipif(not os.path.isdir('/proc/self'), reason='needs Linux /proc')
def test_ctrl_c_as_the_launch_starts_stops_the_ranks_before_training(tmp_path):
    """Ctrl-C as soon as the launcher runs: it and its ranks cannot take SIGUSR1 yet.
    The request waits for them; they stop before their first iteration, and neither the
    launcher nor a rank dies of SIGUSR1."""
    out = tmp_path / 'out'
    train = [sys.executable, os.path.join(REPO_ROOT, 'train_imagenet.py'), '--synthetic',
             '--synthetic-size', '64', '--batchsize', '4', '--arch', 'resnet18', '--insize',
             '32', '--no-plots', '--max-iterations', '8', '--out', str(out)]
    job = subprocess.Popen([sys.executable, '-m', 'chainer_ext.launch']
                           + mpiexec_command(2, train), env=mpi_env(None), cwd=REPO_ROOT,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           stdin=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 60
    while not _launched(job.pid) and time.monotonic() < deadline:
        time.sleep(0.001)
    os.killpg(job.pid, signal.SIGINT)
    stdout, _ = job.communicate(timeout=300)
    assert job.returncode == stop_signals.PREEMPTED_STATUS, stdout[-5000:]
    assert stdout.startswith(
        'python -m chainer_ext.launch: SIGINT: the ranks are still starting: asking them to '
        'stop as soon as they can take it (SIGUSR1 to the launcher), before their first '
        'iteration, with nothing to save; Ctrl-C again ends them at once\n'), stdout[-5000:]
    assert ('stopped on SIGUSR1 before the first iteration of this job; nothing new to save; '
            'continue with --resume auto') in stdout
    assert 'signal 10' not in stdout and 'Traceback' not in stdout
    assert sorted(os.listdir(str(out))) == ['config.json']


def test_a_launcher_ended_by_the_stop_signal_itself_is_said():
    """A Ctrl-C as the launcher is forked reaches it too (it is still in the wrapper's
    process group): stood in for by a launcher that asks the wrapper to stop, then dies
    of SIGINT."""
    proc = subprocess.run([sys.executable, '-m', 'chainer_ext.launch', 'sh', '-c',
                           'kill -INT $PPID; sleep 1; kill -INT $$'],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 128 + signal.SIGINT
    assert proc.stderr.splitlines()[-1] == (
        'python -m chainer_ext.launch: the launcher itself was ended by SIGINT (sent as it '
        'started): no stop request reached the ranks; what they did since their last snapshot '
        'is lost')


def test_the_wrapper_passes_on_the_status_and_a_missing_program():
    """``python -m chainer_ext.launch`` in a process of its own (its relay becomes the
    handler of SIGINT, SIGTERM, SIGHUP, SIGUSR1 and SIGUSR2)."""
    def wrapper(*argv):
        return subprocess.run([sys.executable, '-m', 'chainer_ext.launch'] + list(argv),
                              cwd=REPO_ROOT, capture_output=True, text=True, timeout=120,
                              env=dict(os.environ, PYTHONPATH=REPO_ROOT))
    assert wrapper(sys.executable, '-c', 'raise SystemExit(75)').returncode == 75
    killed = 'import os, signal; os.kill(os.getpid(), signal.SIGKILL)'
    assert wrapper(sys.executable, '-c', killed).returncode == 128 + signal.SIGKILL
    missing = wrapper('/no/such/launcher')
    assert missing.returncode == 127 and '/no/such/launcher' in missing.stderr


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
