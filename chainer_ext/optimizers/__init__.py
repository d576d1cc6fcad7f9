"""Optimizers of the reproduction (Akiba et al. 2017, Appendix A.1) and of its baselines.

* :class:`RMSpropWarmup` -- the hybrid momentum-SGD / RMSprop-with-momentum update rule;
* :class:`LARS` -- You, Gitman & Ginsburg's layer-wise adaptive rate scaling (Algorithm 1);
* :mod:`~chainer_ext.optimizers.recipe` -- a run's update rule and schedules by its name
  (``NAMES``); :mod:`~chainer_ext.optimizers.schedules` -- the schedules' formulas.
"""
from chainer_ext.optimizers.lars import LARS
from chainer_ext.optimizers.lars import LARSRule
from chainer_ext.optimizers.recipe import NAMES
from chainer_ext.optimizers.rmsprop_warmup import RMSpropWarmup
from chainer_ext.optimizers.rmsprop_warmup import RMSpropWarmupRule
