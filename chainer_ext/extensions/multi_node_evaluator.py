"""Multi-node validation whose top-1 equals one process's on the whole set (Section 4).

Each rank evaluates its shard; every observed value is weighted by its batch's
number of examples and one float64 all-reduce gives ``sum(value * n) / sum(n)``
over all ranks.  ChainerMN's ``create_multi_node_evaluator`` averages the per-rank
means instead, which is wrong for the unequal shards of 50,000 images over 1,024
ranks, and Chainer's ``Evaluator`` weights a short last batch like a full one.
Accuracies (observations named in ``counted``) are fractions of a batch's examples:
they are summed as whole counts, so that top-1 and top-5 are exact ratios of
integers, the same whatever the ranks and batch sizes.
"""
import numpy

import chainer
from chainer.dataset import convert
from chainer.training import extensions


def _scalar(key, value):
    if isinstance(value, chainer.Variable):
        value = value.array
    array = numpy.asarray(chainer.backend.CpuDevice().send(value), dtype=numpy.float64)
    if array.size != 1:
        raise ValueError('multi-node evaluator: observation {!r} has shape {}; '
                         'only scalars can be averaged per example'.format(key, array.shape))
    return float(array.reshape(()))


class MultiNodeEvaluator(extensions.Evaluator):
    """``chainer.training.extensions.Evaluator`` with per-example means over all ranks.

    Arguments are Chainer's ``Evaluator``'s (with a new-style converter) plus
    ``comm``, a ChainerMN communicator, and ``counted``: the names (after the last
    ``/``) of observations that are fractions of the batch's examples, summed as
    ``round(value * n)`` (exact while n < 2**23 in float32).  Every rank must call
    it; each rank's iterator must not repeat.  Every rank returns the same values.
    """

    def __init__(self, iterator, target, comm, converter=convert.concat_examples,
                 device=None, eval_hook=None, eval_func=None, counted=(), **kwargs):
        super(MultiNodeEvaluator, self).__init__(
            iterator, target, converter=converter, device=device,
            eval_hook=eval_hook, eval_func=eval_func, **kwargs)
        for name, it in self.get_all_iterators().items():
            if getattr(it, 'repeat', False):
                raise ValueError(
                    'iterator {!r} of the multi-node evaluator repeats (repeat=True); '
                    'evaluation would never end. Create it with repeat=False'.format(name))
        self.comm = comm
        self.counted = frozenset(counted)

    def evaluate(self):
        iterator = self.get_iterator('main')
        eval_func = self.eval_func or self.get_target('main')
        if self.eval_hook:
            self.eval_hook(self)
        iterator.reset()
        # A rank whose shard is empty (more ranks than examples) still takes part
        # in the all-reduce; Chainer's iterators divide by zero on it.
        batches = () if len(iterator.dataset) == 0 else iterator
        sums, counts = {}, {}
        for batch in batches:
            observation = {}
            with chainer.reporter.report_scope(observation):
                in_arrays = self.converter(batch, self.device)
                with chainer.no_backprop_mode():
                    if isinstance(in_arrays, tuple):
                        eval_func(*in_arrays)
                    elif isinstance(in_arrays, dict):
                        eval_func(**in_arrays)
                    else:
                        eval_func(in_arrays)
            for key, value in observation.items():
                weighted = _scalar(key, value) * len(batch)
                if key.rsplit('/', 1)[-1] in self.counted:
                    weighted = round(weighted)
                sums[key] = sums.get(key, 0.0) + weighted
                counts[key] = counts.get(key, 0) + len(batch)

        # Ranks with an empty shard observed nothing: use the union of keys.
        keys = sorted(set(self.comm.allreduce_obj(sorted(sums))))
        local = numpy.array([sums.get(k, 0.0) for k in keys]
                            + [counts.get(k, 0) for k in keys], dtype=numpy.float64)
        total = self.comm.allreduce(local)
        return {key: float(total[i] / total[len(keys) + i])
                for i, key in enumerate(keys) if total[len(keys) + i] > 0}
