"""A watcher that removes what rank 0 leaves in ``--out`` when something kills it.

Rank 0 holds ``OUT/.lock`` and publishes snapshots from ``OUT/snapshots/.partial-NAME``.
Killed outright (SIGKILL; Open MPI's ``mpiexec`` after a SIGTERM or SIGINT of its own,
which kills the ranks half a second later; the kernel's OOM killer) it can release
neither.  :func:`start` runs a small process in a session of its own, which the
launcher's kill does not reach, before MPI starts; rank 0 tells it the lock once held
(:meth:`OutGuard.watch`) and that it released it (:meth:`OutGuard.close`).  If rank 0's
end closes the pipe first, the watcher waits :data:`GRACE` seconds for the other ranks
to die, then removes the unfinished snapshot folders and the lock (if the lock is still
rank 0's: another job may have taken it over).  It prints nothing: the lines a user
reads last stay the job's own and the launcher's.  Why a process: docs/DESIGN.md.
"""
import json
import os
import shutil
import subprocess
import sys
import time

#: Seconds the watcher waits after rank 0's end before cleaning up.
GRACE = 1.0
#: Folders of ``OUT/snapshots`` that only exist while a snapshot is written or pruned.
UNFINISHED = ('.partial-', '.deleting-')


class OutGuard(object):
    """Rank 0's end of the pipe to the watcher (see the module doc)."""

    def __init__(self, process):
        self.process = process

    def watch(self, out, holder):
        """The lock of ``out``, held as ``holder``, is to be released if rank 0 is killed."""
        self._send({'out': os.path.abspath(out), 'holder': holder})

    def close(self):
        """Rank 0 ends normally (lock released, or never taken): the watcher exits."""
        if self.process.stdin.closed:
            return
        self._send('done')
        try:
            self.process.stdin.close()
        except OSError:
            pass
        self.process.wait()

    def _send(self, message):
        try:
            self.process.stdin.write(json.dumps(message) + '\n')
            self.process.stdin.flush()
        except OSError:
            pass  # the watcher is gone; nothing it could do


def start():
    """Start the watcher (call before MPI starts: it is a fork and exec)."""
    process = subprocess.Popen([sys.executable, '-m', 'chainer_ext.job.lock_watcher'],
                               stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True,
                               close_fds=True, text=True)
    return OutGuard(process)


def remove_leftovers(out, holder):
    """Remove ``out``'s unfinished snapshot folders and its lock, if ``holder`` still
    holds it; returns what was removed (paths relative to ``out``)."""
    from chainer_ext.job import output_lock
    lock = os.path.join(out, output_lock.LOCK)
    if output_lock.holder_of(lock) != holder:
        return []  # released meanwhile, or taken over by another job
    removed = []
    root = os.path.join(out, 'snapshots')
    for name in sorted(os.listdir(root)) if os.path.isdir(root) else ():
        if name.startswith(UNFINISHED):
            shutil.rmtree(os.path.join(root, name), ignore_errors=True)
            removed.append(os.path.join('snapshots', name))
    if output_lock.release_if_held(lock, holder):
        removed.append(output_lock.LOCK)
    return removed


def main():
    watched = None
    for line in sys.stdin:
        message = json.loads(line)
        if message == 'done':
            return 0
        watched = message
    if watched is None:
        return 0  # rank 0 ended before it held the lock
    time.sleep(GRACE)
    remove_leftovers(watched['out'], watched['holder'])
    return 0


if __name__ == '__main__':
    sys.exit(main())
