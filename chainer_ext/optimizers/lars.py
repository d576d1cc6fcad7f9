"""LARS, layer-wise adaptive rate scaling (You, Gitman & Ginsburg 2017, Algorithm 1): the
method of Table 1's You et al. row.  Per parameter array w with gradient g (after the
all-reduce mean)::

    lambda = eta ||w|| / (||g|| + beta ||w||)      (1 where ||w|| or ||g|| is 0)
    v      = m v + gamma_t lambda (g + beta w)
    w      = w - v

gamma_t is ``lr`` (set every iteration by :func:`chainer_ext.optimizers.schedules.lars_lr`),
eta the trust coefficient, beta the weight decay (in the rule itself, for conv/linear ``W``
only; :func:`~chainer_ext.optimizer_hooks.add_weight_decay` refuses LARS rules), m the
momentum.  CPU: NumPy; GPU: norms on the device and one CuPy kernel.  Why not Chainer's
``GradientLARS`` hook: docs/DESIGN.md.
"""
import math

import numpy

import chainer
from chainer import optimizer
from chainer.backends import cuda

from chainer_ext.optimizer_hooks import weight_decay as _weight_decay


_default_hyperparam = optimizer.Hyperparameter()
_default_hyperparam.lr = 10.0           # gamma; the reference code's peak below batch 16k
_default_hyperparam.eta = 0.001         # trust coefficient of the LARS paper
_default_hyperparam.weight_decay = 1e-4
_default_hyperparam.momentum = 0.9


def check_hyperparameters(lr, eta, weight_decay, momentum):
    """Raises ``ValueError`` naming the offending value (NaN fails every test)."""
    if not 0 <= lr < math.inf:
        raise ValueError('LARS: lr (gamma) must be a finite number >= 0, got lr={!r}'.format(lr))
    if not 0 < eta < math.inf:
        raise ValueError('LARS: eta (trust coefficient) must be a finite number > 0, got '
                         'eta={!r}'.format(eta))
    if not 0 <= weight_decay < math.inf:
        raise ValueError('LARS: weight_decay (beta) must be a finite number >= 0, got '
                         'weight_decay={!r}'.format(weight_decay))
    if not 0 <= momentum < 1:
        raise ValueError('LARS: momentum must lie in [0, 1), got momentum={!r}'.format(momentum))


def local_rate(w_norm, g_norm, eta, weight_decay):
    """lambda = eta ||w|| / (||g|| + beta ||w||), or 1 where either norm is 0 (or NaN)."""
    if w_norm > 0 and g_norm > 0:
        return eta * w_norm / (g_norm + weight_decay * w_norm)
    return 1.0


class LARSRule(optimizer.UpdateRule):

    """Update rule of :class:`LARS` for one parameter array (one "layer" of Algorithm 1).

    State: ``v``, zero-initialised.  :class:`LARS` enables ``use_fp32_update``: float16
    parameters are updated through a float32 master copy.

    Args:
        parent_hyperparam (~chainer.optimizer.Hyperparameter): Hyperparameter that
            provides the default values.
        lr (float): gamma, the global rate.
        eta (float): Trust coefficient.
        weight_decay (float): beta, for this array (0 for BN parameters and biases).
        momentum (float): m in [0, 1).
    """

    #: lambda needs norms over the whole array.
    is_elementwise = False
    #: Weight decay is part of this rule's update (Algorithm 1), not a hook.
    weight_decay_in_update = True

    _kernel = None

    def __init__(self, parent_hyperparam=None, lr=None, eta=None, weight_decay=None,
                 momentum=None):
        super(LARSRule, self).__init__(parent_hyperparam or _default_hyperparam)
        for name, value in (('lr', lr), ('eta', eta), ('weight_decay', weight_decay),
                            ('momentum', momentum)):
            if value is not None:
                setattr(self.hyperparam, name, value)
        hp = self.hyperparam
        check_hyperparameters(hp.lr, hp.eta, hp.weight_decay, hp.momentum)

    def init_state(self, param):
        with chainer.using_device(param.device):
            self.state['v'] = param.device.xp.zeros_like(param.data)

    def update_core_cpu(self, param):
        grad = param.grad
        if grad is None:
            return
        hp = self.hyperparam
        check_hyperparameters(hp.lr, hp.eta, hp.weight_decay, hp.momentum)
        w = param.data
        rate = local_rate(float(numpy.linalg.norm(w.ravel())),
                          float(numpy.linalg.norm(grad.ravel())), hp.eta, hp.weight_decay)
        t = w.dtype.type
        step = hp.lr * rate
        v = self.state['v']
        v *= t(hp.momentum)
        v += t(step) * grad
        if hp.weight_decay:
            v += t(step * hp.weight_decay) * w
        w -= v

    def update_core_gpu(self, param):
        grad = param.grad
        if grad is None:
            return
        hp = self.hyperparam
        check_hyperparameters(hp.lr, hp.eta, hp.weight_decay, hp.momentum)
        xp = cuda.cupy
        w = param.data
        t = w.dtype.type
        if LARSRule._kernel is None:
            LARSRule._kernel = cuda.elementwise(
                'T grad, T w_norm, T g_norm, T lr, T eta, T weight_decay, T momentum',
                'T param, T v',
                '''T rate = (w_norm > 0 && g_norm > 0)
                       ? eta * w_norm / (g_norm + weight_decay * w_norm) : (T)1;
                   v = momentum * v + lr * rate * (grad + weight_decay * param);
                   param -= v;''',
                'lars')
        LARSRule._kernel(grad, xp.linalg.norm(w), xp.linalg.norm(grad), t(hp.lr), t(hp.eta),
                         t(hp.weight_decay), t(hp.momentum), w, self.state['v'])


class LARS(optimizer.GradientMethod):

    """LARS with momentum (You, Gitman & Ginsburg 2017, Algorithm 1); see the module docstring.

    Args:
        lr (float): gamma, the global rate (>= 0); a schedule sets it every iteration.
        eta (float): Trust coefficient (> 0); the paper's is 0.001.
        weight_decay (float): beta (>= 0), applied by :meth:`setup` to the ``W`` of
            convolution and linear links only (as :func:`add_weight_decay`); 0 elsewhere.
        momentum (float): m in [0, 1); 0.9.

    ``lr``, ``eta``, ``weight_decay`` and ``momentum`` are hyperparameter proxies.  Invalid
    values raise ``ValueError`` here and, if set later, at the next update.
    """

    def __init__(self, lr=_default_hyperparam.lr, eta=_default_hyperparam.eta,
                 weight_decay=_default_hyperparam.weight_decay,
                 momentum=_default_hyperparam.momentum):
        check_hyperparameters(lr, eta, weight_decay, momentum)
        super(LARS, self).__init__()
        self.hyperparam.lr = lr
        self.hyperparam.eta = eta
        self.hyperparam.weight_decay = weight_decay
        self.hyperparam.momentum = momentum
        self._use_fp32_update = True   # float16 parameters through float32 master copies

    lr = optimizer.HyperparameterProxy('lr')
    eta = optimizer.HyperparameterProxy('eta')
    weight_decay = optimizer.HyperparameterProxy('weight_decay')
    momentum = optimizer.HyperparameterProxy('momentum')

    def create_update_rule(self):
        return LARSRule(self.hyperparam)

    def setup(self, link):
        """Sets up ``link``; BN parameters and biases get beta = 0 in their rules."""
        super(LARS, self).setup(link)
        decayed = {id(W) for _, W in _weight_decay.decayed_weights(link)}
        for param in link.params():
            if id(param) not in decayed:
                param.update_rule.hyperparam.weight_decay = 0.0
        return self
