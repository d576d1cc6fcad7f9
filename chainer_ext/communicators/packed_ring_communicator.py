"""Packed ring all-reduce of gradients in float16 on host memory (paper, Section 3).

:class:`PackedRingCommunicator` brings ChainerMN's ``pure_nccl`` float16 scheme to
CPU ranks: pack all gradients into one float16 buffer, ring all-reduce it (sum
first, divide by the workers after, both in float16, no pre-scaling), unpack.
All ranks end bit-identical, so a non-finite check gives the same verdict
everywhere.  Algorithm and numerics: docs/DESIGN.md.
"""
import numpy

import chainer
from chainermn.communicators import mpi_communicator_base

from chainer_ext.communicators import _wire


_TAG_REDUCE_SCATTER = 41
_TAG_ALLGATHER = 42


class _HostMemory(object):
    """Grow-only host buffer reused across calls (cf. ChainerMN's DeviceMemory)."""

    def __init__(self):
        self.size = 0
        self.memory = None

    def assign(self, size):
        if size > self.size:
            self.memory = numpy.empty(size, dtype=numpy.uint8)
            self.size = size

    def array(self, count, dtype):
        dtype = numpy.dtype(dtype)
        if count == 0:
            return numpy.empty(0, dtype=dtype)
        self.assign(count * dtype.itemsize)
        return self.memory[:count * dtype.itemsize].view(dtype)


def _parse_grad_dtype(value):
    """``None``, or the transfer dtype (float16 or float32) named by ``value``."""
    if value is None:
        return None
    try:
        dtype = numpy.dtype(value)
    except TypeError:
        raise ValueError('allreduce_grad_dtype must be float16, float32 or '
                         'None, got {!r}'.format(value))
    if dtype not in (numpy.float16, numpy.float32):
        raise ValueError('allreduce_grad_dtype must be float16, float32 or '
                         'None, got {!r} (this communicator sums on the CPU '
                         'in float16 or float32 only)'.format(value))
    return dtype


class PackedRingCommunicator(mpi_communicator_base.MpiCommunicatorBase):
    """ChainerMN communicator: packed gradients, ring all-reduce in float16.

    It implements ChainerMN's communicator interface (everything but
    ``multi_node_mean_grad`` comes from ``MpiCommunicatorBase``: ``bcast_data``,
    ``allreduce``, ``bcast_obj``, ``send``/``recv``, ...).  Gradients must be
    NumPy arrays (use ChainerMN's ``pure_nccl`` on GPUs).

    Args:
        mpi_comm: mpi4py communicator.
        allreduce_grad_dtype: transfer dtype, ``numpy.float16`` (the paper's
            setting) or ``numpy.float32``.  ``None`` follows ``pure_nccl``:
            ``chainer.get_dtype()`` at each call (float32 unless
            ``chainer.config.dtype`` is float16 or mixed16).
        segment_bytes (int): size of the pieces each hop is cut into.

    Attributes:
        bytes_sent (int): cumulative gradient bytes this rank passed to MPI
            send calls in ``multi_node_mean_grad`` (the 16-byte element-count
            check is not counted).
        last_mean_grad_finite (bool): whether the last
            ``multi_node_mean_grad`` left only finite gradients.
        last_nonfinite_elements (int): number of non-finite gradient elements
            after the last call.
        nonfinite_count (int): number of calls whose result had non-finite
            elements.
    """

    def __init__(self, mpi_comm, allreduce_grad_dtype=None,
                 segment_bytes=1 << 19):
        super(PackedRingCommunicator, self).__init__(mpi_comm)
        if int(segment_bytes) < 64:
            raise ValueError('segment_bytes must be >= 64, got {}'.format(
                segment_bytes))
        self.segment_bytes = int(segment_bytes)
        # A private duplicate: ring traffic never matches user send/recv.
        self._ring_comm = mpi_comm.Dup()
        self._buffer = _HostMemory()
        self._recv_buffers = (_HostMemory(), _HostMemory())
        with self.config_scope():
            self.allreduce_grad_dtype = None
        self.set_config('allreduce_grad_dtype', allreduce_grad_dtype)
        self.bytes_sent = 0
        self.last_mean_grad_finite = True
        self.last_nonfinite_elements = 0
        self.nonfinite_count = 0

    # -- configuration (as PureNcclCommunicator) ---------------------------

    def set_config(self, name, value=True, **kwargs):
        if name == 'allreduce_grad_dtype':
            dtype = _parse_grad_dtype(value)
            with self.config_scope():
                self.allreduce_grad_dtype = dtype
        else:
            super(PackedRingCommunicator, self).set_config(
                name, value, **kwargs)

    def get_config(self, name=None):
        if name == 'allreduce_grad_dtype':
            return self.allreduce_grad_dtype
        return super(PackedRingCommunicator, self).get_config(name)

    def split(self, color, key):
        comm = self.__class__(
            mpi_comm=self.mpi_comm.Split(color, key),
            allreduce_grad_dtype=self.allreduce_grad_dtype,
            segment_bytes=self.segment_bytes)
        comm.set_config('batched_copy', self.batched_copy)
        return comm

    def finalize(self):
        super(PackedRingCommunicator, self).finalize()
        if self._ring_comm is not None:
            self._ring_comm.Free()
            self._ring_comm = None

    def transfer_dtype(self):
        """The dtype gradients travel in at the next call."""
        if self.allreduce_grad_dtype is not None:
            return self.allreduce_grad_dtype
        return numpy.dtype(chainer.get_dtype())

    # -- gradient mean ------------------------------------------------------

    def multi_node_mean_grad(self, model, zero_fill=False):
        """Replace every gradient by its mean over all ranks.

        Parameters and ``zero_fill`` are treated as in ChainerMN: parameters
        whose ``data`` is ``None`` (uninitialised) are skipped; with
        ``zero_fill=False`` so are parameters whose ``grad`` is ``None``
        (every rank must then skip the same ones); with ``zero_fill=True`` a
        ``None`` gradient takes part as zeros and receives the mean.
        """
        wire = _wire.get_wire(self.transfer_dtype())
        named = _params_to_reduce(model, zero_fill)
        n_elems = sum(param.data.size for _, param in named)
        self._check_same_count(n_elems)
        buf = self._buffer.array(n_elems, wire.buffer_dtype)

        offset = 0
        for name, param in named:
            size = param.data.size
            grad = param.grad
            if grad is None:
                wire.zero(buf[offset:offset + size])
            else:
                _check_host_array(name, grad)
                wire.pack(grad.reshape(-1), buf[offset:offset + size])
            offset += size

        self._ring_allreduce(buf, wire)

        bad = 0
        offset = 0
        for _, param in named:
            size = param.data.size
            if param.grad is None:
                param.grad = numpy.empty_like(param.data)
            grad = param.grad
            if grad.flags.c_contiguous:
                bad += wire.unpack(buf[offset:offset + size], grad.reshape(-1))
            else:
                flat = numpy.empty(size, dtype=grad.dtype)
                bad += wire.unpack(buf[offset:offset + size], flat)
                grad[...] = flat.reshape(grad.shape)
            offset += size

        self.last_nonfinite_elements = bad
        self.last_mean_grad_finite = bad == 0
        if bad:
            self.nonfinite_count += 1
            if chainer.is_debug():
                raise ValueError('Parameters diverged after allreduce.')

    def _check_same_count(self, n_elems):
        """Every rank must pack the same number of elements: else a clear error."""
        from mpi4py import MPI
        v = numpy.array([n_elems, -n_elems], dtype=numpy.int64)
        self._ring_comm.Allreduce(MPI.IN_PLACE, v, op=MPI.MAX)
        if v[0] != -v[1]:
            raise ValueError(
                'multi_node_mean_grad: ranks have different numbers of '
                'gradient elements (this rank {}, smallest {}, largest {}); '
                'with zero_fill=False every rank must have gradients for the '
                'same parameters'.format(n_elems, -v[1], v[0]))

    def _ring_allreduce(self, buf, wire):
        """Sum ``buf`` over all ranks and multiply by ``1/size``, in place."""
        p = self.size
        scale = 1.0 / p
        if p == 1:
            wire.scale(buf, scale)
            return
        r = self.rank
        n = buf.size
        bounds = [n * i // p for i in range(p + 1)]

        def chunk(c):
            return buf[bounds[c]:bounds[c + 1]]

        # Reduce-scatter: at hop s, send chunk r-s, receive chunk r-s-1 and
        # add the local data; rank c-1 finishes chunk c (and divides).
        for s in range(p - 1):
            last = s == p - 2
            self._hop_reduce(chunk((r - s) % p), chunk((r - s - 1) % p), wire,
                             scale if last else None)
        # All-gather: pass the finished chunks around the ring.
        for s in range(p - 1):
            self._hop_copy(chunk((r + 1 - s) % p), chunk((r - s) % p))

    def _segments(self, array):
        step = max(1, self.segment_bytes // array.itemsize)
        return [array[i:i + step] for i in range(0, array.size, step)]

    def _hop_reduce(self, send, acc, wire, scale):
        from mpi4py import MPI
        comm = self._ring_comm
        right = (self.rank + 1) % self.size
        left = (self.rank - 1) % self.size
        targets = self._segments(acc)
        step = max(1, self.segment_bytes // acc.itemsize)
        slots = [m.array(step, acc.dtype) for m in self._recv_buffers]

        def post(j):
            return comm.Irecv(slots[j % 2][:targets[j].size], source=left,
                              tag=_TAG_REDUCE_SCATTER)

        recvs = [post(j) for j in range(min(2, len(targets)))]
        sends = [comm.Isend(seg, dest=right, tag=_TAG_REDUCE_SCATTER)
                 for seg in self._segments(send)]
        self.bytes_sent += send.nbytes
        for j, target in enumerate(targets):
            recvs[j].Wait()
            incoming = slots[j % 2][:target.size]
            if scale is None:
                wire.reduce(target, incoming)
            else:
                wire.reduce_scale(target, incoming, scale)
            if j + 2 < len(targets):
                recvs.append(post(j + 2))
        MPI.Request.Waitall(sends)

    def _hop_copy(self, send, recv):
        from mpi4py import MPI
        comm = self._ring_comm
        right = (self.rank + 1) % self.size
        left = (self.rank - 1) % self.size
        reqs = [comm.Irecv(seg, source=left, tag=_TAG_ALLGATHER)
                for seg in self._segments(recv)]
        reqs += [comm.Isend(seg, dest=right, tag=_TAG_ALLGATHER)
                 for seg in self._segments(send)]
        self.bytes_sent += send.nbytes
        MPI.Request.Waitall(reqs)


def _params_to_reduce(model, zero_fill):
    """(name, param) in ChainerMN's order and selection (extract_params_set_grad)."""
    if zero_fill:
        return [(name, param) for name, param in sorted(model.namedparams())
                if param.data is not None]
    return [(name, param) for name, param in sorted(model.namedparams())
            if param.data is not None and param.grad is not None]


def _check_host_array(name, grad):
    if not isinstance(grad, numpy.ndarray):
        raise TypeError(
            'PackedRingCommunicator reduces host (NumPy) gradients; the '
            'gradient of {} is a {}. Use ChainerMN\'s pure_nccl communicator '
            'for GPU arrays.'.format(name, type(grad).__name__))
