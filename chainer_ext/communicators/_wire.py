"""Element kernels of the packed float16 gradient all-reduce (paper, Section 3).

A *wire* bundles ``pack``, ``reduce`` (one ring hop, float32 sum rounded once to
float16, as NCCL), ``reduce_scale`` (last hop fused with the division by the
number of workers) and ``unpack`` (counting non-finite values) for one transfer
dtype.  Numba kernels are checked bit for bit against NumPy on first use, with
NumPy as the fallback.  The rounding argument: docs/DESIGN.md.
"""
import os
import warnings

import numba
import numpy
from llvmlite import ir
from numba import types
from numba.extending import intrinsic


# ---------------------------------------------------------------------------
# float32 <-> float16 bit patterns, as LLVM instructions
# ---------------------------------------------------------------------------

@intrinsic
def _to_half_bits(typingctx, x):
    """float32 -> uint16 bits of the nearest float16 (ties to even)."""
    sig = types.uint16(types.float32)

    def codegen(context, builder, signature, args):
        half = builder.fptrunc(args[0], ir.HalfType())
        return builder.bitcast(half, ir.IntType(16))
    return sig, codegen


@intrinsic
def _from_half_bits(typingctx, h):
    """uint16 bits of a float16 -> the same value as float32 (exact)."""
    sig = types.float32(types.uint16)

    def codegen(context, builder, signature, args):
        half = builder.bitcast(args[0], ir.HalfType())
        return builder.fpext(half, ir.FloatType())
    return sig, codegen


_F16_EXP = numpy.uint16(0x7c00)
_F32_EXP = numpy.uint32(0x7f800000)


@numba.njit(cache=True, nogil=True)
def _pack_f16(src, dst):
    for i in range(src.size):
        dst[i] = _to_half_bits(src[i])


@numba.njit(cache=True, nogil=True)
def _reduce_f16(acc, inc):
    for i in range(acc.size):
        acc[i] = _to_half_bits(_from_half_bits(acc[i]) + _from_half_bits(inc[i]))


@numba.njit(cache=True, nogil=True)
def _reduce_scale_f16(acc, inc, scale):
    for i in range(acc.size):
        s = _to_half_bits(_from_half_bits(acc[i]) + _from_half_bits(inc[i]))
        acc[i] = _to_half_bits(_from_half_bits(s) * scale)


@numba.njit(cache=True, nogil=True)
def _unpack_f16(src, dst):
    bad = 0
    for i in range(src.size):
        h = src[i]
        bad += (h & _F16_EXP) == _F16_EXP
        dst[i] = _from_half_bits(h)
    return bad


@numba.njit(cache=True, nogil=True)
def _count_nonfinite_f16(src):
    bad = 0
    for i in range(src.size):
        bad += (src[i] & _F16_EXP) == _F16_EXP
    return bad


@numba.njit(cache=True, nogil=True)
def _reduce_scale_f32(acc, inc, scale):
    for i in range(acc.size):
        s = acc[i] + inc[i]
        acc[i] = s * scale


@numba.njit(cache=True, nogil=True)
def _unpack_f32(src, dst, src_bits):
    bad = 0
    for i in range(src.size):
        bad += (src_bits[i] & _F32_EXP) == _F32_EXP
        dst[i] = src[i]
    return bad


@numba.njit(cache=True, nogil=True)
def _count_nonfinite_f32(src_bits):
    bad = 0
    for i in range(src_bits.size):
        bad += (src_bits[i] & _F32_EXP) == _F32_EXP
    return bad


# ---------------------------------------------------------------------------
# Wire objects
# ---------------------------------------------------------------------------

class Float16Wire(object):
    """Float16 on the wire, carried as ``uint16`` bit patterns.

    Args:
        native (bool): use the Numba/LLVM kernels (``True``) or NumPy's
            float16 conversions (``False``).  Both give identical bits.
    """

    dtype = numpy.dtype(numpy.float16)
    buffer_dtype = numpy.dtype(numpy.uint16)

    def __init__(self, native=True):
        self.native = bool(native)

    def pack(self, src, dst):
        if src.dtype == numpy.float32 and self.native:
            _pack_f16(src, dst)
        else:
            with numpy.errstate(over='ignore', invalid='ignore'):
                dst.view(numpy.float16)[...] = src

    def zero(self, dst):
        dst[...] = 0

    def reduce(self, acc, inc):
        if self.native:
            _reduce_f16(acc, inc)
        else:
            a = acc.view(numpy.float16)
            with numpy.errstate(over='ignore', invalid='ignore'):
                numpy.add(a, inc.view(numpy.float16), out=a)

    def reduce_scale(self, acc, inc, scale):
        scale = numpy.float32(scale)
        if self.native:
            _reduce_scale_f16(acc, inc, scale)
        else:
            a = acc.view(numpy.float16)
            with numpy.errstate(over='ignore', invalid='ignore'):
                s = (a + inc.view(numpy.float16)).astype(numpy.float32)
                a[...] = s * scale

    def scale(self, acc, scale):
        """``acc = round(acc * scale)`` (used when there is a single rank)."""
        if float(scale) == 1.0:
            return
        a = acc.view(numpy.float16)
        with numpy.errstate(over='ignore', invalid='ignore'):
            a[...] = a.astype(numpy.float32) * numpy.float32(scale)

    def unpack(self, src, dst):
        if dst.dtype == numpy.float32 and self.native:
            return int(_unpack_f16(src, dst))
        dst[...] = src.view(numpy.float16)
        return self.count_nonfinite(src)

    def count_nonfinite(self, src):
        if self.native:
            return int(_count_nonfinite_f16(src))
        return int(src.size - numpy.count_nonzero(
            numpy.isfinite(src.view(numpy.float16))))


class Float32Wire(object):
    """Float32 on the wire (the uncompressed baseline of the same ring)."""

    dtype = numpy.dtype(numpy.float32)
    buffer_dtype = numpy.dtype(numpy.float32)
    native = True

    def pack(self, src, dst):
        dst[...] = src

    def zero(self, dst):
        dst[...] = 0

    def reduce(self, acc, inc):
        numpy.add(acc, inc, out=acc)

    def reduce_scale(self, acc, inc, scale):
        _reduce_scale_f32(acc, inc, numpy.float32(scale))

    def scale(self, acc, scale):
        if float(scale) != 1.0:
            acc *= numpy.float32(scale)

    def unpack(self, src, dst):
        if dst.dtype == numpy.float32:
            return int(_unpack_f32(src, dst, src.view(numpy.uint32)))
        dst[...] = src
        return self.count_nonfinite(src)

    def count_nonfinite(self, src):
        return int(_count_nonfinite_f32(src.view(numpy.uint32)))


def _self_check(wire):
    """True when ``wire``'s kernels give NumPy's bits on hard cases."""
    every_half = numpy.arange(1 << 16, dtype=numpy.uint16)
    rng = numpy.random.RandomState(0)
    specials = numpy.array(
        [0.0, -0.0, 65504.0, 65519.996, 65520.0, -65520.0, 1e9, numpy.inf,
         -numpy.inf, 2.0 ** -25, 2.0 ** -25 * 1.0001, 2.0 ** -24 * 1.5,
         2.0 ** -24 * 2.5, 6.1e-5, 1e-45, 1.0 + 2.0 ** -11, 1.0 + 3 * 2.0 ** -11],
        dtype=numpy.float32)
    x = numpy.concatenate([
        specials, every_half.view(numpy.float16).astype(numpy.float32),
        (rng.standard_normal(4096) * 10.0 ** rng.randint(-9, 6, 4096)
         ).astype(numpy.float32)])
    with numpy.errstate(over='ignore', invalid='ignore'):
        want = x.astype(numpy.float16).view(numpy.uint16)
    got = numpy.empty_like(want)
    wire.pack(x, got)
    if not _same_halves(got, want):
        return False
    back = numpy.empty(every_half.size, numpy.float32)
    bad = wire.unpack(every_half, back)
    ref = every_half.view(numpy.float16).astype(numpy.float32)
    if bad != int(numpy.count_nonzero(~numpy.isfinite(ref))):
        return False
    same = (back.view(numpy.uint32) == ref.view(numpy.uint32)) | (
        numpy.isnan(back) & numpy.isnan(ref))
    if not same.all():
        return False
    a = rng.randint(0, 1 << 16, 8192).astype(numpy.uint16)
    b = rng.randint(0, 1 << 16, 8192).astype(numpy.uint16)
    with numpy.errstate(over='ignore', invalid='ignore'):
        want = (a.view(numpy.float16) + b.view(numpy.float16)).view(numpy.uint16)
    acc = a.copy()
    wire.reduce(acc, b)
    return _same_halves(acc, want)


def _same_halves(got, want):
    """Equal bits, except that any NaN matches any NaN (payloads differ)."""
    nan = numpy.isnan(want.view(numpy.float16))
    return bool(numpy.array_equal(got[~nan], want[~nan])
                and numpy.isnan(got[nan].view(numpy.float16)).all())


_float16_wire = None


def float16_wire():
    """The float16 wire, native kernels if they pass :func:`_self_check`.

    Set ``CHAINER_EXT_FP16_KERNELS=numpy`` to force the NumPy fallback.
    """
    global _float16_wire
    if _float16_wire is None:
        wire = None
        if os.environ.get('CHAINER_EXT_FP16_KERNELS', 'native') != 'numpy':
            try:
                candidate = Float16Wire(native=True)
                if _self_check(candidate):
                    wire = candidate
                else:
                    warnings.warn('native float16 kernels disagree with NumPy; '
                                  'using NumPy conversions (slower)')
            except Exception as e:  # compilation/linking on an odd CPU
                warnings.warn('native float16 kernels unavailable ({}: {}); '
                              'using NumPy conversions (slower)'.format(
                                  type(e).__name__, e))
        _float16_wire = wire or Float16Wire(native=False)
    return _float16_wire


def get_wire(dtype):
    """Wire for transfer dtype ``dtype`` (float16 or float32)."""
    dtype = numpy.dtype(dtype)
    if dtype == numpy.float16:
        return float16_wire()
    if dtype == numpy.float32:
        return Float32Wire()
    raise ValueError('no wire for transfer dtype {}; use float16 or '
                     'float32'.format(dtype))
