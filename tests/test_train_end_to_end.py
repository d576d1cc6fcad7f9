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


@pytest.fixture(scope='module')
def first_run(tmp_path_factory):
    """The uninterrupted reference run (shared by the tests of this module)."""
    from conftest import write_tiny_imagenet
    from chainer_ext.mpi_launch import run_mpi
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
    from chainer_ext.mpi_launch import run_mpi
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
    from chainer_ext.mpi_launch import run_mpi
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
    a, c = weights(out), weights(out3)
    for k in a:
        numpy.testing.assert_allclose(c[k], a[k], rtol=0, atol=1e-6, err_msg=k)


def test_resume_auto_without_snapshots_starts_fresh(tiny_imagenet, tmp_path):
    from chainer_ext.mpi_launch import run_mpi
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
    from chainer_ext.mpi_launch import run_mpi
    snap = os.path.join(out, 'snapshots', 'epoch-1')
    proc = run_mpi(2, [sys.executable, TRAIN] + flags(
        data, str(tmp_path / 'changed'), '--resume', snap) + ['--epoch', '3'],
        timeout=600, cwd=REPO_ROOT)
    assert proc.returncode == 2, proc.stdout[-3000:]
    assert 'epochs' in proc.stdout and snap in proc.stdout
    assert proc.stdout.count('train_imagenet.py: error:') == 1


def test_resume_older_snapshot_in_place_sets_newer_aside(first_run, tmp_path):
    data, out, _ = first_run
    from chainer_ext.mpi_launch import run_mpi
    out4 = str(tmp_path / 'inplace')
    shutil.copytree(out, out4)
    proc = run_mpi(2, [sys.executable, TRAIN] + flags(
        data, out4, '--resume', os.path.join(out4, 'snapshots', 'epoch-1')),
        timeout=600, cwd=REPO_ROOT)
    assert proc.returncode == 0, proc.stdout[-5000:]
    assert 'newer snapshots epoch-2 set aside' in proc.stdout
    names = sorted(os.listdir(os.path.join(out4, 'snapshots')))
    assert names == ['.superseded-epoch-2', 'epoch-1', 'epoch-2']
    a, d = weights(out), weights(out4)
    for k in a:
        numpy.testing.assert_allclose(d[k], a[k], rtol=0, atol=1e-6, err_msg=k)


def test_moving_average_baseline_without_validation_averages_bn_over_ranks(
        tiny_imagenet, tmp_path):
    """--bn-moving-average --no-validation: each rank's running statistics differ
    (different shards), yet snapshots and model.npz hold the average over ranks."""
    from chainer_ext.mpi_launch import run_mpi
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
    assert 'validation top-1: final n/a' in proc.stdout
    assert 'next: python -m chainer_ext.report {}'.format(out) in proc.stdout


def test_lars_baseline_runs_its_schedule_with_weight_decay_once(tiny_imagenet, tmp_path):
    """--optimizer lars: gamma follows the warm-up and polynomial decay every iteration
    (the report's check of the log against schedules.recipe), and the weights stay finite."""
    from chainer_ext import report
    from chainer_ext.mpi_launch import run_mpi
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
