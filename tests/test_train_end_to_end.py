"""``mpiexec -n 2 python train_imagenet.py`` on a tiny generated data set.

One uninterrupted 2-epoch run is checked for everything it must write; a run
resumed from its epoch-1 snapshot, and one resumed with ``--resume auto``
beside planted partial snapshots, must end on the same weights.
"""
import json
import os
import shutil
import subprocess
import sys

import numpy
import pytest

from conftest import REPO_ROOT

TRAIN = os.path.join(REPO_ROOT, 'train_imagenet.py')
PNG = b'\x89PNG\r\n\x1a\n'


def flags(data, out, *extra):
    train, val, root = data
    return ['--train', train, '--val', val, '--root', root, '--arch', 'resnet18',
            '--insize', '32', '--batchsize', '4', '--val-batchsize', '8', '--epoch', '2',
            '--loaderjob', '1', '--seed', '3', '--keep-snapshots', '2',
            '--out', out] + list(extra)


def weights(out):
    with numpy.load(os.path.join(out, 'model.npz')) as f:
        return {k: f[k] for k in f.files}


def assert_same_weights(expected, out):
    """The final weights of run ``out`` equal those of run ``expected`` (atol 1e-6)."""
    a, b = weights(expected), weights(out)
    for k in a:
        numpy.testing.assert_allclose(b[k], a[k], rtol=0, atol=1e-6, err_msg=k)


@pytest.fixture(scope='module')
def first_run(tmp_path_factory):
    """The uninterrupted reference run (shared by the tests of this module)."""
    from conftest import write_tiny_imagenet
    from chainer_ext.job.mpiexec import run_mpi
    base = tmp_path_factory.mktemp('e2e')
    data = write_tiny_imagenet(str(base / 'data'))
    out = str(base / 'full')
    proc = run_mpi(2, [sys.executable, TRAIN] + flags(data, out), timeout=600,
                   cwd=REPO_ROOT)
    assert proc.returncode == 0, proc.stdout[-5000:]
    return data, out, proc.stdout


def test_outputs_of_a_run(first_run):
    data, out, stdout = first_run
    with open(os.path.join(out, 'log')) as f:
        log = json.load(f)
    assert [e['epoch'] for e in log] == [1, 2]
    assert [e['iteration'] for e in log] == [6, 12]  # 48 images / (2 ranks x 4)
    for entry in log:
        for key in ('main/loss', 'main/accuracy', 'validation/main/loss',
                    'validation/main/accuracy', 'lr', 'alpha_sgd', 'elapsed_time'):
            assert isinstance(entry[key], float) and numpy.isfinite(entry[key]), key
        assert 0 <= entry['validation/main/accuracy'] <= 1
    assert log[1]['elapsed_time'] > log[0]['elapsed_time']
    for name in ('loss.png', 'accuracy.png', 'lr.png', 'alpha_sgd.png'):
        with open(os.path.join(out, name), 'rb') as f:
            assert f.read(8) == PNG, name
    with open(os.path.join(out, 'config.json')) as f:
        config = json.load(f)
    assert config['world_size'] == 2 and config['total_batch'] == 8
    assert config['eta_base'] == pytest.approx(0.1 * 8 / 256)
    assert config['n_class'] == 4 and config['n_train'] == 48 and config['n_val'] == 16
    assert config['args']['arch'] == 'resnet18' and config['versions']['chainer'] == '7.8.1'
    assert config['device'] == 'cpu' and config['cudnn_used'] is False
    snaps = sorted(os.listdir(os.path.join(out, 'snapshots')))
    assert snaps == ['epoch-1', 'epoch-2']
    for s in snaps:
        with open(os.path.join(out, 'snapshots', s, 'manifest.json')) as f:
            manifest = json.load(f)
        assert manifest['world_size'] == 2
        assert sorted(manifest['files']) == ['rank-00000.npz', 'rank-00001.npz']
    # model.npz is the predictor with averaged last-batch BN statistics
    import chainer
    from models import ResNet18
    net = ResNet18(n_class=4)
    chainer.serializers.load_npz(os.path.join(out, 'model.npz'), net)
    assert net.fc.W.shape == (4, 512)
    assert float(abs(net.bn1.avg_mean).sum()) > 0


def test_resume_from_epoch_snapshot_gives_identical_weights(first_run, tmp_path):
    data, out, _ = first_run
    from chainer_ext.job.mpiexec import run_mpi
    out2 = str(tmp_path / 'resumed')
    proc = run_mpi(2, [sys.executable, TRAIN] + flags(
        data, out2, '--resume', os.path.join(out, 'snapshots', 'epoch-1')),
        timeout=600, cwd=REPO_ROOT)
    assert proc.returncode == 0, proc.stdout[-5000:]
    assert 'resumed from' in proc.stdout
    a, b = weights(out), weights(out2)
    assert a.keys() == b.keys()
    for k in a:
        numpy.testing.assert_allclose(b[k], a[k], rtol=0, atol=1e-6, err_msg=k)
    with open(os.path.join(out, 'log')) as f:
        log_a = json.load(f)
    with open(os.path.join(out2, 'log')) as f:
        log_b = json.load(f)
    assert [e['iteration'] for e in log_b] == [6, 12]  # the log continues too
    assert log_b[1]['validation/main/accuracy'] == log_a[1]['validation/main/accuracy']
    assert log_b[1]['main/loss'] == pytest.approx(log_a[1]['main/loss'], abs=1e-6)


def test_resume_auto_skips_partial_snapshots(first_run, tmp_path):
    data, out, _ = first_run
    from chainer_ext.job.mpiexec import run_mpi
    out3 = str(tmp_path / 'auto')
    shutil.copytree(out, out3)
    snaps = os.path.join(out3, 'snapshots')
    for name in ('model.npz', 'log'):
        os.remove(os.path.join(out3, name))
    shutil.rmtree(os.path.join(snaps, 'epoch-2'))
    os.makedirs(os.path.join(snaps, '.partial-epoch-2'))          # interrupted write
    shutil.copytree(os.path.join(snaps, 'epoch-1'), os.path.join(snaps, 'epoch-3'))
    os.remove(os.path.join(snaps, 'epoch-3', 'manifest.json'))    # never published
    proc = run_mpi(2, [sys.executable, TRAIN] + flags(data, out3, '--resume', 'auto'),
                   timeout=600, cwd=REPO_ROOT)
    assert proc.returncode == 0, proc.stdout[-5000:]
    assert 'resumed from {} (iteration 6)'.format(os.path.join(snaps, 'epoch-1')) in proc.stdout
    assert_same_weights(out, out3)


def test_resume_auto_without_snapshots_starts_fresh(tiny_imagenet, tmp_path):
    from chainer_ext.job.mpiexec import run_mpi
    out = str(tmp_path / 'fresh')
    proc = run_mpi(2, [sys.executable, TRAIN] + flags(
        tiny_imagenet, out, '--resume', 'auto', '--epoch', '1', '--loaderjob', '0'),
        timeout=600, cwd=REPO_ROOT)
    assert proc.returncode == 0, proc.stdout[-5000:]
    assert 'resumed from' not in proc.stdout
    assert os.path.exists(os.path.join(out, 'model.npz'))


def test_report_from_a_real_run(first_run, tmp_path):
    _, out, _ = first_run
    report_dir = str(tmp_path / 'report')
    proc = subprocess.run([sys.executable, '-m', 'chainer_ext.report', out, '--out', report_dir],
                          capture_output=True, text=True, timeout=300, cwd=REPO_ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    with open(os.path.join(report_dir, 'report.md')) as f:
        text = f.read()
    for team in ('He et al.', 'Goyal et al.', 'Codreanu et al.', 'You et al.', '897.9'):
        assert team in text
    with open(os.path.join(out, 'log')) as f:
        top1 = json.load(f)[-1]['validation/main/accuracy']
    assert '{:.2f}'.format(100 * top1) in text


def test_resume_refuses_a_changed_recipe(first_run, tmp_path):
    data, out, _ = first_run
    from chainer_ext.job.mpiexec import run_mpi
    snap = os.path.join(out, 'snapshots', 'epoch-1')
    proc = run_mpi(2, [sys.executable, TRAIN] + flags(
        data, str(tmp_path / 'changed'), '--resume', snap) + ['--insize', '40', '--seed', '4'],
        timeout=600, cwd=REPO_ROOT)
    assert proc.returncode == 2, proc.stdout[-3000:]
    assert [line for line in proc.stdout.splitlines() if 'error:' in line] == [
        'train_imagenet.py: error: --resume {}: written by a run with other settings: --insize '
        '32 in the snapshot, 40 in this job; --seed 3 in the snapshot, 4 in this job; resume '
        'with the settings it was written with, or start afresh in another --out'.format(snap)]


def test_resume_older_snapshot_in_place_sets_newer_aside(first_run, tmp_path):
    data, out, _ = first_run
    from chainer_ext.job.mpiexec import run_mpi
    out4 = str(tmp_path / 'inplace')
    shutil.copytree(out, out4)
    proc = run_mpi(2, [sys.executable, TRAIN] + flags(
        data, out4, '--resume', os.path.join(out4, 'snapshots', 'epoch-1')),
        timeout=600, cwd=REPO_ROOT)
    assert proc.returncode == 0, proc.stdout[-5000:]
    assert 'newer snapshots epoch-2 set aside' in proc.stdout
    names = sorted(os.listdir(os.path.join(out4, 'snapshots')))
    assert names == ['.superseded-epoch-2', 'epoch-1', 'epoch-2']
    assert_same_weights(out, out4)


def test_moving_average_baseline_without_validation_averages_bn_over_ranks(
        tiny_imagenet, tmp_path):
    """--bn-moving-average --no-validation: each rank's running statistics differ
    (different shards), yet snapshots and model.npz hold the average over ranks."""
    from chainer_ext.job.mpiexec import run_mpi
    out = str(tmp_path / 'baseline')
    proc = run_mpi(2, [sys.executable, TRAIN] + flags(
        tiny_imagenet, out, '--epoch', '1', '--loaderjob', '0', '--bn-moving-average',
        '--no-validation', '--no-plots'), timeout=600, cwd=REPO_ROOT)
    assert proc.returncode == 0, proc.stdout[-5000:]
    snap = os.path.join(out, 'snapshots', 'epoch-1')
    with numpy.load(os.path.join(snap, 'rank-00000.npz')) as r0, \
            numpy.load(os.path.join(snap, 'rank-00001.npz')) as r1:
        keys = [k for k in r1.files if k.endswith(('/avg_mean', '/avg_var'))]
        assert len(keys) == 2 * 20                     # ResNet-18's 20 BN links
        for k in keys:
            numpy.testing.assert_array_equal(r0[k], r1[k], err_msg=k)
        final = weights(out)
        for k in keys:
            name = k[len('updater/model:main/predictor/'):]
            numpy.testing.assert_array_equal(final[name], r0[k], err_msg=k)
    assert '  validation top-1: n/a (--no-validation)' in proc.stdout
    assert 'validation included' not in proc.stdout
    assert 'next: {} -m chainer_ext.report {}'.format(sys.executable, out) in proc.stdout


def summary_lines(stdout):
    """The lines of the end-of-run summary and of refusals (less the progress bar's
    erase-below)."""
    return [line.replace('\x1b[J', '') for line in stdout.splitlines()
            if line.replace('\x1b[J', '').startswith(('train_imagenet.py:', '  '))]


def test_resume_of_a_finished_run_trains_nothing(first_run, tmp_path):
    """--max-iterations with --resume auto on a finished run used to train on (to the
    next multiple of it) and overwrite model.npz."""
    data, out, _ = first_run
    from chainer_ext.job.mpiexec import run_mpi
    done = str(tmp_path / 'done')
    shutil.copytree(out, done)
    with open(os.path.join(done, 'model.npz'), 'rb') as f:
        model = f.read()
    proc = run_mpi(2, [sys.executable, TRAIN] + flags(
        data, done, '--resume', 'auto', '--max-iterations', '4'), timeout=600, cwd=REPO_ROOT)
    assert proc.returncode == 0, proc.stdout[-5000:]
    snap = os.path.join(done, 'snapshots', 'epoch-2')
    assert summary_lines(proc.stdout) == [
        'train_imagenet.py: {} is the end of this run (epoch 2 of --epoch 2, iteration 12): '
        'nothing left to train; {} holds its weights (--max-iterations counts from the '
        'start of the run)'.format(snap, os.path.join(done, 'model.npz'))]
    with open(os.path.join(done, 'model.npz'), 'rb') as f:
        assert f.read() == model
    assert sorted(os.listdir(os.path.join(done, 'snapshots'))) == ['epoch-1', 'epoch-2']


def test_max_iterations_at_the_snapshot_is_refused(first_run, tmp_path):
    data, out, _ = first_run
    from chainer_ext.job.mpiexec import run_mpi
    snap = os.path.join(out, 'snapshots', 'epoch-1')
    proc = run_mpi(2, [sys.executable, TRAIN] + flags(
        data, str(tmp_path / 'more'), '--resume', snap, '--max-iterations', '4'),
        timeout=600, cwd=REPO_ROOT)
    assert proc.returncode == 2, proc.stdout[-3000:]
    assert [line for line in proc.stdout.splitlines() if 'error:' in line] == [
        'train_imagenet.py: error: --max-iterations 4 is a total, counted from the start of '
        'the run, and {} is at iteration 6 already: give more than 6 (e.g. --max-iterations '
        '10 for 4 more)'.format(snap)]


def test_resume_from_an_older_snapshot_describes_the_resumed_weights(first_run, tmp_path):
    """The newest snapshot damaged: --resume auto goes back to epoch 1 and stops at
    --max-iterations before epoch 2 ends; the summary, the log and the report describe
    epoch 1 (the weights that exist), not the old run's epoch 2."""
    data, out, _ = first_run
    from chainer_ext.job.mpiexec import run_mpi
    back = str(tmp_path / 'back')
    shutil.copytree(out, back)
    with open(os.path.join(back, 'snapshots', 'epoch-2', 'rank-00001.npz'), 'r+b') as f:
        f.seek(100)
        f.write(b'XXXX')
    with open(os.path.join(out, 'log')) as f:
        old_log = json.load(f)
    proc = run_mpi(2, [sys.executable, TRAIN] + flags(
        data, back, '--resume', 'auto', '--max-iterations', '8'), timeout=600, cwd=REPO_ROOT)
    assert proc.returncode == 0, proc.stdout[-5000:]
    lines = summary_lines(proc.stdout)
    assert lines[-4].startswith('train_imagenet.py: stopped at iteration 8 by '
                                '--max-iterations (epoch 1.33 of 2) after '), lines
    assert lines[-3] == (
        '  validation top-1: not measured on the final weights (iteration 8: validation runs '
        'at the end of each epoch); last measured {0:.2f}% at epoch 1 (iteration 6), best '
        '{0:.2f}% (epoch 1)'.format(100 * old_log[0]['validation/main/accuracy'])), lines
    with open(os.path.join(back, 'log')) as f:
        assert json.load(f) == old_log[:1]
    with open(os.path.join(back, '.superseded-log')) as f:
        assert json.load(f) == old_log
    assert os.path.exists(os.path.join(back, '.superseded-model.npz'))
    report_dir = str(tmp_path / 'report')
    proc = subprocess.run([sys.executable, '-m', 'chainer_ext.report', back, '--out',
                           report_dir], capture_output=True, text=True, timeout=300,
                          cwd=REPO_ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    with open(os.path.join(report_dir, 'report.json')) as f:
        run = json.load(f)['runs'][0]
    assert run['epochs_done'] == 1 and run['iterations'] == 6


def test_max_iterations_before_the_first_epoch_says_so(tiny_imagenet, tmp_path):
    from chainer_ext.job.mpiexec import run_mpi
    out = str(tmp_path / 'short')
    proc = run_mpi(2, [sys.executable, TRAIN] + flags(
        tiny_imagenet, out, '--epoch', '1', '--loaderjob', '0', '--max-iterations', '2'),
        timeout=600, cwd=REPO_ROOT)
    assert proc.returncode == 0, proc.stdout[-5000:]
    lines = summary_lines(proc.stdout)
    assert 'no summary' not in proc.stdout
    assert lines[-3].startswith('train_imagenet.py: stopped at iteration 2 by '
                                '--max-iterations (epoch 0.33 of 1) after '), lines
    assert lines[-3].endswith(' of training, before the first epoch ended'), lines
    assert lines[-2:] == [
        '  validation top-1: n/a (validation runs at the end of each epoch)',
        '  results in {}: config.json, model.npz (python -m chainer_ext.report needs the log '
        'of at least one epoch)'.format(out)]
    assert 'stopping at iteration 2 (--max-iterations counts from the start of the run, a ' \
           'resumed one included); --epoch 1 would end it at iteration 6' in proc.stdout


def test_lars_baseline_runs_its_schedule_with_weight_decay_once(tiny_imagenet, tmp_path):
    """--optimizer lars: gamma follows the warm-up and polynomial decay every iteration
    (the report's check of the log against recipe.schedules_of), and the weights stay finite."""
    from chainer_ext.paper import report
    from chainer_ext.job.mpiexec import run_mpi
    out = str(tmp_path / 'lars')
    proc = run_mpi(2, [sys.executable, TRAIN] + flags(
        tiny_imagenet, out, '--epoch', '1', '--loaderjob', '0', '--optimizer', 'lars',
        '--log-interval', '1', '--no-plots', '--no-validation'), timeout=600, cwd=REPO_ROOT)
    assert proc.returncode == 0, proc.stdout[-5000:]
    check = report.schedule_check(report.load_run(out))
    assert check['available'] and check['matches'], check
    assert check['definition'].startswith('lr = lars_lr(e, gamma_peak=10')
    lrs = [row['lr'] for row in check['rows']]
    assert lrs[0] == 0.0 and max(lrs) > lrs[-1] > 0   # warm-up from 0, then decay
    assert all(numpy.isfinite(v).all() for v in weights(out).values())


def predictor_of(snapshot):
    """The predictor's arrays in a snapshot's full rank file, named as in model.npz."""
    prefix = 'updater/model:main/predictor/'
    with numpy.load(os.path.join(snapshot, 'rank-00000.npz')) as f:
        return {k[len(prefix):]: f[k] for k in f.files if k.startswith(prefix)}


def test_a_run_stopped_after_its_last_snapshot_is_finished_by_resume(first_run, tmp_path):
    """Stopped after the last epoch's snapshot but before model.npz was written (a signal
    during the last validation): --resume auto finishes it (BN average, model.npz, the
    summary) instead of calling it done; a model.npz of other weights is set aside."""
    data, out, _ = first_run
    from chainer_ext.job.mpiexec import run_mpi
    cut = str(tmp_path / 'cut')
    shutil.copytree(out, cut)
    os.remove(os.path.join(cut, 'model.npz'))
    snap = os.path.join(cut, 'snapshots', 'epoch-2')
    model = os.path.join(cut, 'model.npz')
    proc = run_mpi(2, [sys.executable, TRAIN] + flags(data, cut, '--resume', 'auto'),
                   timeout=600, cwd=REPO_ROOT)
    assert proc.returncode == 0, proc.stdout[-5000:]
    assert '{} is the end of this run, which stopped before writing {}: finishing it'.format(
        snap, model) in proc.stdout
    reference = weights(out)
    for k, v in weights(cut).items():
        numpy.testing.assert_array_equal(v, reference[k], err_msg=k)
    with open(os.path.join(out, 'log')) as f:
        top1 = json.load(f)[-1]['validation/main/accuracy']
    lines = summary_lines(proc.stdout)
    assert lines[-4].startswith('train_imagenet.py: finished 2 epochs (12 iterations) in ')
    assert lines[-3].startswith('  validation top-1: final {:.2f}% (epoch 2)'.format(
        100 * top1)), lines

    stale = dict(reference, **{'fc/b': reference['fc/b'] + 1})
    numpy.savez(model, **stale)
    proc = run_mpi(2, [sys.executable, TRAIN] + flags(
        data, cut, '--resume', 'auto', '--max-iterations', '4'), timeout=600, cwd=REPO_ROOT)
    assert proc.returncode == 0, proc.stdout[-5000:]
    assert 'stopping at iteration' not in proc.stdout  # nothing is trained
    assert 'resuming from {}: {} holds other weights than the snapshot, set aside as {}'.format(
        snap, model, os.path.join(cut, '.superseded-model.npz')) in proc.stdout
    with numpy.load(os.path.join(cut, '.superseded-model.npz')) as f:
        numpy.testing.assert_array_equal(f['fc/b'], stale['fc/b'])
    for k, v in weights(cut).items():
        numpy.testing.assert_array_equal(v, reference[k], err_msg=k)


def test_a_max_iterations_stop_leaves_a_snapshot_that_resume_continues(first_run, tmp_path):
    """Stopped by --max-iterations 5 with a snapshot at 3: a snapshot at 5 too, holding
    model.npz's weights; --max-iterations 4 then is refused against it (no silent redo from
    iteration 3 over model.npz).  Going back to 3 on purpose sets iteration 5's snapshot
    and model.npz aside; --resume auto then continues to the uninterrupted run's weights."""
    data, reference, _ = first_run
    from chainer_ext.job.mpiexec import run_mpi
    out = str(tmp_path / 'short')
    proc = run_mpi(2, [sys.executable, TRAIN] + flags(
        data, out, '--max-iterations', '5', '--snapshot-iterations', '3', '--keep-snapshots',
        '3'), timeout=600, cwd=REPO_ROOT)
    assert proc.returncode == 0, proc.stdout[-5000:]
    snaps = os.path.join(out, 'snapshots')
    assert sorted(os.listdir(snaps)) == ['iter-3', 'iter-5']
    stopped = weights(out)
    for k, v in predictor_of(os.path.join(snaps, 'iter-5')).items():
        numpy.testing.assert_array_equal(v, stopped[k], err_msg=k)

    proc = run_mpi(2, [sys.executable, TRAIN] + flags(
        data, out, '--resume', 'auto', '--max-iterations', '4'), timeout=600, cwd=REPO_ROOT)
    assert proc.returncode == 2, proc.stdout[-3000:]
    assert [line for line in proc.stdout.splitlines() if 'error:' in line] == [
        'train_imagenet.py: error: --max-iterations 4 is a total, counted from the start of '
        'the run, and {} is at iteration 5 already: give more than 5 (e.g. --max-iterations '
        '9 for 4 more)'.format(os.path.join(snaps, 'iter-5'))]
    for k, v in weights(out).items():
        numpy.testing.assert_array_equal(v, stopped[k], err_msg=k)

    back = os.path.join(snaps, 'iter-3')
    proc = run_mpi(2, [sys.executable, TRAIN] + flags(
        data, out, '--resume', back, '--max-iterations', '4'), timeout=600, cwd=REPO_ROOT)
    assert proc.returncode == 0, proc.stdout[-5000:]
    assert 'resuming from {}: {} holds other weights than the snapshot, set aside as {}'.format(
        back, os.path.join(out, 'model.npz'), os.path.join(out, '.superseded-model.npz')) \
        in proc.stdout
    with numpy.load(os.path.join(out, '.superseded-model.npz')) as f:
        for k in f.files:
            numpy.testing.assert_array_equal(f[k], stopped[k], err_msg=k)
    assert sorted(os.listdir(snaps)) == ['.superseded-iter-5', 'iter-3', 'iter-4']

    proc = run_mpi(2, [sys.executable, TRAIN] + flags(data, out, '--resume', 'auto'),
                   timeout=600, cwd=REPO_ROOT)
    assert proc.returncode == 0, proc.stdout[-5000:]
    assert 'resumed from {} (iteration 4)'.format(os.path.join(snaps, 'iter-4')) in proc.stdout
    assert_same_weights(reference, out)


def test_a_second_main_in_one_process_raises_and_the_process_lives(tiny_imagenet, tmp_path):
    """MPI cannot start again once finalized; a second main() (a notebook's second cell)
    must say so, not end the interpreter."""
    out = str(tmp_path / 'twice')
    argv = flags(tiny_imagenet, out, '--epoch', '1', '--max-iterations', '1', '--loaderjob',
                 '0', '--no-validation', '--no-plots')
    code = '\n'.join([
        'import sys, train_imagenet',
        'print("first", train_imagenet.main({!r}), flush=True)'.format(argv),
        'try:',
        '    train_imagenet.main({!r})'.format(argv + ['--resume', 'auto']),
        'except RuntimeError as e:',
        '    print("second:", e, flush=True)',
        'print("alive", flush=True)'])
    proc = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                          timeout=600, cwd=REPO_ROOT)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    assert 'first 0' in lines and lines[-2:] == [
        'second: MPI has ended in this process (a main() called earlier finalized it) and '
        'cannot start again: run each job in a process of its own (from the command line, or '
        'by subprocess.run from a notebook)', 'alive'], proc.stdout
