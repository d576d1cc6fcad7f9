"""The optimizer of each training recipe, by the name ``train_imagenet.py --optimizer`` takes."""
from chainer_ext.optimizers.lars import LARS
from chainer_ext.optimizers.rmsprop_warmup import RMSpropWarmup

#: Recipe names: the paper's hybrid, Goyal et al.'s momentum SGD, You et al.'s LARS.
NAMES = ('rmsprop_warmup', 'momentum', 'lars')


def for_recipe(name, **hyperparams):
    """The optimizer of a recipe, with ``hyperparams`` (the schedules' starting ``lr`` and
    ``alpha_sgd`` among them).

    ``'rmsprop_warmup'``: A.1's hybrid, :class:`RMSpropWarmup` (``lr_rmsprop``, ``alpha_sgd``,
    ...).  ``'momentum'``: Goyal et al.'s momentum SGD with their momentum correction, which
    is A.1 at alpha_SGD = 1 without the RMSprop term (a given ``lr_rmsprop`` is ignored).
    ``'lars'``: :class:`LARS` (``lr`` = gamma, ``eta``, ``weight_decay`` = beta,
    ``momentum``), which applies weight decay itself: do not add it with
    :func:`add_weight_decay` as well (that raises).
    """
    if name == 'rmsprop_warmup':
        return RMSpropWarmup(**hyperparams)
    if name == 'momentum':
        hyperparams.pop('lr_rmsprop', None)
        return RMSpropWarmup(lr_rmsprop=0.0, alpha_sgd=1.0, **hyperparams)
    if name == 'lars':
        return LARS(**hyperparams)
    raise ValueError('optimizer must be one of {}, got {!r}'.format(
        ', '.join(map(repr, NAMES)), name))
