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
