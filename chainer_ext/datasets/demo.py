"""A small real data set in the ImageNet list format, built offline (``--demo``).

scikit-learn's 1,797 bundled 8x8 digits become 32x32 RGB JPEGs with ``train.txt``
and ``val.txt`` (stratified 20 % validation, fixed seed), cached in a folder that is
published by one rename, so the whole pipeline runs end to end on a laptop.
:data:`DEMO_INSIZE` and :data:`DEMO_MIN_AREA` (0.5: digits fill their image) are
explained in docs/DESIGN.md.
"""
import collections
import json
import os
import shutil
import tempfile

import numpy
from PIL import Image

from chainer_ext.datasets.image_list import scan_image_list
from chainer_ext.datasets.image_list import write_image_list

#: Side of the stored JPEG files.
DEMO_IMAGE_SIZE = 32
#: Network input side recommended for the demo (ResNet ``min_insize``).
DEMO_INSIZE = 32
#: Smallest crop area fraction recommended for the demo's training crops.
DEMO_MIN_AREA = 0.5
_FORMAT_VERSION = 1

DemoDataset = collections.namedtuple('DemoDataset',
                                     ['train_list', 'val_list', 'root'])


def build_demo_dataset(cache_dir, size=DEMO_IMAGE_SIZE, val_fraction=0.2,
                       seed=0):
    """Build (or reuse) the digits data set; returns ``(train_list,
    val_list, root)`` as a :class:`DemoDataset` named tuple.

    Args:
        cache_dir (str): Directory to keep the data set in (created).
        size (int): Side of the stored images, in pixels (>= 8).
        val_fraction (float): Share of each class held out for validation.
        seed (int): Seed of the stratified split.
    """
    if size < 8:
        raise ValueError('size must be at least 8 (the digits are 8x8)')
    if not 0 < val_fraction < 1:
        raise ValueError('val_fraction must be in (0, 1)')
    params = {'version': _FORMAT_VERSION, 'size': int(size),
              'val_fraction': float(val_fraction), 'seed': int(seed)}
    root = os.path.abspath(os.path.join(cache_dir, 'digits{}px'.format(size)))
    result = DemoDataset(os.path.join(root, 'train.txt'),
                         os.path.join(root, 'val.txt'), root)
    if _is_complete(root, params):
        return result
    os.makedirs(cache_dir, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix='.{}.tmp-'.format(os.path.basename(root)),
                           dir=os.path.dirname(root))
    try:
        _write(tmp, params)
        if os.path.lexists(root) and not _is_complete(root, params):
            shutil.rmtree(root)
        try:
            os.rename(tmp, root)
        except OSError:
            if not _is_complete(root, params):  # not another builder's copy
                raise
    finally:
        if os.path.exists(tmp):
            shutil.rmtree(tmp, ignore_errors=True)
    return result


def _write(folder, params):
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    images = digits.images  # (1797, 8, 8), ink 0..16
    labels = digits.target.astype(int)
    size = params['size']
    index = numpy.arange(len(labels))
    train_idx, val_idx = train_test_split(
        index, test_size=params['val_fraction'], stratify=labels,
        random_state=params['seed'])
    paths = {}
    for k in range(len(labels)):
        rel = 'images/{}/{:04d}.jpg'.format(labels[k], k)
        os.makedirs(os.path.join(folder, os.path.dirname(rel)), exist_ok=True)
        ink = numpy.clip(numpy.rint(images[k] * (255. / 16.)), 0, 255)
        gray = Image.fromarray((255 - ink).astype(numpy.uint8), mode='L')
        big = gray.resize((size, size), Image.Resampling.BICUBIC)
        big.convert('RGB').save(os.path.join(folder, rel), quality=95)
        paths[k] = rel
    train = [(paths[k], int(labels[k])) for k in sorted(train_idx)]
    val = [(paths[k], int(labels[k])) for k in sorted(val_idx)]
    write_image_list(os.path.join(folder, 'train.txt'), train)
    write_image_list(os.path.join(folder, 'val.txt'), val)
    marker = dict(params, n_train=len(train), n_val=len(val),
                  n_class=int(labels.max()) + 1)
    with open(os.path.join(folder, 'COMPLETE.json'), 'w') as f:
        json.dump(marker, f, indent=1, sort_keys=True)


def _is_complete(root, params):
    """Marker present with the same parameters, lists and files all there."""
    try:
        with open(os.path.join(root, 'COMPLETE.json')) as f:
            marker = json.load(f)
    except (OSError, ValueError):
        return False
    if not isinstance(marker, dict) or any(
            marker.get(k) != v for k, v in params.items()):
        return False
    for name, key in (('train.txt', 'n_train'), ('val.txt', 'n_val')):
        entries, problems = scan_image_list(os.path.join(root, name))
        if problems or len(entries) != marker.get(key):
            return False
        for _, rel, _ in entries:
            if not os.path.isfile(os.path.join(root, rel)):
                return False
    return True
