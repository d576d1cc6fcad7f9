"""Shared pytest helpers.

Multi-process tests run a script under ``tests/mpi/`` with ``mpiexec -n N``;
the script asserts on every rank and exits non-zero on failure, so the pytest
test only checks the exit status and shows the output when it fails.
"""
import multiprocessing
import os
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
