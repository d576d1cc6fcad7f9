"""Optimizers of the reproduction (Akiba et al. 2017, Appendix A.1) and of its baselines.

* :class:`RMSpropWarmup` -- the hybrid momentum-SGD / RMSprop-with-momentum update rule;
* :class:`LARS` -- You, Gitman & Ginsburg's layer-wise adaptive rate scaling (Algorithm 1);
* :func:`for_recipe` -- the optimizer of a recipe's name (``NAMES``);
* :func:`add_weight_decay` -- Goyal et al.'s weight decay on conv/linear ``W`` only.
"""
from chainer_ext.optimizers.lars import LARS
from chainer_ext.optimizers.lars import LARSRule
from chainer_ext.optimizers.recipe import for_recipe
from chainer_ext.optimizers.recipe import NAMES
from chainer_ext.optimizers.rmsprop_warmup import RMSpropWarmup
from chainer_ext.optimizers.rmsprop_warmup import RMSpropWarmupRule
from chainer_ext.optimizer_hooks.weight_decay import add_weight_decay
from chainer_ext.optimizer_hooks.weight_decay import DECAYED_LINKS
