"""Many data-parallel workers emulated in one process (for the batch-size sweep).

A synchronous ChainerMN step with ``k`` workers of ``b_local`` images each is: every
worker runs forward and backward on its own minibatch, with batch normalization over
that minibatch only and its own BN statistics; the gradients are averaged
(all-reduce); every worker applies the same update.  :class:`EmulatedWorkersUpdater`
computes exactly that sequentially: gradients accumulate over the ``k`` slices and are
divided by ``k``, and each worker's BN statistics are swapped in for its slice.
What differs from a real run: the mean is float32, not the float16 wire.
"""
import numpy

from chainer import training
from chainer.dataset import convert

from chainer_ext.extensions.bn_stats_allreduce import batch_normalization_links


class EmulatedWorkersUpdater(training.updaters.StandardUpdater):
    """A :class:`~chainer.training.updaters.StandardUpdater` whose iterator batch is the
    total batch of ``n_workers`` workers; see the module docstring.

    Args:
        iterator: yields ``n_workers * b_local`` examples per ``next()``.
        optimizer: set up on a model that returns the loss, e.g. ``L.Classifier``.
        n_workers (int): workers emulated (>= 1); the batch must split evenly.
    """

    def __init__(self, iterator, optimizer, n_workers, **kwargs):
        if int(n_workers) != n_workers or n_workers < 1:
            raise ValueError('n_workers must be a positive integer, got {!r}'.format(
                n_workers))
        super(EmulatedWorkersUpdater, self).__init__(iterator, optimizer, **kwargs)
        self.n_workers = int(n_workers)
        model = optimizer.target
        self._bn_links = [link for _, link in batch_normalization_links(model)]
        self._worker_stats = [[(link.avg_mean.copy(), link.avg_var.copy())
                               for link in self._bn_links] for _ in range(self.n_workers)]

    def update_core(self):
        batch = self._iterators['main'].next()
        if len(batch) % self.n_workers:
            raise ValueError('a batch of {} examples does not split over {} workers'.format(
                len(batch), self.n_workers))
        b_local = len(batch) // self.n_workers
        optimizer = self._optimizers['main']
        model = optimizer.target
        model.cleargrads()
        for worker in range(self.n_workers):
            self._swap_in(worker)
            x, t = convert._call_converter(
                self.converter, batch[worker * b_local:(worker + 1) * b_local],
                self.input_device)
            model(x, t).backward()  # gradients add up over the workers
            self._swap_out(worker)
        for param in model.params():
            if param.grad is not None:
                param.grad /= self.n_workers  # the all-reduce mean
        optimizer.update()
        if self.auto_new_epoch and self._iterators['main'].is_new_epoch:
            optimizer.new_epoch(auto=True)

    def _swap_in(self, worker):
        for link, (mean, var) in zip(self._bn_links, self._worker_stats[worker]):
            link.avg_mean[...] = mean
            link.avg_var[...] = var

    def _swap_out(self, worker):
        for link, (mean, var) in zip(self._bn_links, self._worker_stats[worker]):
            mean[...] = link.avg_mean
            var[...] = link.avg_var

    def worker_statistics(self, worker):
        """``[(avg_mean, avg_var)]`` of one worker, in BN-link order (copies)."""
        return [(mean.copy(), var.copy()) for mean, var in self._worker_stats[worker]]

    def average_statistics(self):
        """Give the model the workers' mean BN statistics, as
        :class:`~chainer_ext.extensions.BatchNormStatsAllreduce` does before validation."""
        for index, link in enumerate(self._bn_links):
            for attr, slot in (('avg_mean', 0), ('avg_var', 1)):
                mean = numpy.mean([stats[index][slot].astype(numpy.float64)
                                   for stats in self._worker_stats], axis=0)
                getattr(link, attr)[...] = mean.astype(getattr(link, attr).dtype)
