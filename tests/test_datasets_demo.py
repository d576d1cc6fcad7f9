"""The digits demo data set: counts, labels, format, idempotent cache."""
import collections
import json
import os

import numpy
import pytest
from PIL import Image

from chainer_ext.datasets import build_demo_dataset
from chainer_ext.datasets import DEMO_INSIZE
from chainer_ext.datasets import DEMO_MIN_AREA
from chainer_ext.datasets import ImageNetDataset
from chainer_ext.datasets import read_image_list


@pytest.fixture(scope='module')
def demo(tmp_path_factory):
    cache = tmp_path_factory.mktemp('cache')
    return str(cache), build_demo_dataset(str(cache))


def test_counts_labels_and_split(demo):
    _, (train_list, val_list, root) = demo
    train = read_image_list(train_list, root)
    val = read_image_list(val_list, root)
    assert len(train) == 1437 and len(val) == 360
    assert train.n_class == val.n_class == 10
    assert not set(train) & set(val)
    # Stratified: every class holds out about 20 % of its images.
    n_train = collections.Counter(t for _, t in train)
    n_val = collections.Counter(t for _, t in val)
    for c in range(10):
        share = n_val[c] / float(n_val[c] + n_train[c])
        assert 0.17 < share < 0.23
    # Labels agree with scikit-learn's targets.
    from sklearn.datasets import load_digits
    target = load_digits().target
    for rel, label in list(train)[:50] + list(val)[:50]:
        k = int(os.path.splitext(os.path.basename(rel))[0])
        assert target[k] == label
        assert rel.startswith('images/{}/'.format(label))


def test_files_are_rgb_jpegs_of_the_digit(demo):
    _, (train_list, _, root) = demo
    rel, label = read_image_list(train_list)[0]
    with Image.open(os.path.join(root, rel)) as img:
        assert img.format == 'JPEG' and img.mode == 'RGB'
        assert img.size == (32, 32)
        arr = numpy.asarray(img).astype(int)
    from sklearn.datasets import load_digits
    k = int(os.path.splitext(os.path.basename(rel))[0])
    ink = load_digits().images[k]
    # Dark ink on white: the darkest 8x8 cell holds the most ink.
    cells = arr[..., 0].reshape(8, 4, 8, 4).mean(axis=(1, 3))
    assert numpy.corrcoef(cells.ravel(), -ink.ravel())[0, 1] > 0.9


def test_idempotent_and_rebuilds_partial_cache(demo):
    cache, result = demo
    marker = os.path.join(result.root, 'COMPLETE.json')
    stamp = os.stat(marker).st_mtime_ns
    assert build_demo_dataset(cache) == result
    assert os.stat(marker).st_mtime_ns == stamp  # reused, not rebuilt
    # A missing image makes the cache incomplete: it is rebuilt.
    victim = os.path.join(result.root, read_image_list(result.val_list)[7][0])
    os.remove(victim)
    assert build_demo_dataset(cache) == result
    assert os.path.isfile(victim)
    # So is a cache without its marker (an interrupted older build).
    os.remove(marker)
    assert build_demo_dataset(cache) == result
    with open(marker) as f:
        assert json.load(f)['n_train'] == 1437
    # No temporary directories are left behind.
    assert sorted(os.listdir(cache)) == ['digits32px']


def test_pipeline_runs_on_demo(demo):
    _, (train_list, val_list, root) = demo
    train = ImageNetDataset(train_list, root, DEMO_INSIZE, train=True, seed=0,
                            min_area=DEMO_MIN_AREA)
    val = ImageNetDataset(val_list, root, DEMO_INSIZE, train=False)
    x, t = train[0]
    assert x.shape == (3, 32, 32) and 0 <= int(t) < 10
    x, t = val[len(val) - 1]
    assert x.shape == (3, 32, 32)


def test_other_size_and_bad_arguments(tmp_path):
    result = build_demo_dataset(str(tmp_path), size=16)
    rel, _ = read_image_list(result.train_list)[0]
    with Image.open(os.path.join(result.root, rel)) as img:
        assert img.size == (16, 16)
    with pytest.raises(ValueError):
        build_demo_dataset(str(tmp_path), size=4)
    with pytest.raises(ValueError):
        build_demo_dataset(str(tmp_path), val_fraction=1.0)
