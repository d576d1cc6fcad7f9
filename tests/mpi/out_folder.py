"""Launched with mpiexec -n 2: an --out that rank 1 made, while rank 0's lock is in it.

Rank 1 makes the folder (and its parent); rank 0 then finds it there and writes its
lock file into it.  The start fails on both ranks alike: rank 1 asks to remove the
folder at once, rank 0 only after releasing its lock a second later.  Rank 1 must wait
for rank 0, and the folder and its parent must be gone.
"""
import os
import sys
import time

import chainer_ext  # noqa: F401  (compatibility stand-ins before chainer loads)
from chainer_ext.communicators import create_communicator
from chainer_ext.job.start_steps import OutputFolder
from rank_checks import abort_on_exception

comm = create_communicator('naive')
check = abort_on_exception(comm)
base = sys.argv[1]
out = OutputFolder(os.path.join(base, 'results', 'run'))
lock = os.path.join(out.path, '.lock')
if comm.rank == 1:
    check(out.make(comm) is None, 'rank 1 could not make', out.path)
comm.mpi_comm.Barrier()
if comm.rank == 0:
    check(out.make(comm) is None, 'rank 0 could not write in', out.path)
    with open(lock, 'w') as f:
        f.write('rank 0')
comm.mpi_comm.Barrier()
if comm.rank == 0:
    time.sleep(1.0)  # rank 1 asks first
    os.remove(lock)
out.remove_if_empty()
comm.mpi_comm.Barrier()
check(os.listdir(base) == [], 'left behind:', os.listdir(base))
print('rank {} ok'.format(comm.rank), flush=True)
