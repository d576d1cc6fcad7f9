"""Links set up as the paper trains them."""
from chainer_ext.links.last_batch_bn import use_last_batch_statistics
