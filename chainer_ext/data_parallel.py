"""Wiring of synchronous data-parallel training with ChainerMN (Section 3).

"ChainerMN is an add-on package for Chainer enabling multi-node distributed
deep learning with synchronous data-parallelism."  The pieces a training
script needs, in the order it uses them::

    comm = chainer_ext.communicators.create_communicator(
        'naive', allreduce_grad_dtype='float16')       # or 'pure_nccl' on GPUs
    train = scatter_train_dataset(train, comm, seed=seed)
    val = scatter_val_dataset(val, comm)
    model(sample_batch)                   # initialise lazily-shaped links
    broadcast_params(model, comm)         # rank 0's initial weights everywhere
    optimizer = chainermn.create_multi_node_optimizer(actual_optimizer, comm)
    optimizer.setup(model)
    evaluator = create_multi_node_evaluator(
        extensions.Evaluator(val_iter, model), comm)

Every rank runs all of these (they are collective).  Only rank 0 should add
reporting extensions (``LogReport``, ``PrintReport``, ...): that is the
training script's job; the evaluator returns the same values on every rank.
"""
import hashlib

import numpy

import chainer
import chainermn

from chainer_ext.evaluators import MultiNodeEvaluator  # NOQA
from chainer_ext.evaluators import create_multi_node_evaluator  # NOQA


def broadcast_params(model, comm):
    """Copy rank 0's parameters to every rank (``comm.bcast_data``).

    Call after every parameter is initialised (run one forward pass first
    for links created with unknown input sizes), before training starts.
    The multi-node optimizer's first update broadcasts too; doing it
    explicitly makes the initial weights identical before anything else
    (e.g. a validation at iteration 0) uses them.

    Raises:
        ValueError: some parameter is still uninitialised (``bcast_data``
            would skip it and ranks would differ).
    """
    missing = [name for name, param in sorted(model.namedparams())
               if param.array is None]
    if missing:
        raise ValueError('broadcast_params: parameters {} are not initialised; '
                         'run a forward pass first'.format(', '.join(missing)))
    comm.bcast_data(model)


def params_digest(model):
    """SHA-256 hex digest of every parameter's name, dtype, shape and bytes."""
    h = hashlib.sha256()
    for name, param in sorted(model.namedparams()):
        h.update(name.encode())
        array = param.array
        if array is None:
            h.update(b'<uninitialised>')
            continue
        array = numpy.ascontiguousarray(chainer.backend.CpuDevice().send(array))
        h.update(str(array.dtype).encode() + str(array.shape).encode())
        h.update(array.tobytes())
    return h.hexdigest()


def params_identical(model, comm):
    """Whether every rank holds bit-identical parameters (collective)."""
    digests = comm.mpi_comm.allgather(params_digest(model))
    return all(d == digests[0] for d in digests)


def scatter_train_dataset(dataset, comm, seed=None):
    """This rank's shard of the training set (``chainermn.scatter_dataset``).

    Shuffled with ``seed`` by rank 0, split into equal-length shards
    (``force_equal_length=True``, ChainerMN's default: a few examples are
    repeated so that every rank runs the same number of iterations per
    epoch, as synchronous SGD requires).  Only rank 0's ``dataset`` is used.
    """
    return chainermn.scatter_dataset(dataset, comm, shuffle=True, seed=seed)


def scatter_val_dataset(dataset, comm):
    """This rank's shard of the validation set, without duplicates.

    ``force_equal_length=False``: padding would count some images twice and
    bias top-1.  Shards then differ in length by at most one;
    :func:`create_multi_node_evaluator` weights ranks by their example
    counts.  Only rank 0's ``dataset`` is used.
    """
    return chainermn.scatter_dataset(dataset, comm, shuffle=False,
                                     force_equal_length=False)


def shard_indices(n, comm, train, seed=None):
    """This rank's global indices of a data set of length ``n`` (collective).

    The same split as :func:`scatter_train_dataset` (``train=True``) or
    :func:`scatter_val_dataset` applied to the data set itself, but only the
    index array travels: every rank can then build the full data set from
    the broadcast list and keep a view (:class:`IndexedView`) of its shard,
    with the base data set's ``get_example_rng`` intact for per-example
    seeding (:mod:`chainer_ext.reproducible_order`).
    """
    n = int(n)
    if n <= 0:
        raise ValueError('cannot shard an empty data set (length {})'.format(n))
    if train and n < comm.size:
        raise ValueError('a training set of {} examples cannot feed {} ranks'.format(
            n, comm.size))
    full = numpy.arange(n, dtype=numpy.int64) if comm.rank == 0 else None
    if train:
        sub = scatter_train_dataset(full, comm, seed=seed)
    else:
        sub = scatter_val_dataset(full, comm)
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
