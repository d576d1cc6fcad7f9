"""Faults on one rank end the whole MPI job promptly, saying where and why."""
import os
import sys
import time

import pytest

from conftest import MPI_SCRIPTS, REPO_ROOT, write_tiny_imagenet
from chainer_ext.extensions import multi_node_snapshot as snapshots
from chainer_ext.job.mpiexec import run_mpi

WRAPPER = os.path.join(MPI_SCRIPTS, 'train_with_fault.py')


def _flags(data, out, *extra):
    train, val, root = data
    return ['--train', train, '--val', val, '--root', root, '--arch', 'resnet18',
            '--insize', '32', '--batchsize', '4', '--val-batchsize', '8', '--epoch', '3',
            '--loaderjob', '1', '--out', out] + list(extra)


def _run(mode, rank, iteration, data, out, timeout=180):
    t0 = time.time()
    proc = run_mpi(2, [sys.executable, WRAPPER, mode, str(rank), str(iteration), '--']
                   + _flags(data, out), timeout=timeout, cwd=REPO_ROOT)
    end = time.time()
    return proc, end - t0, end


@pytest.fixture
def data(tmp_path):
    return write_tiny_imagenet(str(tmp_path / 'data'))


def _after_fault(proc, end):
    """Seconds from the injected fault (the wrapper prints its time) to the job's end."""
    for line in proc.stdout.splitlines():
        if line.startswith('FAULT-AT '):
            return end - float(line.split()[1])
    raise AssertionError('no fault was injected:\n' + proc.stdout[-3000:])


def test_exception_on_rank1_ends_job(data, tmp_path):
    out = str(tmp_path / 'out')
    proc, _, end = _run('raise', 1, 8, data, out)
    assert proc.returncode != 0
    lines = proc.stdout.splitlines()
    assert lines.count('RuntimeError: injected fault on rank 1 at iteration 8') == 1  # once
    assert ('train_imagenet.py: error: rank 1: RuntimeError: injected fault on rank 1 at '
            'iteration 8; stopping all 2 ranks') in lines
    assert _after_fault(proc, end) < 30
    assert snapshots.is_complete(os.path.join(out, 'snapshots', 'epoch-1'))


def test_sigkill_of_one_rank_ends_job(data, tmp_path):
    proc, _, end = _run('kill', 1, 8, data, str(tmp_path / 'out'))
    assert proc.returncode != 0
    assert _after_fault(proc, end) < 30


def test_corrupt_image_mid_run_names_the_file(data, tmp_path):
    train, _, root = data
    with open(train) as f:
        victim = f.readlines()[30].split()[0]
    path = os.path.join(root, victim)
    with open(path, 'rb') as f:
        head = f.read(300)
    with open(path, 'wb') as f:
        f.write(head)  # truncated JPEG
    proc, seconds, _ = _run('none', -1, -1, data, str(tmp_path / 'out'))
    assert proc.returncode != 0
    assert victim in proc.stdout
    assert seconds < 90, seconds  # start-up and the epoch before it, not a hang


def test_disk_full_during_snapshot_keeps_previous(data, tmp_path):
    out = str(tmp_path / 'out')
    proc, _, _ = _run('fsize', 1, 8, data, out)
    assert proc.returncode != 0
    assert 'writing snapshot epoch-2' in proc.stdout and 'failed on rank 1' in proc.stdout
    assert 'File too large' in proc.stdout
    root = os.path.join(out, 'snapshots')
    assert sorted(os.listdir(root)) == ['epoch-1']
    assert snapshots.is_complete(os.path.join(root, 'epoch-1'))
    assert snapshots.resolve_resume('auto', out).endswith('epoch-1')
