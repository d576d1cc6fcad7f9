"""What a user reads last when a job fails: the project's one line.

Without ``mpiexec`` that line ends the output.  Under ``mpiexec`` it is the last line
the job writes; Open MPI's launcher then prints a framed notice of its own after every
non-zero exit (and ``MPI_Abort`` often one more), which no option removes without also
making ``mpiexec`` exit 0 (docs/DESIGN.md).  What may follow the line is therefore
checked to be those frames only, and never Open MPI's "Sorry! ... No such file" noise.
"""
import json
import os
import socket
import subprocess
import sys

from conftest import MPI_SCRIPTS, REPO_ROOT
from chainer_ext.machine import blas as blas_setup
from chainer_ext.job.mpiexec import run_mpi

TRAIN = os.path.join(REPO_ROOT, 'train_imagenet.py')
WRAPPER = os.path.join(MPI_SCRIPTS, 'train_with_fault.py')
ENV = {'OPENBLAS_CORETYPE': blas_setup.cpu_kernel(blas_setup.cpu_flags()) or 'Prescott'}
RULE = '-' * 74  # the top and bottom of an Open MPI notice


def split_frames(output):
    """``(lines, frames)``: the non-empty lines before the Open MPI notices that end
    ``output``, and those notices' bodies (lists of lines), in order."""
    lines = [line for line in output.replace('\x00', '').splitlines() if line.strip()]
    frames = []
    while len(lines) >= 2 and lines[-1] == RULE:
        top = max(i for i, line in enumerate(lines[:-1]) if line == RULE)
        frames.insert(0, lines[top + 1:-1])
        lines = lines[:top]
    return lines, frames


def assert_no_missing_help(output):
    assert 'Sorry!' not in output and 'No such file' not in output, output[-3000:]


def fault_flags(data, out):
    train, val, root = data
    return ['--train', train, '--val', val, '--root', root, '--arch', 'resnet18',
            '--insize', '32', '--batchsize', '4', '--val-batchsize', '8', '--epoch', '1',
            '--loaderjob', '0', '--no-plots', '--out', out]


def test_bad_flag_under_mpiexec(tmp_path):
    proc = run_mpi(2, [sys.executable, TRAIN, '--demo', '--seed', '-5',
                       '--out', str(tmp_path / 'out')], timeout=120, env=ENV, cwd=REPO_ROOT)
    assert proc.returncode == 2, proc.stdout[-3000:]
    lines, frames = split_frames(proc.stdout)
    assert lines == ['train_imagenet.py: error: --seed must be an integer in [0, 4294967295], '
                     'got -5']
    assert len(frames) == 1 and 'non-zero status' in ' '.join(frames[0]), frames
    assert_no_missing_help(proc.stdout)


def test_exception_on_one_rank_under_mpiexec(tiny_imagenet, tmp_path):
    proc = run_mpi(2, [sys.executable, WRAPPER, 'raise', '1', '2', '--']
                   + fault_flags(tiny_imagenet, str(tmp_path / 'out')),
                   timeout=180, env=ENV, cwd=REPO_ROOT)
    assert proc.returncode == 1, proc.stdout[-3000:]
    lines, frames = split_frames(proc.stdout)
    assert lines[-2:] == ['RuntimeError: injected fault on rank 1 at iteration 2',
                          'train_imagenet.py: error: rank 1: RuntimeError: injected fault on '
                          'rank 1 at iteration 2; stopping all 2 ranks'], lines[-5:]
    # The launcher's notice last; MPI_Abort's before it when the aborting rank's output
    # reaches prterun before prterun reports the abort (a race inside Open MPI).
    assert frames and frames[-1][0].startswith('prterun has exited due to process rank 1'), frames
    assert len(frames) == 1 or (
        len(frames) == 2 and frames[0][0].startswith('MPI_ABORT was invoked on rank 1')), frames
    assert_no_missing_help(proc.stdout)


def test_exception_without_mpiexec_ends_on_the_line(tiny_imagenet, tmp_path):
    env = dict(os.environ, **ENV)
    proc = subprocess.run([sys.executable, WRAPPER, 'raise', '0', '2', '--']
                          + fault_flags(tiny_imagenet, str(tmp_path / 'out')),
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          stdin=subprocess.DEVNULL, timeout=180, env=env, cwd=REPO_ROOT)
    assert proc.returncode == 1, proc.stdout[-3000:]
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    assert lines[-1] == 'train_imagenet.py: error: RuntimeError: injected fault on rank 0 at ' \
                        'iteration 2', lines[-5:]
    assert_no_missing_help(proc.stdout)


def test_lock_refusal_is_one_line_before_the_demo_data_is_built(tmp_path):
    """A held --out is refused before the demo's data set is built, in one line without
    --check-dataset's hint (not a data problem), and every rank leaves MPI together, so
    Open MPI's PMIx server prints no PMIX_ERR_UNREACH after it (twice: it was a race)."""
    out = tmp_path / 'out'
    out.mkdir()
    holder = {'host': socket.gethostname(), 'pid': os.getpid(), 'boot_id': None,
              'job_id': None, 'started': 'then'}
    (out / '.lock').write_text(json.dumps(holder))
    cache = tmp_path / 'cache'
    for _ in range(2):
        proc = run_mpi(2, [sys.executable, TRAIN, '--demo', '--demo-cache', str(cache),
                           '--out', str(out)], timeout=120, env=ENV, cwd=REPO_ROOT)
        assert proc.returncode == 1, proc.stdout[-3000:]
        lines, frames = split_frames(proc.stdout)
        assert lines == ['train_imagenet.py: error: --out {}: in use by (pid {} on {}, since '
                         'then); wait for it to end or use another --out (--wait-for-lock '
                         'SECONDS waits)'.format(out, os.getpid(), socket.gethostname())]
        assert len(frames) == 1 and 'non-zero status' in ' '.join(frames[0]), frames
        assert 'PMIX' not in proc.stdout
        assert not cache.exists()
