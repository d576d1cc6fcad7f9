"""Random images of the right shape, no I/O: for throughput runs (``--synthetic``).

The paper's Figure 1 splits an iteration into forward, backward, all-reduce
and optimizer; measuring those without the input pipeline needs data that
costs nothing to load. Each example is drawn from a generator seeded by the
caller (:mod:`chainer_ext.datasets.reproducible_order`), so runs are repeatable.
"""
import numpy

import chainer


class SyntheticImageDataset(chainer.dataset.DatasetMixin):
    """``size`` examples of float32 (3, insize, insize) N(0, 1) images and labels."""

    def __init__(self, size, insize, n_class, seed=0):
        if int(size) <= 0 or int(insize) <= 0 or int(n_class) <= 0:
            raise ValueError('size, insize and n_class must be positive, got '
                             '{}, {}, {}'.format(size, insize, n_class))
        self.size, self.insize, self.n_class = int(size), int(insize), int(n_class)
        self.seed = int(seed)

    def __len__(self):
        return self.size

    def get_example(self, i):
        return self.get_example_rng(i, numpy.random.default_rng([self.seed, int(i)]))

    def get_example_rng(self, i, rng):
        image = rng.standard_normal((3, self.insize, self.insize), dtype=numpy.float32)
        label = numpy.int32(rng.integers(self.n_class))
        return image, label
