"""Single-crop validation on any number of ranks whose top-1 and top-5 equal one process's
on the whole set (Section 4).

:class:`MultiNodeEvaluator` weights every observation by its batch's examples and all-reduces
once in float64 (``sum(value * n) / sum(n)``); accuracies are summed as whole counts, so the
figures are exact ratios of integers whatever the ranks and batch sizes.  ChainerMN's
``create_multi_node_evaluator`` averages per-rank means instead, wrong for unequal shards.
:func:`make_evaluator` is what the trainer's per-epoch validation and ``python -m
chainer_ext.evaluate`` share (with the centre crops of ``ImageNetDataset(..., train=False)``),
so a saved model evaluates to the trainer's figures exactly.
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


#: Name of the top-5 observation (``validation/main/top5`` in the log).
TOP5 = 'top5'
#: The observations that are fractions of a batch's examples.
COUNTED = ('accuracy', TOP5)


def top_k_accuracy(y, t, k):
    """Fraction of the rows of the logits ``y`` whose label ``t`` is among the ``k`` best.

    Ties are ranked by class index, as ``F.accuracy``'s ``argmax`` (the first maximum)
    and a stable sort of ``-y`` rank them, so ``k = 1`` is ``F.accuracy``.  Returns a
    0-d array of ``y``'s dtype on ``y``'s device.
    """
    y = y.array if isinstance(y, chainer.Variable) else y
    t = t.array if isinstance(t, chainer.Variable) else t
    xp = chainer.backend.get_array_module(y)
    rows = xp.arange(len(t))
    mine = y[rows, t][:, None]
    before = xp.arange(y.shape[1])[None, :] < t[:, None]
    rank = (y > mine).sum(axis=1) + ((y == mine) & before).sum(axis=1)
    return xp.asarray((rank < k).mean(dtype=y.dtype))


class ClassifierScores(object):
    """Evaluation function: ``classifier(x, t)`` (loss and top-1) and its top-5.

    ``classifier`` is a ``chainer.links.Classifier``; ``top5`` is reported with the
    classifier as observer, beside its ``loss`` and ``accuracy``.
    """

    def __init__(self, classifier, k=5):
        self.classifier = classifier
        self.k = k

    def __call__(self, x, t):
        loss = self.classifier(x, t)
        chainer.report({TOP5: top_k_accuracy(self.classifier.y, t, self.k)},
                       self.classifier)
        return loss


def make_evaluator(iterator, classifier, comm, device=None):
    """The multi-node evaluator of loss, top-1 and top-5 (exact counts) of ``classifier``."""
    return MultiNodeEvaluator(iterator, classifier, comm, device=device,
                              eval_func=ClassifierScores(classifier), counted=COUNTED)


def counts(result, n, prefix='validation/main/'):
    """``{'top1', 'top5', 'correct_top1', 'correct_top5', 'loss'}`` of an evaluator's
    ``result`` over ``n`` examples (the counts are exact: the fractions are count / n)."""
    out = {'loss': result.get(prefix + 'loss')}
    for name, key in (('top1', 'accuracy'), ('top5', TOP5)):
        value = result[prefix + key]
        out[name] = value
        out['correct_' + name] = int(numpy.rint(value * n))
    return out
