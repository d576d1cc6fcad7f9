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
    optimizer = create_multi_node_optimizer(actual_optimizer, comm)
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


def create_multi_node_optimizer(actual_optimizer, communicator,
                                double_buffering=False, zero_fill=True):
    """``chainermn.create_multi_node_optimizer``, unchanged.

    Its first ``update()`` only broadcasts rank 0's parameters (ChainerMN's
    ``bcast_data``) and skips the step; every later one averages the
    gradients with ``communicator.multi_node_mean_grad`` and then steps.
    ``double_buffering`` needs ChainerMN's ``pure_nccl`` communicator.
    """
    return chainermn.create_multi_node_optimizer(
        actual_optimizer, communicator, double_buffering=double_buffering,
        zero_fill=zero_fill)


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
