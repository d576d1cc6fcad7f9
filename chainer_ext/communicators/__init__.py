"""Communicators: ChainerMN's, plus float16 gradient all-reduce on CPUs (paper, Section 3).

:func:`create_communicator` is ``chainermn.create_communicator`` except that a
float16 (or float32) ``allreduce_grad_dtype`` with ``'naive'`` or ``'flat'``
gives :class:`~chainer_ext.communicators.packed_ring_communicator.PackedRingCommunicator`
(a float16 ring all-reduce on CPUs) where ChainerMN refuses.  Table of cases and
why the ring rounds like NCCL: docs/DESIGN.md.
"""
import chainermn

from chainer_ext.machine import compat

#: ChainerMN 7.8.1's communicator names (``dummy`` is ChainerMN's test double).
NAMES = ('pure_nccl', 'naive', 'flat', 'non_cuda_aware')
_RING_NAMES = ('naive', 'flat')


def create_communicator(communicator_name='pure_nccl', mpi_comm=None,
                        allreduce_grad_dtype=None, batched_copy=True):
    """Create a ChainerMN communicator; float16 all-reduce also on CPUs.

    Args:
        communicator_name (str): ChainerMN's name (one of :data:`NAMES`).
        mpi_comm: mpi4py communicator (``MPI.COMM_WORLD`` by default).
        allreduce_grad_dtype: dtype of the gradients on the wire.  ``None``
            keeps ChainerMN's behaviour; ``'float16'`` is the paper's setting.
        batched_copy (bool): passed to ChainerMN (its GPU packing option).

    Returns:
        A communicator implementing ``chainermn.CommunicatorBase``.
    """
    compat.fix_chainermn()  # imports mpi4py.MPI, so only now (see below)
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
    # Imported here, as ChainerMN imports its communicators: importing MPI
    # starts it (MPI_Init), which must come after the data loaders' forkserver.
    # The ring compiles with numba, which GPU machines running pure_nccl need not have.
    import mpi4py.MPI
    try:
        from chainer_ext.communicators.packed_ring_communicator import (
            PackedRingCommunicator, _parse_grad_dtype)
    except ImportError as e:
        raise ImportError('communicator {!r} with allreduce_grad_dtype={!r} is the CPU ring, '
                          'which needs numba ({}); install numba, or use pure_nccl on '
                          'GPUs'.format(communicator_name, allreduce_grad_dtype, e)) from e
    dtype = _parse_grad_dtype(allreduce_grad_dtype)
    comm = PackedRingCommunicator(mpi_comm or mpi4py.MPI.COMM_WORLD,
                                  allreduce_grad_dtype=dtype)
    comm.set_config('batched_copy', batched_copy)
    return comm
