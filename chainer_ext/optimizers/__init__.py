"""Optimizers of the reproduction (Akiba et al. 2017, Appendix A.1).

* :class:`RMSpropWarmup` -- the hybrid momentum-SGD / RMSprop-with-momentum update rule;
  :func:`for_recipe` -- it, or momentum SGD, for a recipe's name.
* :func:`add_weight_decay` -- Goyal et al.'s weight decay on conv/linear ``W`` only.
"""
from chainer_ext.optimizers.rmsprop_warmup import for_recipe  # NOQA
from chainer_ext.optimizers.rmsprop_warmup import RMSpropWarmup  # NOQA
from chainer_ext.optimizers.rmsprop_warmup import RMSpropWarmupRule  # NOQA
from chainer_ext.optimizers.weight_decay import add_weight_decay  # NOQA
from chainer_ext.optimizers.weight_decay import DECAYED_LINKS  # NOQA
