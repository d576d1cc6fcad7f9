"""ImageNet as a Chainer dataset: list file in, augmented float32 CHW out.

``ImageNetDataset`` is a ``chainer.dataset.DatasetMixin`` (like Chainer's
``LabeledImageDataset``) whose ``get_example(i)`` returns ``(x, t)``: ``x`` a
``float32`` array of shape ``(3, insize, insize)`` and ``t`` an ``int32``
label.  Training examples get Goyal et al.'s scale/aspect-ratio crop and
random flip (see :mod:`chainer_ext.datasets.transforms`), validation
examples the resize-256/centre-224 crop; both are normalised by the
per-channel mean and std.

Randomness (reproducible, and independent across loader processes)
-----------------------------------------------------------------
``MultiprocessIterator`` copies the dataset into worker processes (``fork``
copies the memory, ``forkserver``/``spawn`` pickle the object).  A global or
per-object random state is then *duplicated*: with ``fork`` every worker
produces the same crop sequence, and which worker serves which index depends
on scheduling, so nothing is reproducible either.

Here each draw is a pure function of ``(seed, i, visit)``: the generator for
example ``i`` is ``numpy.random.default_rng`` of a ``SeedSequence`` with
entropy ``seed`` and spawn key ``(i, visit)``, where ``visit`` counts how
often example ``i`` has been fetched.  The counters live in one shared-memory
array (``multiprocessing.RawArray``) created with the dataset, so all loader
processes of one training process see and advance the same counters --
inherited under ``fork``, passed as shared memory under ``forkserver`` and
``spawn`` (the object is pickled while the pool starts its workers).  With a
shuffling iterator every example is fetched once per epoch, so ``visit`` is
the epoch and a run gives the same augmentation for the same (epoch, example)
whatever the number of workers.  Pickling the dataset *outside* process
start-up (e.g. ``chainermn.scatter_dataset`` sending it to other ranks) gives
each copy fresh, private counters.  Caveats: the counters are not part of a
Trainer snapshot (a resumed run restarts them at 0); and if the same index is
in flight in two workers at once (possible only at an epoch boundary inside
one batch) both may get the same draw.  ``seed=None`` draws a random seed
once, at construction, so workers still agree.  Pass a different seed per
MPI rank (an int or a sequence of ints such as ``(seed, rank)``).

Callers that manage their own per-example generators (e.g. an order sampler
that tags indices with the epoch) use :meth:`ImageNetDataset.get_example_rng`,
which takes the ``numpy.random.Generator`` to draw from.
"""
import multiprocessing
import multiprocessing.context
import operator
import os

import numpy

import chainer

from chainer_ext.datasets import decode
from chainer_ext.datasets import transforms
from chainer_ext.datasets.errors import DatasetError
from chainer_ext.datasets.image_list import ImageList
from chainer_ext.datasets.image_list import read_image_list


class ImageNetDataset(chainer.dataset.DatasetMixin):
    """Labelled images from a list file, decoded and augmented on access.

    Args:
        pairs (str or list): A list file (``relative/path label`` per line,
            see :mod:`~chainer_ext.datasets.image_list`) or a list of
            ``(relative_path, label)`` pairs (e.g. from
            :func:`~chainer_ext.datasets.read_image_list`).
        root (str): Directory the paths are relative to.
        insize (int): Side of the square output (224 in the paper).
        train (bool): Random crop and flip (training) or centre crop
            (validation).
        seed (int, sequence of int or None): Augmentation seed; ``None``
            picks one at random (once).  Unused when ``train`` is False.
        min_area (float): Smallest crop area fraction (0.08 in Goyal et al.).
        mean, std (sequence of 3 floats): RGB normalisation, 0-255 scale
            (default: ImageNet statistics).
        flip (bool): Random horizontal flips in training (default True).
        draft (bool): Allow JPEG reduced-scale decoding (default True).
    """

    def __init__(self, pairs, root='.', insize=224, train=True, seed=None,
                 min_area=transforms.DEFAULT_MIN_AREA,
                 mean=transforms.IMAGENET_MEAN, std=transforms.IMAGENET_STD,
                 flip=True, draft=True):
        if isinstance(pairs, str):
            pairs = read_image_list(pairs, root)
        if len(pairs) == 0:
            raise DatasetError('ImageNetDataset needs at least one example')
        insize = operator.index(insize)
        if insize < 1:
            raise ValueError('insize must be positive, got {}'.format(insize))
        if not 0 < min_area <= 1:
            raise ValueError('min_area must be in (0, 1], got {}'.format(
                min_area))
        self._pairs = pairs
        self._root = root
        self.insize = insize
        self.train = bool(train)
        self.min_area = float(min_area)
        self.flip = bool(flip)
        self.draft = bool(draft)
        self.mean = tuple(float(m) for m in mean)
        self.std = tuple(float(s) for s in std)
        self._normalize = transforms.normalizer(self.mean, self.std)
        if seed is None:
            seed = numpy.random.SeedSequence().entropy
        numpy.random.SeedSequence(seed)  # rejects negative / non-integers
        self.seed = seed
        self._visits = self._new_counters()

    def __len__(self):
        return len(self._pairs)

    @property
    def pairs(self):
        """The ``(relative_path, label)`` pairs."""
        return self._pairs

    @property
    def root(self):
        return self._root

    def get_example(self, i):
        """``(x, t)`` for example ``i``, drawing from its own generator."""
        i = self._check_index(i)
        rng = None
        if self.train:
            rng = self.example_rng(i, self._next_visit(i))
        return self._load(i, rng)

    def get_example_rng(self, i, rng):
        """``(x, t)`` for example ``i`` with randomness drawn from ``rng``
        (a ``numpy.random.Generator``; ignored for validation)."""
        return self._load(self._check_index(i), rng)

    def example_rng(self, i, visit):
        """The generator of the ``visit``-th fetch of example ``i``."""
        seq = numpy.random.SeedSequence(self.seed,
                                        spawn_key=(int(i), int(visit)))
        return numpy.random.Generator(numpy.random.PCG64(seq))

    def visits(self):
        """Copy of the per-example fetch counters (training only)."""
        if self._visits is None:
            return numpy.zeros(len(self), dtype=numpy.uint32)
        return numpy.frombuffer(self._visits, dtype=numpy.uint32).copy()

    def _load(self, i, rng):
        rel, label = self._pairs[i]
        path = os.path.join(self._root, rel)
        size = (self.insize, self.insize)
        if self.train:
            if rng is None:
                raise ValueError('a training example needs a generator')
            # Always draw the coin, so that flip=False changes nothing else.
            coin = bool(rng.integers(0, 2))
            flip = self.flip and coin

            def choose_box(width, height):
                return transforms.random_resized_crop_box(
                    width, height, rng, min_area=self.min_area)
        else:
            flip = False

            def choose_box(width, height):
                return transforms.center_crop_box(width, height, self.insize)
        hwc = decode.load_crop(path, choose_box, size, flip=flip,
                               draft=self.draft, where=self._where(i))
        return self._normalize(hwc), numpy.array(label, dtype=numpy.int32)

    def _where(self, i):
        if isinstance(self._pairs, ImageList):
            return self._pairs.where(i)
        return None

    def _check_index(self, i):
        i = operator.index(i)
        n = len(self._pairs)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError('index {} out of range for {} examples'.format(
                i, n))
        return i

    def _new_counters(self):
        if not self.train:
            return None
        return multiprocessing.RawArray('I', len(self._pairs))

    def _next_visit(self, i):
        visit = self._visits[i]
        self._visits[i] = (visit + 1) & 0xFFFFFFFF
        return visit

    def __getstate__(self):
        state = self.__dict__.copy()
        del state['_normalize']
        if multiprocessing.context.get_spawning_popen() is None:
            # An ordinary pickle (not a worker start-up): the copy gets its
            # own counters, the shared memory stays with this process.
            state['_visits'] = None
            state['_fresh_counters'] = True
        return state

    def __setstate__(self, state):
        fresh = state.pop('_fresh_counters', False)
        self.__dict__.update(state)
        self._normalize = transforms.normalizer(self.mean, self.std)
        if fresh:
            self._visits = self._new_counters()
