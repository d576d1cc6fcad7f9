"""A non-finite averaged gradient skips the update and never touches the state."""
import numpy
import pytest

import chainer_ext  # noqa: F401  (compatibility stand-ins before chainer loads)
import chainer
import chainer.links as L

from chainer_ext.optimizer_hooks.skip_nonfinite_update import NonFiniteGradientError
from chainer_ext.optimizer_hooks.skip_nonfinite_update import SkipNonFiniteUpdate


def _setup(max_consecutive=3):
    model = L.Linear(3, 2, initialW=numpy.arange(6, dtype=numpy.float32).reshape(2, 3))
    opt = chainer.optimizers.MomentumSGD(lr=0.1, momentum=0.9)
    opt.setup(model)
    guard = SkipNonFiniteUpdate(None, max_consecutive=max_consecutive)
    opt.add_hook(guard)
    return model, opt, guard


def _set_grads(model, value):
    for p in model.params():
        p.grad = numpy.full_like(p.array, value)


def test_finite_gradient_updates_normally():
    model, opt, guard = _setup()
    w0 = model.W.array.copy()
    _set_grads(model, 1.0)
    opt.update()
    numpy.testing.assert_allclose(model.W.array, w0 - 0.1)
    assert guard.total_skipped == 0


@pytest.mark.parametrize('bad', [numpy.inf, -numpy.inf, numpy.nan])
def test_non_finite_gradient_is_skipped_and_state_kept(bad):
    model, opt, guard = _setup()
    _set_grads(model, 1.0)
    opt.update()  # creates momentum state
    w1 = model.W.array.copy()
    v1 = model.W.update_rule.state['v'].copy()
    _set_grads(model, 1.0)
    model.W.grad[1, 2] = bad
    opt.update()
    assert numpy.array_equal(model.W.array, w1)
    assert numpy.array_equal(model.W.update_rule.state['v'], v1)
    assert (guard.consecutive, guard.total_skipped) == (1, 1)
    _set_grads(model, 1.0)
    opt.update()  # a finite one resets the streak and updates again
    assert guard.consecutive == 0
    numpy.testing.assert_allclose(model.W.array, w1 + 0.9 * v1 - 0.1)


def test_stops_after_consecutive_skips():
    model, opt, guard = _setup(max_consecutive=3)
    for _ in range(2):
        _set_grads(model, numpy.nan)
        opt.update()
    _set_grads(model, numpy.nan)
    with pytest.raises(NonFiniteGradientError, match='3 consecutive'):
        opt.update()


def test_rejects_bad_limit():
    with pytest.raises(ValueError, match='0'):
        SkipNonFiniteUpdate(None, max_consecutive=0)


@pytest.mark.parametrize('n', [2, 3])
def test_float16_overflow_skipped_on_every_rank(mpirun, n):
    proc = mpirun(n, 'nonfinite_guard.py', timeout=180)
    assert 'nonfinite guard OK on {} ranks'.format(n) in proc.stdout


def test_skip_resets_poisoned_batchnorm_statistics():
    from chainer_ext.links.last_batch_bn import use_last_batch_statistics
    bn = L.BatchNormalization(3)
    model = chainer.Sequential(L.Linear(2, 3), bn)
    use_last_batch_statistics(model)
    opt = chainer.optimizers.SGD(lr=0.1)
    opt.setup(model)
    opt.add_hook(SkipNonFiniteUpdate(None))
    bad = numpy.array([[numpy.nan, 1], [2, 3]], dtype=numpy.float32)
    model.cleargrads()
    chainer.functions.sum(model(bad)).backward()
    assert not numpy.isfinite(bn.avg_mean).all()
    opt.update()  # skipped: the statistics must not stay NaN
    assert numpy.isfinite(bn.avg_mean).all() and numpy.isfinite(bn.avg_var).all()
    good = numpy.array([[0, 1], [2, 3]], dtype=numpy.float32)
    h = model[0](good).array
    model(good)
    numpy.testing.assert_allclose(bn.avg_mean, h.mean(axis=0), rtol=1e-6)
    numpy.testing.assert_allclose(bn.avg_var, h.var(axis=0, ddof=1), rtol=1e-5)


def test_uses_the_communicators_own_verdict():
    class Comm(object):
        size = 1
        last_mean_grad_finite = False
    model, opt, guard = _setup()
    guard.comm = Comm()
    _set_grads(model, 1.0)  # finite here, but the communicator saw overflow
    w = model.W.array.copy()
    opt.update()
    assert guard.total_skipped == 1 and numpy.array_equal(model.W.array, w)
