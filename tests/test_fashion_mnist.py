"""Fashion-MNIST from Debian's package: the IDX reader on the real files and on damaged
copies, the PNG export and its lists, and the command's one-line errors."""
import gzip
import os
import shutil
import subprocess
import sys

import numpy
import pytest
from PIL import Image

from chainer_ext.datasets import fashion_mnist
from chainer_ext.datasets.image_list import read_image_list

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEBIAN_DIR = '/usr/share/datasets/fashion-mnist'
PROG = 'python -m chainer_ext.datasets.fashion_mnist'

needs_package = pytest.mark.skipif(
    not os.path.isdir(DEBIAN_DIR),
    reason='dataset-fashion-mnist is not installed (apt-get install dataset-fashion-mnist)')

#: Sum of all pixel values of each images file and of all labels of each labels file,
#: computed from the Debian package's files with gzip and NumPy alone (the bytes after
#: the 16- and 8-byte headers); the labels sum to 45 x the images per class.
SUMS = {'train-images-idx3-ubyte.gz': 3431114169, 't10k-images-idx3-ubyte.gz': 573469082,
        'train-labels-idx1-ubyte.gz': 270000, 't10k-labels-idx1-ubyte.gz': 45000}


def raw_payload(name, folder=DEBIAN_DIR):
    """The bytes after the header, read without the module under test."""
    with gzip.open(os.path.join(folder, name)) as f:
        data = f.read()
    return numpy.frombuffer(data, numpy.uint8, offset=16 if 'images' in name else 8)


def run(*args):
    return subprocess.run([sys.executable, '-m', 'chainer_ext.datasets.fashion_mnist'] +
                          list(args), cwd=ROOT, capture_output=True, text=True, timeout=600)


@needs_package
@pytest.mark.parametrize('split, n', [('train', 60000), ('val', 10000)])
def test_reader_on_the_real_files(split, n):
    images, labels = fashion_mnist.read_split(DEBIAN_DIR, split)
    assert images.shape == (n, 28, 28) and images.dtype == numpy.uint8
    assert labels.shape == (n,)
    assert numpy.bincount(labels).tolist() == [n // 10] * 10
    image_file, label_file = fashion_mnist.FILES[split]
    for name, array in ((image_file, images), (label_file, labels)):
        independent = raw_payload(name)
        assert int(independent.astype(numpy.int64).sum()) == SUMS[name]
        assert int(array.astype(numpy.int64).sum()) == SUMS[name], name
    numpy.testing.assert_array_equal(images.reshape(-1), raw_payload(image_file))


def damaged_copy(tmp_path, name, change):
    """A folder holding the four files, ``name`` rewritten as ``change(bytes)`` (gzipped)."""
    folder = tmp_path / 'idx'
    folder.mkdir()
    for other in os.listdir(DEBIAN_DIR):
        if other.endswith('.gz'):
            shutil.copy(os.path.join(DEBIAN_DIR, other), str(folder / other))
    with gzip.open(os.path.join(DEBIAN_DIR, name)) as f:
        data = f.read()
    with gzip.open(str(folder / name), 'wb') as f:
        f.write(change(data))
    return str(folder)


@needs_package
@pytest.mark.parametrize('name, change, message', [
    ('t10k-images-idx3-ubyte.gz', lambda d: d[:-100],
     't10k-images-idx3-ubyte.gz: truncated: the header says 7,840,000 bytes of data, the file '
     'has 7,839,900'),
    ('t10k-images-idx3-ubyte.gz', lambda d: d[:10],
     't10k-images-idx3-ubyte.gz: truncated: 10 bytes, the header alone is 16'),
    ('t10k-labels-idx1-ubyte.gz', lambda d: b'\x00\x00\x08\x03' + d[4:],
     't10k-labels-idx1-ubyte.gz: magic number 0x00000803, expected 0x00000801 (IDX unsigned '
     'bytes, 1 dimension)'),
    ('train-images-idx3-ubyte.gz', lambda d: b'\x1f\x8b\x08\x00' + d[4:],
     'train-images-idx3-ubyte.gz: magic number 0x1f8b0800, expected 0x00000803'),
    ('t10k-labels-idx1-ubyte.gz',
     lambda d: d[:4] + (9999).to_bytes(4, 'big') + d[8:-1],
     't10k-labels-idx1-ubyte.gz: 9,999 labels for the 10,000 images of'),
])
def test_damaged_files_get_one_line_naming_the_file(tmp_path, name, change, message):
    folder = damaged_copy(tmp_path, name, change)
    out = tmp_path / 'out'
    proc = run('--out', str(out), '--data-dir', folder)
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == ''
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith('{}: error: {}'.format(PROG, os.path.join(folder, '')))
    assert message in lines[0]
    assert not out.exists() or not any(
        n.endswith('.txt') for n in os.listdir(str(out)))   # no list written


@needs_package
def test_a_gzip_stream_cut_short_names_the_file(tmp_path):
    folder = damaged_copy(tmp_path, 'train-labels-idx1-ubyte.gz', lambda d: d)
    path = os.path.join(folder, 'train-labels-idx1-ubyte.gz')
    with open(path, 'rb') as f:
        data = f.read()
    with open(path, 'wb') as f:
        f.write(data[:len(data) // 2])
    with pytest.raises(fashion_mnist.IdxError, match='^{}: truncated or damaged gzip'.format(
            path)):
        fashion_mnist.read_split(folder, 'train')


def test_a_missing_folder_names_the_package_and_both_ways_to_get_it(tmp_path):
    missing = str(tmp_path / 'nowhere')
    proc = run('--out', str(tmp_path / 'out'), '--data-dir', missing)
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [
        "{}: error: {}: no Fashion-MNIST there; install Debian's dataset-fashion-mnist (as "
        "root: apt-get install dataset-fashion-mnist; without root: apt-get download "
        "dataset-fashion-mnist && dpkg -x dataset-fashion-mnist_*.deb DIR, then --data-dir "
        "DIR/usr/share/datasets/fashion-mnist)".format(PROG, missing)]
    assert not (tmp_path / 'out').exists()


def test_a_missing_file_is_named(tmp_path):
    proc = run('--out', str(tmp_path / 'out'), '--data-dir', str(tmp_path))
    assert proc.returncode == 2
    assert proc.stderr.startswith('{}: error: {}: no such file; install'.format(
        PROG, os.path.join(str(tmp_path), 'train-images-idx3-ubyte.gz')))
    assert len(proc.stderr.splitlines()) == 1


def test_stratified_subset_is_the_same_every_time_and_nested():
    labels = numpy.repeat(numpy.arange(10), 50)[numpy.random.RandomState(3).permutation(500)]
    small = fashion_mnist.stratified_subset(labels, 5)
    assert numpy.bincount(labels[small]).tolist() == [5] * 10
    assert (small == fashion_mnist.stratified_subset(labels.copy(), 5)).all()
    large = fashion_mnist.stratified_subset(labels, 20)
    assert set(small) <= set(large) and list(large) == sorted(large)
    with pytest.raises(ValueError, match='--train-per-class 51: class 0 has 50'):
        fashion_mnist.stratified_subset(labels, 51)


@needs_package
def test_export_writes_pngs_equal_to_the_idx_pixels_and_both_lists(tmp_path):
    out = tmp_path / 'fm'
    proc = run('--out', str(out), '--train-per-class', '3')
    assert proc.returncode == 0, proc.stderr
    images, labels = fashion_mnist.read_split(DEBIAN_DIR, 'train')
    val_images = raw_payload('t10k-images-idx3-ubyte.gz').reshape(-1, 28, 28)
    val_labels = raw_payload('t10k-labels-idx1-ubyte.gz')
    train = read_image_list(str(out / 'train.txt'))
    val = read_image_list(str(out / 'val.txt'))
    assert len(train) == 30 and len(val) == 10000
    assert numpy.bincount([label for _, label in train]).tolist() == [3] * 10
    # The same subset every time: the list of another export is identical.
    again = tmp_path / 'again'
    assert run('--out', str(again), '--train-per-class', '3').returncode == 0
    assert (again / 'train.txt').read_text() == (out / 'train.txt').read_text()
    for rel, label in train:
        index = int(os.path.splitext(os.path.basename(rel))[0])
        assert rel == 'train/{:05d}.png'.format(index)
        assert label == labels[index]
        with Image.open(str(out / rel)) as img:
            assert img.mode == 'L'
            numpy.testing.assert_array_equal(numpy.asarray(img), images[index])
    assert [rel for rel, _ in val] == ['val/{:05d}.png'.format(k) for k in range(10000)]
    assert [label for _, label in val] == val_labels.tolist()
    for k in (0, 1234, 9999):
        with Image.open(str(out / 'val' / '{:05d}.png'.format(k))) as img:
            numpy.testing.assert_array_equal(numpy.asarray(img), val_images[k])
    assert '{}: 30 images'.format(out / 'train.txt') in proc.stdout


@needs_package
def test_a_subset_larger_than_a_class_is_refused_before_any_file(tmp_path):
    out = tmp_path / 'fm'
    proc = run('--out', str(out), '--train-per-class', '6001')
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [
        '{}: error: --train-per-class 6001: class 0 has 6,000 training images'.format(PROG)]
    assert not out.exists()


def test_a_bad_flag_is_one_line(tmp_path):
    """A flag argparse refuses says so in one line, as the trainer's flags do, not with the
    usage block first."""
    out = tmp_path / 'fm'
    proc = run('--out', str(out), '--train-per-class', '0')
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [
        '{}: error: --train-per-class must be a positive integer, got 0'.format(PROG)]
    assert not out.exists()
