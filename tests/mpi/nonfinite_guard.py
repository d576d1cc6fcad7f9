"""Launched with mpiexec -n 2/3: a float16 overflow in the all-reduce is skipped alike.

Each rank plants a gradient whose float16 sum over ranks overflows (60000 per
rank > 65504 in total); every rank must skip the update, keep its weights and
optimizer state, and count the skip; a finite gradient then updates all ranks
identically; repeated overflow stops every rank with NonFiniteGradientError.
"""
import numpy as np

import chainer_ext  # noqa: F401  (compatibility stand-ins before chainer loads)
import chainer.links as L
import chainermn

from chainer_ext.communicators import create_communicator
from chainer_ext.optimizer_hooks.skip_nonfinite_update import NonFiniteGradientError
from chainer_ext.optimizer_hooks.skip_nonfinite_update import SkipNonFiniteUpdate
from chainer_ext.optimizers import RMSpropWarmup
from rank_checks import abort_on_exception, params_identical

comm = create_communicator('naive', allreduce_grad_dtype='float16')
check = abort_on_exception(comm)

model = L.Linear(4, 3)
comm.bcast_data(model)
optimizer = chainermn.create_multi_node_optimizer(RMSpropWarmup(lr=0.1, alpha_sgd=0.5), comm)
optimizer.setup(model)
optimizer.is_changed(model)  # initial broadcast done above: next update() is a real one
guard = SkipNonFiniteUpdate(comm, max_consecutive=3)
optimizer.add_hook(guard)


def set_grads(value, planted=None):
    for p in model.params():
        p.grad = np.full_like(p.array, value)
    if planted is not None:
        model.W.grad[0, 0] = planted


def snapshot():
    return [p.array.copy() for p in model.params()]


set_grads(0.01 * (comm.rank + 1))
optimizer.update()                                   # a normal step creates the state
before = snapshot()
state = {k: v.copy() for k, v in model.W.update_rule.state.items()}

set_grads(0.01, planted=60000.0)                     # float16 sum overflows to inf
optimizer.update()
check(not comm.last_mean_grad_finite, 'overflow not detected')
check(guard.total_skipped == 1 and guard.consecutive == 1, 'skip not counted', guard.total_skipped)
check(all(np.array_equal(a, b) for a, b in zip(before, snapshot())), 'weights changed')
check(all(np.array_equal(state[k], model.W.update_rule.state[k]) for k in state),
      'optimizer state changed')

set_grads(0.02 * (comm.rank + 1))                    # finite again: a real update
optimizer.update()
check(guard.consecutive == 0, 'streak not reset')
check(not all(np.array_equal(a, b) for a, b in zip(before, snapshot())), 'no update')
check(params_identical(model, comm), 'ranks differ after the update')

raised = 0
for _ in range(3):
    set_grads(0.01, planted=60000.0)
    try:
        optimizer.update()
    except NonFiniteGradientError as e:
        raised += 1
        check('3 consecutive' in str(e), str(e))
check(raised == 1, 'expected one stop after 3 consecutive skips, got', raised)
total = comm.mpi_comm.allgather(guard.total_skipped)
check(total == [4] * comm.size, 'ranks disagree on skips', total)
if comm.rank == 0:
    print('nonfinite guard OK on', comm.size, 'ranks')
