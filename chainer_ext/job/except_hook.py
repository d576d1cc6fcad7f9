"""How a job ends: an uncaught exception on any rank ends the whole job, the project's
one line last; an end every rank reaches alike leaves MPI together (:func:`end_together`).

Stands in for ChainerMN's ``global_except_hook``: Python's traceback, then
``PROG: error: rank R: Type: message; stopping all N ranks`` as the last line the
job itself writes, then ``MPI_Abort`` so that no other rank waits in a collective
forever.  A single process (``python train_imagenet.py`` without ``mpiexec``, or a
failure before MPI started) has nobody to stop and exits with status 1 without
``MPI_Abort``, whose notice the PyPI Open MPI cannot find outside its ``mpiexec``
(it prints "Sorry!  You were supposed to get help about: mpi-abort ... No such
file").  What ``mpiexec`` prints after the line, and why: docs/DESIGN.md.
"""
import sys
import time

STATUS = 1  # exit status of a job ended by an uncaught exception


def add_hook(prog):
    """Make an uncaught exception in this process end the job (see the module doc)."""
    def hook(exc_type, value, tb):
        _report_and_end(prog, exc_type, value, tb)
    sys.excepthook = hook


def running_world():
    """``(rank, size)`` of ``MPI_COMM_WORLD`` if MPI runs in this process, else ``None``.

    Looks without starting MPI: importing ``mpi4py.MPI`` would call ``MPI_Init``.
    """
    mpi = sys.modules.get('mpi4py.MPI')
    if mpi is None or not mpi.Is_initialized() or mpi.Is_finalized():
        return None
    return mpi.COMM_WORLD.Get_rank(), mpi.COMM_WORLD.Get_size()


def last_line(prog, exc_type, value, world):
    """The one line that says which rank failed, how, and what happens next."""
    text = ' '.join(str(value).split())  # a message of several lines, on one
    what = exc_type.__name__ + (': ' + text if text else '')
    if world is None or world[1] == 1:
        return '{}: error: {}'.format(prog, what)
    return '{}: error: rank {}: {}; stopping all {} ranks'.format(prog, world[0], what, world[1])


def _report_and_end(prog, exc_type, value, tb):
    world = running_world()
    try:
        sys.stdout.flush()  # what is buffered there would otherwise come after the line
        sys.__excepthook__(exc_type, value, tb)
        sys.stderr.write(last_line(prog, exc_type, value, world) + '\n')
        sys.stderr.flush()
    finally:
        if world is not None and world[1] > 1:
            sys.modules['mpi4py.MPI'].COMM_WORLD.Abort(STATUS)
    # one process: Python exits with status 1 when the hook returns


def check_mpi_can_start():
    """Raise ``RuntimeError`` (one line) when MPI has ended in this process: an earlier
    ``main()`` left it together (:func:`end_together`), and MPI cannot start twice in one
    process; calling into it would end the interpreter (a notebook's kernel)."""
    mpi = sys.modules.get('mpi4py.MPI')
    if mpi is not None and mpi.Is_finalized():
        raise RuntimeError(
            'MPI has ended in this process (a main() called earlier finalized it) and cannot '
            'start again: run each job in a process of its own (from the command line, or by '
            'subprocess.run from a notebook)')


def end_together(timeout=60.0, every=0.05):
    """Every rank reaches ``MPI_Finalize`` before any exits (collective; no-op without MPI).

    Open MPI's launcher ends the job when the first rank exits with a non-zero
    status; a rank still connected to it then makes its PMIx server print
    ``PMIX ERROR: PMIX_ERR_UNREACH`` after the job's last line.  A polled
    non-blocking barrier (given up after ``timeout`` seconds, so that a dead peer
    cannot hang the exit) then ``MPI_Finalize`` on every rank avoids it.
    """
    world = running_world()
    if world is None:
        return
    mpi = sys.modules['mpi4py.MPI']
    if world[1] > 1 and not wait_for_all(mpi.COMM_WORLD, every, timeout):
        return
    mpi.Finalize()


def wait_for_all(mpi_comm, every=0.05, timeout=None):
    """Return True once every rank of ``mpi_comm`` (an mpi4py communicator) has called
    it: a non-blocking barrier tested every ``every`` seconds, so that waiting ranks do
    not spin; False if ``timeout`` seconds passed first."""
    request = mpi_comm.Ibarrier()
    deadline = None if timeout is None else time.monotonic() + timeout
    while not request.Test():
        if deadline is not None and time.monotonic() > deadline:
            return False
        time.sleep(every)
    return True
