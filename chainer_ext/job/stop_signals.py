"""The stop signals of a rank (``--stop-signals``): recorded from the first moment on, never lost.

A handler only records the signal; :class:`chainer_ext.extensions.stop_on_signal.StopOnSignal`
acts on it at the next iteration.  The training script records the signals named
on its command line before its slow imports (:func:`catch_early`) and carries one
recorded, or arriving, across the BLAS re-exec (:func:`held`); the data loaders'
forkserver and its resource tracker ignore the launcher-forwarded ones from their
own start (:func:`ignored_by_forkserver`), so the rank never ignores them, even briefly.
Why: docs/DESIGN.md.
"""
import contextlib
import os
import signal

#: Exit status of a job stopped by a signal after saving (sysexits.h EX_TEMPFAIL:
#: "a temporary failure; the user is invited to retry").
PREEMPTED_STATUS = 75
#: ``--stop-signals``' default.
DEFAULT = 'TERM,USR1'
FLAG = '--stop-signals'
#: A stop signal recorded before an ``exec`` of this process, for the new image.
CARRIED = 'CHAINER_EXT_STOP_SIGNAL'
#: Signals a process importing this module ignores (set for the forkserver only).
IGNORED = 'CHAINER_EXT_IGNORED_SIGNALS'

_received = [0]  # the last stop signal this process got (0: none)
_caught = set()  # the signals whose handler is the recorder
_carrying = [False]  # inside held(): a recorded signal goes into the environment too


def parse_signals(text):
    """``'TERM,USR1'`` -> ``[SIGTERM, SIGUSR1]``; ValueError naming an unknown one."""
    found = []
    for name in (n.strip().upper() for n in text.split(',') if n.strip()):
        name = name if name.startswith('SIG') else 'SIG' + name
        number = signal.Signals.__members__.get(name)
        if number is None:
            raise ValueError('{} is not a signal name'.format(name[3:]))
        if number in (signal.SIGKILL, signal.SIGSTOP):
            raise ValueError('{} cannot be caught'.format(name[3:]))
        found.append(number)
    if not found:
        raise ValueError("'{}' names no signal".format(text))
    return found


def named_in(argv):
    """The stop signals ``argv`` asks for (the default when it names none or is unreadable).

    Reads ``--stop-signals X``, ``--stop-signals=X`` and argparse's abbreviations
    (``--stop X``) before argparse runs.
    """
    text = DEFAULT
    for i, arg in enumerate(argv):
        flag, eq, value = arg.partition('=')
        if len(flag) >= 4 and FLAG.startswith(flag):
            if not eq:
                value = argv[i + 1] if i + 1 < len(argv) else ''
            text = value
    try:
        return parse_signals(text)
    except ValueError:
        return parse_signals(DEFAULT)


def _record(signum, frame):
    _received[0] = int(signum)
    if _carrying[0]:
        os.environ[CARRIED] = str(int(signum))


def catch(signals):
    """Record ``signals`` instead of dying of them (main thread only); a signal caught
    before and not among them gets its default action back."""
    wanted = set(int(s) for s in signals)
    for sig in _caught - wanted:
        signal.signal(sig, signal.SIG_DFL)
    for sig in wanted:
        signal.signal(sig, _record)
    _caught.clear()
    _caught.update(wanted)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, wanted)


def catch_early(argv):
    """:func:`catch` the signals ``argv`` names, and take over one that a previous
    image of this process recorded before an ``exec`` (:func:`held`)."""
    catch(named_in(argv))
    carried = os.environ.pop(CARRIED, None)
    if carried and carried.isdigit():
        _received[0] = int(carried)


@contextlib.contextmanager
def held():
    """Keep the caught signals for the program image an ``exec`` inside the block starts.

    The handlers do not survive ``exec``; the signal mask and the pending signals
    do.  The main thread blocks the signals, so that one arriving is pending for
    the new image (which blocks them from its first instruction until it catches
    them); one recorded already, or taken by another thread meanwhile (threads
    that libraries started do not block them), goes into the environment.
    """
    signals = set(_caught)
    signal.pthread_sigmask(signal.SIG_BLOCK, signals)
    _carrying[0] = True
    if _received[0]:
        os.environ[CARRIED] = str(_received[0])
    try:
        yield
    finally:
        _carrying[0] = False
        os.environ.pop(CARRIED, None)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, signals)


@contextlib.contextmanager
def ignored_by_forkserver(signals):
    """A multiprocessing forkserver started inside the block, its resource tracker, and
    every process the forkserver forks, ignore ``signals`` other than SIGTERM and SIGINT.

    Launchers (``prterun``, ``srun``) send a forwarded signal to each rank's
    process group, loader processes included; ``SIGUSR1``'s default action ends
    them.  ``SIGTERM`` and ``SIGINT`` keep their default there: a pool's
    ``terminate()`` needs them.  The forkserver preloads this module, which reads
    the list from the environment.  The resource tracker loads nothing of ours: the
    rank blocks the signals while the block runs, so the tracker (started with the
    forkserver) inherits them blocked, and one arriving meanwhile waits, pending,
    for the rank's own recorder.
    """
    ignored = sorted(set(int(s) for s in signals) - {signal.SIGTERM, signal.SIGINT})
    os.environ[IGNORED] = ','.join(map(str, ignored))
    before = signal.pthread_sigmask(signal.SIG_BLOCK, ignored)
    try:
        yield
    finally:
        os.environ.pop(IGNORED, None)
        signal.pthread_sigmask(signal.SIG_SETMASK, before)


def received():
    """The stop signal this process got (0 if none)."""
    return _received[0]


def signal_name(signum):
    return signal.Signals(signum).name


for _sig in os.environ.get(IGNORED, '').split(','):
    if _sig.isdigit():
        signal.signal(int(_sig), signal.SIG_IGN)
