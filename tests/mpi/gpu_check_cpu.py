"""Launched with mpiexec -n 2 / -n 3: gpu_check's multi-rank checks on CPU arrays.

The float16 ring communicator stands in for pure_nccl: the same error bound
holds for it, and the snapshot broadcast reaches every receiving rank.
"""
import tempfile

import chainer_ext  # noqa: F401  (compatibility stand-ins before chainer loads)
from chainer_ext.machine import gpu_check
from chainer_ext.communicators import create_communicator
from rank_checks import abort_on_exception

comm = create_communicator('naive', allreduce_grad_dtype='float16')
check = abort_on_exception(comm)
out = comm.bcast_obj(tempfile.mkdtemp() if comm.rank == 0 else None)
snap = gpu_check.check_snapshot_broadcast(comm, out, device='@numpy')
check(snap == {'parameters_compared': 2, 'ranks': comm.size}, snap)
res = gpu_check.check_allreduce(comm, device='@numpy', arch='resnet18', reps=1)
check(res['ranks'] == comm.size and res['values'] == 11689512, res)
# random gradients: some float16 rounding must occur, always within the bound
check(0 < res['max_error_over_bound'] <= 1, res)
print('rank', comm.rank, 'ok', res['max_error_over_bound'], flush=True)
