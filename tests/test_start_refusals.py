"""Bad input found by trying the preemption work as a new user: each is refused (or
handled) at start in one line naming the flag, file or value."""
import json
import os
import subprocess
import sys
import types

import numpy
import pytest
from PIL import Image

from conftest import REPO_ROOT
from chainer_ext.job import output_lock
from chainer_ext.job.input_error import InputError
from chainer_ext.extensions import multi_node_snapshot as snapshots
from chainer_ext.job import checks
from chainer_ext.datasets import read_image_list
from chainer_ext.datasets.decode import load_crop, verify_image
from chainer_ext.datasets.errors import ImageLoadError

TRAIN = os.path.join(REPO_ROOT, 'train_imagenet.py')


@pytest.mark.parametrize('seed', ['-5', '4294967296'])
def test_seed_out_of_range_is_one_line_and_leaves_no_folder(tmp_path, seed):
    out = tmp_path / 'out'
    proc = subprocess.run([sys.executable, TRAIN, '--demo', '--seed', seed, '--out', str(out)],
                          capture_output=True, text=True, timeout=120, cwd=REPO_ROOT)
    assert proc.returncode == 2
    assert proc.stderr.splitlines()[-1] == ('train_imagenet.py: error: --seed must be an '
                                            'integer in [0, 4294967295], got {}'.format(seed))
    assert not out.exists()


def test_utf8_bom_is_not_part_of_the_first_path(tmp_path):
    path = tmp_path / 'train.txt'
    path.write_bytes(b'\xef\xbb\xbfimg/a.JPEG 0\nimg/b.JPEG 1\n')
    assert list(read_image_list(str(path))) == [('img/a.JPEG', 0), ('img/b.JPEG', 1)]


def test_16_bit_grey_png_is_scaled_not_clipped(tmp_path):
    path = str(tmp_path / 'half.png')
    Image.fromarray(numpy.full((40, 40), 32768, numpy.uint16)).save(path)
    assert Image.open(path).mode == 'I;16'
    pixels = load_crop(path, lambda w, h: (0, 0, w, h), (32, 32))
    assert pixels.dtype == numpy.uint8 and pixels.shape == (32, 32, 3)
    assert pixels.mean() == pytest.approx(32768 * 255 / 65535, abs=0.5)
    assert verify_image(path) == (40, 40)


def test_floating_point_image_is_refused_by_name(tmp_path):
    path = str(tmp_path / 'float.tiff')
    Image.fromarray(numpy.full((8, 8), 0.5, numpy.float32)).save(path)
    with pytest.raises(ImageLoadError, match='float.tiff.*mode F'):
        verify_image(path)


def _list(path, lines):
    with open(path, 'w') as f:
        f.writelines(lines)
    return read_image_list(path).identity()


def test_resume_with_another_training_list_is_refused(tmp_path):
    snap = tmp_path / 'snapshots' / 'epoch-1'
    snap.mkdir(parents=True)
    mine = _list(str(tmp_path / 'a.txt'), ['x.JPEG 0\n', 'y.JPEG 1\n'])
    moved = _list(str(tmp_path / 'moved.txt'), ['x.JPEG 0\n', '\n', 'y.JPEG  1\n'])
    other = _list(str(tmp_path / 'b.txt'), ['y.JPEG 1\n', 'x.JPEG 0\n'])
    (snap / 'manifest.json').write_text(json.dumps(
        {'world_size': 2, 'iteration': 6, 'files': {}, 'train_list': mine}))
    snapshots.check_compatible(str(snap), 2, 4, info={'train_list': moved})  # same entries
    with pytest.raises(snapshots.SnapshotError) as e:
        snapshots.check_compatible(str(snap), 2, 4, info={'train_list': other})
    assert str(e.value) == (
        '--resume {}: written for training list {} (2 entries, sha256 {}), this job reads '
        '{} (2 entries, sha256 {}); the data order would differ: resume with the same list, '
        'or start afresh in another --out'.format(snap, mine['path'], mine['sha256'][:12],
                                                  other['path'], other['sha256'][:12]))


def _args(**kw):
    return types.SimpleNamespace(**dict(dict(train='t.txt', batchsize=4), **kw))


def test_fewer_examples_than_ranks_and_batch_larger_than_shard():
    comm = types.SimpleNamespace(size=4)
    with pytest.raises(InputError) as e:
        checks.check_world(_args(), comm, 3, 1)
    assert e.value.problems == ['the training set (t.txt) has 3 example(s) for 4 ranks: every '
                                'rank needs at least one; start at most 3 ranks']
    with pytest.raises(InputError) as e:
        checks.check_world(_args(batchsize=32), comm, 48, 12)
    assert e.value.problems == ["--batchsize 32 is larger than each rank's share of the "
                                'training set (t.txt) (12 of 48 examples over 4 ranks): one '
                                'iteration would run several epochs; use --batchsize 12 or '
                                'less, or fewer ranks']
    checks.check_world(_args(batchsize=12), comm, 48, 12)


def _plant(out, holder):
    with open(os.path.join(str(out), output_lock.LOCK), 'w') as f:
        json.dump(holder, f)


def test_lock_of_a_live_job_on_another_host_is_refused_naming_it(tmp_path):
    holder = {'host': 'node7', 'pid': 4242, 'job_id': '123', 'started': '2030-01-01T00:00:00'}
    _plant(tmp_path, holder)
    with pytest.raises(output_lock.LockHeld) as e:
        output_lock.acquire(str(tmp_path))
    assert str(e.value) == ('--out {}: in use by job 123 (pid 4242 on node7, since '
                            '2030-01-01T00:00:00); wait for it to end or use another --out '
                            '(--wait-for-lock SECONDS waits)'.format(tmp_path))


def test_stale_locks_are_taken_over(tmp_path):
    dead = subprocess.Popen([sys.executable, '-c', 'pass'])
    dead.wait()
    taken = []
    _plant(tmp_path, dict(output_lock._me(), pid=dead.pid))  # this host, pid gone
    lock = output_lock.acquire(str(tmp_path), on_stale=taken.append)
    assert taken[-1]['pid'] == dead.pid
    with open(lock.path) as f:
        assert json.load(f)['pid'] == os.getpid()
    lock.release()
    assert os.listdir(str(tmp_path)) == []

    _plant(tmp_path, {'host': 'node7', 'pid': 1})  # another host, no heartbeat for long
    path = os.path.join(str(tmp_path), output_lock.LOCK)
    os.utime(path, (os.stat(path).st_atime, os.stat(path).st_mtime - 2 * output_lock.STALE_AFTER))
    lock = output_lock.acquire(str(tmp_path), on_stale=taken.append)
    assert taken[-1]['host'] == 'node7'
    lock.release()


def test_resume_auto_skips_a_damaged_newest_snapshot_and_says_so(tmp_path):
    root = tmp_path / 'snapshots'
    for name, iteration, data in (('epoch-1', 6, b'x' * 10), ('iter-8', 8, b'x' * 10)):
        (root / name).mkdir(parents=True)
        (root / name / 'rank-00000.npz').write_bytes(data)
        (root / name / 'manifest.json').write_text(json.dumps(
            {'world_size': 1, 'iteration': iteration, 'files': {'rank-00000.npz': 10}}))
    (root / 'iter-8' / 'rank-00000.npz').write_bytes(b'x' * 4)  # truncated
    said = []
    chosen = snapshots.resolve_resume('auto', str(tmp_path),
                                      skipped=lambda *a: said.append(a))
    assert chosen == str(root / 'epoch-1')
    assert said == [(str(root / 'iter-8'),
                     'missing or truncated: rank-00000.npz; using {}'.format(chosen))]


@pytest.mark.parametrize('flag, value, optimizer', [
    ('--weight-decay', 'inf', 'rmsprop_warmup'), ('--weight-decay', '1e999', 'lars'),
    ('--weight-decay', 'nan', 'momentum'), ('--lr-rmsprop', 'inf', 'rmsprop_warmup'),
    ('--lr-rmsprop', 'nan', 'rmsprop_warmup')])
def test_rates_must_be_finite_and_are_refused_before_any_folder(tmp_path, flag, value,
                                                                optimizer):
    """A rate of inf reached the optimizer's set-up and ended in a traceback, leaving an
    empty --out; it is refused with the other flags, before MPI starts."""
    out = tmp_path / 'out'
    proc = subprocess.run([sys.executable, TRAIN, '--synthetic', '--synthetic-size', '8',
                           '--batchsize', '4', '--arch', 'resnet18', '--insize', '32',
                           '--max-iterations', '1', '--no-validation', '--no-plots',
                           '--optimizer', optimizer,
                           flag, value, '--out', str(out)],
                          capture_output=True, text=True, timeout=300, cwd=REPO_ROOT)
    assert proc.returncode == 2, proc.stderr
    assert 'Traceback' not in proc.stderr
    assert [line for line in proc.stderr.splitlines() if 'error' in line] == [
        'train_imagenet.py: error: {} must be a finite number >= 0, got {}'.format(flag, value)]
    assert not out.exists()


def _synthetic(out, *extra):
    return [TRAIN, '--synthetic', '--arch', 'resnet18', '--insize', '32', '--no-plots',
            '--out', str(out)] + [str(a) for a in extra]


def test_a_refusal_leaves_no_folder_it_made_parents_included(tmp_path):
    out = tmp_path / 'results' / 'today' / 'run'
    proc = subprocess.run([sys.executable] + _synthetic(out, '--synthetic-size', '2',
                                                        '--batchsize', '4'),
                          capture_output=True, text=True, timeout=300, cwd=REPO_ROOT)
    assert proc.returncode == 2 and "--batchsize 4 is larger than each rank's share" in \
        proc.stderr
    assert os.listdir(str(tmp_path)) == []


def test_the_folder_is_removed_after_rank_0_releases_its_lock(mpirun, tmp_path):
    """Rank 1 made --out, rank 0's lock is still in it when rank 1 would remove it."""
    proc = mpirun(2, 'out_folder.py', tmp_path)
    assert proc.stdout.count(' ok') == 2


def test_a_refusal_of_two_ranks_after_the_lock_leaves_no_folder(mpirun, tmp_path):
    out = tmp_path / 'run'
    proc = mpirun(2, *_synthetic(out, '--synthetic-size', '1'), check=False)
    assert proc.returncode == 2
    assert 'every rank needs at least one' in proc.stdout
    assert os.listdir(str(tmp_path)) == [], proc.stdout


def test_a_failure_at_start_leaves_no_empty_folder(tmp_path):
    """An error no check foresaw (here: building the model fails) is reported by the
    except hook, and the --out it made is removed again."""
    out = tmp_path / 'results' / 'run'
    code = ('import sys, train_imagenet\n'
            'def fail(*a):\n'
            '    raise RuntimeError("cannot build")\n'
            'train_imagenet.make_model = fail\n'
            'sys.exit(train_imagenet.main(sys.argv[1:]))\n')
    proc = subprocess.run([sys.executable, '-c', code] + _synthetic(
        out, '--synthetic-size', '8', '--batchsize', '4')[1:], capture_output=True, text=True,
        timeout=300, cwd=REPO_ROOT)
    assert proc.returncode == 1
    assert proc.stderr.splitlines()[-1] == ('train_imagenet.py: error: RuntimeError: '
                                            'cannot build')
    assert os.listdir(str(tmp_path)) == []


def _manifest_of(tmp_path, flags):
    """A snapshot folder whose manifest records what a --demo job with ``flags`` trains for."""
    import train_imagenet
    from chainer_ext.job import train_flags
    args = train_flags.parse_args(['--demo'] + flags, gpus='no GPU')
    snap = tmp_path / 'snapshots' / 'epoch-1'
    snap.mkdir(parents=True, exist_ok=True)
    info = train_imagenet.snapshot_info(args, {'n_class': 10, 'train_list': None})
    (snap / 'manifest.json').write_text(json.dumps(
        dict(info, world_size=2, iteration=6, files={})))
    return str(snap)


def _info_of(flags):
    import train_imagenet
    from chainer_ext.job import train_flags
    args = train_flags.parse_args(['--demo'] + flags, gpus='no GPU')
    return train_imagenet.snapshot_info(args, {'n_class': 10, 'train_list': None})


@pytest.mark.parametrize('snapshot_flags,job_flags,difference', [
    ([], ['--insize', '40'], '--insize 32 in the snapshot, 40 in this job'),
    ([], ['--seed', '4'], '--seed 0 in the snapshot, 4 in this job'),
    ([], ['--lr-rmsprop', '0.001'], '--lr-rmsprop 0.0003 in the snapshot, 0.001 in this job'),
    ([], ['--weight-decay', '0'], '--weight-decay 0.0001 in the snapshot, 0.0 in this job'),
    ([], ['--allreduce-dtype', 'float32'],
     '--allreduce-dtype float16 in the snapshot, float32 in this job'),
    ([], ['--bn-moving-average'], '--bn-moving-average off in the snapshot, on in this job'),
    ([], ['--min-area', '0.08'], '--min-area 0.5 in the snapshot, 0.08 in this job'),
    (['--optimizer', 'lars'], ['--optimizer', 'lars', '--lars-eta', '0.01'],
     '--lars-eta 0.001 in the snapshot, 0.01 in this job'),
    ([], ['--epoch', '3', '--insize', '40'],
     '--epoch 18 in the snapshot, 3 in this job; --insize 32 in the snapshot, 40 in this job'),
])
def test_resume_with_another_recipe_is_refused_naming_the_flag(
        tmp_path, snapshot_flags, job_flags, difference):
    """Any setting that changes what the snapshot's weights lead to (input size, seed, the
    optimizer's flags, the all-reduce's dtype, BN's statistics, the augmentation) is
    refused in one line naming the flag and both values."""
    snap = _manifest_of(tmp_path, snapshot_flags)
    with pytest.raises(snapshots.SnapshotError) as e:
        snapshots.check_compatible(snap, 2, 32, info=_info_of(job_flags))
    assert str(e.value) == (
        '--resume {}: written by a run with other settings: {}; resume with the settings it '
        'was written with, or start afresh in another --out'.format(snap, difference))


def test_resume_with_what_the_recipe_does_not_use_or_an_older_manifest_is_accepted(tmp_path):
    """--lars-eta does not change an RMSprop run, nor validation and logging flags any run;
    a snapshot written before a setting was recorded is checked on what it records."""
    snap = _manifest_of(tmp_path, [])
    snapshots.check_compatible(snap, 2, 32, info=_info_of(
        ['--lars-eta', '0.01', '--val-batchsize', '7', '--no-validation', '--log-interval', '3',
         '--keep-snapshots', '1', '--max-iterations', '100']))
    manifest = json.loads((tmp_path / 'snapshots' / 'epoch-1' / 'manifest.json').read_text())
    old = {key: manifest[key] for key in ('batchsize', 'arch', 'optimizer', 'epochs',
                                          'world_size', 'iteration', 'files')}
    (tmp_path / 'snapshots' / 'epoch-1' / 'manifest.json').write_text(json.dumps(old))
    snapshots.check_compatible(snap, 2, 32, info=_info_of(['--insize', '40']))
