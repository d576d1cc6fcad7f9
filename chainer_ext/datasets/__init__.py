"""ImageNet input pipeline (paper, Section 4: Goyal et al.'s settings).

List files (``relative/path label``, as Chainer's ImageNet example), strict
Pillow decoding of one crop, fb.resnet.torch's scale/aspect augmentation with
flips and mean/std normalisation, a loader iterator that raises its workers'
errors, ``--check-dataset``, the digits demo and synthetic data.
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
