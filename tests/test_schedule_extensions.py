"""Schedule extensions through a real chainer.training.Trainer.

Toy problem: 10 examples, batch 3, so the epoch at the start of iteration t (1-based) is
(t - 1) * 3 / 10, independently of the iterator: the value in force during iteration t must
be schedule((t - 1) * 0.3).
"""
import functools
import warnings

import numpy as np
import pytest

import chainer_ext  # noqa: F401  (compatibility stand-ins before chainer loads)
import chainer
import chainer.links as L
from chainer import training
from chainer.training import extensions as chainer_extensions

import chainermn

from chainer_ext.extensions import EpochSchedule
from chainer_ext.optimizers import RMSpropWarmup
from chainer_ext.optimizers.schedules import compressed_beta
from chainer_ext.optimizers.schedules import elu_alpha_sgd
from chainer_ext.optimizers.schedules import slow_start_lr

N, BATCH = 10, 3
EPOCH_PER_ITER = BATCH / N
TOTAL_EPOCHS = 3                  # compressed run: boundaries 4/3, 7/3, 17/6
ITERS = 11                        # 3.3 epochs: crosses every boundary


def lr_fn(epoch):
    return slow_start_lr(epoch, eta_base=0.8, total_epochs=TOTAL_EPOCHS)


def ramp(epoch):
    return 0.1 + epoch            # a distinct value at every iteration


class Recorder(object):
    """Optimizer 'pre' hook: records (lr, alpha_sgd) in force at each real update."""
    name = 'Recorder'
    timing = 'pre'

    def __init__(self):
        self.values = []

    def __call__(self, opt):
        self.values.append((opt.lr, opt.alpha_sgd))


def make_trainer(out, iters=ITERS, optimizer_wrapper=None, seed=0):
    rng = np.random.RandomState(seed)
    x = rng.standard_normal((N, 2)).astype(np.float32)
    t = (rng.standard_normal(N) > 0).astype(np.int32)
    model = L.Classifier(L.Linear(2, 2, initialW=rng.standard_normal((2, 2))))
    actual = RMSpropWarmup(lr=1.0)
    actual.setup(model)
    opt = optimizer_wrapper(actual) if optimizer_wrapper else actual
    recorder = Recorder()
    actual.add_hook(recorder)
    it = chainer.iterators.SerialIterator(
        chainer.datasets.TupleDataset(x, t), BATCH, shuffle=False)
    updater = training.updaters.StandardUpdater(it, opt)
    trainer = training.Trainer(updater, (iters, 'iteration'), out=str(out))
    return trainer, model, actual, recorder


def expected_epochs(first_iter, last_iter):
    return [(i - 1) * EPOCH_PER_ITER for i in range(first_iter, last_iter + 1)]


def test_value_in_force_at_each_iteration_is_the_schedule_at_its_epoch(tmp_path):
    trainer, _, opt, rec = make_trainer(tmp_path)
    beta = compressed_beta(TOTAL_EPOCHS)
    trainer.extend(EpochSchedule('lr', lr_fn))
    trainer.extend(EpochSchedule('alpha_sgd', functools.partial(
        elu_alpha_sgd, beta_center=beta[0], beta_period=beta[1])))
    log = chainer_extensions.LogReport(trigger=(1, 'iteration'))
    trainer.extend(log)
    trainer.run()

    epochs = expected_epochs(1, ITERS)
    assert len(rec.values) == ITERS
    for (lr, alpha), e in zip(rec.values, epochs):
        assert lr == pytest.approx(lr_fn(e), rel=1e-12), e
        assert alpha == pytest.approx(elu_alpha_sgd(e, *beta), rel=1e-12), e
    # the run crosses all slow-start phases (0.5, 0.075, 0.01, 0.001) x 0.8
    assert sorted({round(lr / 0.8, 6) for lr, _ in rec.values}) == [
        0.001, 0.01, 0.075, 0.5]
    # the first iteration runs at epoch 0: alpha = 0.5 exp(-4)
    assert rec.values[0][1] == pytest.approx(0.5 * np.exp(-4))
    # LogReport: per iteration, the value that iteration ran with
    assert [entry['iteration'] for entry in log.log] == list(range(1, ITERS + 1))
    for entry, (lr, alpha) in zip(log.log, rec.values):
        assert entry['lr'] == lr and entry['alpha_sgd'] == alpha
    # after the last iteration the optimizer holds the value for the next one
    assert opt.lr == pytest.approx(lr_fn(ITERS * EPOCH_PER_ITER))


def test_generic_epoch_schedule_with_a_ramp(tmp_path):
    trainer, _, opt, rec = make_trainer(tmp_path, iters=5)
    trainer.extend(EpochSchedule('lr', ramp))
    trainer.run()
    np.testing.assert_allclose([lr for lr, _ in rec.values],
                               [0.1 + e for e in expected_epochs(1, 5)], rtol=1e-12)


def test_resume_from_snapshot_continues_the_schedule(tmp_path):
    beta = compressed_beta(TOTAL_EPOCHS)

    def build(out, snapshot=False):
        trainer, model, opt, rec = make_trainer(out)
        trainer.extend(EpochSchedule('lr', lr_fn))
        trainer.extend(EpochSchedule('alpha_sgd', functools.partial(
            elu_alpha_sgd, beta_center=beta[0], beta_period=beta[1])))
        if snapshot:
            trainer.extend(chainer_extensions.snapshot(filename='snap_{.updater.iteration}'),
                           trigger=(5, 'iteration'))
        return trainer, model, opt, rec

    full, full_model, _, full_rec = build(tmp_path / 'full', snapshot=True)
    full.run()

    resumed, model, opt, rec = build(tmp_path / 'resumed')
    chainer.serializers.load_npz(str(tmp_path / 'full' / 'snap_5'), resumed)
    assert resumed.updater.iteration == 5
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        resumed.run()
    assert not [w for w in caught if 'updater is at epoch' in str(w.message)]
    assert len(rec.values) == ITERS - 5
    assert rec.values == full_rec.values[5:]            # iterations 6..11, identical
    for (lr, alpha), e in zip(rec.values, expected_epochs(6, ITERS)):
        assert lr == pytest.approx(lr_fn(e), rel=1e-12)
        assert alpha == pytest.approx(elu_alpha_sgd(e, *beta), rel=1e-12)
    for (_, p), (_, q) in zip(sorted(full_model.namedparams()),
                              sorted(model.namedparams())):
        assert p.array.tobytes() == q.array.tobytes()


def test_serialize_round_trip_and_warning_when_updater_not_restored(tmp_path):
    trainer, _, opt, _ = make_trainer(tmp_path / 'a', iters=4)
    ext = EpochSchedule('lr', lr_fn)
    trainer.extend(ext)
    trainer.run()
    saved = {}
    ser = chainer.serializers.DictionarySerializer(saved)
    ext.serialize(ser)
    assert float(saved['_last_epoch']) == pytest.approx(4 * EPOCH_PER_ITER)
    assert float(saved['_last_value']) == pytest.approx(lr_fn(4 * EPOCH_PER_ITER))

    # A fresh trainer (epoch 0) with only the extension state restored: the schedule at
    # the updater's epoch wins, with a warning about the mismatch.
    fresh, _, opt2, rec = make_trainer(tmp_path / 'b', iters=1)
    ext2 = EpochSchedule('lr', lr_fn)
    ext2.serialize(chainer.serializers.NpzDeserializer(
        {k: np.asarray(v) for k, v in saved.items()}))
    fresh.extend(ext2)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        fresh.run()
    assert any('updater is at epoch 0.0' in str(w.message) for w in caught)
    assert rec.values[0][0] == lr_fn(0.0)


def test_works_with_chainermn_multi_node_optimizer(tmp_path):
    class SingleWorker(object):
        def bcast_data(self, model):
            pass

        def multi_node_mean_grad(self, model, zero_fill=False):
            pass

    def wrap(actual):
        return chainermn.create_multi_node_optimizer(actual, SingleWorker())

    trainer, _, actual, rec = make_trainer(tmp_path, iters=6, optimizer_wrapper=wrap)
    wrapped = trainer.updater.get_optimizer('main')
    assert wrapped is not actual
    trainer.extend(EpochSchedule('lr', ramp))
    trainer.extend(EpochSchedule('alpha_sgd', functools.partial(
        elu_alpha_sgd, beta_center=1.0, beta_period=1.0)))
    trainer.run()
    # the first multi-node update only broadcasts; updates 2..6 ran with the schedule
    assert len(rec.values) == 5
    for (lr, alpha), e in zip(rec.values, expected_epochs(2, 6)):
        assert lr == pytest.approx(ramp(e))
        assert alpha == pytest.approx(elu_alpha_sgd(e, 1.0, 1.0))
    assert actual.lr == pytest.approx(ramp(6 * EPOCH_PER_ITER))


def test_explicit_optimizer_and_attr(tmp_path):
    trainer, _, opt, rec = make_trainer(tmp_path, iters=3)
    other = RMSpropWarmup()
    trainer.extend(EpochSchedule('lr_rmsprop', ramp, optimizer=other))
    trainer.run()
    assert other.lr_rmsprop == pytest.approx(ramp(3 * EPOCH_PER_ITER))
    assert [lr for lr, _ in rec.values] == [1.0, 1.0, 1.0]      # main untouched


def test_names_and_defaults():
    ext = EpochSchedule('lr', ramp)
    assert ext.attr == 'lr' and ext.default_name == 'EpochSchedule_lr'
    assert ext.trigger == (1, 'iteration')
    assert ext.priority == training.extension.PRIORITY_WRITER


def test_bad_arguments():
    with pytest.raises(ValueError, match="attr=''"):
        EpochSchedule('', ramp)
    with pytest.raises(TypeError, match='schedule_fn'):
        EpochSchedule('lr', 0.1)


def test_schedule_setting_invalid_lr_fails_at_the_update(tmp_path):
    trainer, _, _, _ = make_trainer(tmp_path, iters=3)
    trainer.extend(EpochSchedule('lr', lambda e: 0.5 if e < 0.5 else 0.0))
    with pytest.raises(ValueError, match='lr=0.0'):
        trainer.run(show_loop_exception_msg=False)


def test_partial_schedule_is_accepted():
    fn = functools.partial(slow_start_lr, eta_base=12.8, total_epochs=90)
    assert EpochSchedule('lr', fn)._schedule_fn(45.0) == pytest.approx(0.075 * 12.8)
