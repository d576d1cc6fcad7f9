"""Weight decay 1e-4 on convolution and linear weights only (Goyal et al., as the paper,
Appendix A).

:func:`add_weight_decay` attaches Chainer's ``WeightDecay`` as a per-parameter
update-rule hook to every conv/deconv/linear ``W`` (not BN gamma/beta, not biases).
Under ChainerMN it runs after the gradient all-reduce, so it adds ``rate * W`` to
the mean gradient, as A.1 requires.  An update rule that applies weight decay in its own
update (LARS, whose beta also enters its local rate) is refused: it would be applied twice.
"""
import chainer
import chainer.links as L
from chainer import optimizer_hooks


#: Link classes whose ``W`` gets weight decay (subclasses included).
DECAYED_LINKS = (
    L.Convolution2D,
    L.ConvolutionND,
    L.DilatedConvolution2D,
    L.DepthwiseConvolution2D,
    L.Deconvolution2D,
    L.DeconvolutionND,
    L.Linear,
)


def decayed_weights(model):
    """``(path, W)`` of every conv/deconv/linear ``W`` under ``model``: the arrays that get
    weight decay (not BN gamma/beta, not biases)."""
    for path, link in model.namedlinks():
        if isinstance(link, DECAYED_LINKS) and getattr(link, 'W', None) is not None:
            yield path.rstrip('/') + '/W', link.W


def add_weight_decay(model, rate=1e-4):
    """Attaches ``WeightDecay(rate)`` to the update rule of every conv/linear ``W``.

    Call after ``optimizer.setup(model)`` (which creates the update rules).  Batch
    normalization ``gamma``/``beta`` and all biases ``b`` are left undecayed.

    Args:
        model (~chainer.Link): The model (or any sub-link) whose links are scanned.
        rate (float): Decay coefficient lambda (>= 0); Goyal et al. use 1e-4.

    Returns:
        int: The number of parameter arrays that received weight decay.

    Raises:
        ValueError: ``rate`` is negative or not finite, or a ``W`` has no update rule
            (the optimizer has not been set up on ``model``), or weight decay was already
            added to it, or its rule applies weight decay itself (LARS).
    """
    if not 0 <= rate < float('inf'):
        raise ValueError(
            'add_weight_decay: rate must be a finite number >= 0, got rate={!r}'
            .format(rate))
    if not isinstance(model, chainer.Link):
        raise ValueError(
            'add_weight_decay: model must be a chainer.Link, got {!r}'.format(model))
    count = 0
    for where, W in decayed_weights(model):
        rule = getattr(W, 'update_rule', None)
        if rule is None:
            raise ValueError(
                'add_weight_decay: {} has no update rule; call optimizer.setup(model) '
                'first'.format(where))
        if getattr(rule, 'weight_decay_in_update', False):
            raise ValueError(
                'add_weight_decay: the update rule of {} ({}) applies weight decay in its '
                'own update; give it to the optimizer (weight_decay=...) instead'.format(
                    where, type(rule).__name__))
        try:
            rule.add_hook(optimizer_hooks.WeightDecay(rate))
        except KeyError:
            raise ValueError(
                'add_weight_decay: {} already has a WeightDecay hook'.format(where))
        count += 1
    return count
