"""What every multi-process test script needs: failures end all ranks at once.

``abort_on_exception(comm)`` makes an uncaught exception on any rank call
``MPI_Abort`` (so the other ranks never wait in a collective), and returns
``check(cond, *msg)``, which prints the rank and the message and aborts the
job when ``cond`` is false.
"""
import sys
import traceback


def abort_on_exception(comm):
    def _abort(*exc_info):
        traceback.print_exception(*exc_info)
        sys.stderr.flush()
        comm.mpi_comm.Abort(1)

    sys.excepthook = _abort

    def check(cond, *msg):
        if not cond:
            print('rank {} FAILED:'.format(comm.rank), *msg, flush=True)
            comm.mpi_comm.Abort(1)

    return check


def params_digest(model):
    """SHA-256 of every parameter's name, dtype, shape and bytes."""
    import hashlib

    import numpy

    import chainer
    h = hashlib.sha256()
    for name, param in sorted(model.namedparams()):
        h.update(name.encode())
        if param.array is None:
            h.update(b'<uninitialised>')
            continue
        array = numpy.ascontiguousarray(chainer.backend.CpuDevice().send(param.array))
        h.update(str(array.dtype).encode() + str(array.shape).encode() + array.tobytes())
    return h.hexdigest()


def params_identical(model, comm):
    """Whether every rank holds bit-identical parameters (collective)."""
    digests = comm.mpi_comm.allgather(params_digest(model))
    return all(d == digests[0] for d in digests)
