"""The suite's guard (conftest.signal_handlers_left_as_found): a test that leaves a signal
handler or the signal mask changed fails, and the next test finds them put back."""
import os
import subprocess
import sys
import textwrap

from conftest import REPO_ROOT, TESTS_DIR


def test_a_test_leaving_a_handler_fails(tmp_path):
    (tmp_path / 'test_leaks.py').write_text(textwrap.dedent('''
        import signal

        def test_leaves_usr2_changed():
            signal.signal(signal.SIGUSR2, signal.SIG_IGN)

        def test_puts_hup_back():
            old = signal.signal(signal.SIGHUP, signal.SIG_IGN)
            signal.signal(signal.SIGHUP, old)

        def test_leaves_usr1_blocked():
            signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGUSR1])

        def test_finds_both_put_back():
            assert signal.getsignal(signal.SIGUSR2) is signal.SIG_DFL
            assert signal.SIGUSR1 not in signal.pthread_sigmask(signal.SIG_BLOCK, [])
    '''))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([REPO_ROOT, TESTS_DIR]))
    proc = subprocess.run([sys.executable, '-m', 'pytest', '-q', '-p', 'conftest', '-p',
                           'no:cacheprovider', '-o', 'addopts=', 'test_leaks.py'],
                          cwd=str(tmp_path), env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert ('the test left signal handling changed (put back now): SIGUSR2 '
            '<Handlers.SIG_DFL: 0> -> <Handlers.SIG_IGN: 1>') in proc.stdout
    assert "blocked [] -> ['SIGUSR1']" in proc.stdout
    assert '4 passed, 2 errors' in proc.stdout, proc.stdout
