"""Run ``train_imagenet.main`` with a fault injected on one rank (tests only).

    mpiexec -n 2 python tests/mpi/train_with_fault.py MODE RANK ITERATION -- TRAIN-FLAGS...

MODE is ``raise`` (an exception in the update), ``kill`` (SIGKILL of the
process), ``fsize`` (a file-size limit from that iteration on, so that the
next snapshot write fails with EFBIG on that rank) or ``none``.
"""
import os
import resource
import signal
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(os.path.dirname(HERE)))

from chainer.training import StandardUpdater  # noqa: E402

mode, fault_rank, fault_iteration = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
assert sys.argv[4] == '--'
flags = sys.argv[5:]
rank = int(os.environ.get('OMPI_COMM_WORLD_RANK', '0'))
_update_core = StandardUpdater.update_core


def update_core(self):
    if rank == fault_rank and self.iteration == fault_iteration:
        print('FAULT-AT {:.3f}'.format(time.time()), flush=True)
        if mode == 'raise':
            raise RuntimeError('injected fault on rank {} at iteration {}'.format(
                rank, fault_iteration))
        if mode == 'kill':
            os.kill(os.getpid(), signal.SIGKILL)
        if mode == 'fsize':
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
    return _update_core(self)


StandardUpdater.update_core = update_core

import train_imagenet  # noqa: E402

sys.exit(train_imagenet.main(flags))
