"""Data order and per-example randomness survive a snapshot and worker scheduling."""
import numpy
import pytest

import chainer_ext  # noqa: F401  (compatibility stand-ins before chainer loads)
import chainer
from chainer import serializers

from chainer_ext.datasets.reproducible_order import EpochSeededDataset, EpochTaggedOrderSampler
from chainer_ext.datasets.scatter import IndexedView


class RngProbe(chainer.dataset.DatasetMixin):
    """Returns its index and one draw from the generator it is handed."""

    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def get_example(self, i):
        raise AssertionError('the wrapper must call get_example_rng')

    def get_example_rng(self, i, rng):
        return numpy.int64(i), rng.random()


def _draw(iterator, n_batches):
    return [tuple(map(tuple, zip(*iterator.next()))) for _ in range(n_batches)]


def test_sampler_gives_tagged_permutations_per_epoch():
    s = EpochTaggedOrderSampler(7, seed=3)
    order = s(numpy.arange(7), 0)
    seen = []
    for tag in (1, 2, 3):
        assert s.epoch_of(order) == tag
        assert sorted(order - tag * 7) == list(range(7))
        seen.append(tuple(order - tag * 7))
        order = s(order, 7)
    assert len(set(seen)) == 3  # a fresh permutation every epoch
    again = EpochTaggedOrderSampler(7, seed=3)(numpy.arange(7), 0)
    assert list(again) == list(EpochTaggedOrderSampler(7, seed=3)(numpy.arange(7), 0))
    other = EpochTaggedOrderSampler(7, seed=4)(numpy.arange(7), 0)
    assert list(other) != list(again)


def test_sampler_rejects_bad_sizes():
    with pytest.raises(ValueError, match='size must be positive'):
        EpochTaggedOrderSampler(0, seed=0)
    with pytest.raises(ValueError, match='length 3'):
        EpochTaggedOrderSampler(5, seed=0)(numpy.arange(3), 0)


def test_dataset_needs_rng_method():
    with pytest.raises(TypeError, match='get_example_rng'):
        EpochSeededDataset(chainer.datasets.TupleDataset([1, 2]), seed=0)


def test_each_example_seen_once_per_epoch_with_epoch_dependent_draws():
    ds = EpochSeededDataset(RngProbe(10), seed=1)
    it = chainer.iterators.SerialIterator(
        ds, 5, order_sampler=EpochTaggedOrderSampler(10, seed=2))
    epochs = [_draw(it, 2) for _ in range(2)]
    for epoch in epochs:
        idx = sorted(i for batch in epoch for i in batch[0])
        assert idx == list(range(10))
    draw = [dict(zip(*[sum((list(b[k]) for b in e), []) for k in (0, 1)])) for e in epochs]
    assert all(draw[0][i] != draw[1][i] for i in range(10))
    # the draw of example i in epoch k is a pure function of (seed, k, i)
    expected = numpy.random.default_rng([1, 1, 4]).random()
    assert draw[0][4] == expected


def test_resume_mid_epoch_continues_identically():
    def make():
        ds = EpochSeededDataset(IndexedView(RngProbe(12), numpy.arange(12)[::-1]), seed=5)
        return chainer.iterators.SerialIterator(
            ds, 5, order_sampler=EpochTaggedOrderSampler(12, seed=9))
    straight = make()
    reference = _draw(straight, 9)
    first = make()
    head = _draw(first, 4)
    state = serializers.DictionarySerializer()
    first.serialize(state)
    resumed = make()
    resumed.serialize(serializers.NpzDeserializer(state.target))
    assert head + _draw(resumed, 5) == reference


def test_worker_processes_give_the_same_stream_as_in_process_loading():
    def make(cls, **kw):
        ds = EpochSeededDataset(RngProbe(16), seed=3)
        return cls(ds, 4, order_sampler=EpochTaggedOrderSampler(16, seed=8), **kw)
    serial = _draw(make(chainer.iterators.SerialIterator), 8)
    it = make(chainer.iterators.MultiprocessIterator, n_processes=2, shuffle=None)
    try:
        assert _draw(it, 8) == serial
    finally:
        it.finalize()
