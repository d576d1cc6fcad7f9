"""Run ``train_imagenet.main`` with a fault injected on one rank (tests only).

    mpiexec -n 2 python tests/mpi/train_with_fault.py MODE RANK ITERATION -- TRAIN-FLAGS...

MODE is ``raise`` (an exception in the update), ``kill`` (SIGKILL of the
process), ``fsize`` (a file-size limit from that iteration on, so that the
next snapshot write fails with EFBIG on that rank), a signal name such as
``USR1`` (sent to the process itself), ``wait`` (print ``WAITING-AT`` and wait,
at most 120 s, for a stop signal from outside) or ``none``.  RANK ``all``
injects on every rank.  ITERATION is a comma-separated list of places: a number
of updates done (0: during the first update), ``startup`` (while the model is
built), ``validation`` (inside the evaluator), ``write`` (at the start of
every snapshot write), ``rankfile`` (while each rank writes its snapshot file) or
``start`` (at the first step of ``main``, which may re-execute the process).
"""
import os
import resource
import signal
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(os.path.dirname(HERE)))

import chainer_ext  # noqa: F401,E402  (compatibility stand-ins before chainer loads)
from chainer.training import StandardUpdater  # noqa: E402


def wait_for_stop_signal(limit=120):
    from chainer_ext.job import stop_signals
    print('WAITING-AT {:.3f}'.format(time.time()), flush=True)
    deadline = time.time() + limit
    while not stop_signals.received() and time.time() < deadline:
        time.sleep(0.01)


def main():
    mode, fault_rank, places = sys.argv[1], sys.argv[2], sys.argv[3].split(',')
    assert sys.argv[4] == '--'
    flags = sys.argv[5:]
    rank = int(os.environ.get('OMPI_COMM_WORLD_RANK', '0'))
    mine = fault_rank in (str(rank), 'all')

    def inject():
        print('FAULT-AT {:.3f}'.format(time.time()), flush=True)
        if mode == 'raise':
            raise RuntimeError('injected fault on rank {} at iteration {}'.format(
                rank, places[0]))
        if mode == 'kill':
            os.kill(os.getpid(), signal.SIGKILL)
        if mode == 'fsize':
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
        if hasattr(signal, 'SIG' + mode):
            os.kill(os.getpid(), getattr(signal, 'SIG' + mode))
        if mode == 'wait':
            wait_for_stop_signal()

    def injecting(where, original, when=lambda *a: True):
        def patched(*args, **kwargs):
            if mine and where in places and when(*args):
                inject()
            return original(*args, **kwargs)
        return patched

    StandardUpdater.update_core = injecting(
        'update', StandardUpdater.update_core,
        lambda updater: str(updater.iteration) in places)
    places.append('update')
    import train_imagenet
    from chainer_ext.machine import blas as blas_setup
    from chainer_ext.extensions import multi_node_snapshot as snapshots
    from chainer_ext.extensions.multi_node_evaluator import MultiNodeEvaluator
    train_imagenet.make_model = injecting('startup', train_imagenet.make_model)
    MultiNodeEvaluator.evaluate = injecting('validation', MultiNodeEvaluator.evaluate)
    snapshots.MultiNodeSnapshot.write = injecting('write', snapshots.MultiNodeSnapshot.write)
    snapshots._write_full = injecting('rankfile', snapshots._write_full)
    snapshots._write_slim = injecting('rankfile', snapshots._write_slim)
    blas_setup.ensure_kernel = injecting('start', blas_setup.ensure_kernel)
    return train_imagenet.main(flags)


# The guard matters: forkserver children of the data loader import this module.
if __name__ == '__main__':
    sys.exit(main())
