"""Split a data set over MPI ranks with ``chainermn.scatter_dataset``.

ChainerMN's ``scatter_dataset`` pickles a ``SubDataset`` of the whole data set
to every rank. Here it scatters the *index array* instead; every rank then
holds the full data set object (built from the broadcast list) and a view
(:class:`IndexedView`) of its own indices. The split is the same as
scattering the data set itself (same shuffle, same seed), and the view keeps
the base data set's ``get_example_rng`` so that augmentation can be seeded
per example (see :mod:`chainer_ext.reproducible_order`).

Training shards use ``force_equal_length=True`` (ChainerMN's default: every
rank runs the same number of iterations per epoch). Validation shards must
not: padding duplicates samples and biases top-1, so they use
``force_equal_length=False`` and the evaluator weights ranks by their sizes.
"""
import numpy

import chainer
import chainermn


def shard_indices(n, comm, shuffle, seed, force_equal_length):
    """This rank's global indices of a data set of length ``n``."""
    n = int(n)
    if n <= 0:
        raise ValueError('cannot shard an empty data set (length {})'.format(n))
    if force_equal_length and n < comm.size:
        raise ValueError('a data set of {} examples cannot feed {} ranks'.format(
            n, comm.size))
    full = numpy.arange(n, dtype=numpy.int64) if comm.rank == 0 else None
    sub = chainermn.scatter_dataset(full, comm, shuffle=shuffle, seed=seed,
                                    force_equal_length=force_equal_length)
    return numpy.asarray([sub[i] for i in range(len(sub))], dtype=numpy.int64)


class IndexedView(chainer.dataset.DatasetMixin):
    """The examples ``indices`` of ``base``, with ``get_example_rng`` kept."""

    def __init__(self, base, indices):
        self.base = base
        self.indices = numpy.asarray(indices, dtype=numpy.int64)

    def __len__(self):
        return len(self.indices)

    def get_example(self, i):
        return self.base[int(self.indices[i])]

    def get_example_rng(self, i, rng):
        return self.base.get_example_rng(int(self.indices[i]), rng)
