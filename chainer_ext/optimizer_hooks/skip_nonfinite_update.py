"""Skip updates whose averaged gradient is not finite, identically on all ranks.

A float16 all-reduce (paper, Section 3) can overflow.  :class:`SkipNonFiniteUpdate`,
a ``'pre'`` optimizer hook, takes the communicator's verdict (or sums the
gradients), agrees over ranks, and skips the update through Chainer's own
``is_safe_to_update`` flag; it resets non-finite BN statistics and raises
:class:`NonFiniteGradientError` after ``max_consecutive`` skips.  Details: docs/DESIGN.md.
"""
import numpy

import chainer
import chainer.links as L


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
        known = getattr(self.comm, 'last_mean_grad_finite', None)
        if known is not None:
            return bool(known)
        total = None
        for param in optimizer.target.params(include_uninit=False):
            if param.grad is None:
                continue
            # A sum is inf/NaN iff some element is (float64: no overflow).
            s = param.grad.sum(dtype=numpy.float64)
            total = s if total is None else total + s
        if total is None:
            return True
        return bool(numpy.isfinite(float(total)))  # the one device sync

    def __call__(self, optimizer):
        finite = self._local_finite(optimizer)
        if self.comm is not None and self.comm.size > 1:
            from mpi4py import MPI
            finite = bool(self.comm.mpi_comm.allreduce(int(finite), op=MPI.MIN))
        if finite:
            self.consecutive = 0
        else:
            self.consecutive += 1
            self.total_skipped += 1
            # Read by Optimizer.is_safe_to_update() (chainer/optimizer.py, 7.8.1);
            # check_nan_in_grads() resets it before the hooks of every update.
            optimizer._loss_scaling_isnan = True
            reset_nonfinite_bn_statistics(optimizer.target)
        chainer.reporter.report({'nonfinite_skipped': self.total_skipped})
        if self.consecutive >= self.max_consecutive:
            raise NonFiniteGradientError(
                'gradients were non-finite (inf/NaN, e.g. float16 overflow in '
                'the all-reduce or a diverged loss) in {} consecutive updates '
                '(iteration {}); stopping. Lower the learning rate or resume '
                'from an earlier snapshot.'.format(
                    self.consecutive, optimizer.t))


def reset_nonfinite_bn_statistics(model):
    """Set non-finite ``avg_mean``/``avg_var`` of BN links to 0/1; return how many."""
    count = 0
    for link in model.links():
        if not isinstance(link, L.BatchNormalization):
            continue
        for name, value in (('avg_mean', 0), ('avg_var', 1)):
            array = getattr(link, name, None)
            if array is None:
                continue
            xp = chainer.backend.get_array_module(array)
            bad = ~xp.isfinite(array)
            if bool(bad.any()):
                array[bad] = value
                count += 1
    return count
