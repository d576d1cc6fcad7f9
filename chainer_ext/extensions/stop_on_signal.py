"""Stop every rank at the same iteration when any rank got a stop signal, and snapshot there.

:mod:`chainer_ext.job.stop_signals` installs handlers that only record the signal.
:class:`StopOnSignal` runs last at every iteration: one integer MPI all-reduce (MAX) tells
every rank whether any rank was signalled; if so all write ``OUT/snapshots/iter-N`` through the
atomic protocol and raise :class:`Preempted`, which the training script turns into
exit status :data:`chainer_ext.job.stop_signals.PREEMPTED_STATUS`.  Why these choices:
docs/DESIGN.md.
"""
import numpy

from chainer.training import extension

from chainer_ext.job.stop_signals import received
from chainer_ext.job.stop_signals import signal_name


class Preempted(Exception):
    """All ranks stopped on a signal; ``line`` says where and what to do next."""

    def __init__(self, line, iteration=None):
        super(Preempted, self).__init__(line)
        self.line = line
        self.iteration = iteration


class StopOnSignal(extension.Extension):
    """Trainer extension: agree on a stop signal, snapshot, raise :class:`Preempted`.

    Args:
        comm: ChainerMN communicator (``None`` for one process).
        snapshot: a
            :class:`chainer_ext.extensions.multi_node_snapshot.MultiNodeSnapshot`
            (by iteration).
        before_snapshot: callable run on every rank before writing (e.g. the
            BN-statistics average), or ``None``.
    """

    trigger = 1, 'iteration'
    priority = -200  # after every other extension of the iteration, snapshots included

    def __init__(self, comm, snapshot, before_snapshot=None):
        self.comm = comm
        self.snapshot = snapshot
        self.before_snapshot = before_snapshot
        self._mine = numpy.zeros(1, dtype=numpy.int32)
        self._any = numpy.zeros(1, dtype=numpy.int32)

    def agreed_signal(self):
        """The largest signal number any rank got (collective; 0 if none)."""
        self._mine[0] = received()
        if self.comm is None or self.comm.size == 1:
            return int(self._mine[0])
        from mpi4py import MPI
        self.comm.mpi_comm.Allreduce(self._mine, self._any, op=MPI.MAX)
        return int(self._any[0])

    def initialize(self, trainer):
        signum = self.agreed_signal()
        if signum:
            raise Preempted('stopped on {} before the first iteration of this job; nothing '
                            'new to save; continue with --resume auto'.format(
                                signal_name(signum)))

    def __call__(self, trainer):
        signum = self.agreed_signal()
        if not signum:
            return
        iteration = trainer.updater.iteration
        # an epoch snapshot, or the one of a --max-iterations stop, may be of this iteration
        path = self.snapshot.ensure_at(trainer, before=self.before_snapshot)
        raise Preempted('stopped at iteration {} on {} (snapshot {}); continue with '
                        '--resume auto'.format(iteration, signal_name(signum), path),
                        iteration=iteration)
