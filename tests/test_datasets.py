"""ImageNetDataset: outputs, seeded randomness, workers, pickling, errors;
StrictMultiprocessIterator."""
import multiprocessing
import os
import pickle
import signal

import numpy
import pytest

import chainer_ext  # noqa: F401  (compatibility stand-ins before chainer loads)
import chainer

from chainer_ext.datasets import decode
from chainer_ext.datasets import ImageLoadError
from chainer_ext.datasets import ImageNetDataset
from chainer_ext.datasets import read_image_list
from chainer_ext.datasets import transforms
from chainer_ext.datasets.iterator import FailureReturningDataset
from chainer_ext.datasets.iterator import StrictMultiprocessIterator
from chainer_ext.datasets.iterator import WorkerFailure
from photos import write_photos

N = 8


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    """``N`` small photo-like JPEGs, label = index, and a list file."""
    root = tmp_path_factory.mktemp('imgs')
    names = write_photos(str(root), N, width=96, height=72, quality=90)
    list_path = root / 'list.txt'
    list_path.write_text(''.join('{} {}\n'.format(n, k)
                                 for k, n in enumerate(names)))
    return str(list_path), str(root)


@pytest.fixture
def timeout():
    """Fail instead of hanging forever (the bug these tests guard against)."""
    def handler(signum, frame):
        raise AssertionError('timed out: the iterator hangs')
    old = signal.signal(signal.SIGALRM, handler)
    signal.alarm(120)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


def test_output_types_train_and_val(data):
    list_path, root = data
    for train in (True, False):
        ds = ImageNetDataset(list_path, root, insize=32, train=train, seed=0)
        assert len(ds) == N
        x, t = ds[3]
        assert x.shape == (3, 32, 32) and x.dtype == numpy.float32
        assert t.dtype == numpy.int32 and t.shape == () and int(t) == 3
        assert numpy.isfinite(x).all()
    # DatasetMixin slicing and negative indices work.
    assert [int(t) for _, t in ds[2:5]] == [2, 3, 4]
    assert int(ds[-1][1]) == N - 1
    with pytest.raises(IndexError):
        ds.get_example(N)


def test_pairs_input_equals_list_input(data):
    list_path, root = data
    a = ImageNetDataset(list_path, root, 32, train=False)
    b = ImageNetDataset(list(read_image_list(list_path)), root, 32,
                        train=False)
    numpy.testing.assert_array_equal(a[1][0], b[1][0])


def test_validation_is_centre_crop_and_normalised(data):
    list_path, root = data
    ds = ImageNetDataset(list_path, root, 48, train=False)
    x, _ = ds[0]
    numpy.testing.assert_array_equal(x, ds[0][0])  # deterministic
    path = os.path.join(root, read_image_list(list_path)[0][0])
    hwc = decode.load_crop(
        path, lambda w, h: transforms.center_crop_box(w, h, 48), (48, 48))
    ref = (hwc - numpy.array(transforms.IMAGENET_MEAN)) / numpy.array(
        transforms.IMAGENET_STD)
    numpy.testing.assert_allclose(x, ref.transpose(2, 0, 1), atol=1e-5)


def test_training_randomness_is_seeded_and_reproducible(data):
    list_path, root = data
    a = ImageNetDataset(list_path, root, 32, train=True, seed=1)
    b = ImageNetDataset(list_path, root, 32, train=True, seed=1)
    c = ImageNetDataset(list_path, root, 32, train=True, seed=2)
    first = [a[i][0] for i in range(N)]
    second = [a[i][0] for i in range(N)]
    # Each fetch of an example is a new draw ...
    assert not any(numpy.array_equal(f, s) for f, s in zip(first, second))
    # ... the same for the same seed and fetch order ...
    for i in range(N):
        numpy.testing.assert_array_equal(b[i][0], first[i])
    # ... and different for another seed.
    assert not numpy.array_equal(c[0][0], first[0])
    # get_example_rng with the same generator gives the same example.
    x, _ = b.get_example_rng(3, numpy.random.default_rng([1, 3]))
    y, _ = a.get_example_rng(3, numpy.random.default_rng([1, 3]))
    numpy.testing.assert_array_equal(x, y)


def test_seed_accepts_sequences_and_rejects_negative(data):
    list_path, root = data
    x = ImageNetDataset(list_path, root, 32, seed=(5, 1))[0][0]
    y = ImageNetDataset(list_path, root, 32, seed=(5, 2))[0][0]
    assert not numpy.array_equal(x, y)
    with pytest.raises(ValueError):
        ImageNetDataset(list_path, root, 32, seed=-1)
    # seed=None still gives one seed shared by all copies of the object.
    z = ImageNetDataset(list_path, root, 32, seed=None)
    assert isinstance(z.seed, int)


def test_flip_and_crop_drawn_from_the_example_generator(data):
    list_path, root = data
    ds = ImageNetDataset(list_path, root, 32, train=True, seed=0, flip=False)
    rng = numpy.random.default_rng(0)
    path = os.path.join(root, ds.pairs[2][0])
    x, _ = ds.get_example_rng(2, rng)
    rng = numpy.random.default_rng(0)
    rng.integers(0, 2)  # the flip draw comes first (unused with flip=False)
    hwc = decode.load_crop(path, lambda w, h: transforms.random_sized_crop_box(
        w, h, rng, min_area=0.08), (32, 32))
    numpy.testing.assert_array_equal(x, transforms.normalizer()(hwc))


def test_pickled_copy_starts_a_fresh_generator(data):
    list_path, root = data
    ds = ImageNetDataset(list_path, root, 32, train=True, seed=3)
    first = ds[0][0]
    copy = pickle.loads(pickle.dumps(ds))
    numpy.testing.assert_array_equal(copy[0][0], first)
    assert not numpy.array_equal(ds[0][0], first)
    val = pickle.loads(pickle.dumps(ImageNetDataset(list_path, root, 32,
                                                    train=False)))
    assert val[0][0].shape == (3, 32, 32)


def _collect(iterator, n_batches):
    seen = {}
    for _ in range(n_batches):
        for x, t in iterator.next():
            seen.setdefault(int(t), []).append(x)
    iterator.finalize()
    return seen


def _draws(ds, queue):
    queue.put([ds[0][0] for _ in range(3)])


@pytest.mark.parametrize('method', ['fork', 'forkserver'])
def test_direct_use_in_workers(data, method, timeout):
    """``get_example`` works in loader processes (the dataset pickles into
    them), and each process draws from its own generator, not a copy of the
    parent's.  (Reproducible loading with workers is EpochSeededDataset's
    job, tested in test_reproducible_order.py.)"""
    list_path, root = data
    ds = ImageNetDataset(list_path, root, 32, train=True, seed=11)
    ds[0]  # the parent's generator exists before the workers start
    ctx = multiprocessing.get_context(method)
    queue = ctx.Queue()
    procs = [ctx.Process(target=_draws, args=(ds, queue)) for _ in range(2)]
    for p in procs:
        p.start()
    streams = [numpy.stack(queue.get()) for _ in procs]
    for p in procs:
        p.join()
    streams.append(numpy.stack([ds[0][0] for _ in range(3)]))
    for j in range(3):
        for k in range(j):
            assert not numpy.array_equal(streams[j], streams[k])

    old = multiprocessing.get_start_method()
    multiprocessing.set_start_method(method, force=True)
    it = None
    try:
        it = chainer.iterators.MultiprocessIterator(
            ds, 4, shuffle=True, n_processes=2, n_prefetch=1)
        seen = _collect(it, 3 * N // 4)  # three epochs
    finally:
        # finalize now: left to the garbage collector, its prefetch thread can
        # deadlock an import that happens to trigger the collection
        if it is not None:
            it.finalize()
        multiprocessing.set_start_method(old, force=True)
    assert sorted(seen) == list(range(N))
    for xs in seen.values():
        assert len(xs) == 3
        for x in xs:
            assert x.shape == (3, 32, 32) and numpy.isfinite(x).all()


def test_missing_file_error_names_list_line_and_file(data, tmp_path):
    list_path, root = data
    bad_list = tmp_path / 'bad.txt'
    lines = open(list_path).read().splitlines()
    lines.insert(2, 'does_not_exist.JPEG 0')
    bad_list.write_text('\n'.join(lines) + '\n')
    ds = ImageNetDataset(str(bad_list), root, 32, train=True, seed=0)
    with pytest.raises(ImageLoadError) as info:
        ds[2]
    message = str(info.value)
    assert message.startswith('{}:3: '.format(bad_list))
    assert os.path.join(root, 'does_not_exist.JPEG') in message
    assert 'does not exist' in message
    err = pickle.loads(pickle.dumps(info.value))
    assert (err.path, err.reason, err.where) == (
        info.value.path, info.value.reason, info.value.where)
    assert str(err) == message


def _list_with_truncated(data, tmp_path, at):
    list_path, root = data
    pairs = read_image_list(list_path)
    src = os.path.join(root, pairs[at][0])
    blob = open(src, 'rb').read()
    bad = tmp_path / 'truncated.JPEG'
    bad.write_bytes(blob[:len(blob) // 2])
    lines = ['{} {}'.format(os.path.join(root, p), t) for p, t in pairs]
    lines[at] = '{} {}'.format(bad, at)
    path = tmp_path / 'list.txt'
    path.write_text('\n'.join(lines) + '\n')
    return str(path), str(bad)


def test_strict_iterator_raises_worker_errors(data, tmp_path, timeout):
    list_path, bad = _list_with_truncated(data, tmp_path, at=5)
    ds = ImageNetDataset(list_path, '/', 32, train=True, seed=0)
    it = StrictMultiprocessIterator(ds, 2, shuffle=False, repeat=False,
                                    n_processes=2)
    assert len(it.dataset) == N and it.base_dataset is ds
    with pytest.raises(ImageLoadError) as info:
        try:
            for _ in range(N // 2):
                it.next()
        finally:
            it.finalize()
    assert info.value.path == bad
    assert info.value.where == '{}:6'.format(list_path)
    assert 'truncated' in str(info.value)


def test_strict_iterator_passes_good_batches(data, timeout):
    list_path, root = data
    ds = ImageNetDataset(list_path, root, 32, train=False)
    it = StrictMultiprocessIterator(ds, 3, shuffle=False, repeat=False,
                                    n_processes=2)
    try:
        labels = [int(t) for batch in it for _, t in batch]
    finally:
        it.finalize()
    assert labels == list(range(N))


def test_failure_wrapper_replaces_unpicklable_exceptions():
    class Local(Exception):  # local classes cannot be pickled
        pass

    class Bad(chainer.dataset.DatasetMixin):
        def __len__(self):
            return 1

        def get_example(self, i):
            raise Local('boom')
    failure = FailureReturningDataset(Bad())[0]
    assert isinstance(failure, WorkerFailure)
    assert isinstance(failure.exception, RuntimeError)
    assert 'boom' in str(failure.exception)
    pickle.dumps(failure)


def test_invalid_arguments(data, tmp_path):
    list_path, root = data
    with pytest.raises(ValueError):
        ImageNetDataset(list_path, root, 32, min_area=0)
    with pytest.raises(ValueError):
        ImageNetDataset(list_path, root, 0)
    with pytest.raises(ValueError):
        ImageNetDataset([], root, 32)
