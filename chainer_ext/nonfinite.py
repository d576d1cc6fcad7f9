"""Skip updates whose averaged gradient is not finite, identically on all ranks.

Float16 all-reduce (Section 3 of the paper) can overflow, and a diverging run
produces inf/NaN losses. Applying such a gradient destroys the weights and the
optimizer state (Δ and m of Appendix A.1) on every rank at once. This hook runs
as a ``'pre'`` optimizer hook, i.e. after ChainerMN's multi-node optimizer has
all-reduced the gradients and before any parameter is touched. When any
gradient element is non-finite on any rank (decided by a one-integer MPI
all-reduce, so every rank takes the same decision even if a communicator did
not leave bit-identical gradients), it uses Chainer's own skip mechanism, the
one its dynamic loss scaling uses: ``GradientMethod.update`` calls
``check_nan_in_grads()`` (which resets the flag), then the ``'pre'`` hooks,
then updates the parameters only if ``is_safe_to_update()``; the hook sets the
flag that method reads. The gradients and the optimizer state stay untouched,
and ``optimizer.t`` still advances, so schedules stay in step. It counts skips
and raises
:class:`NonFiniteGradientError` after ``max_consecutive`` skips in a row, so a
diverged job stops with a clear message instead of spending its allocation.
"""
import numpy

import chainer


class NonFiniteGradientError(RuntimeError):
    """Too many consecutive updates had non-finite gradients."""


class SkipNonFiniteUpdate(object):
    """Optimizer hook (timing ``'pre'``) skipping non-finite updates.

    Args:
        comm: ChainerMN communicator, or ``None`` for a single process.
        max_consecutive (int): Number of consecutive skipped updates after
            which training stops with :class:`NonFiniteGradientError`.
    """

    name = 'SkipNonFiniteUpdate'
    call_for_each_param = False
    timing = 'pre'

    def __init__(self, comm=None, max_consecutive=20):
        if int(max_consecutive) < 1:
            raise ValueError('max_consecutive must be >= 1, got {}'.format(
                max_consecutive))
        self.comm = comm
        self.max_consecutive = int(max_consecutive)
        self.consecutive = 0
        self.total_skipped = 0

    def _local_finite(self, optimizer):
        for param in optimizer.target.params(include_uninit=False):
            grad = param.grad
            if grad is None:
                continue
            xp = chainer.backend.get_array_module(grad)
            # sum() is inf/NaN iff some element is (or the sum overflows,
            # which float32 gradients of a sane model never do); one pass.
            if not bool(xp.isfinite(grad.sum(dtype=numpy.float64))):
                return False
        return True

    def __call__(self, optimizer):
        finite = self._local_finite(optimizer)
        if self.comm is not None and self.comm.size > 1:
            from mpi4py import MPI
            finite = bool(self.comm.mpi_comm.allreduce(int(finite), op=MPI.MIN))
        if finite:
            self.consecutive = 0
            return
        self.consecutive += 1
        self.total_skipped += 1
        # Read by Optimizer.is_safe_to_update() (chainer/optimizer.py, 7.8.1);
        # check_nan_in_grads() resets it before the hooks of every update.
        optimizer._loss_scaling_isnan = True
        if self.consecutive >= self.max_consecutive:
            raise NonFiniteGradientError(
                'gradients were non-finite (inf/NaN, e.g. float16 overflow in '
                'the all-reduce or a diverged loss) in {} consecutive updates '
                '(iteration {}); stopping. Lower the learning rate or resume '
                'from an earlier snapshot.'.format(
                    self.consecutive, optimizer.t))

    def serialize(self, serializer):
        self.consecutive = int(serializer('consecutive', self.consecutive))
        self.total_skipped = int(serializer('total_skipped', self.total_skipped))
