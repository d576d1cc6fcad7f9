"""A stop signal to one rank, every rank or the launcher stops all ranks at one
iteration with a snapshot and exit status 75; ``--resume auto`` then ends on the
weights of an uninterrupted run.  Two jobs on one ``--out``: the second refuses,
or waits and continues (a requeue)."""
import json
import os
import signal
import subprocess
import sys
import time
import types

import numpy
import pytest

from conftest import MPI_SCRIPTS, REPO_ROOT, write_tiny_imagenet
from chainer_ext.machine import blas as blas_setup
from chainer_ext.extensions import multi_node_snapshot as snapshots
from chainer_ext.job.stop_signals import PREEMPTED_STATUS
from chainer_ext.job.mpiexec import mpi_env, mpiexec_command, run_mpi

TRAIN = os.path.join(REPO_ROOT, 'train_imagenet.py')
WRAPPER = os.path.join(MPI_SCRIPTS, 'train_with_fault.py')
# The kernel the trainer pins (blas_setup), set up front: resume equality is
# checked to 1e-6, and the runs skip the start-up re-exec.
ENV = {'OPENBLAS_CORETYPE': blas_setup.cpu_kernel(blas_setup.cpu_flags()) or 'Prescott'}


def flags(data, out, *extra):
    train, val, root = data
    return ['--train', train, '--val', val, '--root', root, '--arch', 'resnet18',
            '--insize', '32', '--batchsize', '4', '--val-batchsize', '8', '--epoch', '2',
            '--loaderjob', '1', '--seed', '3', '--keep-snapshots', '3', '--no-plots',
            '--out', out] + list(extra)


def train(n, data, out, *extra):
    return run_mpi(n, [sys.executable, TRAIN] + flags(data, out, *extra), timeout=300,
                   env=ENV, cwd=REPO_ROOT)


def with_fault(n, mode, rank, where, data, out, *extra):
    proc = run_mpi(n, [sys.executable, WRAPPER, mode, str(rank), where, '--']
                   + flags(data, out, *extra), timeout=300, env=ENV, cwd=REPO_ROOT)
    return proc, time.time()


def weights(out):
    with numpy.load(os.path.join(out, 'model.npz')) as f:
        return {k: f[k] for k in f.files}


def assert_same_weights(out, reference):
    a, b = weights(out), weights(reference)
    assert a.keys() == b.keys()
    for k in a:
        numpy.testing.assert_allclose(a[k], b[k], rtol=0, atol=1e-6, err_msg=k)


def stop_lines(proc):
    """The lines saying that the job stopped (less the progress bar's erase-below)."""
    return [line.replace('\x1b[J', '') for line in proc.stdout.splitlines()
            if 'stopped ' in line]


def seconds_after_fault(proc, end):
    stamps = [float(line.split()[1]) for line in proc.stdout.splitlines()
              if line.startswith(('FAULT-AT ', 'WAITING-AT '))]
    assert stamps, proc.stdout[-3000:]
    return end - max(stamps)


def snapshot_names(out):
    return sorted(os.listdir(os.path.join(out, 'snapshots')))


@pytest.fixture(scope='module')
def reference(tmp_path_factory):
    base = tmp_path_factory.mktemp('preempt')
    data = write_tiny_imagenet(str(base / 'data'))
    out = str(base / 'reference')
    proc = train(2, data, out)
    assert proc.returncode == 0, proc.stdout[-5000:]
    return data, out


def test_signal_to_one_rank_stops_all_then_resume_is_exact(reference, tmp_path):
    data, ref = reference
    out = str(tmp_path / 'out')
    proc, end = with_fault(2, 'USR1', 1, '3', data, out)
    assert proc.returncode == PREEMPTED_STATUS, proc.stdout[-5000:]
    snap = os.path.join(out, 'snapshots', 'iter-4')
    assert stop_lines(proc) == ['stopped at iteration 4 on SIGUSR1 (snapshot {}); continue '
                                'with --resume auto'.format(snap)]
    assert seconds_after_fault(proc, end) < 30
    assert snapshot_names(out) == ['iter-4']
    manifest = snapshots.read_manifest(snap)
    assert manifest['iteration'] == 4 and snapshots.is_complete(snap)
    assert not os.path.exists(os.path.join(out, '.lock'))

    proc = train(2, data, out, '--resume', 'auto')
    assert proc.returncode == 0, proc.stdout[-5000:]
    assert 'resumed from {} (iteration 4)'.format(snap) in proc.stdout
    assert_same_weights(out, ref)
    with open(os.path.join(out, 'log')) as f:
        assert [e['iteration'] for e in json.load(f)] == [6, 12]


def test_sigterm_to_every_rank_mid_second_epoch(reference, tmp_path):
    data, ref = reference
    out = str(tmp_path / 'out')
    proc, end = with_fault(2, 'TERM', 'all', '7', data, out)
    assert proc.returncode == PREEMPTED_STATUS, proc.stdout[-5000:]
    assert len(stop_lines(proc)) == 1 and 'at iteration 8 on SIGTERM' in proc.stdout
    assert snapshot_names(out) == ['epoch-1', 'iter-8']
    proc = train(2, data, out, '--resume', 'auto')
    assert proc.returncode == 0, proc.stdout[-5000:]
    assert_same_weights(out, ref)


def test_signal_to_the_launcher_reaches_every_rank(reference, tmp_path):
    """Open MPI's launcher forwards SIGUSR1 to the ranks (and their loader processes,
    which must survive it); the ranks wait at iteration 3 until it arrives."""
    data, ref = reference
    out = str(tmp_path / 'out')
    cmd = mpiexec_command(2, [sys.executable, WRAPPER, 'wait', 'all', '3', '--']
                          + flags(data, out))
    job = subprocess.Popen(cmd, env=mpi_env(ENV), cwd=REPO_ROOT, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, stdin=subprocess.DEVNULL)
    lines = []
    for line in job.stdout:  # bounded: the ranks wait at most 120 s, then go on
        lines.append(line)
        if sum(l.startswith('WAITING-AT') for l in lines) == 2:
            sent = time.time()
            job.send_signal(signal.SIGUSR1)
            break
    rest, _ = job.communicate(timeout=120)
    end = time.time()
    stdout = ''.join(lines) + rest
    assert job.returncode == PREEMPTED_STATUS, stdout[-5000:]
    # The ranks wait at iteration 3 until a stop signal, or 120 s (train_with_fault.py's
    # wait_for_stop_signal); a signal that did not reach them would end the wait only
    # then.  Bound: that limit; the stop itself is one iteration and a snapshot.
    assert end - sent < 120
    assert 'stopped at iteration 4 on SIGUSR1' in stdout
    proc = train(2, data, out, '--resume', 'auto')
    assert proc.returncode == 0, proc.stdout[-5000:]
    assert_same_weights(out, ref)


def test_signal_during_the_epoch_snapshot_and_again_during_validation(reference, tmp_path):
    """Signals inside the evaluator and inside every snapshot write: the epoch
    snapshot of that iteration is complete and serves as the stop's snapshot."""
    data, ref = reference
    out = str(tmp_path / 'out')
    proc, _ = with_fault(2, 'USR1', 0, 'validation,write', data, out)
    assert proc.returncode == PREEMPTED_STATUS, proc.stdout[-5000:]
    snap = os.path.join(out, 'snapshots', 'epoch-1')
    assert stop_lines(proc) == ['stopped at iteration 6 on SIGUSR1 (snapshot {}); continue '
                                'with --resume auto'.format(snap)]
    assert snapshot_names(out) == ['epoch-1'] and snapshots.is_complete(snap)


def test_signal_during_the_last_validation_then_resume_finishes_the_run(reference, tmp_path):
    """A signal during every validation, requeued on status 75: the second job stops in
    the last epoch's validation, after its snapshot epoch-2 but before model.npz; the
    third finishes the run (model.npz, the summary) on the uninterrupted run's weights."""
    data, ref = reference
    out = str(tmp_path / 'out')
    for stop in (6, 12):
        proc, _ = with_fault(2, 'USR1', 0, 'validation', data, out, '--resume', 'auto')
        assert proc.returncode == PREEMPTED_STATUS, proc.stdout[-5000:]
        assert 'stopped at iteration {} on SIGUSR1'.format(stop) in proc.stdout
    assert not os.path.exists(os.path.join(out, 'model.npz'))
    proc = train(2, data, out, '--resume', 'auto')
    assert proc.returncode == 0, proc.stdout[-5000:]
    assert '{} is the end of this run, which stopped before writing {}: finishing it'.format(
        os.path.join(out, 'snapshots', 'epoch-2'), os.path.join(out, 'model.npz')) in proc.stdout
    assert 'finished 2 epochs (12 iterations)' in proc.stdout
    assert_same_weights(out, ref)


def test_second_signal_during_the_stop_snapshot(reference, tmp_path):
    data, _ = reference
    out = str(tmp_path / 'out')
    proc, _ = with_fault(2, 'USR1', 'all', '2,write', data, out)
    assert proc.returncode == PREEMPTED_STATUS, proc.stdout[-5000:]
    assert len(stop_lines(proc)) == 1
    assert snapshot_names(out) == ['iter-3']
    assert snapshots.is_complete(os.path.join(out, 'snapshots', 'iter-3'))


def test_signal_before_the_first_iteration_saves_nothing(reference, tmp_path):
    data, _ = reference
    out = str(tmp_path / 'out')
    proc, _ = with_fault(3, 'USR1', 2, 'startup', data, out)
    assert proc.returncode == PREEMPTED_STATUS, proc.stdout[-5000:]
    assert stop_lines(proc) == ['stopped on SIGUSR1 before the first iteration of this job; '
                                'nothing new to save; continue with --resume auto']
    assert not os.path.exists(os.path.join(out, 'snapshots'))
    assert sorted(os.listdir(out)) == ['config.json']


def test_signal_during_the_first_iteration_at_three_ranks(reference, tmp_path):
    data, _ = reference
    out = str(tmp_path / 'out')
    proc, _ = with_fault(3, 'TERM', 2, '0', data, out)
    assert proc.returncode == PREEMPTED_STATUS, proc.stdout[-5000:]
    assert 'stopped at iteration 1 on SIGTERM' in proc.stdout
    assert snapshot_names(out) == ['iter-1']
    proc = run_mpi(3, [sys.executable, TRAIN] + flags(data, out, '--resume', 'auto'),
                   timeout=300, env=ENV, cwd=REPO_ROOT)
    assert proc.returncode == 0, proc.stdout[-5000:]
    assert 'resumed from' in proc.stdout and '(iteration 1)' in proc.stdout


def test_two_jobs_on_one_out(reference, tmp_path):
    """Job A holds --out (its ranks wait in the third update); job B refuses in one line
    naming A; job C waits for the lock, and when A stops on a signal continues
    from A's snapshot to the uninterrupted run's weights (a requeue)."""
    data, ref = reference
    out = str(tmp_path / 'out')
    env = mpi_env(ENV)
    a = subprocess.Popen(mpiexec_command(2, [sys.executable, WRAPPER, 'wait', 'all', '2', '--']
                                         + flags(data, out)),
                         env=env, cwd=REPO_ROOT, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True, stdin=subprocess.DEVNULL)
    a_lines = []
    for line in a.stdout:
        a_lines.append(line)
        if line.startswith('WAITING-AT'):
            break
    with open(os.path.join(out, '.lock')) as f:
        holder = json.load(f)

    b = run_mpi(2, [sys.executable, TRAIN] + flags(data, out) + ['--seed', '2'],
                timeout=120, env=ENV, cwd=REPO_ROOT)
    assert b.returncode == 1, b.stdout[-3000:]
    errors = [l for l in b.stdout.splitlines() if 'error:' in l]
    assert errors == ['train_imagenet.py: error: --out {}: in use by (pid {} on {}, since {}); '
                      'wait for it to end or use another --out (--wait-for-lock SECONDS '
                      'waits)'.format(out, holder['pid'], holder['host'], holder['started'])]
    with open(os.path.join(out, 'config.json')) as f:
        assert json.load(f)['args']['seed'] == 3

    c = subprocess.Popen(mpiexec_command(2, [sys.executable, TRAIN] + flags(
        data, out, '--resume', 'auto', '--wait-for-lock', '120')), env=env, cwd=REPO_ROOT,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, stdin=subprocess.DEVNULL)
    c_lines = []
    for line in c.stdout:
        c_lines.append(line)
        if 'waiting up to 120 s for it to end' in line:
            break
    assert 'in use by (pid {} on {}'.format(holder['pid'], holder['host']) in c_lines[-1]
    a.send_signal(signal.SIGUSR1)
    a_rest, _ = a.communicate(timeout=120)
    c_rest, _ = c.communicate(timeout=300)
    c_out = ''.join(c_lines) + c_rest
    assert a.returncode == PREEMPTED_STATUS, ''.join(a_lines) + a_rest
    assert c.returncode == 0, c_out[-5000:]
    assert 'resumed from {} (iteration 3)'.format(
        os.path.join(out, 'snapshots', 'iter-3')) in c_out
    assert_same_weights(out, ref)
    assert not os.path.exists(os.path.join(out, '.lock'))


def test_stop_signal_during_start_up_waits_for_the_handler(reference, tmp_path):
    """A stop signal at main's first step (before the slow imports and the handler) used
    to kill the ranks (status 138, not requeued); it is now recorded from the first
    moment and stops the job with 75.  Whether that step re-executes the process for
    the BLAS kernel depends on the CPU; test_stop_signals covers a signal across the
    re-exec on every CPU."""
    data, _ = reference
    out = str(tmp_path / 'out')
    proc = run_mpi(2, [sys.executable, WRAPPER, 'USR1', 'all', 'start', '--']
                   + flags(data, out), timeout=300, cwd=REPO_ROOT)
    assert proc.returncode == PREEMPTED_STATUS, proc.stdout[-5000:]
    assert proc.stdout.count('FAULT-AT') >= 2
    assert stop_lines(proc) == ['stopped on SIGUSR1 before the first iteration of this job; '
                                'nothing new to save; continue with --resume auto']
    assert sorted(os.listdir(out)) == ['config.json']


def read_until_waiting(job, ranks=2):
    lines = []
    for line in job.stdout:  # bounded: the ranks wait at most 120 s, then go on
        lines.append(line)
        if sum(l.startswith('WAITING-AT') for l in lines) == ranks:
            break
    return lines


def test_ctrl_c_to_the_launch_wrapper_stops_with_a_snapshot(reference, tmp_path):
    """Ctrl-C (SIGINT to the terminal's process group) reaches python -m chainer_ext.launch
    alone, which asks the ranks to stop through Open MPI's mpiexec with SIGUSR1."""
    data, _ = reference
    out = str(tmp_path / 'out')
    cmd = [sys.executable, '-m', 'chainer_ext.launch'] + mpiexec_command(
        2, [sys.executable, WRAPPER, 'wait', 'all', '3', '--'] + flags(data, out))
    job = subprocess.Popen(cmd, env=mpi_env(ENV), cwd=REPO_ROOT, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, stdin=subprocess.DEVNULL,
                           start_new_session=True)
    lines = read_until_waiting(job)
    os.killpg(job.pid, signal.SIGINT)
    rest, _ = job.communicate(timeout=120)
    stdout = ''.join(lines) + rest
    assert job.returncode == PREEMPTED_STATUS, stdout[-5000:]
    assert ('python -m chainer_ext.launch: SIGINT: asking every rank to stop at the next '
            'iteration with a snapshot (SIGUSR1 to the launcher); Ctrl-C again ends them at '
            'once') in stdout
    snap = os.path.join(out, 'snapshots', 'iter-4')
    assert stop_lines(types.SimpleNamespace(stdout=stdout)) == [
        'stopped at iteration 4 on SIGUSR1 (snapshot {}); continue with --resume '
        'auto'.format(snap)]
    assert snapshot_names(out) == ['iter-4'] and snapshots.is_complete(snap)
    assert not os.path.exists(os.path.join(out, '.lock'))
    # the loaders' helper processes (forkserver, resource tracker) outlive the signal
    assert 'Traceback' not in stdout and 'resource_tracker' not in stdout, stdout[-5000:]


def leftovers(out, wait=10.0):
    """The lock and unfinished snapshot folders in ``out``, once rank 0's guard had
    ``wait`` seconds to remove them."""
    deadline = time.time() + wait
    while True:
        found = [name for name in ['.lock'] if os.path.exists(os.path.join(out, name))]
        root = os.path.join(out, 'snapshots')
        found += [name for name in (os.listdir(root) if os.path.isdir(root) else [])
                  if name.startswith(('.partial-', '.deleting-'))]
        if not found or time.time() > deadline:
            return found
        time.sleep(0.2)


def test_sigterm_to_mpiexec_ends_the_ranks_and_leaves_no_lock(reference, tmp_path):
    """Open MPI's mpiexec answers its own SIGTERM by killing the ranks a quarter of a
    second later (exit 1, no snapshot: README says so); the lock it leaves would make a
    requeued job on another node wait 5 minutes.  Rank 0's guard removes it."""
    data, _ = reference
    out = str(tmp_path / 'out')
    job = subprocess.Popen(mpiexec_command(2, [sys.executable, WRAPPER, 'wait', 'all', '3',
                                               '--'] + flags(data, out)),
                           env=mpi_env(ENV), cwd=REPO_ROOT, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, stdin=subprocess.DEVNULL)
    lines = read_until_waiting(job)
    assert os.path.exists(os.path.join(out, '.lock'))
    job.send_signal(signal.SIGTERM)
    rest, _ = job.communicate(timeout=60)
    assert job.returncode == 1, ''.join(lines) + rest
    assert leftovers(out) == []


def test_rank_0_killed_while_writing_a_snapshot_leaves_nothing_behind(reference, tmp_path):
    data, _ = reference
    out = str(tmp_path / 'out')
    proc, _ = with_fault(2, 'kill', 0, 'rankfile', data, out)
    assert proc.returncode == 128 + signal.SIGKILL, proc.stdout[-5000:]
    assert leftovers(out) == []
    assert snapshot_names(out) == []
