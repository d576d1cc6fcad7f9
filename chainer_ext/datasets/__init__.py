"""ImageNet input pipeline: list files, fast strict decoding, augmentation.

Akiba et al. (2017) train ResNet-50 on ImageNet "with the same settings" as
Goyal et al. (2017): scale and aspect-ratio augmentation to 224x224 random
crops with horizontal flips, per-channel mean/std normalisation, and a
single 224x224 centre crop for validation.  This package provides

* :func:`read_image_list` -- list files ``relative/path label`` (the format of
  Chainer's ImageNet example) with errors naming file and line;
* :class:`ImageNetDataset` -- a ``chainer.dataset.DatasetMixin`` returning
  ``(float32 CHW image, int32 label)``, JPEG draft-mode decoding; its
  ``get_example_rng`` makes augmentation reproducible and worker-independent
  through :class:`chainer_ext.reproducible_order.EpochSeededDataset`;
* :class:`StrictMultiprocessIterator` -- Chainer's ``MultiprocessIterator``
  that raises a loader worker's error instead of hanging;
* :func:`check_dataset` -- every problem of a list and its images, split over
  MPI ranks;
* :func:`build_demo_dataset` -- scikit-learn's digits in the same format;
* ``python -m chainer_ext.datasets.make_lists`` -- lists from the ILSVRC2012
  folder layout.
"""
from chainer_ext.datasets.check import check_dataset  # NOQA
from chainer_ext.datasets.check import list_problems  # NOQA
from chainer_ext.datasets.check import merge_problems  # NOQA
from chainer_ext.datasets.decode import load_crop  # NOQA
from chainer_ext.datasets.decode import verify_image  # NOQA
from chainer_ext.datasets.demo import build_demo_dataset  # NOQA
from chainer_ext.datasets.demo import DEMO_IMAGE_SIZE  # NOQA
from chainer_ext.datasets.demo import DEMO_INSIZE  # NOQA
from chainer_ext.datasets.demo import DEMO_MIN_AREA  # NOQA
from chainer_ext.datasets.demo import DEMO_N_CLASS  # NOQA
from chainer_ext.datasets.demo import DemoDataset  # NOQA
from chainer_ext.datasets.errors import DatasetError  # NOQA
from chainer_ext.datasets.errors import ImageLoadError  # NOQA
from chainer_ext.datasets.errors import ListFileError  # NOQA
from chainer_ext.datasets.image_list import count_classes  # NOQA
from chainer_ext.datasets.image_list import ImageList  # NOQA
from chainer_ext.datasets.image_list import read_image_list  # NOQA
from chainer_ext.datasets.image_list import write_image_list  # NOQA
from chainer_ext.datasets.imagenet_dataset import ImageNetDataset  # NOQA
from chainer_ext.datasets.iterator import StrictMultiprocessIterator  # NOQA
from chainer_ext.datasets.synthetic import SyntheticImageDataset  # NOQA
from chainer_ext.datasets.transforms import center_crop_box  # NOQA
from chainer_ext.datasets.transforms import IMAGENET_MEAN  # NOQA
from chainer_ext.datasets.transforms import IMAGENET_STD  # NOQA
from chainer_ext.datasets.transforms import random_sized_crop_box  # NOQA
