"""Average batch-normalization statistics over workers before validation (paper, Section 2).

:class:`BatchNormStatsAllreduce` replaces every BN link's ``avg_mean``/``avg_var``, on
every rank, by their mean over all ranks: one float64 reduce to rank 0 and one
broadcast, so the result is bit-identical everywhere.  Register it on the trigger of
the evaluator and of the snapshots; its priority runs it before both.  Why not
ChainerMN's ``AllreducePersistent``: docs/DESIGN.md.
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
