"""Single-crop validation (paper, Section 4): top-1 and top-5 over the whole set, on any ranks.

The trainer's per-epoch validation and ``python -m chainer_ext.evaluate`` build it
here, so that evaluating a saved model gives the trainer's figures exactly: the
centre-crop validation examples, and a
:class:`~chainer_ext.extensions.multi_node_evaluator.MultiNodeEvaluator`
whose evaluation function reports the classifier's loss and top-1 (``accuracy``,
Chainer's ``F.accuracy``) and ``top5``, both summed as whole counts.
"""
import numpy

import chainer

from chainer_ext import datasets
from chainer_ext.extensions.multi_node_evaluator import MultiNodeEvaluator

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


def centre_crops(pairs, root, insize):
    """Validation examples of ``pairs`` (an ImageList or its subset): the resize and
    centre crop to ``insize`` px of :class:`~chainer_ext.datasets.ImageNetDataset`."""
    return datasets.ImageNetDataset(pairs, root, insize, train=False)


def counts(result, n, prefix='validation/main/'):
    """``{'top1', 'top5', 'correct_top1', 'correct_top5', 'loss'}`` of an evaluator's
    ``result`` over ``n`` examples (the counts are exact: the fractions are count / n)."""
    out = {'loss': result.get(prefix + 'loss')}
    for name, key in (('top1', 'accuracy'), ('top5', TOP5)):
        value = result[prefix + key]
        out[name] = value
        out['correct_' + name] = int(numpy.rint(value * n))
    return out
