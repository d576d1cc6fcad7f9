"""Communicators: ChainerMN's, plus float16 gradient all-reduce on CPUs (Section 3).

:func:`create_communicator` is a drop-in for ``chainermn.create_communicator``.
It returns ChainerMN's own communicator in every case ChainerMN supports, and
this package's :class:`PackedRingCommunicator` where ChainerMN refuses: a
float16 (or float32) ``allreduce_grad_dtype`` with the CPU communicator names
``'naive'`` and ``'flat'``.

===================  ===========================  ===========================
name                 allreduce_grad_dtype=None    float16 / float32
===================  ===========================  ===========================
``'pure_nccl'``      ChainerMN (GPU, NCCL)        ChainerMN, dtype passed on
``'naive'``          ChainerMN (float32, MPI)     PackedRingCommunicator
``'flat'``           ChainerMN (needs CuPy)       PackedRingCommunicator
others               ChainerMN                    ValueError
===================  ===========================  ===========================

A float32 request on ``'naive'``/``'flat'`` gets the same ring in float32 (the
uncompressed twin, for byte counts and timings) rather than ChainerMN's
refusal; float64 and other dtypes raise ``ValueError``.
"""
import chainermn

from chainer_ext import compat


_RING_NAMES = ('naive', 'flat')
compat.fix_chainermn()


def create_communicator(communicator_name='pure_nccl', mpi_comm=None,
                        allreduce_grad_dtype=None, batched_copy=True):
    """Create a ChainerMN communicator; float16 all-reduce also on CPUs.

    Args:
        communicator_name (str): ChainerMN's name (``'pure_nccl'``,
            ``'naive'``, ``'flat'``, ...).
        mpi_comm: mpi4py communicator (``MPI.COMM_WORLD`` by default).
        allreduce_grad_dtype: dtype of the gradients on the wire.  ``None``
            keeps ChainerMN's behaviour; ``'float16'``/``numpy.float16`` is
            the paper's setting.
        batched_copy (bool): passed to ChainerMN (its GPU packing option).

    Returns:
        A communicator implementing ``chainermn.CommunicatorBase``.
    """
    if allreduce_grad_dtype is None or communicator_name == 'pure_nccl':
        return chainermn.create_communicator(
            communicator_name, mpi_comm,
            allreduce_grad_dtype=allreduce_grad_dtype,
            batched_copy=batched_copy)
    if communicator_name not in _RING_NAMES:
        raise ValueError(
            'allreduce_grad_dtype={!r} is available with \'pure_nccl\' '
            '(ChainerMN, GPU) and with {} (PackedRingCommunicator, CPU), not '
            'with communicator {!r}'.format(
                allreduce_grad_dtype, ' and '.join(map(repr, _RING_NAMES)),
                communicator_name))
    try:
        from chainer_ext.communicators.packed_ring_communicator import (
            PackedRingCommunicator, _parse_grad_dtype)
    except ImportError as e:
        raise ImportError('communicator {!r} with allreduce_grad_dtype={!r} is the CPU ring, '
                          'which needs numba ({}); install numba, or use pure_nccl on '
                          'GPUs'.format(communicator_name, allreduce_grad_dtype, e)) from e
    dtype = _parse_grad_dtype(allreduce_grad_dtype)
    if mpi_comm is None:
        import mpi4py.MPI
        mpi_comm = mpi4py.MPI.COMM_WORLD
    comm = PackedRingCommunicator(mpi_comm, allreduce_grad_dtype=dtype)
    comm.set_config('batched_copy', batched_copy)
    return comm


def ring_allreduce_bytes(n_elems, size, itemsize):
    """Bytes one rank sends in a bandwidth-optimal (ring) all-reduce.

    ``2 (size-1)/size * n_elems * itemsize``, rounded down to whole elements
    per chunk as in :class:`PackedRingCommunicator` (the exact figure is the
    sum of the chunks a rank sends; summed over all ranks it is exactly
    ``2 (size-1) n_elems itemsize``).  Used as the theoretical byte count of
    ``MPI_Allreduce`` for ChainerMN's float32 communicators.
    """
    if size < 1:
        raise ValueError('size must be >= 1, got {}'.format(size))
    return 2 * (size - 1) * int(n_elems) * int(itemsize) // int(size)


def __getattr__(name):
    # The CPU ring (and numba, which it compiles with) loads only when used, so that
    # GPU machines running pure_nccl need no numba.
    if name == 'PackedRingCommunicator':
        from chainer_ext.communicators.packed_ring_communicator import PackedRingCommunicator
        return PackedRingCommunicator
    raise AttributeError('module {!r} has no attribute {!r}'.format(__name__, name))


__all__ = ['create_communicator', 'PackedRingCommunicator',
           'ring_allreduce_bytes']
