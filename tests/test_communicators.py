"""Float16 gradient all-reduce (paper, Section 3): kernels, factory, multi-process runs."""
import os
import sys

import numpy as np
import pytest

import chainer_ext  # noqa: F401  (compatibility stand-ins before chainer loads)
import chainer
import chainermn

from chainer_ext.communicators.packed_ring_communicator import PackedRingCommunicator
from chainer_ext.communicators import create_communicator
from chainer_ext.communicators import _wire

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))), 'bench'))


def _halves_equal(a, b):
    nan = np.isnan(b.view(np.float16))
    return (np.array_equal(a[~nan], b[~nan])
            and np.isnan(a[nan].view(np.float16)).all())


@pytest.mark.parametrize('native', [True, False])
def test_float16_wire_matches_numpy_bit_for_bit(native):
    wire = _wire.Float16Wire(native=native)
    assert _wire._self_check(wire)
    rng = np.random.RandomState(1)
    x = (rng.standard_normal(100003) * 10.0 ** rng.uniform(-9, 5, 100003)
         ).astype(np.float32)
    with np.errstate(over='ignore', invalid='ignore'):
        want = x.astype(np.float16)
    h = np.empty(x.size, np.uint16)
    wire.pack(x, h)
    assert _halves_equal(h, want.view(np.uint16))
    inc = rng.standard_normal(x.size).astype(np.float16).view(np.uint16)
    acc = h.copy()
    wire.reduce_scale(acc, inc, 1.0 / 3)
    with np.errstate(over='ignore', invalid='ignore'):
        s = (want + inc.view(np.float16)).astype(np.float32)
        want_scaled = (s * np.float32(1.0 / 3)).astype(np.float16)
    assert _halves_equal(acc, want_scaled.view(np.uint16))
    out = np.empty(x.size, np.float32)
    bad = wire.unpack(acc, out)
    assert bad == np.count_nonzero(~np.isfinite(want_scaled))
    assert bad > 0  # values beyond 65504 overflowed on packing
    same = want_scaled.astype(np.float32)
    assert np.array_equal(out[np.isfinite(same)], same[np.isfinite(same)])


def test_native_float16_kernels_selected_on_this_machine():
    # F16C (x86) or native half conversions: the fast path must be in use.
    assert _wire.float16_wire().native


def test_float32_wire_counts_nonfinite():
    wire = _wire.Float32Wire()
    src = np.array([1.0, np.inf, -np.inf, np.nan, 3.0], np.float32)
    dst = np.empty_like(src)
    assert wire.unpack(src, dst) == 3
    assert np.array_equal(dst[[0, 4]], [1.0, 3.0])
    acc = np.array([1.0, 2.0], np.float32)
    wire.reduce_scale(acc, np.array([2.0, 4.0], np.float32), 0.5)
    assert np.array_equal(acc, [1.5, 3.0])


def test_factory_names_and_dtypes():
    comm = create_communicator('naive', allreduce_grad_dtype='float16')
    assert isinstance(comm, PackedRingCommunicator)
    assert comm.get_config('allreduce_grad_dtype') == np.float16
    flat = create_communicator('flat', allreduce_grad_dtype=np.float16)
    assert isinstance(flat, PackedRingCommunicator)
    f32 = create_communicator('naive', allreduce_grad_dtype=np.float32)
    assert f32.transfer_dtype() == np.float32
    naive = create_communicator('naive')
    assert type(naive) is type(chainermn.create_communicator('naive'))
    with pytest.raises(ValueError, match='float64'):
        create_communicator('naive', allreduce_grad_dtype='float64')
    with pytest.raises(ValueError, match='int8'):
        create_communicator('flat', allreduce_grad_dtype='int8')
    with pytest.raises(ValueError, match='non_cuda_aware'):
        create_communicator('non_cuda_aware', allreduce_grad_dtype='float16')
    with pytest.raises(ValueError, match='bogus'):
        create_communicator('bogus')
    with pytest.raises(ValueError, match='float64'):
        comm.set_config('allreduce_grad_dtype', np.float64)
    with pytest.raises(ValueError, match='Unknown config'):
        comm.set_config('no_such_option', 1)
    with pytest.raises(ValueError, match='segment_bytes'):
        PackedRingCommunicator(comm.mpi_comm, np.float16, segment_bytes=0)
    for c in (comm, flat, f32):
        c.finalize()


def test_none_dtype_follows_chainer_dtype_like_pure_nccl():
    import mpi4py.MPI
    comm = PackedRingCommunicator(mpi4py.MPI.COMM_WORLD)
    assert comm.get_config('allreduce_grad_dtype') is None
    assert comm.transfer_dtype() == np.float32
    with chainer.using_config('dtype', chainer.mixed16):
        assert comm.transfer_dtype() == np.float16
    comm.finalize()


def test_single_rank_mean_is_the_float16_rounding():
    comm = create_communicator('naive', allreduce_grad_dtype='float16')
    link = chainer.Link()
    with link.init_scope():
        link.w = chainer.Parameter(np.zeros((3, 4), np.float32))
    g = np.random.RandomState(0).standard_normal((3, 4)).astype(np.float32)
    link.w.grad = g.copy()
    comm.multi_node_mean_grad(link)
    assert np.array_equal(link.w.grad, g.astype(np.float16).astype(np.float32))
    assert comm.last_mean_grad_finite
    assert comm.bytes_sent == 0  # nothing to send with one rank
    link.w.grad = None
    comm.multi_node_mean_grad(link)  # no gradient at all: nothing to do
    assert link.w.grad is None
    comm.finalize()


def test_non_numpy_gradient_is_refused_by_name():
    from chainer_ext.communicators.packed_ring_communicator import _check_host_array
    with pytest.raises(TypeError, match='predictor/W.*list'):
        _check_host_array('predictor/W', [1.0])


def test_ring_allreduce_bytes():
    from bench_allreduce import ring_allreduce_bytes
    assert ring_allreduce_bytes(1000, 2, 2) == 2000
    assert ring_allreduce_bytes(1000, 4, 4) == 6000
    assert ring_allreduce_bytes(1000, 1, 4) == 0
    with pytest.raises(ValueError, match='0'):
        ring_allreduce_bytes(10, 0, 4)


def test_benchmark_shapes_are_resnet50():
    import bench_allreduce
    shapes = bench_allreduce.resnet50_param_shapes()
    assert len(shapes) == 161
    assert sum(int(np.prod(s)) for s in shapes) == 25557032


@pytest.mark.parametrize('n', [2, 3])
def test_float16_communicator_multiprocess(mpirun, n):
    mpirun(n, 'comm_fp16.py', timeout=180)
