"""Shared pytest helpers.

Multi-process tests run a script under ``tests/mpi/`` with ``mpiexec -n N``;
the script asserts on every rank and exits non-zero on failure, so the pytest
test only checks the exit status and shows the output when it fails.
"""
import multiprocessing
import os
import signal
import sys

import pytest

from chainer_ext.job.mpiexec import run_mpi

# Spawned and forkserver children may unpickle Chainer objects before anything
# imports chainer_ext; the forkserver imports it first (as train_imagenet's does).
multiprocessing.set_forkserver_preload(['chainer_ext'])

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(TESTS_DIR)
MPI_SCRIPTS = os.path.join(TESTS_DIR, 'mpi')
BENCH_DIR = os.path.join(REPO_ROOT, 'bench')
if BENCH_DIR not in sys.path:  # bench helpers some tests share (photos)
    sys.path.insert(0, BENCH_DIR)


def _signal_handlers():
    """Python's handler of every signal (None where one was set outside Python)."""
    return {sig: signal.getsignal(sig) for sig in signal.valid_signals()
            if sig not in (signal.SIGKILL, signal.SIGSTOP)}


def _signal_name(sig):
    try:
        return signal.Signals(sig).name
    except ValueError:  # a real-time signal between SIGRTMIN and SIGRTMAX
        return 'signal {}'.format(sig)


@pytest.fixture(autouse=True)
def signal_handlers_left_as_found():
    """Fail a test that leaves a signal handler or the signal mask changed, and put them back.

    What a test leaves acts for the rest of the run: a launch relay left on SIGINT turns
    a later Ctrl-C into SIGUSR1 to a reaped pid instead of stopping the suite, a signal
    left blocked never arrives.  Tests that change them do it in a process of their own.
    Autouse, so set up before the test's own fixtures and checked after their teardown.
    """
    before, mask = _signal_handlers(), signal.pthread_sigmask(signal.SIG_BLOCK, [])
    yield
    after, mask_after = _signal_handlers(), signal.pthread_sigmask(signal.SIG_SETMASK, mask)
    changed = sorted(sig for sig in before if after[sig] is not before[sig])
    for sig in changed:
        if before[sig] is not None:
            signal.signal(sig, before[sig])
    problems = ['{} {!r} -> {!r}'.format(_signal_name(sig), before[sig], after[sig])
                for sig in changed]
    if mask_after != mask:
        problems.append('blocked {} -> {}'.format(*(
            sorted(_signal_name(sig) for sig in m) for m in (mask, mask_after))))
    if problems:
        pytest.fail('the test left signal handling changed (put back now): ' +
                    ', '.join(problems), pytrace=False)


@pytest.fixture
def mpirun():
    """``mpirun(n, script, *args, timeout=300)`` runs ``tests/mpi/<script>``.

    Fails the test (with the job's output) when the job exits non-zero;
    returns the CompletedProcess otherwise.
    """
    def _run(n, script, *args, timeout=300, env=None, check=True, cwd=None):
        path = script if os.path.isabs(script) else os.path.join(MPI_SCRIPTS, script)
        extra = {'PYTHONPATH': REPO_ROOT + os.pathsep + os.environ.get('PYTHONPATH', '')}
        extra.update(env or {})
        proc = run_mpi(n, [sys.executable, path] + [str(a) for a in args],
                       timeout=timeout, env=extra, cwd=cwd or REPO_ROOT)
        if check and proc.returncode != 0:
            pytest.fail('mpiexec -n {} {} exited {}:\n{}'.format(
                n, script, proc.returncode, proc.stdout[-20000:]))
        return proc
    return _run


def write_tiny_imagenet(root, n_train=48, n_val=16, n_class=4, size=40, seed=0):
    """A small learnable data set in the ImageNet list format.

    Class k is a noisy image whose dominant colour channel and stripe
    orientation depend on k. Returns (train_list, val_list, root).
    """
    import numpy
    from PIL import Image
    rng = numpy.random.RandomState(seed)
    os.makedirs(os.path.join(root, 'img'), exist_ok=True)
    lists = {}
    for split, n in (('train', n_train), ('val', n_val)):
        lines = []
        for i in range(n):
            label = i % n_class
            img = rng.randint(0, 60, (size, size, 3)).astype(numpy.uint8)
            img[..., label % 3] += 150
            if label >= 3:
                img[::4] = 255
            rel = 'img/{}-{:04d}.JPEG'.format(split, i)
            Image.fromarray(img).save(os.path.join(root, rel), quality=92)
            lines.append('{} {}\n'.format(rel, label))
        path = os.path.join(root, split + '.txt')
        with open(path, 'w') as f:
            f.writelines(lines)
        lists[split] = path
    return lists['train'], lists['val'], root


@pytest.fixture
def tiny_imagenet(tmp_path):
    return write_tiny_imagenet(str(tmp_path / 'data'))
