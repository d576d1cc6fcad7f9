"""Fuzzing: list files and image files of random or damaged bytes.

Whatever the bytes, the list parser and the image loader either succeed or
raise the project's own error naming the file -- never an unrelated
exception, never garbage, never a hang.  Derandomized and bounded
(``max_examples`` = 200) so the run is the same in CI every time.
"""
import atexit
import io
import os
import shutil
import tempfile

import numpy
from hypothesis import given, HealthCheck, settings, strategies as st
from PIL import Image

from chainer_ext.datasets import check_dataset
from chainer_ext.datasets import ImageLoadError
from chainer_ext.datasets import ImageNetDataset
from chainer_ext.datasets import ListFileError
from chainer_ext.datasets import read_image_list
from chainer_ext.datasets.decode import load_crop
from chainer_ext.datasets.decode import verify_image

FUZZ = settings(max_examples=200, derandomize=True, deadline=None,
                suppress_health_check=[HealthCheck.too_slow],
                database=None)

_DIR = tempfile.mkdtemp(prefix='fuzz-inputs-')
atexit.register(shutil.rmtree, _DIR, True)


def _put(name, data):
    path = os.path.join(_DIR, name)
    with open(path, 'wb') as f:
        f.write(data)
    return path


def _seed_images():
    rng = numpy.random.default_rng(0)
    arr = rng.integers(0, 256, (24, 32, 3)).astype(numpy.uint8)
    img = Image.fromarray(arr)
    out = []
    for fmt, kw, mode in [('JPEG', {'quality': 85}, 'RGB'),
                          ('JPEG', {'quality': 85, 'progressive': True},
                           'RGB'),
                          ('JPEG', {}, 'L'), ('JPEG', {}, 'CMYK'),
                          ('PNG', {}, 'RGB'), ('PNG', {}, 'P'),
                          ('GIF', {}, 'P'), ('BMP', {}, 'RGB')]:
        buf = io.BytesIO()
        img.convert(mode).save(buf, fmt, **kw)
        out.append(buf.getvalue())
    return out


SEEDS = _seed_images()


@st.composite
def damaged_images(draw):
    """A valid small image with truncation, bit flips or inserted bytes."""
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(['truncate', 'flip', 'insert', 'zero']))
        pos = draw(st.integers(0, max(0, len(data) - 1)))
        if kind == 'truncate':
            del data[pos:]
        elif kind == 'flip' and data:
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif kind == 'insert':
            data[pos:pos] = draw(st.binary(min_size=1, max_size=16))
        elif data:
            end = pos + draw(st.integers(1, 64))
            data[pos:end] = bytes(len(data[pos:end]))
    return bytes(data)


def _check_load(data, name):
    path = _put(name, data)
    for insize in (16, 7):
        try:
            out = load_crop(path, lambda w, h: (0, 0, w, h), (insize, insize))
        except ImageLoadError as e:
            assert e.path == path and str(e).startswith(path + ': ')
        else:
            assert out.shape == (insize, insize, 3)
            assert out.dtype == numpy.uint8
    try:
        verify_image(path)
    except ImageLoadError as e:
        assert e.path == path


@FUZZ
@given(st.binary(max_size=512))
def test_loader_random_bytes(data):
    _check_load(data, 'random.JPEG')


@FUZZ
@given(damaged_images())
def test_loader_damaged_images(data):
    _check_load(data, 'damaged.JPEG')


@FUZZ
@given(damaged_images(), st.booleans())
def test_dataset_damaged_images(data, train):
    path = _put('ds.JPEG', data)
    ds = ImageNetDataset([(path, 0)], '/', insize=16, train=train, seed=0)
    try:
        x, t = ds[0]
    except ImageLoadError as e:
        assert e.path == path
    else:
        assert x.shape == (3, 16, 16) and x.dtype == numpy.float32
        assert numpy.isfinite(x).all()


@FUZZ
@given(st.binary(max_size=300))
def test_list_parser_random_bytes(data):
    path = _put('random_list.txt', data)
    try:
        pairs = read_image_list(path)
    except ListFileError as e:
        assert e.path == path and str(e).startswith(path + ':')
    else:
        assert len(pairs) == len(pairs.lines) > 0
        for rel, label in pairs:
            assert rel and rel == rel.strip(' \t') and 0 <= label < 2 ** 31
    for problem in check_dataset(path, _DIR, n_class=3):
        assert problem.startswith(path + ':')


_PATH_TEXT = st.text(
    alphabet=st.characters(blacklist_categories=('Cs',),
                           blacklist_characters='\n\r\0'),
    min_size=1, max_size=20).filter(lambda s: s.strip(' \t'))


@FUZZ
@given(st.lists(st.tuples(_PATH_TEXT, st.integers(0, 2 ** 31 - 1),
                          st.sampled_from([' ', '\t', '  ', ' \t ']),
                          st.booleans()),
                min_size=1, max_size=8))
def test_list_parser_round_trips_valid_lines(entries):
    lines = []
    for rel, label, sep, blank_after in entries:
        lines.append('{}{}{}'.format(rel, sep, label))
        if blank_after:
            lines.append(' ')
    path = _put('valid_list.txt', '\n'.join(lines).encode('utf-8'))
    pairs = read_image_list(path)
    assert list(pairs) == [(rel.strip(' \t'), label)
                           for rel, label, _, _ in entries]
