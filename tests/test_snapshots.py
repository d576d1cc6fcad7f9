"""Atomic snapshots: complete ones are found, partial ones never, failures keep the old."""
import hashlib
import json
import os
import shutil
import subprocess
import sys
import textwrap

import numpy
import pytest

import chainer_ext  # noqa: F401  (compatibility stand-ins before chainer loads)
import chainer
import chainer.links as L
from chainer import training

from chainer_ext.extensions import multi_node_snapshot as snapshots
from chainer_ext.extensions.multi_node_snapshot import MultiNodeSnapshot, SnapshotError


def _trainer(out, epochs=3):
    rng = numpy.random.RandomState(0)
    x = rng.randn(20, 3).astype(numpy.float32)
    t = (x[:, 0] > 0).astype(numpy.int32)
    model = L.Classifier(L.Linear(3, 2))
    opt = chainer.optimizers.MomentumSGD(lr=0.1)
    opt.setup(model)
    it = chainer.iterators.SerialIterator(chainer.datasets.TupleDataset(x, t), 5)
    trainer = training.Trainer(training.StandardUpdater(it, opt), (epochs, 'epoch'), out=out)
    return trainer, model


def test_epoch_snapshots_are_complete_pruned_and_resumable(tmp_path):
    out = str(tmp_path)
    trainer, model = _trainer(out)
    trainer.extend(MultiNodeSnapshot(None, out, keep=2, info={'batchsize': 5}),
                   trigger=(1, 'epoch'))
    trainer.run()
    names = sorted(os.listdir(os.path.join(out, 'snapshots')))
    assert names == ['epoch-2', 'epoch-3']
    manifest = snapshots.read_manifest(os.path.join(out, 'snapshots', 'epoch-3'))
    assert manifest['world_size'] == 1 and manifest['iteration'] == 12
    assert manifest['batchsize'] == 5 and manifest['epoch'] == 3
    assert manifest['format'] == 2 and manifest['full_rank'] == 0
    assert snapshots.resolve_resume('auto', out).endswith('epoch-3')

    fresh, fresh_model = _trainer(out)
    snapshots.load_snapshot(os.path.join(out, 'snapshots', 'epoch-3'), fresh, None)
    assert fresh.updater.iteration == 12
    assert numpy.array_equal(fresh_model.predictor.W.array, model.predictor.W.array)


def test_auto_ignores_partial_and_truncated_snapshots(tmp_path):
    out = str(tmp_path)
    trainer, _ = _trainer(out, epochs=2)
    trainer.extend(MultiNodeSnapshot(None, out, keep=0), trigger=(1, 'epoch'))
    trainer.run()
    root = os.path.join(out, 'snapshots')
    # planted: a partial folder, a newer folder without manifest, a truncated one
    os.makedirs(os.path.join(root, '.partial-epoch-7'))
    with open(os.path.join(root, '.partial-epoch-7', 'rank-00000.npz'), 'wb') as f:
        f.write(b'PK')
    os.makedirs(os.path.join(root, 'epoch-8'))
    trunc = os.path.join(root, 'epoch-9')
    os.makedirs(trunc)
    with open(os.path.join(trunc, 'manifest.json'), 'w') as f:
        json.dump({'world_size': 1, 'iteration': 99, 'files': {'rank-00000.npz': 1000}}, f)
    with open(os.path.join(trunc, 'rank-00000.npz'), 'wb') as f:
        f.write(b'x' * 10)
    assert snapshots.resolve_resume('auto', out).endswith('epoch-2')
    with pytest.raises(SnapshotError) as e:
        snapshots.resolve_resume(trunc, out)
    assert str(e.value) == ('--resume {0}: not a usable snapshot: missing or truncated: '
                            '{0}/rank-00000.npz; resume from another (--resume auto picks the '
                            'newest whole one)'.format(trunc))
    with pytest.raises(SnapshotError, match='no such snapshot'):
        snapshots.resolve_resume(os.path.join(root, 'epoch-77'), out)
    assert snapshots.resolve_resume('auto', str(tmp_path / 'empty')) is None


def test_resume_refuses_another_world(tmp_path):
    out = str(tmp_path)
    trainer, _ = _trainer(out, epochs=1)
    trainer.extend(MultiNodeSnapshot(None, out, info={'batchsize': 5}), trigger=(1, 'epoch'))
    trainer.run()
    path = os.path.join(out, 'snapshots', 'epoch-1')
    with pytest.raises(SnapshotError, match='written by 1 ranks, this job has 4'):
        snapshots.check_compatible(path, 4, 5)
    with pytest.raises(SnapshotError, match='--batchsize 5, this job has 32'):
        snapshots.check_compatible(path, 1, 32)
    snapshots.check_compatible(path, 1, 5)


def test_failed_write_keeps_previous_snapshot(tmp_path, monkeypatch):
    out = str(tmp_path)
    trainer, _ = _trainer(out, epochs=2)
    ext = MultiNodeSnapshot(None, out)
    trainer.extend(ext, trigger=(1, 'epoch'))

    calls = []
    real = chainer.serializers.save_npz

    def failing(path, obj, **kw):
        calls.append(path)
        if len(calls) == 2:
            real(path, obj, **kw)  # a partial file is on disk, then the disk "fills"
            raise OSError(28, 'No space left on device')
        return real(path, obj, **kw)
    monkeypatch.setattr(chainer.serializers, 'save_npz', failing)
    with pytest.raises(SnapshotError, match='no space left on device.*epoch-1.*intact'):
        trainer.run()
    root = os.path.join(out, 'snapshots')
    assert sorted(os.listdir(root)) == ['epoch-1']
    assert snapshots.is_complete(os.path.join(root, 'epoch-1'))


def test_real_file_size_limit_keeps_previous_snapshot(tmp_path):
    """A real write failure: RLIMIT_FSIZE makes the second snapshot hit EFBIG."""
    script = textwrap.dedent('''
        import os, resource, signal, sys
        sys.path.insert(0, {tests!r})
        from test_snapshots import _trainer
        from chainer_ext.extensions.multi_node_snapshot import MultiNodeSnapshot, SnapshotError
        out = {out!r}
        trainer, _ = _trainer(out, epochs=3)
        trainer.extend(MultiNodeSnapshot(None, out), trigger=(1, 'epoch'))
        def limit(trainer):
            if trainer.updater.epoch == 1:
                signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
                resource.setrlimit(resource.RLIMIT_FSIZE, (600, 600))
        trainer.extend(limit, trigger=(1, 'epoch'), priority=-200)
        try:
            trainer.run()
        except SnapshotError as e:
            print('SNAPSHOT-ERROR', e)
            sys.exit(3)
    ''').format(tests=os.path.dirname(__file__), out=str(tmp_path))
    proc = subprocess.run([sys.executable, '-c', script], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert 'writing snapshot epoch-2' in proc.stdout and 'epoch-1) is intact' in proc.stdout
    root = tmp_path / 'snapshots'
    assert sorted(os.listdir(root)) == ['epoch-1']
    assert snapshots.is_complete(str(root / 'epoch-1'))


def test_resume_refuses_other_settings(tmp_path):
    out = str(tmp_path)
    trainer, _ = _trainer(out, epochs=1)
    info = {'batchsize': 5, 'arch': 'resnet50', 'optimizer': 'rmsprop_warmup', 'epochs': 90}
    trainer.extend(MultiNodeSnapshot(None, out, info=info), trigger=(1, 'epoch'))
    trainer.run()
    path = os.path.join(out, 'snapshots', 'epoch-1')
    assert snapshots.check_compatible(path, 1, 5, info=dict(info))['arch'] == 'resnet50'
    with pytest.raises(SnapshotError) as e:
        snapshots.check_compatible(path, 1, 5, info=dict(info, arch='resnet18', epochs=30))
    msg = str(e.value)
    assert path in msg
    assert '--arch resnet50 in the snapshot, resnet18 in this job' in msg
    assert '--epoch 90 in the snapshot, 30 in this job' in msg
    assert 'optimizer' not in msg
    with pytest.raises(SnapshotError, match="--optimizer rmsprop_warmup in the snapshot, "
                                            "momentum_sgd in this job"):
        snapshots.check_compatible(path, 1, 5, info=dict(info, optimizer='momentum_sgd'))
    # keys the manifest does not have (older snapshots) are not checked
    snapshots.check_compatible(path, 1, 5, info=dict(info, lr_rmsprop=0.01))
    with pytest.raises(SnapshotError, match='--batchsize 5, this job has 32'):
        snapshots.check_compatible(path, 1, 32, info=dict(info, batchsize=32))

    # a manifest without those keys is accepted, whatever the job's settings
    trainer, _ = _trainer(str(tmp_path / 'old'), epochs=1)
    trainer.extend(MultiNodeSnapshot(None, str(tmp_path / 'old')), trigger=(1, 'epoch'))
    trainer.run()
    old = str(tmp_path / 'old' / 'snapshots' / 'epoch-1')
    snapshots.check_compatible(old, 1, 5, info=dict(info, arch='anything'))
    # values compare as they read back from JSON (a tuple is a list)
    trainer, _ = _trainer(str(tmp_path / 't'), epochs=1)
    trainer.extend(MultiNodeSnapshot(None, str(tmp_path / 't'), info={'size': (2, 3)}),
                   trigger=(1, 'epoch'))
    trainer.run()
    snapshots.check_compatible(str(tmp_path / 't' / 'snapshots' / 'epoch-1'), 1, 5,
                               info={'size': (2, 3)})


def test_supersede_newer_sets_abandoned_snapshots_aside(tmp_path):
    out = str(tmp_path)
    trainer, _ = _trainer(out, epochs=4)
    trainer.extend(MultiNodeSnapshot(None, out, keep=0), trigger=(1, 'epoch'))
    trainer.run()
    root = os.path.join(out, 'snapshots')
    os.makedirs(os.path.join(root, 'epoch-9'))  # incomplete: not a snapshot, left alone
    os.makedirs(os.path.join(root, '.superseded-epoch-4'))  # from an earlier resume
    path = os.path.join(root, 'epoch-2')
    assert snapshots.supersede_newer(out, path) == ['epoch-3', 'epoch-4']
    assert sorted(os.listdir(root)) == ['.superseded-epoch-3', '.superseded-epoch-4',
                                       '.superseded-epoch-4.1', 'epoch-1', 'epoch-2',
                                       'epoch-9']
    assert snapshots.is_complete(os.path.join(root, '.superseded-epoch-3'))  # nothing deleted
    assert snapshots.is_complete(os.path.join(root, '.superseded-epoch-4.1'))
    assert snapshots.resolve_resume('auto', out) == path
    assert snapshots.supersede_newer(out, path) == []

    # the resumed run writes epoch-3 and epoch-4 again; pruning keeps those
    resumed, _ = _trainer(out, epochs=4)
    resumed.extend(MultiNodeSnapshot(None, out, keep=2), trigger=(1, 'epoch'))
    snapshots.load_snapshot(path, resumed, None)
    resumed.run()
    assert [os.path.basename(p) for _, p in snapshots.list_snapshots(out)] == [
        'epoch-3', 'epoch-4']
    assert os.path.isdir(os.path.join(root, '.superseded-epoch-3'))


def test_prune_renames_before_deleting(tmp_path, monkeypatch):
    out = str(tmp_path)
    trainer, _ = _trainer(out, epochs=3)
    trainer.extend(MultiNodeSnapshot(None, out, keep=2), trigger=(1, 'epoch'))
    root = os.path.join(out, 'snapshots')
    deleted = []
    real_rmtree = shutil.rmtree

    def crash_before_delete(path, *args, **kwargs):
        # the process "dies" before deleting anything of a pruned snapshot
        if os.path.basename(path).startswith('.deleting-'):
            deleted.append(os.path.basename(path))
            return
        return real_rmtree(path, *args, **kwargs)
    monkeypatch.setattr(snapshots.shutil, 'rmtree', crash_before_delete)
    trainer.run()
    assert deleted == ['.deleting-epoch-1']
    # the pruned snapshot is hidden at once: no folder under its name
    assert sorted(os.listdir(root)) == ['.deleting-epoch-1', 'epoch-2', 'epoch-3']
    assert snapshots.resolve_resume('auto', out).endswith('epoch-3')

    monkeypatch.setattr(snapshots.shutil, 'rmtree', real_rmtree)
    more, _ = _trainer(out, epochs=4)
    more.extend(MultiNodeSnapshot(None, out, keep=2), trigger=(1, 'epoch'))
    snapshots.load_snapshot(os.path.join(root, 'epoch-3'), more, None)
    more.run()  # the next prune also removes what the crash left
    assert sorted(os.listdir(root)) == ['epoch-3', 'epoch-4']


def test_slim_rank_file_leaves_out_exactly_the_shared_arrays(tmp_path):
    """What ranks other than 0 write, checked in one process."""
    trainer, model = _trainer(str(tmp_path), epochs=1)
    trainer.run()
    keys = snapshots.shared_keys(trainer)
    assert keys == ['updater/model:main/predictor/W', 'updater/optimizer:main/predictor/W/v',
                    'updater/model:main/predictor/b', 'updater/optimizer:main/predictor/b/v']
    full, slim = str(tmp_path / 'full.npz'), str(tmp_path / 'slim.npz')
    snapshots._write_full(full, trainer)
    snapshots._write_slim(slim, trainer)
    with numpy.load(full, allow_pickle=True) as f, numpy.load(slim, allow_pickle=True) as s:
        assert set(f.files) - set(s.files) == set(keys)
        assert set(s.files) - set(f.files) == {snapshots.DROPPED}
        assert snapshots._dropped_keys(s) == set(keys)
        assert snapshots._dropped_keys(f) == set()
        for k in s.files:
            if k != snapshots.DROPPED:
                assert numpy.array_equal(s[k], f[k]), k

    fresh, fresh_model = _trainer(str(tmp_path), epochs=1)
    w0 = fresh_model.predictor.W.array.copy()
    snapshots._load_file(slim, fresh)
    assert fresh.updater.iteration == trainer.updater.iteration
    assert fresh.updater.get_optimizer('main').t == trainer.updater.get_optimizer('main').t
    assert fresh_model.predictor.W.update_rule.t == model.predictor.W.update_rule.t
    assert numpy.array_equal(fresh_model.predictor.W.array, w0)  # left as it was
    assert fresh_model.predictor.W.update_rule.state is None      # comes by broadcast

    # only the listed keys may be missing
    with numpy.load(slim, allow_pickle=True) as s:
        kept = {k: s[k] for k in s.files if k != 'updater/iteration'}
    numpy.savez(str(tmp_path / 'bad.npz'), **kept)
    with pytest.raises(KeyError, match='updater/iteration'):
        snapshots._load_file(str(tmp_path / 'bad.npz'), _trainer(str(tmp_path))[0])


@pytest.mark.parametrize('optimizer', ['adam', 'rmsprop_warmup'])
def test_slim_snapshots_under_mpi(mpirun, tmp_path, optimizer):
    """mpiexec -n 2: rank 1's file is small, and resuming is bit-identical."""
    proc = mpirun(2, 'snapshot_slim.py', str(tmp_path), optimizer, timeout=300)
    sizes = [line for line in proc.stdout.splitlines() if line.startswith('SIZES ')]
    assert len(sizes) == 1, proc.stdout
    print(sizes[0])
    assert proc.stdout.count(' OK') == 2, proc.stdout


def _flip_byte(fpath, offset):
    with open(fpath, 'r+b') as f:
        f.seek(offset)
        byte = f.read(1)
        f.seek(offset)
        f.write(bytes([byte[0] ^ 0x01]))


def test_manifest_records_the_sha256_of_every_file(tmp_path):
    out = str(tmp_path)
    trainer, _ = _trainer(out, epochs=1)
    trainer.extend(MultiNodeSnapshot(None, out), trigger=(1, 'epoch'))
    trainer.run()
    snap = os.path.join(out, 'snapshots', 'epoch-1')
    with open(os.path.join(snap, 'rank-00000.npz'), 'rb') as f:
        expected = hashlib.sha256(f.read()).hexdigest()
    assert snapshots.read_manifest(snap)['sha256'] == {'rank-00000.npz': expected}


def test_a_flipped_bit_is_found_and_auto_falls_back(tmp_path):
    out = str(tmp_path)
    trainer, _ = _trainer(out, epochs=2)
    trainer.extend(MultiNodeSnapshot(None, out, keep=0), trigger=(1, 'epoch'))
    trainer.run()
    root = os.path.join(out, 'snapshots')
    newest = os.path.join(root, 'epoch-2')
    victim = os.path.join(newest, 'rank-00000.npz')
    _flip_byte(victim, os.path.getsize(victim) // 2)
    assert snapshots.is_complete(newest)  # same size: only the checksum tells
    said = []
    chosen = snapshots.resolve_resume('auto', out, skipped=lambda *a: said.append(a))
    assert chosen == os.path.join(root, 'epoch-1')
    assert said == [(newest, 'damaged: SHA-256 of rank-00000.npz differs from manifest.json; '
                             'using {}'.format(chosen))]
    with pytest.raises(SnapshotError) as e:
        snapshots.resolve_resume(newest, out)
    assert str(e.value) == ('--resume {}: not a usable snapshot: damaged: SHA-256 of {} '
                            'differs from manifest.json; resume from another (--resume auto '
                            'picks the newest whole one)'.format(newest, victim))

    _flip_byte(os.path.join(root, 'epoch-1', 'rank-00000.npz'), 100)
    said = []
    assert snapshots.resolve_resume('auto', out, skipped=lambda *a: said.append(a)) is None
    assert [path for path, _ in said] == [newest, os.path.join(root, 'epoch-1')]
    assert said[-1][1].endswith('; using none: starting afresh')


def test_snapshot_without_checksums_is_checked_by_size_only(tmp_path):
    """Snapshots written before the manifest recorded SHA-256 still resume."""
    out = str(tmp_path)
    trainer, model = _trainer(out, epochs=1)
    trainer.extend(MultiNodeSnapshot(None, out), trigger=(1, 'epoch'))
    trainer.run()
    snap = os.path.join(out, 'snapshots', 'epoch-1')
    mpath = os.path.join(snap, 'manifest.json')
    with open(mpath) as f:
        manifest = json.load(f)
    del manifest['sha256']
    with open(mpath, 'w') as f:
        json.dump(manifest, f)
    assert snapshots.damaged_files(snap) == []
    assert snapshots.resolve_resume('auto', out) == snap
    assert snapshots.resolve_resume(snap, out) == snap
    fresh, fresh_model = _trainer(out, epochs=1)
    snapshots.load_snapshot(snap, fresh, None)
    assert numpy.array_equal(fresh_model.predictor.W.array, model.predictor.W.array)


def test_holds_weights_of_compares_every_array_bit_for_bit(tmp_path):
    """model.npz holds a snapshot's weights only when it has exactly the predictor's arrays
    of the full rank file, equal bit for bit; an unreadable model.npz holds none."""
    snap = tmp_path / 'snapshots' / 'epoch-1'
    snap.mkdir(parents=True)
    w = numpy.arange(6, dtype=numpy.float32).reshape(2, 3)
    numpy.savez(str(snap / 'rank-00000.npz'), **{
        'updater/model:main/predictor/fc/W': w, 'updater/model:main/predictor/bn/N': 3,
        'updater/optimizer:main/predictor/fc/W/msg': w * 2, 'updater/iteration': 6})
    model = str(tmp_path / 'model.npz')
    numpy.savez(model, **{'fc/W': w, 'bn/N': 3})
    assert snapshots.holds_weights_of(model, str(snap))
    numpy.savez(model, **{'fc/W': numpy.nextafter(w, 10), 'bn/N': 3})   # one ulp
    assert not snapshots.holds_weights_of(model, str(snap))
    numpy.savez(model, **{'fc/W': w})                                   # an array missing
    assert not snapshots.holds_weights_of(model, str(snap))
    numpy.savez(model, **{'fc/W': w, 'bn/N': 3, 'extra': w})            # one too many
    assert not snapshots.holds_weights_of(model, str(snap))
    with open(model, 'wb') as f:
        f.write(b'not a zip file')
    assert not snapshots.holds_weights_of(model, str(snap))
