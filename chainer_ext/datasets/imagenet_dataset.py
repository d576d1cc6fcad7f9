"""ImageNet as a Chainer dataset: list entry in, augmented ``(float32 CHW, int32)`` out.

Training examples get fb.resnet.torch's scale/aspect crop and a random flip,
validation examples the resize-256/centre-224 crop (Goyal et al.'s settings,
paper Section 4); both are normalised by the per-channel mean and std.
``get_example_rng`` draws only from the generator it is given, which
:class:`chainer_ext.datasets.reproducible_order.EpochSeededDataset` seeds per epoch and index.
"""
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
        seed (int, sequence of int or None): Seed of the generator that
            :meth:`get_example` draws from (see the module docstring);
            ``None`` picks one at random (once).  Unused when ``train`` is
            False and by :meth:`get_example_rng`.
        min_area (float): Smallest crop area fraction (0.08 in Goyal et al.).
        mean, std (sequence of 3 floats): RGB normalisation, 0-255 scale
            (default: ImageNet statistics).
        flip (bool): Random horizontal flips in training (default True).
        draft (bool): Allow JPEG reduced-scale decoding (default True).

    Reproducible, worker-independent and resumable augmentation is the job of
    :class:`chainer_ext.datasets.reproducible_order.EpochSeededDataset` (which calls
    :meth:`get_example_rng`); :meth:`get_example` draws from a per-process
    generator and is meant for direct use.
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
        self._home_pid = os.getpid()
        self._rng = None
        self._rng_pid = None

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
        """``(x, t)`` for example ``i``, drawing from this process's generator
        (see the module docstring)."""
        i = self._check_index(i)
        return self._load(i, self._generator() if self.train else None)

    def get_example_rng(self, i, rng):
        """``(x, t)`` for example ``i`` with randomness drawn from ``rng``
        (a ``numpy.random.Generator``; ignored for validation)."""
        return self._load(self._check_index(i), rng)

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
                return transforms.random_sized_crop_box(
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

    def _generator(self):
        pid = os.getpid()
        if self._rng is None or self._rng_pid != pid:
            key = () if pid == self._home_pid else (pid,)
            self._rng = numpy.random.default_rng(
                numpy.random.SeedSequence(self.seed, spawn_key=key))
            self._rng_pid = pid
        return self._rng

    def __getstate__(self):
        state = self.__dict__.copy()
        del state['_normalize']  # a closure; rebuilt on unpickling
        state['_rng'] = state['_rng_pid'] = None  # each copy starts afresh
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._normalize = transforms.normalizer(self.mean, self.std)
