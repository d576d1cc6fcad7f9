"""Atomic, per-rank snapshots of a multi-node run, and ``--resume``.

Layout under ``OUT/snapshots/``::

    epoch-3/                  a complete snapshot (its name says when)
        manifest.json         written last by rank 0: world size, batch size,
                              iteration, epoch, the files and their sizes
        rank-00000.npz        ``chainer.serializers.save_npz(trainer)`` of
        rank-00001.npz        each rank: model, optimizer state (Δ and m),
        ...                   schedule extensions, iterator position and order,
                              LogReport's accumulated values, elapsed time
    .partial-epoch-4/         being written; never picked up by --resume

Every rank writes its file inside the hidden ``.partial-NAME`` folder (to a
temporary name, then ``os.replace``); the ranks then agree by an all-reduce
whether all writes succeeded; only then does rank 0 write the manifest and
rename the folder to ``NAME`` (one atomic rename), and only after that are
older snapshots pruned to the last ``keep``. A failure on any rank (a full
disk, say) removes the partial folder, leaves the previous snapshot intact,
and raises :class:`SnapshotError` on every rank with the cause.

Per-rank files are needed because ranks differ in their iterator state and
batch-normalization statistics, while the model and optimizer state are
identical. ``--out`` must be on a file system every rank sees (as on any
cluster); rank 0 checks that it sees every rank's file before publishing.

Resuming requires the same world size and per-worker batch size: the
data-set shards (``chainermn.scatter_dataset``) and the per-rank iterator
state only make sense for the world they were written by. A different world
is refused at start with a message saying so.
"""
import errno
import json
import os
import re
import shutil

import chainer
from chainer.training import extension

MANIFEST = 'manifest.json'
_NAME = re.compile(r'^(epoch|iter)-(\d+)$')


class SnapshotError(RuntimeError):
    """A snapshot could not be written or read."""


def rank_file(rank):
    return 'rank-{:05d}.npz'.format(rank)


def _fsync_dir(path):
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _all_ok(comm, ok):
    """Logical AND of ``ok`` over all ranks (an exact integer all-reduce)."""
    if comm is None or comm.size == 1:
        return ok
    from mpi4py import MPI
    return bool(comm.mpi_comm.allreduce(int(bool(ok)), op=MPI.MIN))


def read_manifest(path):
    """Return the manifest of the snapshot folder ``path`` or raise SnapshotError."""
    mpath = os.path.join(path, MANIFEST)
    try:
        with open(mpath) as f:
            manifest = json.load(f)
    except FileNotFoundError:
        raise SnapshotError('{} is not a complete snapshot: {} is missing'.format(
            path, MANIFEST))
    except (OSError, ValueError) as e:
        raise SnapshotError('cannot read {}: {}'.format(mpath, e))
    for key in ('world_size', 'iteration', 'files'):
        if key not in manifest:
            raise SnapshotError('{} has no "{}" entry'.format(mpath, key))
    return manifest


def is_complete(path):
    """True when ``path`` has a readable manifest and every file it lists, whole."""
    try:
        manifest = read_manifest(path)
    except SnapshotError:
        return False
    for name, size in manifest['files'].items():
        fpath = os.path.join(path, name)
        if not os.path.isfile(fpath) or os.path.getsize(fpath) != size:
            return False
    return True


def list_snapshots(out):
    """Complete snapshots under ``out/snapshots``, oldest first: (iteration, path)."""
    root = os.path.join(out, 'snapshots')
    if not os.path.isdir(root):
        return []
    found = []
    for name in os.listdir(root):
        path = os.path.join(root, name)
        if _NAME.match(name) and os.path.isdir(path) and is_complete(path):
            found.append((read_manifest(path)['iteration'], path))
    return sorted(found)


def resolve_resume(resume, out):
    """Map ``--resume`` to a snapshot folder, or ``None`` for a fresh start.

    ``'auto'`` picks the newest complete snapshot in ``out`` (``None`` if
    there is none, so a job script can be resubmitted unchanged); any other
    value must be a complete snapshot folder.
    """
    if not resume:
        return None
    if resume == 'auto':
        snaps = list_snapshots(out)
        return snaps[-1][1] if snaps else None
    if not os.path.isdir(resume):
        raise SnapshotError('--resume {}: no such snapshot folder'.format(resume))
    if not is_complete(resume):
        raise SnapshotError(
            '--resume {}: not a complete snapshot (manifest or rank files '
            'missing or truncated)'.format(resume))
    return resume


def check_compatible(path, world_size, batchsize):
    """Refuse a snapshot written by a different world (see the module doc)."""
    manifest = read_manifest(path)
    if manifest['world_size'] != world_size:
        raise SnapshotError(
            '--resume {}: written by {} ranks, this job has {}; resuming with '
            'a different number of ranks is not supported (the data shards and '
            'per-rank iterator states differ)'.format(
                path, manifest['world_size'], world_size))
    if manifest.get('batchsize') not in (None, batchsize):
        raise SnapshotError(
            '--resume {}: written with --batchsize {}, this job has {}; '
            'resuming with a different per-worker batch size is not '
            'supported'.format(path, manifest['batchsize'], batchsize))
    return manifest


def load_snapshot(path, trainer, comm):
    """Load this rank's part of the snapshot folder ``path`` into ``trainer``."""
    fpath = os.path.join(path, rank_file(comm.rank if comm else 0))
    try:
        chainer.serializers.load_npz(fpath, trainer)
    except Exception as e:  # npz/zip errors have many types
        raise SnapshotError('cannot load snapshot file {}: {}: {}'.format(
            fpath, type(e).__name__, e))


class MultiNodeSnapshot(extension.Extension):
    """Extension writing atomic per-rank snapshots (see the module doc).

    Args:
        comm: ChainerMN communicator (``None`` for one process).
        out (str): Folder that holds ``snapshots/``.
        keep (int): Number of complete snapshots to keep (0 keeps all).
        info (dict): Extra entries for the manifest (e.g. batch size).
        by (str): ``'epoch'`` or ``'iteration'``: how snapshots are named.
    """

    priority = -100  # after the evaluator and LogReport of the same iteration

    def __init__(self, comm, out, keep=3, info=None, by='epoch'):
        if int(keep) < 0:
            raise ValueError('keep must be >= 0, got {}'.format(keep))
        if by not in ('epoch', 'iteration'):
            raise ValueError("by must be 'epoch' or 'iteration', got {!r}".format(by))
        self.comm = comm
        self.root = os.path.join(out, 'snapshots')
        self.keep = int(keep)
        self.info = dict(info or {})
        self.by = by

    @property
    def _rank(self):
        return self.comm.rank if self.comm is not None else 0

    @property
    def _size(self):
        return self.comm.size if self.comm is not None else 1

    def __call__(self, trainer):
        updater = trainer.updater
        if self.by == 'epoch':
            name = 'epoch-{}'.format(updater.epoch)
        else:
            name = 'iter-{}'.format(updater.iteration)
        self.write(trainer, name)

    def write(self, trainer, name):
        final = os.path.join(self.root, name)
        partial = os.path.join(self.root, '.partial-' + name)
        error = None
        if self._rank == 0:
            try:
                os.makedirs(self.root, exist_ok=True)
                shutil.rmtree(partial, ignore_errors=True)
                os.makedirs(partial)
            except OSError as e:
                error = e
        ok = _all_ok(self.comm, error is None)
        if not ok:
            raise SnapshotError('cannot create snapshot folder {}: {}'.format(
                partial, error or 'failed on rank 0'))

        target = os.path.join(partial, rank_file(self._rank))
        tmp = target + '.tmp'
        try:
            # Uncompressed: weights do not deflate, and zlib would cost seconds.
            chainer.serializers.save_npz(tmp, trainer, compression=False)
            with open(tmp, 'rb+') as f:
                os.fsync(f.fileno())
            os.replace(tmp, target)
        except Exception as e:
            error = e
            try:
                os.remove(tmp)
            except OSError:
                pass
        if not _all_ok(self.comm, error is None):
            if self._rank == 0:
                shutil.rmtree(partial, ignore_errors=True)
            self._fail(name, error)

        if self._rank == 0:
            try:
                self._publish(trainer, partial, final)
            except Exception as e:
                error = e
                shutil.rmtree(partial, ignore_errors=True)
        if not _all_ok(self.comm, error is None):
            self._fail(name, error)
        if self._rank == 0 and self.keep:
            self._prune()

    def _fail(self, name, error):
        previous = list_snapshots(os.path.dirname(self.root))
        kept = previous[-1][1] if previous else 'none'
        if error is None:
            cause = 'it failed on another rank'
        elif isinstance(error, OSError) and error.errno == errno.ENOSPC:
            cause = 'no space left on device ({})'.format(error)
        else:
            cause = '{}: {}'.format(type(error).__name__, error)
        raise SnapshotError(
            'writing snapshot {} in {} failed on rank {}: {}; the previous '
            'snapshot ({}) is intact'.format(name, self.root, self._rank, cause, kept))

    def _publish(self, trainer, partial, final):
        files = {}
        for r in range(self._size):
            fpath = os.path.join(partial, rank_file(r))
            if not os.path.isfile(fpath):
                raise SnapshotError(
                    '{} is missing on rank 0: is --out on a file system '
                    'shared by all ranks?'.format(fpath))
            files[rank_file(r)] = os.path.getsize(fpath)
        manifest = dict(self.info)
        manifest.update({
            'world_size': self._size,
            'iteration': int(trainer.updater.iteration),
            'epoch': int(trainer.updater.epoch),
            'epoch_detail': float(trainer.updater.epoch_detail),
            'elapsed_time': float(trainer.elapsed_time),
            'files': files,
        })
        mtmp = os.path.join(partial, MANIFEST + '.tmp')
        with open(mtmp, 'w') as f:
            json.dump(manifest, f, indent=1, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        os.replace(mtmp, os.path.join(partial, MANIFEST))
        _fsync_dir(partial)
        if os.path.exists(final):  # e.g. a rerun after resuming mid-epoch
            trash = os.path.join(self.root, '.old-' + os.path.basename(final))
            shutil.rmtree(trash, ignore_errors=True)
            os.replace(final, trash)
            os.replace(partial, final)
            shutil.rmtree(trash, ignore_errors=True)
        else:
            os.replace(partial, final)
        _fsync_dir(self.root)

    def _prune(self):
        snaps = list_snapshots(os.path.dirname(self.root))
        for _, path in snaps[:-self.keep]:
            shutil.rmtree(path, ignore_errors=True)
