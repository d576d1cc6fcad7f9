"""ImageNet input pipeline (paper, Section 4: Goyal et al.'s settings).

List files (``relative/path label``, as Chainer's ImageNet example), strict
Pillow decoding of one crop, fb.resnet.torch's scale/aspect augmentation with
flips and mean/std normalisation, a loader iterator that raises its workers'
errors, ``--check-dataset``, the digits demo and synthetic data; each rank's shard
(:mod:`~chainer_ext.datasets.scatter`) and the order of its examples, reproducible.
"""
from chainer_ext.datasets.check import check_dataset
from chainer_ext.datasets.check import list_problems
from chainer_ext.datasets.check import merge_problems
from chainer_ext.datasets.decode import load_crop
from chainer_ext.datasets.decode import verify_image
from chainer_ext.datasets.demo import build_demo_dataset
from chainer_ext.datasets.demo import DEMO_IMAGE_SIZE
from chainer_ext.datasets.demo import DEMO_INSIZE
from chainer_ext.datasets.demo import DEMO_MIN_AREA
from chainer_ext.datasets.demo import DemoDataset
from chainer_ext.datasets.errors import DatasetError
from chainer_ext.datasets.errors import ImageLoadError
from chainer_ext.datasets.errors import ListFileError
from chainer_ext.datasets.image_list import count_classes
from chainer_ext.datasets.image_list import ImageList
from chainer_ext.datasets.image_list import read_image_list
from chainer_ext.datasets.image_list import write_image_list
from chainer_ext.datasets.imagenet_dataset import ImageNetDataset
from chainer_ext.datasets.iterator import StrictMultiprocessIterator
from chainer_ext.datasets.reproducible_order import EpochSeededDataset
from chainer_ext.datasets.reproducible_order import EpochTaggedOrderSampler
from chainer_ext.datasets.synthetic import SyntheticImageDataset
from chainer_ext.datasets.transforms import center_crop_box
from chainer_ext.datasets.transforms import IMAGENET_MEAN
from chainer_ext.datasets.transforms import IMAGENET_STD
from chainer_ext.datasets.transforms import random_sized_crop_box
