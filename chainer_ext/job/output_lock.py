"""One job per output folder: ``OUT/.lock`` held by rank 0 for the job's lifetime.

The lock file names its holder (host, pid, boot id, PID namespace, process start
time, job id, start time) and is created by ``link()`` of a private file whose
name no other process on any machine uses, atomic on local and NFS file systems.
A holder whose pid names a process here (the same boot and PID namespace) is
gone when that process is (or the pid now names a later process); any other
holder, whatever its host name, is gone when its heartbeat (the lock's mtime,
touched every :data:`HEARTBEAT` seconds) is older than :data:`STALE_AFTER`,
measured against the file server's clock.  Why these bounds: docs/DESIGN.md.
"""
import datetime
import json
import os
import socket
import threading
import time
import uuid

LOCK = '.lock'
HEARTBEAT = 30.0
STALE_AFTER = 300.0
POLL = 1.0


class LockHeld(RuntimeError):
    """Another live job holds the lock; the message names it in one line."""


def _read_text(path):
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return None


def _boot_id():
    return _read_text('/proc/sys/kernel/random/boot_id')


def _pid_namespace():
    """This process's PID namespace (``pid:[4026531836]``), or None off Linux."""
    try:
        return os.readlink('/proc/self/ns/pid')
    except OSError:
        return None


def _start_time(pid):
    """Clock ticks from boot to the start of process ``pid`` (field 22 of
    ``/proc/PID/stat``), or None when unknown."""
    text = _read_text('/proc/{}/stat'.format(int(pid)))
    try:
        return int(text[text.rindex(')') + 2:].split()[19])
    except (AttributeError, ValueError, IndexError):
        return None


def _me():
    pid = os.getpid()
    return {'host': socket.gethostname(), 'pid': pid, 'boot_id': _boot_id(),
            'pid_namespace': _pid_namespace(), 'pid_start': _start_time(pid),
            'job_id': os.environ.get('SLURM_JOB_ID') or os.environ.get('PBS_JOBID'),
            'started': datetime.datetime.now().astimezone().isoformat(timespec='seconds')}


def _unique(path, what):
    """``path.what-HOST-PID-RANDOM``: a name no other process, here or elsewhere, uses."""
    return '{}.{}-{}-{}-{}'.format(path, what, socket.gethostname(), os.getpid(),
                                   uuid.uuid4().hex)


def describe(holder):
    """``job 123 (pid 42 on node7, since 2024-...)``: who holds a lock."""
    job = 'job {} '.format(holder['job_id']) if holder.get('job_id') else ''
    return '{}(pid {} on {}, since {})'.format(job, holder.get('pid'), holder.get('host'),
                                               holder.get('started'))


def _read(path):
    """The holder recorded in ``path``, or None if there is no lock file."""
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {}  # being written, or damaged: judged by its age alone


def _process_alive(pid, start):
    """Whether ``pid`` names a live process here, the one started at ``start`` when known."""
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    except (TypeError, ValueError, OverflowError):
        return True
    return start is None or _start_time(pid) in (None, start)


def heartbeat_age(path):
    """Seconds since ``path`` was touched, by the clock of the file system holding it."""
    probe = _unique(path, 'probe')
    with open(probe, 'w'):
        pass
    try:
        return os.stat(probe).st_mtime - os.stat(path).st_mtime
    finally:
        os.remove(probe)


def pid_is_here(holder, me=None):
    """Whether ``holder``'s pid names a process of this machine's PID space: the same boot
    and PID namespace.  Equal host names prove nothing (containers, cloned machines)."""
    me = me or _me()
    return bool(holder.get('pid') and me['boot_id'] and me['pid_namespace']
                and holder.get('boot_id') == me['boot_id']
                and holder.get('pid_namespace') == me['pid_namespace'])


def is_stale(holder, path, stale_after=STALE_AFTER):
    """True when the job recorded in ``holder`` has ended (see the module doc)."""
    if pid_is_here(holder):
        return not _process_alive(holder['pid'], holder.get('pid_start'))
    try:
        return heartbeat_age(path) > stale_after
    except FileNotFoundError:
        return True


class OutputLock(object):
    """The held lock of one folder; :meth:`release` it (idempotent)."""

    def __init__(self, path, holder, heartbeat=HEARTBEAT):
        self.path = path
        self.holder = holder
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, args=(heartbeat,), daemon=True)
        self._thread.start()

    def _beat(self, every):
        while not self._stop.wait(every):
            try:
                os.utime(self.path)
            except OSError:
                pass

    def release(self):
        self._stop.set()
        release_if_held(self.path, self.holder)


def holder_of(path):
    """The holder recorded in the lock file ``path`` (None: no lock; {}: unreadable)."""
    return _read(path)


def release_if_held(path, holder):
    """Remove the lock file ``path`` if it still records ``holder``; True if removed."""
    if _read(path) == holder:
        try:
            os.remove(path)
            return True
        except FileNotFoundError:
            pass
    return False


def _try_create(path, holder):
    """Create the lock holding ``holder``; False if it exists."""
    private = _unique(path, 'new')
    with open(private, 'w') as f:
        json.dump(holder, f, sort_keys=True)
        f.flush()
        os.fsync(f.fileno())
    try:
        os.link(private, path)
        return True
    except FileExistsError:
        return False
    finally:
        os.remove(private)


def _take_over(path, stale):
    """Set a stale lock aside, unless it changed meanwhile (another job took it)."""
    aside = _unique(path, 'stale')
    try:
        os.replace(path, aside)
    except FileNotFoundError:
        return
    if _read(aside) != stale and stale != {}:
        try:
            os.link(aside, path)  # a live lock: put it back
        except FileExistsError:
            pass
    os.remove(aside)


def acquire(out, wait=0.0, stale_after=STALE_AFTER, heartbeat=HEARTBEAT, on_stale=None,
            on_wait=None):
    """Hold ``out``'s lock, waiting up to ``wait`` seconds for a live holder to end.

    Returns an :class:`OutputLock`; raises :class:`LockHeld` naming the holder.
    ``on_stale(holder)`` is called for each stale lock taken over, ``on_wait(holder)``
    once when waiting starts.
    """
    path = os.path.join(out, LOCK)
    me = _me()
    deadline = time.monotonic() + float(wait)
    while True:
        if _try_create(path, me):
            return OutputLock(path, me, heartbeat)
        holder = _read(path)
        if holder is None:
            continue  # released meanwhile
        if is_stale(holder, path, stale_after):
            if on_stale is not None:
                on_stale(holder)
            _take_over(path, holder)
            continue
        if time.monotonic() >= deadline:
            waited = ' after waiting {:g} s'.format(wait) if wait else ''
            raise LockHeld('--out {}: in use by {}{}; wait for it to end or use another '
                           '--out (--wait-for-lock SECONDS waits)'.format(
                               out, describe(holder), waited))
        if on_wait is not None:
            on_wait(holder)
            on_wait = None
        time.sleep(min(POLL, max(0.0, deadline - time.monotonic())))
