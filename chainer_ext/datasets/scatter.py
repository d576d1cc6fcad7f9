"""Synchronous data parallelism with ChainerMN (paper, Section 3): identical initial
weights on every rank and each rank's shard of the data.

Shards are ``chainermn.scatter_dataset``'s, fixed for the whole run as in ChainerMN's
ImageNet example: the training set is shuffled once and padded to equal shards (every
rank runs the same number of iterations); the validation set is split without padding.
"""
import numpy

import chainer
import chainermn


def broadcast_params(model, comm):
    """Copy rank 0's parameters to every rank (``comm.bcast_data``).

    Raises:
        ValueError: some parameter is still uninitialised (``bcast_data``
            would skip it and ranks would differ).
    """
    missing = [name for name, param in sorted(model.namedparams()) if param.array is None]
    if missing:
        raise ValueError('broadcast_params: parameters {} are not initialised; '
                         'run a forward pass first'.format(', '.join(missing)))
    comm.bcast_data(model)


def broadcast_initial_weights(model, optimizer, comm):
    """Give every rank rank 0's initial weights now, so that iteration 1, fresh or
    resumed, is a real update.

    ChainerMN's multi-node ``optimizer`` broadcasts the weights *instead of*
    updating at the first ``update()`` whose parameter list it has not seen
    (``is_changed``, which also records the list).  Broadcasting here and letting it
    record the list makes its first update an update.
    """
    broadcast_params(model, comm)
    optimizer.is_changed(model)  # records the parameter list: no broadcast at update()


def training_shard_size(n, ranks):
    """Examples in every rank's training shard: ``ceil(n / ranks)``, as
    ``chainermn.scatter_dataset`` computes it (:func:`shard_indices` pads the
    training shards to that length)."""
    return (int(n) + int(ranks) - 1) // int(ranks)


def shard_indices(n, comm, train, seed=None):
    """This rank's global indices of a data set of length ``n`` (collective).

    ``chainermn.scatter_dataset`` applied to ``arange(n)``: shuffled with ``seed`` and
    of equal length for training (``train=True``), in order and without duplicates
    for validation (duplicates would bias top-1).  Only the indices travel.
    """
    n = int(n)
    if n <= 0:
        raise ValueError('cannot shard an empty data set (length {})'.format(n))
    if train and n < comm.size:
        raise ValueError('a training set of {} examples cannot feed {} ranks'.format(
            n, comm.size))
    full = numpy.arange(n, dtype=numpy.int64) if comm.rank == 0 else None
    if train:
        sub = chainermn.scatter_dataset(full, comm, shuffle=True, seed=seed)
    else:
        sub = chainermn.scatter_dataset(full, comm, shuffle=False, force_equal_length=False)
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
