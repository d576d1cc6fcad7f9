"""Atomic snapshots: complete ones are found, partial ones never, failures keep the old."""
import json
import os
import subprocess
import sys
import textwrap

import numpy
import pytest

import chainer
import chainer.links as L
from chainer import training

from chainer_ext import snapshots
from chainer_ext.snapshots import MultiNodeSnapshot, SnapshotError


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
    with pytest.raises(SnapshotError, match='not a complete snapshot'):
        snapshots.resolve_resume(trunc, out)
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
        from chainer_ext.snapshots import MultiNodeSnapshot, SnapshotError
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
