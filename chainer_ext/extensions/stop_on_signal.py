"""Stop every rank at the same iteration when any rank got a stop signal, and snapshot there.

:func:`catch` installs handlers that only record the signal.  :class:`StopOnSignal`
runs last at every iteration: one integer MPI all-reduce (MAX) tells every rank
whether any rank was signalled; if so all write ``OUT/snapshots/iter-N`` through the
atomic protocol and raise :class:`Preempted`, which the training script turns into
exit status :data:`PREEMPTED_STATUS`.  Why these choices: docs/DESIGN.md.
"""
import signal

import numpy

from chainer.training import extension

#: Exit status of a job stopped by a signal after saving (sysexits.h EX_TEMPFAIL:
#: "a temporary failure; the user is invited to retry").
PREEMPTED_STATUS = 75

_received = [0]  # the last stop signal this process got (0: none)


def parse_signals(text):
    """``'TERM,USR1'`` -> ``[SIGTERM, SIGUSR1]``; ValueError naming an unknown one."""
    found = []
    for name in (n.strip().upper() for n in text.split(',') if n.strip()):
        name = name if name.startswith('SIG') else 'SIG' + name
        number = signal.Signals.__members__.get(name)
        if number is None or number in (signal.SIGKILL, signal.SIGSTOP):
            raise ValueError('{} is not a signal that can be caught'.format(name[3:]))
        found.append(number)
    if not found:
        raise ValueError('no signal named')
    return found


def ignore_in_children(signals):
    """Ignore the ``signals`` that would kill loader processes, before starting them.

    Launchers (``prterun``, ``srun``) send a forwarded signal to each rank's
    process group, loader processes included; ``SIGUSR1``'s default action ends
    them.  ``SIGTERM`` and ``SIGINT`` stay as they are: a pool's ``terminate()``
    needs them.  Call :func:`catch` afterwards in the rank itself.
    """
    for sig in signals:
        if sig not in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, signal.SIG_IGN)


def catch(signals):
    """Record ``signals`` instead of dying of them (main thread only)."""
    def record(signum, frame):
        _received[0] = int(signum)
    for sig in signals:
        signal.signal(sig, record)


def received():
    """The stop signal this process got (0 if none)."""
    return _received[0]


def signal_name(signum):
    return signal.Signals(signum).name


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
        snapshot: a :class:`chainer_ext.snapshots.MultiNodeSnapshot` (by iteration).
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
        path = self.snapshot.latest_at(iteration)
        if path is None:  # no snapshot of this iteration yet (an epoch snapshot may be)
            if self.before_snapshot is not None:
                self.before_snapshot()
            path = self.snapshot.write(trainer, 'iter-{}'.format(iteration))
        raise Preempted('stopped at iteration {} on {} (snapshot {}); continue with '
                        '--resume auto'.format(iteration, signal_name(signum), path),
                        iteration=iteration)
