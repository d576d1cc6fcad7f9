"""What a run was: configuration, world, versions and hardware (``config.json``).

Comparing a run with the paper (Table 1, Section 4) needs the scale it ran
at: workers, total batch, devices and nodes. This module gathers those facts
on every rank and writes them once, from rank 0.
"""
import datetime
import os
import platform
import socket
import sys

import numpy

import chainer

from chainer_ext.job import atomic_files


def cpu_model(path='/proc/cpuinfo'):
    """The CPU's model name (Linux), else what :mod:`platform` knows."""
    try:
        with open(path) as f:
            for line in f:
                if line.startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _gpu_name(device_id):
    try:
        import cupy
        props = cupy.cuda.runtime.getDeviceProperties(device_id)
        name = props['name']
        return name.decode() if isinstance(name, bytes) else str(name)
    except Exception:
        return None


def versions():
    out = {'python': platform.python_version(), 'chainer': chainer.__version__,
           'numpy': numpy.__version__}
    try:
        import mpi4py
        from mpi4py import MPI
        out['mpi4py'] = mpi4py.__version__
        out['mpi'] = MPI.Get_library_version().strip().splitlines()[0]
    except Exception:
        out['mpi4py'] = out['mpi'] = None
    out['cupy'] = out['cudnn'] = out['nccl'] = None
    from chainer_ext.machine import cudnn_library
    out['cudnn_library'] = dict(cudnn_library.loaded) or None  # which file, or why none
    try:
        import cupy
        out['cupy'] = cupy.__version__
        from chainer.backends import cuda
        if cuda.cudnn_enabled:
            out['cudnn'] = cudnn_library.version_string(cuda.cuda.cudnn.getVersion())
        from cupy.cuda import nccl
        out['nccl'] = str(nccl.get_version())
    except Exception:
        pass
    return out


def cudnn_used(device):
    """Whether Chainer's convolutions and BN on ``device`` (a GPU id, or -1) use cuDNN."""
    if device is None or device < 0:
        return False
    from chainer.backends import cuda
    return bool(cuda.cudnn_enabled) and chainer.config.use_cudnn != 'never'


def gather_run_info(args, comm, device, extra=None):
    """Collect ``config.json``'s content; collective over ``comm``."""
    hostname = socket.gethostname()
    hosts = comm.mpi_comm.allgather(hostname) if comm is not None else [hostname]
    world = comm.size if comm is not None else 1
    gpu = _gpu_name(device) if device is not None and device >= 0 else None
    info = {
        'args': {k: v for k, v in sorted(vars(args).items())},
        'world_size': world,
        'total_batch': world * args.batchsize,
        'device': 'cuda' if gpu is not None else 'cpu',
        'cudnn_used': cudnn_used(device),
        'hardware': {
            'hostname': hostname,
            'hosts': sorted(set(hosts)),
            'nodes': len(set(hosts)),
            'cpu_model': cpu_model(),
            'cpu_count': os.cpu_count(),
            'gpu_name': gpu,
        },
        'versions': versions(),
        'command': ' '.join([os.path.basename(sys.executable)] + sys.argv),
        'start_time': datetime.datetime.now(datetime.timezone.utc).isoformat(),
    }
    info.update(extra or {})
    return info


def record_run(path, args, comm, device, extra=None):
    """Gather the run's description (collective) and write it to ``path`` on rank 0."""
    info = gather_run_info(args, comm, device, extra)
    if comm.rank == 0:
        atomic_files.write_json(path, info, indent=2, sort_keys=True, default=str, end='\n')
    return info

