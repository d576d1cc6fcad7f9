"""Hooks of the optimizers: weight decay and skipping non-finite updates."""
from chainer_ext.optimizer_hooks.skip_nonfinite_update import NonFiniteGradientError
from chainer_ext.optimizer_hooks.skip_nonfinite_update import SkipNonFiniteUpdate
from chainer_ext.optimizer_hooks.weight_decay import add_weight_decay
from chainer_ext.optimizer_hooks.weight_decay import DECAYED_LINKS
