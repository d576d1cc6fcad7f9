"""A ``MultiprocessIterator`` that raises a loader worker's error instead of hanging.

Chainer 7's iterator hangs (and with it every MPI rank) when ``dataset[i]`` raises
in a worker.  :class:`StrictMultiprocessIterator` has the worker return the
exception as its example and raises it in the training process at the ``next()``
that would have delivered the batch; the normal path is unchanged.
"""
import pickle
import traceback

import chainer


class WorkerFailure(object):
    """What a worker returns instead of an example when fetching it failed."""

    def __init__(self, index, exception, trace):
        self.index = index
        self.trace = trace
        try:
            pickle.dumps(exception)
        except Exception:
            exception = RuntimeError('{}: {}\n{}'.format(
                type(exception).__name__, exception, trace))
        self.exception = exception


class FailureReturningDataset(chainer.dataset.DatasetMixin):
    """``base[i]``, or a :class:`WorkerFailure` when it raises."""

    def __init__(self, base):
        self.base = base

    def __len__(self):
        return len(self.base)

    def get_example(self, i):
        try:
            return self.base[i]
        except Exception as e:
            return WorkerFailure(i, e, traceback.format_exc())


class StrictMultiprocessIterator(chainer.iterators.MultiprocessIterator):
    """``chainer.iterators.MultiprocessIterator`` that re-raises errors of
    ``dataset[i]`` in the calling process (same arguments)."""

    def __init__(self, dataset, batch_size, *args, **kwargs):
        self.base_dataset = dataset
        super(StrictMultiprocessIterator, self).__init__(
            FailureReturningDataset(dataset), batch_size, *args, **kwargs)

    def __next__(self):
        batch = super(StrictMultiprocessIterator, self).__next__()
        for example in batch:
            if isinstance(example, WorkerFailure):
                self.finalize()
                raise example.exception
        return batch

    next = __next__
