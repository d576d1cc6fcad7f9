"""Run an MPI launcher so that Ctrl-C, SIGTERM and SIGHUP stop the job with a snapshot.

    python -m chainer_ext.launch mpiexec -n 2 python train_imagenet.py --demo

Open MPI's ``mpiexec`` (``prterun``) answers its own SIGTERM, SIGINT or SIGHUP by
sending every rank SIGTERM and, a quarter of a second later, SIGKILL: no rank can
finish a snapshot, and no MCA parameter changes this.  It forwards SIGUSR1 as it is.
This wrapper starts the launcher in a process group of its own (a terminal's Ctrl-C
then reaches the wrapper alone) with standard input closed, and sends the first such
signal on as SIGUSR1, which ``train_imagenet.py`` stops on with a snapshot (exit 75),
once the launcher and its ranks catch it (:func:`can_take_stop`; why: docs/DESIGN.md).
A second one is sent on as SIGTERM, which ends the ranks at once.  SIGUSR1 and SIGUSR2
are passed on unchanged.  The wrapper exits with the launcher's status (128+N if a
signal N ended it).
"""
import os
import signal
import subprocess
import sys
import time

PROG = 'python -m chainer_ext.launch'
#: What the wrapper turns into a stop request, and what it passes on as it is.
STOP = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
PASS_ON = (signal.SIGUSR1, signal.SIGUSR2)


#: Seconds a stop request waits for the ranks to catch SIGUSR1 before it is sent anyway
#: (a launcher whose ranks are not its descendants, e.g. srun's, never shows them).
READY_WAIT = 30.0
_USR1_BIT = 1 << (signal.SIGUSR1 - 1)  # in /proc/PID/status's signal masks


def _usr1_taken(pid):
    """Whether SIGUSR1 to ``pid`` is caught, ignored or blocked (None: no such process)."""
    masks = {}
    try:
        with open('/proc/{}/status'.format(pid)) as f:
            for line in f:
                key, _, value = line.partition(':')
                if key in ('SigBlk', 'SigIgn', 'SigCgt'):
                    masks[key] = int(value, 16)
    except (OSError, ValueError):
        return None
    return any(mask & _USR1_BIT for mask in masks.values())


def _process_table():
    """``{pid: (parent pid, process group)}`` of this machine's processes (Linux /proc)."""
    table = {}
    for name in os.listdir('/proc'):
        if name.isdigit():
            try:
                with open('/proc/{}/stat'.format(name)) as f:
                    fields = f.read().rsplit(')', 1)[1].split()
                table[int(name)] = (int(fields[1]), int(fields[2]))
            except (OSError, IndexError, ValueError):
                continue  # ended meanwhile
    return table


def can_take_stop(launcher):
    """Whether SIGUSR1 to ``launcher`` (a pid) now reaches ranks that catch it: the
    launcher catches it (to forward it), it has started its ranks (its children), and no
    process in their process groups (a rank, its loaders) would die of it.  True where
    /proc cannot tell."""
    if not os.path.isdir('/proc/self'):
        return True
    table = _process_table()
    groups = set(group for parent, group in table.values() if parent == launcher)
    signalled = [pid for pid, (parent, group) in table.items() if group in groups]
    return bool(groups) and _usr1_taken(launcher) is not False and all(
        _usr1_taken(pid) is not False for pid in signalled)


class Relay(object):
    """Signal handler of the wrapper: the first stop request becomes SIGUSR1 to the
    launcher (once its ranks can take it), the next ones SIGTERM."""

    def __init__(self, out=sys.stderr, ready=can_take_stop, ready_wait=READY_WAIT):
        self.child = None  # until the launcher runs; what comes before waits for it
        self.out = out
        self.requests = 0
        self.waiting = []
        self.ready = ready
        self.ready_wait = ready_wait
        self.stop_since = None  # a stop request waiting for the ranks, since when

    def started(self, child):
        self.child = child
        for signum in self.waiting:
            self._send(signum)
        self.waiting = []

    def poll(self):
        """Send a waiting stop request once the ranks can take it (called often)."""
        if self.stop_since is None or self.child is None:
            return
        late = time.monotonic() - self.stop_since > self.ready_wait
        if late or self.ready(self.child.pid):
            if late:
                self._say('the ranks still cannot be seen to take a stop request after {:g} '
                          's: asking them now (SIGUSR1 to the launcher)'.format(
                              self.ready_wait))
            self.stop_since = None
            self._send(signal.SIGUSR1)

    def ended(self, returncode):
        """Say so when a stop signal itself ended the launcher: one sent to this process
        group as the launcher was forked reaches it too, before it leaves the group."""
        if self.requests and -returncode in STOP:
            self._say('the launcher itself was ended by {} (sent as it started): no stop '
                      'request reached the ranks; what they did since their last snapshot is '
                      'lost'.format(signal.Signals(-returncode).name))

    def __call__(self, signum, frame):
        name = signal.Signals(signum).name
        if signum in PASS_ON:
            self._send(signum)
            return
        self.requests += 1
        again = 'Ctrl-C' if signum == signal.SIGINT else name
        if self.requests == 1 and self.child is not None and self.ready(self.child.pid):
            self._say('{}: asking every rank to stop at the next iteration with a snapshot '
                      '(SIGUSR1 to the launcher); {} again ends them at once'.format(
                          name, again))
            self._send(signal.SIGUSR1)
        elif self.requests == 1:
            self._say('{}: the ranks are still starting: asking them to stop as soon as they '
                      'can take it (SIGUSR1 to the launcher), before their first iteration, '
                      'with nothing to save; {} again ends them at once'.format(name, again))
            self.stop_since = time.monotonic()
        else:
            self.stop_since = None
            self._say('{} again: ending the ranks at once (SIGTERM to the launcher); what '
                      'they did since their last snapshot is lost'.format(name))
            self._send(signal.SIGTERM)

    def _send(self, signum):
        if self.child is None:
            self.waiting.append(signum)
            return
        try:
            os.kill(self.child.pid, signum)
        except ProcessLookupError:
            pass  # ended meanwhile

    def _say(self, line):
        self.out.write('{}: {}\n'.format(PROG, line))
        self.out.flush()


def exit_status(returncode):
    """A child's return code as a shell reports it (``-N`` -> 128+N)."""
    return 128 - returncode if returncode < 0 else returncode


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ('-h', '--help'):
        sys.stdout.write(__doc__)
        return 0 if argv else 2
    group = ({'process_group': 0} if sys.version_info >= (3, 11)
             else {'preexec_fn': os.setpgrp})
    relay = Relay()
    for signum in STOP + PASS_ON:
        signal.signal(signum, relay)
    try:
        child = subprocess.Popen(argv, stdin=subprocess.DEVNULL, **group)
    except OSError as e:
        sys.stderr.write('{}: error: cannot run {}: {}\n'.format(
            PROG, argv[0], e.strerror or e))
        return 127 if isinstance(e, FileNotFoundError) else 126
    relay.started(child)
    while True:
        try:
            returncode = child.wait(timeout=0.05)
            break
        except subprocess.TimeoutExpired:
            relay.poll()
    relay.ended(returncode)
    return exit_status(returncode)


if __name__ == '__main__':
    sys.exit(main())
