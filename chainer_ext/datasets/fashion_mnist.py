"""Zalando's Fashion-MNIST from Debian's dataset-fashion-mnist, as arrays or as PNGs and lists.

    python -m chainer_ext.datasets.fashion_mnist --out DIR [--data-dir IDX_DIR]
                                                [--train-per-class K]

Reads the four gzipped IDX files (60,000 training and 10,000 test images, 28x28 grey,
10 classes) and writes ``DIR/train/NNNNN.png`` and ``DIR/val/NNNNN.png``, each named by
its index in its IDX file, and ``DIR/train.txt`` / ``DIR/val.txt`` in the trainer's list
format (paths relative to DIR: ``train_imagenet.py --root DIR``).  ``--train-per-class K``
keeps K training images of each class (:func:`stratified_subset`: the same K give the
same images every time); validation is always the 10,000 test images.  The lists are
written together or not at all.  A missing folder, a truncated file, a wrong magic number
or counts that disagree stop it with one line naming the package or the file (exit 2).
"""
import gzip
import os
import struct
import sys
import zlib

import numpy

from chainer_ext.job import atomic_files
from chainer_ext.job import flag_types
from chainer_ext.datasets.errors import DatasetError
from chainer_ext.datasets.image_list import format_image_list

PROG = 'python -m chainer_ext.datasets.fashion_mnist'
#: Where Debian's package puts the files (the default folder).
PACKAGE_DIR = '/usr/share/datasets/fashion-mnist'
DEBIAN_DIR = PACKAGE_DIR
PACKAGE = 'dataset-fashion-mnist'
#: ``{split: (images file, labels file)}``; ``val`` is the official test set.
FILES = {'train': ('train-images-idx3-ubyte.gz', 'train-labels-idx1-ubyte.gz'),
         'val': ('t10k-images-idx3-ubyte.gz', 't10k-labels-idx1-ubyte.gz')}
#: Images per split and per class of each split, as the data set's README gives them.
SIZES = {'train': 60000, 'val': 10000}
N_CLASS = 10
#: The IDX magic numbers: 0x08 (unsigned byte) data of 3 (images) or 1 (labels) dimensions.
IMAGES_MAGIC = 0x00000803
LABELS_MAGIC = 0x00000801
SIDE = 28
#: Seed of the order in which :func:`stratified_subset` takes each class's images.
SUBSET_SEED = 0


class IdxError(DatasetError):
    """An IDX file, or the folder that should hold them, cannot be used (message names it)."""


def missing_folder_message(folder):
    """The line for a folder without the data set: the package and both ways to get it."""
    return ('{}: no Fashion-MNIST there; install Debian\'s {} (as root: apt-get install {}; '
            'without root: apt-get download {} && dpkg -x {}_*.deb DIR, then --data-dir '
            'DIR{})'.format(folder, PACKAGE, PACKAGE, PACKAGE, PACKAGE, PACKAGE_DIR))


def _file_bytes(path):
    """The bytes of ``path``, gunzipped when it starts with gzip's magic."""
    with open(path, 'rb') as f:
        raw = f.read()
    if raw[:2] != b'\x1f\x8b':
        return raw
    try:
        return gzip.decompress(raw)
    except (EOFError, OSError, zlib.error) as e:
        raise IdxError('{}: truncated or damaged gzip data ({})'.format(path, e))


def read_idx(path, magic, shape_tail=()):
    """The unsigned-byte array of the IDX file ``path`` (gzipped or not).

    Checks the magic number (``magic``: :data:`IMAGES_MAGIC` or :data:`LABELS_MAGIC`),
    the dimensions after the first (``shape_tail``) and that the data are exactly as
    long as the header says; raises :class:`IdxError` naming the file otherwise.
    """
    try:
        data = _file_bytes(path)
    except OSError as e:
        raise IdxError('{}: {}'.format(path, e.strerror or e))
    ndim = magic & 0xff
    header = 4 + 4 * ndim
    if len(data) < 4:
        raise IdxError('{}: truncated: {} bytes, not even a magic number'.format(
            path, len(data)))
    found = struct.unpack('>I', data[:4])[0]
    if found != magic:
        raise IdxError('{}: magic number 0x{:08x}, expected 0x{:08x} (IDX unsigned bytes, '
                       '{} dimension{})'.format(path, found, magic, ndim,
                                                's' if ndim > 1 else ''))
    if len(data) < header:
        raise IdxError('{}: truncated: {} bytes, the header alone is {}'.format(
            path, len(data), header))
    shape = struct.unpack('>{}I'.format(ndim), data[4:header])
    if tuple(shape[1:]) != tuple(shape_tail):
        raise IdxError('{}: items of shape {}, expected {}'.format(
            path, 'x'.join(map(str, shape[1:])), 'x'.join(map(str, shape_tail))))
    size = int(numpy.prod(shape))
    if len(data) - header != size:
        raise IdxError('{}: {}: the header says {:,} bytes of data, the file has {:,}'.format(
            path, 'truncated' if len(data) - header < size else 'trailing bytes',
            size, len(data) - header))
    return numpy.frombuffer(data, numpy.uint8, size, header).reshape(shape)


def read_split(data_dir, split):
    """``(images, labels)`` of ``split`` ('train' or 'val'): uint8 ``(N, 28, 28)`` and
    int32 ``(N,)``; raises :class:`IdxError` for a missing folder or file, a bad file
    (:func:`read_idx`) or counts that disagree with each other or with :data:`SIZES`."""
    if not os.path.isdir(data_dir):
        raise IdxError(missing_folder_message(data_dir))
    image_file, label_file = (os.path.join(data_dir, name) for name in FILES[split])
    for path in (image_file, label_file):
        if not os.path.isfile(path):
            raise IdxError('{}: no such file; {}'.format(path, missing_folder_message(
                data_dir).split('; ', 1)[1]))
    images = read_idx(image_file, IMAGES_MAGIC, (SIDE, SIDE))
    labels = read_idx(label_file, LABELS_MAGIC)
    if len(labels) != len(images):
        raise IdxError('{}: {:,} labels for the {:,} images of {}'.format(
            label_file, len(labels), len(images), image_file))
    if len(images) != SIZES[split]:
        raise IdxError('{}: {:,} images, Fashion-MNIST\'s {} set has {:,}'.format(
            image_file, len(images), split, SIZES[split]))
    if labels.max() >= N_CLASS:
        raise IdxError('{}: label {} at index {}; the classes are 0 to {}'.format(
            label_file, labels.max(), int(labels.argmax()), N_CLASS - 1))
    return images, labels.astype(numpy.int32)


def stratified_subset(labels, per_class, seed=SUBSET_SEED):
    """Sorted indices of ``per_class`` images of every class: each class's indices in an
    order fixed by ``seed``, the first ``per_class`` of them.  The same ``per_class``
    gives the same subset every time, and a smaller one a part of a larger one."""
    rng = numpy.random.RandomState(seed)
    keep = []
    for c in range(int(labels.max()) + 1):
        members = numpy.flatnonzero(labels == c)
        if per_class > len(members):
            raise ValueError('--train-per-class {}: class {} has {:,} training images'.format(
                per_class, c, len(members)))
        keep.append(rng.permutation(members)[:per_class])
    return numpy.sort(numpy.concatenate(keep))


def load(data_dir=None, train_per_class=None):
    """``(x_train, t_train, x_val, t_val)``: uint8 images ``(N, 28, 28)`` and int32 labels
    from ``data_dir`` (default :data:`DEBIAN_DIR`), the training set cut to
    ``train_per_class`` per class when given."""
    data_dir = DEBIAN_DIR if data_dir is None else data_dir
    x_train, t_train = read_split(data_dir, 'train')
    x_val, t_val = read_split(data_dir, 'val')
    if train_per_class is not None:
        keep = stratified_subset(t_train, train_per_class)
        x_train, t_train = x_train[keep], t_train[keep]
    return x_train, t_train, x_val, t_val


def write_pngs(folder, images, indices):
    """``images[i]`` as ``folder/NNNNN.png`` (8-bit grey) for every ``i`` in ``indices``;
    returns the paths relative to the parent of ``folder``, in ``indices`` order."""
    from PIL import Image
    os.makedirs(folder, exist_ok=True)
    rels = []
    for i in indices:
        name = '{:05d}.png'.format(int(i))
        with atomic_files.replacing(os.path.join(folder, name), '.png') as tmp:
            Image.fromarray(images[i], mode='L').save(tmp)
        rels.append('{}/{}'.format(os.path.basename(folder), name))
    return rels


def export(out, data_dir=DEBIAN_DIR, train_per_class=None):
    """Write the PNG files and both lists into ``out`` (see the module docstring);
    returns ``{list path: number of images}``.  Everything is read and checked before
    the first file is written."""
    x_train, t_train = read_split(data_dir, 'train')
    x_val, t_val = read_split(data_dir, 'val')
    train_idx = (numpy.arange(len(t_train)) if train_per_class is None
                 else stratified_subset(t_train, train_per_class))
    texts = {}
    for split, images, labels, indices in (('train', x_train, t_train, train_idx),
                                           ('val', x_val, t_val, numpy.arange(len(t_val)))):
        rels = write_pngs(os.path.join(out, split), images, indices)
        texts[os.path.join(out, split + '.txt')] = format_image_list(
            zip(rels, (int(labels[i]) for i in indices)))
    atomic_files.write_texts(texts)
    return {path: text.count('\n') for path, text in texts.items()}


def build_parser():
    p = flag_types.OneLineParser(prog=PROG, description=__doc__.split('\n')[0])
    p.add_argument('--out', required=True, help='folder for train/, val/, train.txt, val.txt')
    p.add_argument('--data-dir', default=DEBIAN_DIR,
                   help='folder of the four gzipped IDX files (default: Debian\'s, {})'.format(
                       DEBIAN_DIR))
    p.add_argument('--train-per-class', type=flag_types.positive_int, metavar='K',
                   help='keep K training images of each class (default: all 6,000)')
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        counts = export(args.out, args.data_dir, args.train_per_class)
    except (IdxError, ValueError) as e:
        print('{}: error: {}'.format(PROG, e), file=sys.stderr)
        return 2
    except OSError as e:
        print('{}: error: {}: {}'.format(PROG, e.filename or args.out, e.strerror or e),
              file=sys.stderr)
        return 2
    for path, n in counts.items():
        print('{}: {:,} images'.format(path, n))
    return 0


if __name__ == '__main__':
    sys.exit(main())
