"""Average batch-normalization statistics over workers before validation (Section 2).

"... we only considered the last minibatch, instead of the moving average,
and used all-reduce communication on these statistics to obtain the average
over all workers before validation."  With
:func:`chainer_ext.batchnorm.use_last_batch_statistics` each worker's
``avg_mean``/``avg_var`` hold its last training minibatch's statistics; this
extension replaces them, on every rank, by their mean over all ranks.

It is written for this one job rather than reusing ChainerMN's
``AllreducePersistent``, which averages *every* float persistent of the model
(any link's, not only batch normalization's) with one float32 ``Allreduce``
per array.  Here only ``BatchNormalization`` statistics are touched; they are
packed into a single float64 buffer, summed with one ``MPI_Reduce`` to rank 0
and sent back with one ``MPI_Bcast``, then divided by the number of ranks in
float64 and rounded once to the statistics' dtype.  Reduce-then-broadcast
makes the result bit-identical on every rank whatever reduction order MPI
picks, and the sums never pass through the float16 gradient path.

Registration: the statistics must be averaged before every validation and
before every snapshot, so register it on the trigger of the evaluator (and of
the snapshot, if different), on every rank::

    trainer.extend(BatchNormStatsAllreduce(model, comm), trigger=val_trigger)
    trainer.extend(evaluator, trigger=val_trigger)

Its priority, ``PRIORITY_WRITER + 1``, is higher than the evaluator's
(``PRIORITY_WRITER``) and the snapshot's (-100), so on an iteration where
several of them fire the trainer runs it first.  The next training forward
pass overwrites the statistics again with the new last minibatch.
"""
import numpy

import chainer
import chainer.links as L
from chainer.training import extension


def batch_normalization_links(model):
    """``(name, link)`` of every ``L.BatchNormalization`` in ``model``, sorted."""
    return [(name, link) for name, link in sorted(model.namedlinks())
            if isinstance(link, L.BatchNormalization)]


class BatchNormStatsAllreduce(extension.Extension):
    """Trainer extension: mean of BN ``avg_mean``/``avg_var`` over all ranks.

    Callable without a trainer (``ext()``), like ChainerMN's
    ``AllreducePersistent``.  Every rank must call it.

    Args:
        model (chainer.Link): the model whose batch-normalization links to
            average.
        comm: ChainerMN communicator (anything with ``mpi_comm``, ``size``).
    """

    trigger = 1, 'epoch'
    priority = extension.PRIORITY_WRITER + 1

    def __init__(self, model, comm):
        if not hasattr(model, 'namedlinks'):
            raise TypeError('BatchNormStatsAllreduce expects a chainer.Link, '
                            'got {}'.format(type(model).__name__))
        self.model = model
        self.comm = comm

    def __call__(self, trainer=None):
        stats = []
        for name, link in batch_normalization_links(self.model):
            if link.avg_mean is None:  # not initialised yet (no forward)
                continue
            stats.append((name + '/avg_mean', link, 'avg_mean'))
            stats.append((name + '/avg_var', link, 'avg_var'))
        layout = [(key, getattr(link, attr).size) for key, link, attr in stats]
        mpi_comm = self.comm.mpi_comm
        layouts = mpi_comm.allgather(layout)
        if any(other != layout for other in layouts):
            raise ValueError(
                'BatchNormStatsAllreduce: ranks hold different batch-'
                'normalization statistics (rank {}: {}; rank 0: {})'.format(
                    self.comm.rank, layout, layouts[0]))
        if not stats:
            return

        n = sum(size for _, size in layout)
        local = numpy.empty(n, dtype=numpy.float64)
        offset = 0
        for _, link, attr in stats:
            array = chainer.backend.CpuDevice().send(getattr(link, attr))
            local[offset:offset + array.size] = array.ravel()
            offset += array.size
        total = numpy.empty_like(local)
        from mpi4py import MPI
        mpi_comm.Reduce(local, total, op=MPI.SUM, root=0)
        mpi_comm.Bcast(total, root=0)
        total /= self.comm.size

        offset = 0
        for _, link, attr in stats:
            array = getattr(link, attr)
            mean = total[offset:offset + array.size].reshape(array.shape)
            array[...] = chainer.backend.get_device_from_array(array).send(
                mean.astype(array.dtype))
            offset += array.size
