"""Hybrid momentum-SGD / RMSprop-with-momentum update rule (paper, Appendix A.1)::

    m_t = mu2 m_{t-1} + (1 - mu2) g_t^2
    Delta_t = mu1 Delta_{t-1} - (alpha_SGD + alpha_RMSprop / (sqrt(m_t) + eps)) g_t
    theta_t = theta_{t-1} + eta_SGD Delta_t,   alpha_RMSprop = (1 - alpha_SGD) eta_RMSprop / eta_SGD

alpha_RMSprop is recomputed at every update from the scheduled ``lr`` and
``alpha_sgd``.  Paper values: mu1 = 0.9, mu2 = 0.99, eps = 1e-8, eta_RMSprop = 3e-4.
CPU: fused numba loop (NumPy fallback); GPU: one CuPy kernel.  Float16: docs/DESIGN.md.
"""
import numpy

import chainer
from chainer import optimizer
from chainer.backends import cuda

from chainer_ext.optimizers import _hybrid_update_cpu


_default_hyperparam = optimizer.Hyperparameter()
_default_hyperparam.lr = 0.1             # eta_SGD; 0.1 is Goyal et al.'s rate for batch 256
_default_hyperparam.lr_rmsprop = 3e-4    # eta_RMSprop
_default_hyperparam.alpha_sgd = 0.0      # start as RMSprop with momentum
_default_hyperparam.mu1 = 0.9
_default_hyperparam.mu2 = 0.99
_default_hyperparam.eps = 1e-8


def check_hyperparameters(lr, lr_rmsprop, alpha_sgd, mu1, mu2, eps, dtype=None):
    """Raises ``ValueError`` naming the offending value; returns nothing.

    ``dtype`` is the dtype the update is computed in; eps must not underflow to 0 there.
    Every test is written so that NaN fails it.
    """
    if not lr > 0:
        raise ValueError(
            'RMSpropWarmup: lr (eta_SGD) must be > 0, got lr={!r}'.format(lr))
    if not lr_rmsprop >= 0:
        raise ValueError(
            'RMSpropWarmup: lr_rmsprop (eta_RMSprop) must be >= 0, got '
            'lr_rmsprop={!r}'.format(lr_rmsprop))
    if not 0 <= alpha_sgd <= 1:
        raise ValueError(
            'RMSpropWarmup: alpha_sgd must lie in [0, 1], got '
            'alpha_sgd={!r}'.format(alpha_sgd))
    if not 0 <= mu1 < 1:
        raise ValueError(
            'RMSpropWarmup: mu1 must lie in [0, 1), got mu1={!r}'.format(mu1))
    if not 0 <= mu2 < 1:
        raise ValueError(
            'RMSpropWarmup: mu2 must lie in [0, 1), got mu2={!r}'.format(mu2))
    if not eps > 0:
        raise ValueError(
            'RMSpropWarmup: eps must be > 0, got eps={!r}'.format(eps))
    if dtype is not None:
        _dtype_scalars(lr, lr_rmsprop, alpha_sgd, mu1, mu2, eps, dtype)


def _dtype_scalars(lr, lr_rmsprop, alpha_sgd, mu1, mu2, eps, dtype):
    # Casts the kernel scalars to ``dtype``, rejecting an eps or lr that underflows to 0
    # and an alpha_RMSprop that overflows (lr far too small for the dtype).
    dtype = numpy.dtype(dtype)
    t = dtype.type
    with numpy.errstate(over='ignore', under='ignore'):
        eps_t = t(eps)
        lr_t = t(lr)
        alpha_rmsprop = (1.0 - float(alpha_sgd)) * float(lr_rmsprop) / float(lr)
        alpha_rmsprop_t = t(alpha_rmsprop)
    if eps_t == 0:
        raise ValueError(
            'RMSpropWarmup: eps={!r} underflows to 0 in {} (the dtype of the update); '
            'use a larger eps, or keep use_fp32_update enabled for float16 '
            'parameters'.format(eps, dtype.name))
    if lr_t == 0 or not numpy.isfinite(lr_t):
        raise ValueError(
            'RMSpropWarmup: lr={!r} is not representable as a positive finite {} '
            '(the dtype of the update)'.format(lr, dtype.name))
    if not numpy.isfinite(alpha_rmsprop_t):
        raise ValueError(
            'RMSpropWarmup: alpha_RMSprop = (1 - alpha_sgd) * lr_rmsprop / lr = {!r} '
            'is not finite in {} (lr={!r} is too small)'.format(
                alpha_rmsprop, dtype.name, lr))
    return (lr_t, t(alpha_sgd), alpha_rmsprop_t, t(mu1), t(mu2),
            t(1.0 - float(mu2)), eps_t)


def update_coefficients(hyperparam, dtype):
    """Validates ``hyperparam`` for an update in ``dtype`` and returns the kernel scalars
    ``(eta, alpha_sgd, alpha_rmsprop, mu1, mu2, 1 - mu2, eps)`` as ``dtype`` scalars.

    alpha_RMSprop = (1 - alpha_SGD) * eta_RMSprop / eta_SGD is formed here, in float64,
    from the hyperparameters in force now.
    """
    hp = hyperparam
    lr, lr_rmsprop, alpha_sgd = hp.lr, hp.lr_rmsprop, hp.alpha_sgd
    mu1, mu2, eps = hp.mu1, hp.mu2, hp.eps
    check_hyperparameters(lr, lr_rmsprop, alpha_sgd, mu1, mu2, eps)
    return _dtype_scalars(lr, lr_rmsprop, alpha_sgd, mu1, mu2, eps, dtype)


class RMSpropWarmupRule(optimizer.UpdateRule):

    """Update rule of :class:`RMSpropWarmup` (Akiba et al. 2017, Appendix A.1).

    State: ``delta`` (Delta, the momentum, free of eta) and ``ms`` (m, the moving average
    of g*g), both zero-initialised.  ``use_fp32_update`` is enabled by default; it only
    affects float16 parameters (see the module docstring).

    Args:
        parent_hyperparam (~chainer.optimizer.Hyperparameter): Hyperparameter that
            provides the default values.
        lr (float): eta = eta_SGD.
        lr_rmsprop (float): eta_RMSprop.
        alpha_sgd (float): alpha_SGD in [0, 1].
        mu1 (float): Momentum coefficient in [0, 1).
        mu2 (float): Decay of the second-moment average in [0, 1).
        eps (float): Added to sqrt(m) for numerical stability.
    """

    is_elementwise = True

    _kernel = None

    def __init__(self, parent_hyperparam=None, lr=None, lr_rmsprop=None,
                 alpha_sgd=None, mu1=None, mu2=None, eps=None):
        super(RMSpropWarmupRule, self).__init__(
            parent_hyperparam or _default_hyperparam)
        for name, value in (('lr', lr), ('lr_rmsprop', lr_rmsprop),
                            ('alpha_sgd', alpha_sgd), ('mu1', mu1),
                            ('mu2', mu2), ('eps', eps)):
            if value is not None:
                setattr(self.hyperparam, name, value)
        hp = self.hyperparam
        check_hyperparameters(hp.lr, hp.lr_rmsprop, hp.alpha_sgd, hp.mu1,
                              hp.mu2, hp.eps, numpy.float32)
        self.use_fp32_update()

    def init_state(self, param):
        with chainer.using_device(param.device):
            xp = param.device.xp
            self.state['delta'] = xp.zeros_like(param.data)
            self.state['ms'] = xp.zeros_like(param.data)

    def update_core_cpu(self, param):
        grad = param.grad
        if grad is None:
            return
        coef = update_coefficients(self.hyperparam, param.dtype)
        _hybrid_update_cpu.update(param.data, grad, self.state['ms'],
                                  self.state['delta'], *coef)

    def update_core_gpu(self, param):
        grad = param.grad
        if grad is None:
            return
        coef = update_coefficients(self.hyperparam, param.dtype)
        if RMSpropWarmupRule._kernel is None:
            RMSpropWarmupRule._kernel = cuda.elementwise(
                'T grad, T eta, T alpha_sgd, T alpha_rmsprop, T mu1, T mu2, '
                'T one_minus_mu2, T eps',
                'T param, T ms, T delta',
                '''ms = mu2 * ms + one_minus_mu2 * grad * grad;
                   delta = mu1 * delta
                           - (alpha_sgd + alpha_rmsprop / (sqrt(ms) + eps)) * grad;
                   param += eta * delta;''',
                'rmsprop_warmup')
        RMSpropWarmupRule._kernel(grad, *coef, param.data, self.state['ms'],
                                  self.state['delta'])


class RMSpropWarmup(optimizer.GradientMethod):

    """RMSprop warm-up optimizer of Akiba et al. (2017), Appendix A.1.

    A blend of momentum SGD and RMSprop with momentum; ``alpha_sgd`` moves it from RMSprop
    (0) to momentum SGD (1), normally along :func:`chainer_ext.optimizers.schedules.elu_alpha_sgd`
    set every iteration by :class:`chainer_ext.extensions.EpochSchedule` (``'alpha_sgd'``).
    The equations are in the module docstring, float16 handling in docs/DESIGN.md.  Weight
    decay is not part of this rule: :func:`chainer_ext.optimizer_hooks.add_weight_decay` adds it
    to the gradient as a per-parameter hook, after the all-reduce.

    Args:
        lr (float): eta = eta_SGD, the SGD learning rate (> 0).
        lr_rmsprop (float): eta_RMSprop (>= 0); the paper uses 3e-4.
        alpha_sgd (float): alpha_SGD in [0, 1].
        mu1 (float): Momentum coefficient in [0, 1); the paper uses 0.9.
        mu2 (float): Second-moment decay in [0, 1); the paper uses 0.99.
        eps (float): Stability constant (> 0, representable in float32); 1e-8.

    ``lr``, ``lr_rmsprop``, ``alpha_sgd``, ``mu1``, ``mu2`` and ``eps`` are hyperparameter
    proxies; ``alpha_rmsprop`` is the derived coefficient in force (read-only).  Invalid
    values raise ``ValueError`` here and, if set later (e.g. by a schedule), at the next
    update.
    """

    def __init__(self, lr=_default_hyperparam.lr,
                 lr_rmsprop=_default_hyperparam.lr_rmsprop,
                 alpha_sgd=_default_hyperparam.alpha_sgd,
                 mu1=_default_hyperparam.mu1, mu2=_default_hyperparam.mu2,
                 eps=_default_hyperparam.eps):
        check_hyperparameters(lr, lr_rmsprop, alpha_sgd, mu1, mu2, eps,
                              numpy.float32)
        super(RMSpropWarmup, self).__init__()
        self.hyperparam.lr = lr
        self.hyperparam.lr_rmsprop = lr_rmsprop
        self.hyperparam.alpha_sgd = alpha_sgd
        self.hyperparam.mu1 = mu1
        self.hyperparam.mu2 = mu2
        self.hyperparam.eps = eps
        # float16 parameters are updated in float32 unless use_fp32_update(False).
        self._use_fp32_update = True

    lr = optimizer.HyperparameterProxy('lr')
    lr_rmsprop = optimizer.HyperparameterProxy('lr_rmsprop')
    alpha_sgd = optimizer.HyperparameterProxy('alpha_sgd')
    mu1 = optimizer.HyperparameterProxy('mu1')
    mu2 = optimizer.HyperparameterProxy('mu2')
    eps = optimizer.HyperparameterProxy('eps')

    @property
    def alpha_rmsprop(self):
        """alpha_RMSprop = (1 - alpha_SGD) * eta_RMSprop / eta_SGD, from the values now."""
        hp = self.hyperparam
        return (1.0 - hp.alpha_sgd) * hp.lr_rmsprop / hp.lr

    def create_update_rule(self):
        rule = RMSpropWarmupRule(self.hyperparam)
        rule.use_fp32_update(self._use_fp32_update)
        return rule

    def use_fp32_update(self, flag=True):
        """Enables (default) or disables the float32 master copy for float16 parameters.

        Unlike ``GradientMethod.use_fp32_update``, ``flag=False`` is passed on to the
        update rules of an already set-up target.
        """
        self._use_fp32_update = flag
        link = getattr(self, 'target', None)
        if link is not None:
            for param in link.params():
                param.update_rule.use_fp32_update(flag)

