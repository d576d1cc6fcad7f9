"""Weight decay on convolution and linear weights only (Goyal et al. 2017, as adopted by
Akiba et al. 2017, Appendix A / "the same settings unless otherwise specified").

Goyal et al. use weight decay lambda = 1e-4 and do not apply it to the batch-normalization
gamma and beta; biases are not decayed either.  :func:`add_weight_decay` therefore attaches
Chainer's own :class:`chainer.optimizer_hooks.WeightDecay` (``g <- g + rate * W``, timing
``'pre'``) as a per-parameter *update-rule* hook to the ``W`` of every convolution,
deconvolution and linear link, and to nothing else.

Ordering in data-parallel training: ChainerMN's multi-node optimizer
(``chainermn/optimizers.py``, ``_MultiNodeOptimizer.update``) first calls
``communicator.multi_node_mean_grad(target)`` and only then
``actual_optimizer.update()``; that runs ``param.update()`` for every parameter, and
``UpdateRule.update`` calls the rule's 'pre' hooks immediately before ``update_core``.  So
the hook adds ``rate * W`` to the *all-reduced mean* gradient, as A.1 requires ("g_t after
the all-reduce mean over workers and after weight decay has been added to it").  With the
float32-update path for float16 parameters, the hook sees the float32 master copy.
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
            added to it.
    """
    if not 0 <= rate < float('inf'):
        raise ValueError(
            'add_weight_decay: rate must be a finite number >= 0, got rate={!r}'
            .format(rate))
    if not isinstance(model, chainer.Link):
        raise ValueError(
            'add_weight_decay: model must be a chainer.Link, got {!r}'.format(model))
    count = 0
    for path, link in model.namedlinks():
        if not isinstance(link, DECAYED_LINKS):
            continue
        W = getattr(link, 'W', None)
        if W is None:
            continue
        where = path.rstrip('/') + '/W'
        rule = getattr(W, 'update_rule', None)
        if rule is None:
            raise ValueError(
                'add_weight_decay: {} has no update rule; call optimizer.setup(model) '
                'first'.format(where))
        try:
            rule.add_hook(optimizer_hooks.WeightDecay(rate))
        except KeyError:
            raise ValueError(
                'add_weight_decay: {} already has a WeightDecay hook'.format(where))
        count += 1
    return count
