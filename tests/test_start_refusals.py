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
