"""Multi-node validation whose top-1 equals one process's on the whole set.

The paper reports single-crop top-1 accuracy on the validation images after
every epoch (Experimental Results).  With data parallelism each rank
evaluates a shard.  ChainerMN's ``create_multi_node_evaluator`` returns the
plain mean of the per-rank means, which is wrong when the shards differ in
size (50,000 images over 1,024 ranks), and padding the shards to equal length
(``scatter_dataset``'s default) counts some images twice.  Here every
observed value is weighted by the number of examples of its batch: each rank
sums ``value * n`` and ``n`` over its batches, one float64 all-reduce adds
them over ranks, and the result is ``sum(value * n) / sum(n)``, i.e. the
per-example mean over the whole validation set.  That is exact for
per-example means such as ``L.Classifier``'s loss and accuracy, and it is
what one process computes on the whole set with batches of any size; Chainer's
own ``Evaluator`` weights batches equally instead, which differs when the
last batch is short.

Reported keys are Chainer's (``validation/main/loss``,
``validation/main/accuracy``, ...).  Every rank computes and returns the
same values; every rank must take part (the all-reduce is collective), and
only rank 0 needs to print them, which is the training script's job.  Each
rank's iterator must not repeat; it is reset at every evaluation.
"""
import copy

import numpy
import six

import chainer
from chainer.dataset import convert
from chainer import function
from chainer import reporter as reporter_module
from chainer.training import extensions


def _check_iterators(iterators):
    if not isinstance(iterators, dict):
        iterators = {'main': iterators}
    for name, it in iterators.items():
        if getattr(it, 'repeat', False):
            raise ValueError(
                'iterator {!r} of the multi-node evaluator repeats '
                '(repeat=True); evaluation would never end. Create it with '
                'repeat=False'.format(name))


def _scalar(key, value):
    if isinstance(value, chainer.Variable):
        value = value.array
    if isinstance(value, chainer.get_array_types()):
        value = chainer.backend.CpuDevice().send(value)
    array = numpy.asarray(value, dtype=numpy.float64)
    if array.size != 1:
        raise ValueError('multi-node evaluator: observation {!r} has shape {}; '
                         'only scalars can be averaged per example'.format(
                             key, array.shape))
    return float(array.reshape(()))


def evaluate_per_example(evaluator, comm):
    """Run ``evaluator``'s loop on this rank's shard; return global means.

    Args:
        evaluator (chainer.training.extensions.Evaluator): supplies the
            iterator ``'main'``, target, converter, device, ``eval_hook`` and
            ``eval_func``.
        comm: ChainerMN communicator.

    Returns:
        dict: ``{key: sum over all ranks' examples / number of examples}``.
    """
    iterator = evaluator._iterators['main']
    eval_func = evaluator.eval_func or evaluator._targets['main']
    if evaluator.eval_hook:
        evaluator.eval_hook(evaluator)
    if hasattr(iterator, 'reset'):
        iterator.reset()
        it = iterator
    else:
        it = copy.copy(iterator)

    pbar = None
    if getattr(evaluator, '_progress_bar', False) and comm.rank == 0:
        from chainer.training.extensions.evaluator import _IteratorProgressBar
        pbar = _IteratorProgressBar(iterator=it)

    # A rank whose shard is empty (more ranks than examples) still takes
    # part in the all-reduce; Chainer's iterators divide by zero on it.
    dataset = getattr(it, 'dataset', None)
    batches = () if dataset is not None and len(dataset) == 0 else it

    sums = {}
    counts = {}
    for batch in batches:
        n = len(batch)
        observation = {}
        with reporter_module.report_scope(observation):
            in_arrays = convert._call_converter(
                evaluator.converter, batch, evaluator.device)
            with function.no_backprop_mode():
                if isinstance(in_arrays, tuple):
                    eval_func(*in_arrays)
                elif isinstance(in_arrays, dict):
                    eval_func(**in_arrays)
                else:
                    eval_func(in_arrays)
        for key, value in six.iteritems(observation):
            sums[key] = sums.get(key, 0.0) + _scalar(key, value) * n
            counts[key] = counts.get(key, 0) + n
        if pbar is not None:
            pbar.update()
    if pbar is not None:
        pbar.close()

    # Ranks with an empty shard observed nothing: use the union of keys.
    keys = sorted(set(comm.allreduce_obj(sorted(sums))))
    local = numpy.zeros(2 * len(keys), dtype=numpy.float64)
    for i, key in enumerate(keys):
        local[i] = sums.get(key, 0.0)
        local[len(keys) + i] = counts.get(key, 0)
    total = comm.allreduce(local)
    return {key: float(total[i] / total[len(keys) + i])
            for i, key in enumerate(keys) if total[len(keys) + i] > 0}


class MultiNodeEvaluator(extensions.Evaluator):
    """``chainer.training.extensions.Evaluator`` with per-example global means.

    Arguments are Chainer's ``Evaluator``'s, plus ``comm`` (a ChainerMN
    communicator).  Give each rank its own shard, e.g. from
    :func:`chainer_ext.data_parallel.scatter_val_dataset`, in an iterator
    with ``repeat=False``.
    """

    def __init__(self, iterator, target, comm,
                 converter=convert.concat_examples, device=None,
                 eval_hook=None, eval_func=None, **kwargs):
        _check_iterators(iterator)
        super(MultiNodeEvaluator, self).__init__(
            iterator, target, converter=converter, device=device,
            eval_hook=eval_hook, eval_func=eval_func, **kwargs)
        self.comm = comm

    def evaluate(self):
        return evaluate_per_example(self, self.comm)


def create_multi_node_evaluator(actual_evaluator, communicator):
    """Drop-in for ``chainermn.create_multi_node_evaluator``, weighting by examples.

    Patches ``actual_evaluator`` (a ``chainer.training.extensions.Evaluator``)
    so that its ``evaluate`` runs :func:`evaluate_per_example`; returns it.
    An ``evaluate`` overridden by a subclass is replaced too.
    """
    if not isinstance(actual_evaluator, extensions.Evaluator):
        raise TypeError('create_multi_node_evaluator expects a chainer '
                        'Evaluator, got {}'.format(
                            type(actual_evaluator).__name__))
    _check_iterators(actual_evaluator._iterators)
    actual_evaluator._mn_communicator = communicator

    def evaluate(self):
        return evaluate_per_example(self, self._mn_communicator)

    actual_evaluator.evaluate = six.create_bound_method(
        evaluate, actual_evaluator)
    return actual_evaluator
