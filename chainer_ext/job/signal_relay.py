"""Run an MPI launcher so that Ctrl-C, SIGTERM and SIGHUP stop the job with a snapshot.

    python -m chainer_ext.launch mpiexec -n 2 python train_imagenet.py --demo

Open MPI's ``mpiexec`` (``prterun``) answers its own SIGTERM, SIGINT or SIGHUP by
sending every rank SIGTERM and, a quarter of a second later, SIGKILL: no rank can
finish a snapshot, and no MCA parameter changes this.  It forwards SIGUSR1 as it is.
This wrapper starts the launcher in a process group of its own (a terminal's Ctrl-C
then reaches the wrapper alone) with standard input closed, and sends the first such
signal on as SIGUSR1, which ``train_imagenet.py`` stops on (``--stop-signals``): every
rank stops at the next iteration with a snapshot and exits 75.  A second one is sent on
as SIGTERM, which ends the ranks at once.  SIGUSR1 and SIGUSR2 are passed on unchanged.
The wrapper exits with the launcher's status (128+N if a signal N ended it).
"""
import os
import signal
import subprocess
import sys

PROG = 'python -m chainer_ext.launch'
#: What the wrapper turns into a stop request, and what it passes on as it is.
STOP = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
PASS_ON = (signal.SIGUSR1, signal.SIGUSR2)


class Relay(object):
    """Signal handler of the wrapper: the first stop request becomes SIGUSR1 to the
    launcher, the next ones SIGTERM."""

    def __init__(self, out=sys.stderr):
        self.child = None  # until the launcher runs; what comes before waits for it
        self.out = out
        self.requests = 0
        self.waiting = []

    def started(self, child):
        self.child = child
        for signum in self.waiting:
            self._send(signum)
        self.waiting = []

    def __call__(self, signum, frame):
        name = signal.Signals(signum).name
        if signum in PASS_ON:
            self._send(signum)
            return
        self.requests += 1
        if self.requests == 1:
            self._say('{}: asking every rank to stop at the next iteration with a snapshot '
                      '(SIGUSR1 to the launcher); {} again ends them at once'.format(
                          name, 'Ctrl-C' if signum == signal.SIGINT else name))
            self._send(signal.SIGUSR1)
        else:
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
    return exit_status(child.wait())


if __name__ == '__main__':
    sys.exit(main())
