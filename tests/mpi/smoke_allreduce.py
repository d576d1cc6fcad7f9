"""Launched with mpiexec: every rank checks ChainerMN's naive communicator sums."""
import numpy as np

import chainer_ext  # noqa: F401  (compatibility stand-ins before chainer loads)
import chainermn

comm = chainermn.create_communicator('naive')
x = np.full(4, comm.rank + 1, dtype=np.float32)
total = comm.allreduce(x)
expected = sum(range(1, comm.size + 1))
assert np.all(total == expected), (comm.rank, total, expected)
