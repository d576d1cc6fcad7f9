"""LARS (You, Gitman & Ginsburg 2017, Algorithm 1) against an independent float64 computation.

The reference below is a plain NumPy transcription of Algorithm 1, per array ("layer")::

    lambda = eta ||w|| / (||g|| + beta ||w||)    (1 where a norm is 0, as the authors' code)
    v = m v + gamma_t lambda (g + beta w);   w = w - v

It shares no code with chainer_ext.
"""
import numpy as np
import pytest

import chainer_ext  # noqa: F401  (compatibility stand-ins before chainer loads)
import chainer
import chainer.links as L
from chainer import optimizer_hooks

from chainer_ext.optimizer_hooks import add_weight_decay
from chainer_ext.optimizers.recipe import update_rule as for_recipe
from chainer_ext.optimizers import LARS

ETA, BETA, M = 0.001, 1e-4, 0.9


def algorithm1(w0, grads, gammas, eta=ETA, beta=BETA, m=M):
    """float64 trajectory of one array; returns the weights after each step and final v."""
    w = np.array(w0, dtype=np.float64)
    v = np.zeros_like(w)
    out = []
    for g, gamma in zip(grads, gammas):
        g = np.asarray(g, dtype=np.float64)
        w_norm, g_norm = np.sqrt(np.sum(w * w)), np.sqrt(np.sum(g * g))
        lam = eta * w_norm / (g_norm + beta * w_norm) if w_norm > 0 and g_norm > 0 else 1.0
        v = m * v + gamma * lam * (g + beta * w)
        w = w - v
        out.append(w.copy())
    return out, v


def one_link(arrays):
    link = chainer.Link()
    with link.init_scope():
        for name, a in arrays.items():
            setattr(link, name, chainer.Parameter(a.copy()))
    return link


def test_one_step_by_hand():
    # A linear W = (3, 4), so beta = 0.2 applies: ||w|| = 5, g = (0.8, -0.6), ||g|| = 1;
    # lambda = 0.001 * 5 / (1 + 0.2 * 5) = 0.0025; g + beta w = (1.4, 0.2);
    # v = 2 lambda (1.4, 0.2) = (0.007, 0.001).
    link = L.Linear(2, 1, nobias=True, initialW=np.array([[3.0, 4.0]]))
    link.W.array = link.W.array.astype(np.float64)
    opt = LARS(lr=2.0, eta=0.001, weight_decay=0.2, momentum=0.9)
    opt.setup(link)
    link.W.grad = np.array([[0.8, -0.6]])
    opt.update()
    np.testing.assert_allclose(link.W.array, [[2.993, 3.999]], rtol=1e-14)
    np.testing.assert_allclose(link.W.update_rule.state['v'], [[0.007, 0.001]], rtol=1e-13)
    # second step: v = 0.9 v + 2 lambda' (g + beta w) with the new w
    w = np.array([2.993, 3.999])
    g = np.array([0.8, -0.6])
    lam = 0.001 * np.linalg.norm(w) / (1.0 + 0.2 * np.linalg.norm(w))
    v = 0.9 * np.array([0.007, 0.001]) + 2.0 * lam * (g + 0.2 * w)
    link.W.grad = np.array([[0.8, -0.6]])
    opt.update()
    np.testing.assert_allclose(link.W.array, [w - v], rtol=1e-14)


@pytest.mark.parametrize('dtype, rtol', [(np.float64, 1e-12), (np.float32, 2e-5)])
def test_trajectory_matches_algorithm_1(dtype, rtol):
    """Several steps with momentum and weight decay, gamma changing every step (as the
    schedule sets ``lr``), gradients over decades, and a zero-norm array: its lambda is 1
    (a zero-initialised BN beta or zero-gamma would never move with lambda = 0)."""
    rng = np.random.RandomState(0)
    w0 = {'conv': rng.standard_normal((8, 3, 3, 3)), 'fc': rng.standard_normal((5, 4)),
          'zero': np.zeros(6)}
    steps = 12
    grads = [{k: rng.standard_normal(w.shape) * 10.0 ** rng.uniform(-3, 1)
              for k, w in w0.items()} for _ in range(steps)]
    gammas = 10.0 * rng.uniform(0.1, 1.0, size=steps)
    link = one_link({k: w.astype(dtype) for k, w in w0.items()})
    opt = LARS(lr=0.0, eta=ETA, weight_decay=BETA, momentum=M)
    opt.setup(link)
    for name in w0:   # a bare Link has no conv/linear W: give every array beta explicitly
        getattr(link, name).update_rule.hyperparam.weight_decay = BETA
    got = {k: [] for k in w0}
    for step in range(steps):
        opt.lr = float(gammas[step])
        for k in w0:
            getattr(link, k).grad = grads[step][k].astype(dtype)
        opt.update()
        for k in w0:
            got[k].append(getattr(link, k).array.copy())
    for k in w0:
        want, v = algorithm1(w0[k].astype(dtype), [g[k].astype(dtype) for g in grads], gammas)
        for step in range(steps):
            np.testing.assert_allclose(got[k][step], want[step], rtol=rtol,
                                       atol=rtol * np.abs(want[step]).max(),
                                       err_msg='{} step {}'.format(k, step))
    assert np.abs(got['zero'][0]).max() > 0   # the zero-norm array moved at once


def test_zero_gradient_gets_lambda_one():
    link = one_link({'p': np.array([3.0, 4.0])})
    opt = LARS(lr=0.5, eta=ETA, weight_decay=0.1, momentum=M)
    opt.setup(link)
    link.p.update_rule.hyperparam.weight_decay = 0.1
    link.p.grad = np.zeros(2)
    opt.update()
    # lambda = 1: v = 0.5 * 0.1 * w
    np.testing.assert_allclose(link.p.array, [3.0 - 0.15, 4.0 - 0.2], rtol=1e-14)


class SmallNet(chainer.Chain):
    def __init__(self):
        super(SmallNet, self).__init__()
        with self.init_scope():
            self.conv = L.Convolution2D(1, 4, 3, pad=1)
            self.bn = L.BatchNormalization(4)
            self.fc = L.Linear(4 * 4 * 4, 3)

    def forward(self, x):
        return self.fc(chainer.functions.relu(self.bn(self.conv(x))))


def small_net():
    np.random.seed(3)
    return SmallNet()


def test_weight_decay_on_conv_and_linear_weights_only():
    net = small_net()
    opt = for_recipe('lars', lr=3.0, eta=0.002, weight_decay=5e-4, momentum=0.8)
    opt.setup(net)
    betas = {name: p.update_rule.hyperparam.weight_decay for name, p in net.namedparams()}
    assert betas == {'/conv/W': 5e-4, '/conv/b': 0.0, '/bn/gamma': 0.0, '/bn/beta': 0.0,
                     '/fc/W': 5e-4, '/fc/b': 0.0}
    rng = np.random.RandomState(1)
    w0 = {name: p.array.copy() for name, p in net.namedparams()}
    grads = {name: rng.standard_normal(p.shape).astype(np.float32)
             for name, p in net.namedparams()}
    for name, p in net.namedparams():
        p.grad = grads[name].copy()
    opt.update()
    for name, p in net.namedparams():
        want, _ = algorithm1(w0[name], [grads[name]], [3.0], eta=0.002, beta=betas[name],
                             m=0.8)
        np.testing.assert_allclose(p.array, want[0], rtol=2e-5, atol=1e-6, err_msg=name)
    # Hooks stay empty: the decay is in the rule, once.
    assert not any(p.update_rule._hookable._pre_update_hooks for p in net.params())


def test_add_weight_decay_refuses_lars_rules():
    net = small_net()
    opt = LARS()
    opt.setup(net)
    with pytest.raises(ValueError, match=r'/conv/W \(LARSRule\) applies weight decay in its '
                                         r'own update'):
        add_weight_decay(net, 1e-4)
    assert not any(p.update_rule._hookable._pre_update_hooks for p in net.params())


def test_lr_is_gamma_and_the_proxies_reach_the_rules():
    opt = for_recipe('lars', lr=7.0, eta=0.003, weight_decay=2e-4, momentum=0.5)
    assert (opt.lr, opt.eta, opt.weight_decay, opt.momentum) == (7.0, 0.003, 2e-4, 0.5)
    net = small_net()
    opt.setup(net)
    opt.lr = 0.25
    rule = net.conv.W.update_rule
    assert (rule.hyperparam.lr, rule.hyperparam.eta, rule.hyperparam.momentum) == (
        0.25, 0.003, 0.5)


def test_float16_parameters_use_a_float32_master_copy():
    rng = np.random.RandomState(2)
    w0 = rng.standard_normal((300,)).astype(np.float16) * 50   # ||w||^2 > float16 max
    g = rng.standard_normal((300,)).astype(np.float16)
    link = one_link({'p': w0})
    opt = LARS(lr=5.0)
    opt.setup(link)
    link.p.update_rule.hyperparam.weight_decay = BETA
    link.p.grad = g.copy()
    opt.update()
    want, _ = algorithm1(w0.astype(np.float32), [g.astype(np.float32)], [5.0])
    master = link.p.update_rule._fp32_param.array
    assert master.dtype == np.float32
    np.testing.assert_allclose(master, want[0], rtol=2e-5)
    assert link.p.array.dtype == np.float16 and np.isfinite(link.p.array).all()


def test_resume_is_bit_identical(tmp_path):
    rng = np.random.RandomState(5)
    x = rng.standard_normal((8, 1, 4, 4)).astype(np.float32)
    t = rng.randint(0, 3, size=8).astype(np.int32)

    def train(model, opt, steps):
        for step in steps:
            opt.lr = 10.0 * (1 - step / 20.0) ** 2
            opt.update(lambda: chainer.functions.softmax_cross_entropy(model(x), t))

    model = small_net()
    opt = LARS()
    opt.setup(model)
    train(model, opt, range(0, 6))
    chainer.serializers.save_npz(str(tmp_path / 'model.npz'), model)
    chainer.serializers.save_npz(str(tmp_path / 'opt.npz'), opt)
    train(model, opt, range(6, 12))
    resumed = small_net()
    opt2 = LARS()
    opt2.setup(resumed)
    chainer.serializers.load_npz(str(tmp_path / 'model.npz'), resumed)
    chainer.serializers.load_npz(str(tmp_path / 'opt.npz'), opt2)
    train(resumed, opt2, range(6, 12))
    for (name, p), (_, q) in zip(sorted(model.namedparams()), sorted(resumed.namedparams())):
        assert p.array.tobytes() == q.array.tobytes(), name
        assert p.update_rule.state['v'].tobytes() == q.update_rule.state['v'].tobytes(), name


@pytest.mark.parametrize('kwargs, name', [
    (dict(lr=-1.0), 'lr'), (dict(lr=float('nan')), 'lr'), (dict(eta=0.0), 'eta'),
    (dict(weight_decay=-1e-4), 'weight_decay'), (dict(momentum=1.0), 'momentum'),
])
def test_bad_hyperparameters_name_the_value(kwargs, name):
    with pytest.raises(ValueError, match='{}='.format(name)):
        LARS(**kwargs)
    opt = LARS()
    net = small_net()
    opt.setup(net)
    setattr(opt, name, kwargs[name])      # as a schedule would, later
    for p in net.params():
        p.grad = np.ones_like(p.array)
    with pytest.raises(ValueError, match='{}='.format(name)):
        opt.update()


def test_chainer_gradient_lars_differs_where_the_docstring_says():
    """GradientLARS(threshold=0, eps=0) with MomentumSGD(lr=gamma * eta) is Algorithm 1 where
    both norms are positive; a zero-norm array moves by gamma * eta * g there (LARS: gamma * g),
    and its default threshold 0.01 gives the raw rate to arrays of small norm."""
    rng = np.random.RandomState(4)
    arrays = {'big': rng.standard_normal(10), 'small': 1e-3 * rng.standard_normal(10),
              'zero': np.zeros(10)}
    grads = {k: rng.standard_normal(10) for k in arrays}
    gamma = 4.0

    def run(opt, hook=None):
        link = one_link(arrays)
        opt.setup(link)
        if hook is not None:
            opt.add_hook(hook)
        for name in arrays:
            getattr(link, name).update_rule.hyperparam.weight_decay = BETA
            getattr(link, name).grad = grads[name].copy()
        opt.update()
        return {name: getattr(link, name).array for name in arrays}

    ours = run(LARS(lr=gamma, eta=ETA, weight_decay=BETA, momentum=M))
    theirs = run(chainer.optimizers.MomentumSGD(lr=gamma * ETA, momentum=M),
                 optimizer_hooks.GradientLARS(threshold=0.0, weight_decay=BETA, eps=0.0))
    default = run(chainer.optimizers.MomentumSGD(lr=gamma * ETA, momentum=M),
                  optimizer_hooks.GradientLARS(weight_decay=BETA))
    np.testing.assert_allclose(theirs['big'], ours['big'], rtol=1e-12)
    np.testing.assert_allclose(theirs['small'], ours['small'], rtol=1e-12)
    np.testing.assert_allclose(ours['zero'], -gamma * grads['zero'], rtol=1e-12)
    np.testing.assert_allclose(theirs['zero'], -gamma * ETA * grads['zero'], rtol=1e-12)
    assert not np.allclose(default['small'], ours['small'])


def test_gpu_kernel_matches_algorithm_1():
    cupy = pytest.importorskip('cupy')
    if chainer.backends.cuda.available is False:
        pytest.skip('CUDA not available')
    rng = np.random.RandomState(6)
    w0 = {'w': rng.standard_normal((33, 7)).astype(np.float32), 'zero': np.zeros(5, np.float32)}
    grads = [{k: rng.standard_normal(w.shape).astype(np.float32) for k, w in w0.items()}
             for _ in range(10)]
    gammas = rng.uniform(1, 10, size=10)
    link = one_link(w0)
    link.to_device('@cupy:0')
    opt = LARS(lr=0.0)
    opt.setup(link)
    for name in w0:
        getattr(link, name).update_rule.hyperparam.weight_decay = BETA
    for step, g in enumerate(grads):
        opt.lr = float(gammas[step])
        for name in w0:
            getattr(link, name).grad = cupy.asarray(g[name])
        opt.update()
    for name in w0:
        want, _ = algorithm1(w0[name], [g[name] for g in grads], gammas)
        np.testing.assert_allclose(cupy.asnumpy(getattr(link, name).array), want[-1],
                                   rtol=1e-4, atol=1e-5)
