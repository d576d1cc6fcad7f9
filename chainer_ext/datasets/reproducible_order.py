"""Deterministic, resumable data order and augmentation randomness (for exact resume).

:class:`EpochTaggedOrderSampler` draws epoch k's permutation from ``(seed, k)`` and
tags it by adding ``k * size``; :class:`EpochSeededDataset` strips the tag and gives
example i of epoch k a generator seeded by ``(seed, k, i)``.  Only the iterators'
serialized ``order`` carries the state, so a resumed run follows the same
trajectory whatever worker decodes what.  Details: docs/DESIGN.md.
"""
import numpy

import chainer


def _check_size(size):
    size = int(size)
    if size <= 0:
        raise ValueError('dataset size must be positive, got {}'.format(size))
    return size


class EpochTaggedOrderSampler(chainer.iterators.OrderSampler):
    """Seeded per-epoch permutations whose values carry the epoch number.

    Args:
        size (int): Length of the dataset the iterator walks.
        seed (int): Base seed; use a different one per MPI rank.
    """

    def __init__(self, size, seed):
        self.size = _check_size(size)
        self.seed = int(seed)

    def epoch_of(self, order):
        """Epoch tag (1, 2, ...) carried by ``order``; 0 for an untagged one."""
        if len(order) == 0:
            return 0
        return int(order[0]) // self.size

    def __call__(self, current_order, current_position):
        if len(current_order) != self.size:
            raise ValueError(
                'order of length {} given to a sampler for a dataset of '
                'size {}'.format(len(current_order), self.size))
        tag = self.epoch_of(current_order) + 1
        rng = numpy.random.default_rng([self.seed, tag])
        return rng.permutation(self.size).astype(numpy.int64) + tag * self.size


class EpochSeededDataset(chainer.dataset.DatasetMixin):
    """View of ``base`` that decodes tagged indices and seeds each example.

    ``base`` must offer ``get_example_rng(i, rng)`` taking a
    ``numpy.random.Generator``; plain indices (below ``size``, as a
    non-shuffling validation iterator produces) use tag 0.
    """

    def __init__(self, base, seed):
        if not hasattr(base, 'get_example_rng'):
            raise TypeError('{} has no get_example_rng(i, rng) method'.format(
                type(base).__name__))
        self.base = base
        self.size = _check_size(len(base))
        self.seed = int(seed)

    def __len__(self):
        return self.size

    def get_example(self, j):
        tag, i = divmod(int(j), self.size)
        rng = numpy.random.default_rng([self.seed, tag, i])
        return self.base.get_example_rng(i, rng)
