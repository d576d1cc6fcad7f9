"""RMSpropWarmup (Akiba et al. 2017, Appendix A.1) against independent computations.

The reference below is a plain float64 NumPy transcription of the three equations of
EQUATIONS.md (A.1); it shares no code with chainer_ext.
"""
import re

import numpy as np
import pytest

import chainer_ext  # noqa: F401  (compatibility stand-ins before chainer loads)
import chainer
import chainer.links as L
from chainer import optimizers as chainer_optimizers

from chainer_ext.optimizers import RMSpropWarmup
from chainer_ext.optimizers import RMSpropWarmupRule
from chainer_ext.optimizers import _hybrid_update_cpu

ETA_RMSPROP = 3e-4
MU1, MU2, EPS = 0.9, 0.99, 1e-8


def reference(theta0, grads, etas, alphas, eta_rmsprop=ETA_RMSPROP, mu1=MU1, mu2=MU2,
              eps=EPS):
    """float64 trajectory of A.1; returns (thetas after each step, final Delta, final m)."""
    theta = np.array(theta0, dtype=np.float64)
    m = np.zeros_like(theta)
    delta = np.zeros_like(theta)
    thetas = []
    for g, eta, a_sgd in zip(grads, etas, alphas):
        g = np.asarray(g, dtype=np.float64)
        a_rms = (1.0 - a_sgd) * eta_rmsprop / eta
        m = mu2 * m + (1.0 - mu2) * g * g
        delta = mu1 * delta - (a_sgd + a_rms / (np.sqrt(m) + eps)) * g
        theta = theta + eta * delta
        thetas.append(theta.copy())
    return thetas, delta, m


def make_param(theta0):
    link = chainer.Link()
    with link.init_scope():
        link.p = chainer.Parameter(theta0.copy())
    return link


def run_optimizer(opt, link, grads, etas=None, alphas=None):
    thetas = []
    for i, g in enumerate(grads):
        if etas is not None:
            opt.lr = float(etas[i])
        if alphas is not None:
            opt.alpha_sgd = float(alphas[i])
        link.p.grad = g.copy()
        opt.update()
        thetas.append(link.p.array.copy())
    return thetas


def random_problem(shape, steps, dtype, seed):
    rng = np.random.RandomState(seed)
    theta0 = np.asarray(rng.standard_normal(shape), dtype=dtype)
    # gradients of varying scale, so that sqrt(m) spans several decades
    scales = 10.0 ** rng.uniform(-3, 1, size=steps)
    grads = [np.asarray(rng.standard_normal(shape) * s, dtype=dtype) for s in scales]
    etas = 10.0 ** rng.uniform(-2, 1, size=steps)     # eta_SGD in [0.01, 10]
    alphas = rng.uniform(0.0, 1.0, size=steps)
    alphas[::17] = 0.0
    alphas[5::23] = 1.0
    return theta0, grads, etas, alphas


SHAPES = [(), (7,), (3, 4, 5), (16, 3, 3, 3)]


@pytest.mark.parametrize('shape', SHAPES)
@pytest.mark.parametrize('dtype, rtol, atol', [
    (np.float64, 1e-12, 1e-13),
    (np.float32, 1e-4, 2e-5),
])
def test_matches_float64_reference_with_changing_schedules(shape, dtype, rtol, atol):
    steps = 300
    theta0, grads, etas, alphas = random_problem(shape, steps, dtype, seed=len(shape))
    opt = RMSpropWarmup(lr=float(etas[0]))
    link = make_param(theta0)
    opt.setup(link)
    got = run_optimizer(opt, link, grads, etas, alphas)
    want, delta, m = reference(theta0, grads, etas, alphas)
    for t in (0, 1, 10, 100, steps - 1):
        # the float32 run accumulates rounding along the trajectory: scale by |theta|
        np.testing.assert_allclose(got[t], want[t], rtol=rtol,
                                   atol=atol * max(1.0, np.abs(want[t]).max()),
                                   err_msg='step {}'.format(t))
    rule = link.p.update_rule
    assert rule.state['delta'].dtype == dtype and rule.state['ms'].dtype == dtype
    np.testing.assert_allclose(rule.state['ms'], m, rtol=1e-5 if dtype == np.float32 else 1e-12)
    np.testing.assert_allclose(rule.state['delta'], delta, rtol=rtol,
                               atol=atol * max(1.0, np.abs(delta).max()))
    assert link.p.array.dtype == dtype


def test_non_contiguous_parameter_uses_numpy_path_and_matches_reference():
    rng = np.random.RandomState(3)
    base = rng.standard_normal((6, 5)).astype(np.float32)
    link = chainer.Link()
    with link.init_scope():
        link.p = chainer.Parameter(base.T)        # a transposed (F-ordered) view
    assert not link.p.array.flags.c_contiguous
    opt = RMSpropWarmup(lr=0.5, alpha_sgd=0.25)
    opt.setup(link)
    grads = [rng.standard_normal((6, 5)).astype(np.float32).T for _ in range(20)]
    theta0 = base.T.copy()
    for g in grads:
        link.p.grad = g
        opt.update()
    want, _, _ = reference(theta0, grads, [0.5] * 20, [0.25] * 20)
    np.testing.assert_allclose(link.p.array, want[-1], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize('dtype', [np.float32, np.float64])
def test_fused_numba_kernel_and_numpy_path_agree_bitwise(dtype):
    # Both perform the same IEEE operations in the same order (no FMA contraction).
    assert _hybrid_update_cpu.fused_update_numba is not None
    rng = np.random.RandomState(0)
    n = 1001
    arrays = [rng.standard_normal(n).astype(dtype) for _ in range(2)]
    state = [np.abs(rng.standard_normal(n)).astype(dtype) * 1e-3,
             rng.standard_normal(n).astype(dtype)]
    t = np.dtype(dtype).type
    coef = tuple(t(x) for x in (0.7, 0.3, 0.02, MU1, MU2, 1 - MU2, EPS))
    a = [x.copy() for x in arrays + state]
    b = [x.copy() for x in arrays + state]
    assert _hybrid_update_cpu.can_use_numba(a[0], a[1], a[2], a[3])
    _hybrid_update_cpu.fused_update_numba(a[0], a[1], a[2], a[3], *coef)
    _hybrid_update_cpu.update_numpy(b[0], b[1], b[2], b[3], *coef)
    for x, y in zip(a, b):
        assert x.tobytes() == y.tobytes()


def test_contiguous_float32_and_float64_take_the_fused_kernel(monkeypatch):
    def fail(*args):
        raise AssertionError('NumPy fallback used for a contiguous parameter')
    monkeypatch.setattr(_hybrid_update_cpu, 'update_numpy', fail)
    for dtype in (np.float32, np.float64):
        link = make_param(np.ones((4, 3), dtype=dtype))
        opt = RMSpropWarmup()
        opt.setup(link)
        link.p.grad = np.ones((4, 3), dtype=dtype)
        opt.update()
        assert (link.p.array < 1).all()


def test_alpha_sgd_one_is_chainer_momentum_sgd():
    # alpha_SGD = 1 with constant eta: Chainer's v = mu*v - eta*g, theta += v equals ours
    # with v = eta * Delta.
    rng = np.random.RandomState(1)
    shape, eta = (4, 6), 0.37
    theta0 = rng.standard_normal(shape)
    grads = [rng.standard_normal(shape) for _ in range(200)]
    ours, theirs = make_param(theta0), make_param(theta0)
    opt = RMSpropWarmup(lr=eta, alpha_sgd=1.0)
    opt.setup(ours)
    ref = chainer_optimizers.MomentumSGD(lr=eta, momentum=0.9)
    ref.setup(theirs)
    a = run_optimizer(opt, ours, grads)
    b = run_optimizer(ref, theirs, grads)
    for t in (0, 50, 199):
        np.testing.assert_allclose(a[t], b[t], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(eta * ours.p.update_rule.state['delta'],
                               theirs.p.update_rule.state['v'], rtol=1e-12, atol=1e-13)


def test_alpha_sgd_zero_is_rmsprop_with_momentum_by_hand():
    # RMSprop with momentum: m = mu2 m + (1-mu2) g^2; v = mu1 v - eta_R g / (sqrt(m) + eps);
    # theta += v.  Whatever eta_SGD is, the trajectory is the same (v = eta * Delta).
    rng = np.random.RandomState(2)
    shape = (5, 3)
    theta0 = rng.standard_normal(shape)
    grads = [rng.standard_normal(shape) * 10.0 ** rng.uniform(-2, 1) for _ in range(150)]
    theta, m, v = theta0.copy(), np.zeros(shape), np.zeros(shape)
    want = []
    for g in grads:
        m = 0.99 * m + 0.01 * g * g
        v = 0.9 * v - 3e-4 * g / (np.sqrt(m) + 1e-8)
        theta = theta + v
        want.append(theta)
    for eta in (0.05, 12.8):
        link = make_param(theta0)
        opt = RMSpropWarmup(lr=eta, alpha_sgd=0.0)
        opt.setup(link)
        got = run_optimizer(opt, link, grads)
        for t in (0, 10, 149):
            np.testing.assert_allclose(got[t], want[t], rtol=1e-11, atol=1e-13)


def test_first_step_rmsprop_part_moves_theta_by_eta_rmsprop_sign():
    # Step 1 from zero state, alpha_SGD = 0: m = 0.01 g^2, so
    # theta1 - theta0 = -eta_R * g / (0.1 |g| + eps) ~= -10 * eta_R * sign(g).
    g = np.array([2.0, -0.5, 1e-3])
    for eta in (0.01, 1.0, 100.0):
        link = make_param(np.zeros(3))
        opt = RMSpropWarmup(lr=eta)
        opt.setup(link)
        run_optimizer(opt, link, [g])
        np.testing.assert_allclose(link.p.array, -3e-4 * g / (0.1 * np.abs(g) + 1e-8),
                                   rtol=1e-12)


def test_hyperparameter_proxies_and_alpha_rmsprop_follows_changes():
    opt = RMSpropWarmup(lr=1.0, lr_rmsprop=2e-4, alpha_sgd=0.0, mu1=0.8, mu2=0.95,
                        eps=1e-6)
    assert (opt.lr, opt.lr_rmsprop, opt.alpha_sgd, opt.mu1, opt.mu2, opt.eps) == \
        (1.0, 2e-4, 0.0, 0.8, 0.95, 1e-6)
    link = make_param(np.array([0.5, -1.0]))
    opt.setup(link)
    rule = link.p.update_rule
    assert isinstance(rule, RMSpropWarmupRule)
    opt.lr = 0.25
    opt.alpha_sgd = 0.4
    assert opt.hyperparam.lr == 0.25 and rule.hyperparam.lr == 0.25
    assert rule.hyperparam.alpha_sgd == 0.4
    assert opt.alpha_rmsprop == pytest.approx(0.6 * 2e-4 / 0.25)

    # two updates with different (lr, alpha_sgd), by hand
    g1, g2 = np.array([1.0, -2.0]), np.array([0.5, 3.0])
    link.p.grad = g1.copy()
    opt.update()
    opt.lr, opt.alpha_sgd = 4.0, 0.9
    link.p.grad = g2.copy()
    opt.update()
    m1 = 0.05 * g1 * g1
    d1 = -(0.4 + (0.6 * 2e-4 / 0.25) / (np.sqrt(m1) + 1e-6)) * g1
    th1 = np.array([0.5, -1.0]) + 0.25 * d1
    m2 = 0.95 * m1 + 0.05 * g2 * g2
    d2 = 0.8 * d1 - (0.9 + (0.1 * 2e-4 / 4.0) / (np.sqrt(m2) + 1e-6)) * g2
    th2 = th1 + 4.0 * d2
    np.testing.assert_allclose(link.p.array, th2, rtol=1e-13)
    np.testing.assert_allclose(rule.state['ms'], m2, rtol=1e-13)
    np.testing.assert_allclose(rule.state['delta'], d2, rtol=1e-13)


def test_state_names_and_zero_init():
    link = make_param(np.ones((2, 3), dtype=np.float32))
    opt = RMSpropWarmup()
    opt.setup(link)
    link.p.grad = np.zeros((2, 3), dtype=np.float32)
    opt.update()
    state = link.p.update_rule.state
    assert set(state) == {'delta', 'ms'}
    assert not state['delta'].any() and not state['ms'].any()
    assert (link.p.array == 1).all()


def test_float16_parameters_are_updated_through_a_float32_master_copy():
    rng = np.random.RandomState(4)
    shape = (8, 3)
    theta0 = rng.standard_normal(shape).astype(np.float16)
    grads = [rng.standard_normal(shape).astype(np.float16) for _ in range(50)]
    etas = np.linspace(0.5, 0.1, 50)
    alphas = np.linspace(0.0, 1.0, 50)
    link = make_param(theta0)
    opt = RMSpropWarmup()          # eps = 1e-8 would underflow in float16
    opt.setup(link)
    run_optimizer(opt, link, grads, etas, alphas)
    rule = link.p.update_rule
    assert link.p.array.dtype == np.float16
    assert rule.state['ms'].dtype == np.float32
    assert rule.state['delta'].dtype == np.float32
    master = rule._fp32_param.array
    assert master.dtype == np.float32
    assert (link.p.array == master.astype(np.float16)).all()
    want, _, _ = reference(theta0.astype(np.float64), grads, etas, alphas)
    np.testing.assert_allclose(master, want[-1], rtol=1e-4, atol=1e-5)


def test_float16_without_fp32_update_rejects_eps_that_underflows():
    link = make_param(np.ones(3, dtype=np.float16))
    opt = RMSpropWarmup()
    opt.use_fp32_update(False)
    opt.setup(link)
    link.p.grad = np.ones(3, dtype=np.float16)
    with pytest.raises(ValueError, match=r'eps=1e-08.*float16'):
        opt.update()


def test_float16_without_fp32_update_and_representable_eps_runs_in_float16():
    rng = np.random.RandomState(5)
    theta0 = rng.standard_normal(6).astype(np.float16)
    grads = [rng.standard_normal(6).astype(np.float16) for _ in range(10)]
    link = make_param(theta0)
    opt = RMSpropWarmup(lr=0.5, alpha_sgd=0.5, eps=1e-4)
    opt.setup(link)
    opt.use_fp32_update(False)
    run_optimizer(opt, link, grads)
    assert link.p.update_rule.state['ms'].dtype == np.float16
    want, _, _ = reference(theta0, grads, [0.5] * 10, [0.5] * 10, eps=1e-4)
    np.testing.assert_allclose(link.p.array, want[-1], rtol=2e-2, atol=2e-2)


def test_works_as_an_optimizer_with_a_loss_function():
    rng = np.random.RandomState(6)
    x = rng.standard_normal((64, 4)).astype(np.float32)
    y = (x @ np.array([[1.0], [-2.0], [0.5], [3.0]], dtype=np.float32)).astype(np.float32)
    model = L.Linear(4, 1)
    opt = RMSpropWarmup(lr=0.05, alpha_sgd=0.5)
    opt.setup(model)

    def loss():
        return chainer.functions.mean_squared_error(model(x), y)
    first = float(loss().array)
    for _ in range(200):
        opt.update(loss)
    assert float(loss().array) < 1e-2 * first


def _trajectory_model(seed):
    model = chainer.Sequential(L.Linear(3, 5), chainer.functions.tanh, L.Linear(5, 2))
    rng = np.random.RandomState(seed)
    for p in model.params():
        p.array[...] = rng.standard_normal(p.shape).astype(np.float32)
    return model


def _schedule(step):
    return 0.5 / (1 + step), min(1.0, step / 10.0)


def _train(model, opt, steps, x, t):
    def loss():
        return chainer.functions.mean_squared_error(model(x), t)
    for step in steps:
        opt.lr, opt.alpha_sgd = _schedule(step)
        opt.update(loss)


def test_serialization_resume_is_bit_identical(tmp_path):
    from chainer_ext.optimizer_hooks import add_weight_decay
    rng = np.random.RandomState(7)
    x = rng.standard_normal((16, 3)).astype(np.float32)
    t = rng.standard_normal((16, 2)).astype(np.float32)

    model = _trajectory_model(0)
    opt = RMSpropWarmup()
    opt.setup(model)
    add_weight_decay(model)
    _train(model, opt, range(0, 12), x, t)
    chainer.serializers.save_npz(str(tmp_path / 'model.npz'), model)
    chainer.serializers.save_npz(str(tmp_path / 'opt.npz'), opt)
    _train(model, opt, range(12, 25), x, t)

    resumed = _trajectory_model(1)            # different weights, overwritten by load
    opt2 = RMSpropWarmup()
    opt2.setup(resumed)
    add_weight_decay(resumed)
    chainer.serializers.load_npz(str(tmp_path / 'model.npz'), resumed)
    chainer.serializers.load_npz(str(tmp_path / 'opt.npz'), opt2)
    assert opt2.t == 12
    _train(resumed, opt2, range(12, 25), x, t)

    for (name, p), (name2, q) in zip(sorted(model.namedparams()),
                                     sorted(resumed.namedparams())):
        assert name == name2
        assert p.array.tobytes() == q.array.tobytes(), name
        for key in ('delta', 'ms'):
            assert (p.update_rule.state[key].tobytes()
                    == q.update_rule.state[key].tobytes()), (name, key)


@pytest.mark.parametrize('kwargs, name', [
    (dict(lr=0.0), 'lr'), (dict(lr=-0.1), 'lr'), (dict(lr=float('nan')), 'lr'),
    (dict(lr_rmsprop=-1e-4), 'lr_rmsprop'),
    (dict(alpha_sgd=-0.01), 'alpha_sgd'), (dict(alpha_sgd=1.01), 'alpha_sgd'),
    (dict(mu1=1.0), 'mu1'), (dict(mu1=-0.1), 'mu1'),
    (dict(mu2=1.0), 'mu2'), (dict(mu2=-0.5), 'mu2'),
    (dict(eps=0.0), 'eps'), (dict(eps=-1e-8), 'eps'),
    (dict(eps=1e-50), 'eps'),           # underflows to 0 in float32
])
def test_constructor_rejects_bad_hyperparameters(kwargs, name):
    (key, value), = kwargs.items()
    with pytest.raises(ValueError, match=r'\b' + re.escape('{}={!r}'.format(name, value))):
        RMSpropWarmup(**kwargs)


def test_eps_float32_underflow_error_names_eps_and_dtype():
    with pytest.raises(ValueError, match=r'eps=1e-50 underflows to 0 in float32'):
        RMSpropWarmup(eps=1e-50)


@pytest.mark.parametrize('attr, value', [
    ('lr', 0.0), ('lr', -1.0), ('alpha_sgd', 2.0), ('alpha_sgd', -0.5),
    ('mu1', 1.5), ('mu2', 1.0), ('eps', 0.0), ('lr_rmsprop', -1.0),
])
def test_update_rejects_hyperparameters_set_later(attr, value):
    link = make_param(np.ones(4, dtype=np.float32))
    opt = RMSpropWarmup()
    opt.setup(link)
    setattr(opt, attr, value)                 # e.g. a schedule setting lr <= 0
    link.p.grad = np.ones(4, dtype=np.float32)
    with pytest.raises(ValueError, match=r'{}={}'.format(attr, value)):
        opt.update()


def test_eps_underflow_is_checked_for_the_actual_dtype():
    # 1e-40 is representable in float64 but not in float32.
    ok = make_param(np.ones(2, dtype=np.float64))
    opt = RMSpropWarmup()
    opt.setup(ok)
    opt.eps = 1e-60
    ok.p.grad = np.ones(2)
    opt.update()
    assert np.isfinite(ok.p.array).all()

    bad = make_param(np.ones(2, dtype=np.float32))
    opt = RMSpropWarmup()
    opt.setup(bad)
    opt.eps = 1e-60
    bad.p.grad = np.ones(2, dtype=np.float32)
    with pytest.raises(ValueError, match=r'eps=1e-60 underflows to 0 in float32'):
        opt.update()


def test_lr_too_small_for_alpha_rmsprop_in_float32_is_rejected():
    link = make_param(np.ones(2, dtype=np.float32))
    opt = RMSpropWarmup()
    opt.setup(link)
    opt.lr = 1e-43      # alpha_RMSprop = 3e-4 / 1e-43 = 3e39 overflows float32
    link.p.grad = np.ones(2, dtype=np.float32)
    with pytest.raises(ValueError, match=r'lr=1e-43'):
        opt.update()


def test_update_rule_constructor_validates():
    with pytest.raises(ValueError, match='alpha_sgd=3'):
        RMSpropWarmupRule(alpha_sgd=3)
    rule = RMSpropWarmupRule(lr=0.2, alpha_sgd=0.5)
    assert rule.hyperparam.lr == 0.2 and rule.hyperparam.lr_rmsprop == 3e-4


def test_gpu_kernel_matches_reference():
    cupy = pytest.importorskip('cupy')
    if chainer.backends.cuda.available is False:
        pytest.skip('CUDA not available')
    theta0, grads, etas, alphas = random_problem((33, 7), 100, np.float32, seed=9)
    link = make_param(theta0)
    link.to_device('@cupy:0')
    opt = RMSpropWarmup()
    opt.setup(link)
    for i, g in enumerate(grads):
        opt.lr, opt.alpha_sgd = float(etas[i]), float(alphas[i])
        link.p.grad = cupy.asarray(g)
        opt.update()
    want, _, _ = reference(theta0, grads, etas, alphas)
    np.testing.assert_allclose(cupy.asnumpy(link.p.array), want[-1], rtol=1e-4,
                               atol=2e-5 * max(1.0, np.abs(want[-1]).max()))


def test_for_recipe_builds_the_hybrid_or_momentum_sgd():
    from chainer_ext.optimizers.recipe import update_rule as for_recipe
    hybrid = for_recipe('rmsprop_warmup', lr_rmsprop=2e-4, lr=0.4, alpha_sgd=0.25)
    assert (hybrid.lr, hybrid.lr_rmsprop, hybrid.alpha_sgd) == (0.4, 2e-4, 0.25)
    momentum = for_recipe('momentum', lr_rmsprop=2e-4, lr=0.4)
    assert (momentum.lr, momentum.lr_rmsprop, momentum.alpha_sgd) == (0.4, 0.0, 1.0)
    with pytest.raises(ValueError, match="got 'adam'"):
        for_recipe('adam', lr=0.1)
