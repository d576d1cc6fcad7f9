"""Weight decay 1e-4 on conv/linear W only (Goyal et al. 2017, adopted by Akiba et al. 2017).

Checked against a hand computation of one RMSpropWarmup step with alpha_SGD = 1 (plain
momentum SGD from zero state: theta1 = theta0 - eta * g_eff), where g_eff = g + 1e-4 * W for
convolution/linear weights and g_eff = g for biases and batch-normalization gamma/beta.
"""
import numpy as np
import pytest

import chainer_ext  # noqa: F401  (compatibility stand-ins before chainer loads)
import chainer
import chainer.links as L

import chainermn

from chainer_ext.optimizers import RMSpropWarmup
from chainer_ext.optimizer_hooks import add_weight_decay


class MyLinear(L.Linear):
    """A subclass of Linear: still gets weight decay."""


class Net(chainer.Chain):
    def __init__(self):
        super(Net, self).__init__()
        with self.init_scope():
            self.conv = L.Convolution2D(2, 3, ksize=3, nobias=False)
            self.bn = L.BatchNormalization(3)
            self.deconv = L.Deconvolution2D(3, 2, ksize=2)
            self.fc = L.Linear(4, 5)
            self.fc2 = MyLinear(5, 2, nobias=True)
            self.scale = L.Scale(W_shape=(3,), bias_term=True)   # not conv/linear


DECAYED = {'/conv/W', '/deconv/W', '/fc/W', '/fc2/W'}


def _net_with_grads(seed=0):
    net = Net()
    rng = np.random.RandomState(seed)
    for p in net.params():
        p.array[...] = rng.standard_normal(p.shape).astype(p.dtype)
    grads = {name: rng.standard_normal(p.shape).astype(p.dtype)
             for name, p in net.namedparams()}
    return net, grads


def test_decay_on_conv_and_linear_weights_only():
    net, grads = _net_with_grads()
    theta0 = {name: p.array.copy() for name, p in net.namedparams()}
    eta = 0.5
    opt = RMSpropWarmup(lr=eta, alpha_sgd=1.0)
    opt.setup(net)
    assert add_weight_decay(net, rate=1e-4) == len(DECAYED)
    for name, p in net.namedparams():
        p.grad = grads[name].copy()
    opt.update()
    names = {name for name, _ in net.namedparams()}
    assert {'/bn/gamma', '/bn/beta', '/conv/b', '/fc/b', '/scale/W'} <= names
    for name, p in net.namedparams():
        g = grads[name].astype(np.float64)
        if name in DECAYED:
            g = g + 1e-4 * theta0[name]
        want = theta0[name] - eta * g
        np.testing.assert_allclose(p.array, want, rtol=1e-6, atol=1e-7, err_msg=name)
    # and the undecayed ones really are undecayed (decay would change them by ~5e-5 * W)
    params = dict(net.namedparams())
    for name in ('/bn/gamma', '/bn/beta', '/conv/b', '/fc/b'):
        np.testing.assert_array_equal(params[name].array,
                                      theta0[name] - eta * grads[name])


def test_default_rate_is_goyal_1e_4():
    net, _ = _net_with_grads()
    opt = RMSpropWarmup()
    opt.setup(net)
    add_weight_decay(net)
    hooks = net.conv.W.update_rule._hookable._pre_update_hooks
    assert list(hooks) == ['WeightDecay']
    assert isinstance(hooks['WeightDecay'], chainer.optimizer_hooks.WeightDecay)
    assert hooks['WeightDecay'].rate == 1e-4
    assert not net.bn.gamma.update_rule._hookable._pre_update_hooks
    assert not net.conv.b.update_rule._hookable._pre_update_hooks


def test_uninitialized_weights_are_counted_and_decayed_once_initialized():
    model = L.Linear(None, 3)
    opt = RMSpropWarmup(lr=1.0, alpha_sgd=1.0)
    opt.setup(model)
    assert add_weight_decay(model) == 1
    x = np.ones((1, 2), dtype=np.float32)
    model(x)                                   # initializes W (3, 2)
    W0 = model.W.array.copy()
    model.cleargrads()
    model.W.grad = np.zeros((3, 2), dtype=np.float32)
    model.b.grad = np.zeros(3, dtype=np.float32)
    opt.update()
    np.testing.assert_allclose(model.W.array, W0 - 1e-4 * W0, rtol=1e-6)


def test_decay_applies_to_the_all_reduced_mean_gradient():
    # _MultiNodeOptimizer.update: multi_node_mean_grad first, then actual.update(), whose
    # update rules run the WeightDecay hook.  A fake 2-worker communicator whose other
    # worker has zero gradients halves g; decay must then add 1e-4 * W to g / 2.
    class HalvingCommunicator(object):
        def bcast_data(self, model):
            pass

        def multi_node_mean_grad(self, model, zero_fill=False):
            for p in model.params():
                p.grad = p.grad / 2

    net, grads = _net_with_grads(1)
    theta0 = {name: p.array.copy() for name, p in net.namedparams()}
    eta = 2.0
    opt = chainermn.create_multi_node_optimizer(
        RMSpropWarmup(lr=eta, alpha_sgd=1.0), HalvingCommunicator())
    opt.setup(net)
    assert add_weight_decay(net) == len(DECAYED)

    def step():
        for name, p in net.namedparams():
            p.grad = grads[name].copy()
        opt.update()
    step()                         # first call of a multi-node optimizer only broadcasts
    for name, p in net.namedparams():
        np.testing.assert_array_equal(p.array, theta0[name])
    step()
    for name, p in net.namedparams():
        g = grads[name].astype(np.float64) / 2
        if name in DECAYED:
            g = g + 1e-4 * theta0[name]
        np.testing.assert_allclose(p.array, theta0[name] - eta * g, rtol=1e-6,
                                   atol=1e-7, err_msg=name)


@pytest.mark.parametrize('rate', [-1e-4, float('nan'), float('inf')])
def test_bad_rate_raises(rate):
    net, _ = _net_with_grads()
    RMSpropWarmup().setup(net)
    with pytest.raises(ValueError, match='rate={!r}'.format(rate)):
        add_weight_decay(net, rate)


def test_before_setup_raises():
    net, _ = _net_with_grads()
    with pytest.raises(ValueError, match='/conv/W has no update rule'):
        add_weight_decay(net)


def test_twice_raises():
    net, _ = _net_with_grads()
    RMSpropWarmup().setup(net)
    add_weight_decay(net)
    with pytest.raises(ValueError, match='already has a WeightDecay hook'):
        add_weight_decay(net)


def test_not_a_link_raises():
    with pytest.raises(ValueError, match='model must be a chainer.Link'):
        add_weight_decay(object())
