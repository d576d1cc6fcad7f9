"""Atomic, per-rank snapshots of a multi-node run, and ``--resume``.

``OUT/snapshots/epoch-N/`` holds ``manifest.json`` (written last by rank 0),
rank 0's whole trainer and, from every other rank, only what differs between
ranks (iterator, BN statistics, scalars).  Files are written in ``.partial-NAME``
and published by one rename after every rank succeeded; a failure anywhere keeps
the previous snapshot and raises :class:`SnapshotError` on every rank.  The
manifest records each file's size and SHA-256, so that ``--resume`` can tell a
file damaged after it was written.  Resuming needs the same world and recipe.
Sizes, costs, and why not ChainerMN's checkpointer: docs/DESIGN.md.
"""
import errno
import hashlib
import json
import os
import re
import shutil

import numpy

import chainer
from chainer.training import extension

from chainer_ext.job import atomic_files

MANIFEST = 'manifest.json'
FORMAT = 2
FULL_RANK = 0  # the rank whose file holds the whole trainer
DROPPED = '_snapshot/dropped'  # in a slim file: the keys left out
#: Where the full rank file keeps the classifier's predictor (what ``model.npz`` holds).
PREDICTOR = 'updater/model:main/predictor/'
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


def _gather(comm, value):
    """Every rank's ``value`` in rank order on rank 0 (``None`` elsewhere)."""
    if comm is None or comm.size == 1:
        return [value]
    return comm.mpi_comm.gather(value, root=0)


def _barrier(comm):
    if comm is not None and comm.size > 1:
        comm.mpi_comm.Barrier()


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


def file_sha256(fpath):
    """Hex SHA-256 of the file ``fpath`` (what ``sha256sum`` prints)."""
    digest = hashlib.sha256()
    with open(fpath, 'rb') as f:
        for block in iter(lambda: f.read(1 << 22), b''):
            digest.update(block)
    return digest.hexdigest()


def damaged_files(path):
    """Names of the files of the complete snapshot ``path`` whose SHA-256 is not
    the manifest's (bytes changed after the snapshot was written).

    Snapshots written before checksums were recorded have none to compare:
    for them this is empty (their files are checked by size only).
    """
    recorded = read_manifest(path).get('sha256') or {}
    return [name for name, digest in sorted(recorded.items())
            if _sha256_or_none(os.path.join(path, name)) != digest]


def _sha256_or_none(fpath):
    try:
        return file_sha256(fpath)
    except OSError:
        return None


def is_complete(path):
    """True when ``path`` has a readable manifest and every file it lists, whole
    (by size; :func:`damaged_files` compares the bytes)."""
    return _incomplete(path) is None


def _incomplete(path, full=False):
    """Why ``path`` is not a complete snapshot, in a few words (``None`` if it is);
    ``full`` names files by their paths."""
    try:
        manifest = read_manifest(path)
    except SnapshotError as e:
        return str(e)
    bad = sorted(name for name, size in manifest['files'].items()
                 if not os.path.isfile(os.path.join(path, name))
                 or os.path.getsize(os.path.join(path, name)) != size)
    if not bad:
        return None
    return 'missing or truncated: {}'.format(
        _listing([os.path.join(path, name) for name in bad] if full else bad))


def _listing(names, shown=3):
    more = ' and {} more'.format(len(names) - shown) if len(names) > shown else ''
    return ', '.join(names[:shown]) + more


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


def resolve_resume(resume, out, skipped=None):
    """Map ``--resume`` to a snapshot folder, or ``None`` for a fresh start.

    ``'auto'`` picks the newest complete snapshot in ``out`` whose files match
    their checksums (``None`` if there is none, so a job script can be
    resubmitted unchanged) and calls ``skipped(path, reason)`` for each
    incomplete or damaged snapshot folder it passed over; any other value must
    be a complete, undamaged snapshot folder.
    """
    if not resume:
        return None
    if resume == 'auto':
        chosen, damaged = None, []
        for _, path in reversed(list_snapshots(out)):
            bad = damaged_files(path)
            if not bad:
                chosen = path
                break
            damaged.append((path, _damage(bad)))
        if skipped is not None:
            for path, reason in incomplete_snapshots(out) + damaged:
                skipped(path, '{}; using {}'.format(reason, chosen or 'none: starting afresh'))
        return chosen
    if not os.path.isdir(resume):
        raise SnapshotError('--resume {}: no such snapshot folder'.format(resume))
    reason = _incomplete(resume, full=True)
    if reason is None:
        bad = damaged_files(resume)
        if not bad:
            return resume
        reason = _damage([os.path.join(resume, name) for name in bad])
    raise SnapshotError('--resume {}: not a usable snapshot: {}; resume from another '
                        '(--resume auto picks the newest whole one)'.format(resume, reason))


def _damage(files):
    return 'damaged: SHA-256 of {} differs from {}'.format(_listing(files), MANIFEST)


def incomplete_snapshots(out):
    """``(path, reason)`` of the snapshot-named folders of ``out`` that are not complete."""
    root = os.path.join(out, 'snapshots')
    found = []
    for name in sorted(os.listdir(root)) if os.path.isdir(root) else ():
        path = os.path.join(root, name)
        if _NAME.match(name) and os.path.isdir(path):
            reason = _incomplete(path)
            if reason is not None:
                found.append((path, reason))
    return found


def _jsonable(value):
    """``value`` as it reads back from a manifest (tuples become lists, ...)."""
    try:
        return json.loads(json.dumps(value, sort_keys=True))
    except (TypeError, ValueError):
        return value


#: The flag of a manifest key whose name is not the flag's (``--`` + key with dashes).
FLAGS = {'epochs': '--epoch'}


def _flag(key):
    return FLAGS.get(key, '--' + key.replace('_', '-'))


def _value(value):
    if isinstance(value, bool):
        return 'on' if value else 'off'
    return str(value)


def check_compatible(path, world_size, batchsize, info=None):
    """Refuse a snapshot written by a different world or run (see the module doc).

    ``info`` holds this job's settings as the training script records them in
    the manifest (e.g. ``{'batchsize': 32, 'arch': 'resnet50', 'optimizer':
    'rmsprop_warmup', 'epochs': 90, 'insize': 224}``), keyed by their flag's name;
    any key present in both the manifest and ``info`` must have the same value, unless
    either is None (the flag does not apply to that recipe).  Keys missing from the
    manifest (snapshots from before they were recorded) are not checked.
    """
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
    _check_same_list(path, manifest.get('train_list'), (info or {}).get('train_list'))
    differ = []
    for key in sorted(set(info or {}) - {'train_list'}):
        theirs, ours = manifest.get(key), info[key]
        if theirs is not None and ours is not None and _jsonable(theirs) != _jsonable(ours):
            differ.append('{} {} in the snapshot, {} in this job'.format(
                _flag(key), _value(theirs), _value(ours)))
    if differ:
        raise SnapshotError(
            '--resume {}: written by a run with other settings: {}; resume with '
            'the settings it was written with, or start afresh in another '
            '--out'.format(path, '; '.join(differ)))
    return manifest


def _check_same_list(path, theirs, ours):
    """The training list (its entries, wherever it lies) must be the snapshot's."""
    if not theirs or not ours:
        return
    if (theirs.get('length'), theirs.get('sha256')) != (ours.get('length'), ours.get('sha256')):
        raise SnapshotError(
            '--resume {}: written for training list {} ({} entries, sha256 {:.12}), this '
            'job reads {} ({} entries, sha256 {:.12}); the data order would differ: resume '
            'with the same list, or start afresh in another --out'.format(
                path, theirs.get('path'), theirs.get('length'), str(theirs.get('sha256')),
                ours.get('path'), ours.get('length'), str(ours.get('sha256'))))


def _is_array(value):
    return isinstance(value, chainer.get_array_types())


def _optimizers(trainer):
    """``(name, optimizer)`` of the trainer's updater, sorted by name."""
    get = getattr(trainer.updater, 'get_all_optimizers', None)
    if get is None:
        return []
    return [(name, opt) for name, opt in sorted(get().items())
            if getattr(opt, 'target', None) is not None]


def shared_keys(trainer):
    """Serialization keys of the arrays that are identical on every rank.

    The model parameters (``updater/model:NAME/<param path>``) and the
    array-valued per-parameter optimizer state
    (``updater/optimizer:NAME/<param path>/<state key>``) of each of the
    updater's optimizers, as ``StandardUpdater.serialize`` names them. The
    update rules' step counts ``t`` are scalars and are not included.
    """
    keys = []
    for oname, opt in _optimizers(trainer):
        for pname, param in sorted(opt.target.namedparams()):
            path = pname.lstrip('/')
            keys.append('updater/model:{}/{}'.format(oname, path))
            rule = getattr(param, 'update_rule', None)
            state = rule.state if rule is not None else None
            for key in sorted(state or ()):
                if _is_array(state[key]):
                    keys.append('updater/optimizer:{}/{}/{}'.format(oname, path, key))
    return keys


def _write_full(fpath, trainer):
    # Uncompressed: weights do not deflate, and zlib would cost seconds.
    chainer.serializers.save_npz(fpath, trainer, compression=False)
    with open(fpath, 'rb+') as f:
        os.fsync(f.fileno())


def _write_slim(fpath, trainer):
    """The trainer's serialization without :func:`shared_keys` (format 2)."""
    s = chainer.serializers.DictionarySerializer()
    s.save(trainer)
    target = s.target
    dropped = [key for key in shared_keys(trainer) if key in target]
    for key in dropped:
        del target[key]
    if DROPPED in target:
        raise SnapshotError('the trainer serializes a key named {}'.format(DROPPED))
    # UTF-8 bytes: a quarter of the size of NumPy's UCS-4 strings
    target[DROPPED] = numpy.array([key.encode('utf-8') for key in dropped], dtype=bytes)
    with open(fpath, 'wb') as f:
        numpy.savez(f, **target)
        f.flush()
        os.fsync(f.fileno())


def _dropped_keys(npz):
    """The keys a slim rank file left out (empty for a full file)."""
    if DROPPED not in npz.files:
        return set()
    return {key.decode('utf-8') for key in npz[DROPPED].tolist()}


def _load_file(fpath, trainer):
    """Load one rank file, full or slim: only the keys a slim file lists may be absent."""
    with numpy.load(fpath, allow_pickle=False) as npz:
        dropped = _dropped_keys(npz)
    if dropped:
        chainer.serializers.load_npz(fpath, trainer, ignore_names=dropped.__contains__)
    else:
        chainer.serializers.load_npz(fpath, trainer)


def _named_params(trainer):
    """``{(optimizer name, param path): param}`` over the updater's optimizers."""
    return {(oname, pname): param for oname, opt in _optimizers(trainer)
            for pname, param in opt.target.namedparams()}


def _describe(array):
    if array is None:
        return None
    return tuple(int(n) for n in array.shape), numpy.dtype(array.dtype).str


def _shared_spec(trainer):
    """What rank 0 broadcasts, in order: each parameter, then its state arrays.

    A sorted list of ``(optimizer name, param path, (shape, dtype) of the
    parameter, [(state key, shape, dtype), ...] or None when the update rule
    has no state yet)``.
    """
    spec = []
    for (oname, pname), param in sorted(_named_params(trainer).items()):
        rule = getattr(param, 'update_rule', None)
        state = rule.state if rule is not None else None
        arrays = None
        if state is not None:
            arrays = [(key,) + _describe(state[key])
                      for key in sorted(state) if _is_array(state[key])]
        spec.append((oname, pname, _describe(param.array), arrays))
    return spec


def _prepare_receive(trainer, spec):
    """On a receiving rank: check the model against rank 0's ``spec`` and
    create the optimizer states it lacks; return what to receive, in order:
    ``[(param, state dict, key, shape, dtype), ...]``.
    """
    params = _named_params(trainer)
    theirs = sorted((oname, pname) for oname, pname, _, _ in spec)
    if sorted(params) != theirs:
        raise SnapshotError(
            'the parameters differ from rank 0\'s: only here {}, only on rank 0 {}'.format(
                sorted(set(params) - set(theirs)), sorted(set(theirs) - set(params))))
    todo = []
    for oname, pname, described, arrays in spec:
        param = params[(oname, pname)]
        if _describe(param.array) != described:
            raise SnapshotError('parameter {} is {} here, {} on rank 0'.format(
                pname, _describe(param.array), described))
        if arrays is None:
            continue
        rule = getattr(param, 'update_rule', None)
        if rule is None:
            raise SnapshotError('parameter {} has no update rule here'.format(pname))
        if rule.state is None:
            # What UpdateRule.update does before the first step: state arrays
            # for the parameter, on its device (overwritten by the broadcast).
            rule._init_states(param)
        mine = sorted(k for k in rule.state if _is_array(rule.state[k]))
        if mine != [key for key, _, _ in arrays]:
            raise SnapshotError(
                'optimizer state of {}: rank 0 has {}, this rank {}; the same '
                'optimizer must be used on every rank'.format(
                    pname, [key for key, _, _ in arrays], mine))
        for key, shape, dtype in arrays:
            todo.append((param, rule.state, key, shape, dtype))
    return todo


def broadcast_shared(trainer, comm):
    """Give every rank rank 0's parameters and optimizer state (collective).

    The ranks first agree that their models match rank 0's (else
    SnapshotError on all). Parameters go by ``comm.bcast_data``; each state
    array by ``MPI_Bcast`` of its bytes from a host buffer (CuPy arrays are
    copied to the host on rank 0, and to the parameter's device elsewhere).
    """
    spec = comm.bcast_obj(_shared_spec(trainer) if comm.rank == 0 else None)
    error = None
    todo = []
    if comm.rank == 0:
        params = _named_params(trainer)
        for oname, pname, _, arrays in spec:
            param = params[(oname, pname)]
            for key, shape, dtype in arrays or ():
                todo.append((param, param.update_rule.state, key, shape, dtype))
    else:
        try:
            todo = _prepare_receive(trainer, spec)
        except Exception as e:
            error = e
    if not _all_ok(comm, error is None):
        raise SnapshotError('rank {} cannot take rank 0\'s parameters and optimizer '
                            'state: {}'.format(comm.rank, error or 'failed on another rank'))
    for _, opt in _optimizers(trainer):
        comm.bcast_data(opt.target)
    cpu = chainer.backend.CpuDevice()
    for param, state, key, shape, dtype in todo:
        if comm.rank == 0:
            host = numpy.ascontiguousarray(cpu.send(state[key]))
        else:
            host = numpy.empty(shape, dtype=numpy.dtype(dtype))
        if host.size:
            comm.mpi_comm.Bcast(host.reshape(-1).view(numpy.uint8), root=0)
        if comm.rank != 0:
            state[key] = param.device.send(host)


def load_snapshot(path, trainer, comm):
    """Load the snapshot folder ``path`` into ``trainer`` (collective over ``comm``).

    Every rank loads its own file; when the ranks agree that all loads
    succeeded, rank 0's parameters and optimizer state are broadcast to all
    (see the module doc). A failure on any rank raises :class:`SnapshotError`
    on every rank.
    """
    rank = comm.rank if comm is not None else 0
    fpath = os.path.join(path, rank_file(rank))
    error = None
    try:
        _load_file(fpath, trainer)
    except Exception as e:  # npz/zip errors have many types
        error = SnapshotError('cannot load snapshot file {}: {}: {}'.format(
            fpath, type(e).__name__, e))
    if comm is None or comm.size == 1:
        if error is not None:
            raise error
        return
    if not _all_ok(comm, error is None):
        raise error or SnapshotError(
            'cannot load snapshot {} on rank {}: loading failed on another '
            'rank'.format(path, rank))
    broadcast_shared(trainer, comm)


def holds_weights_of(model, path):
    """True when the file ``model`` (a ``model.npz``: the predictor's arrays) holds exactly
    the weights and BN statistics of the snapshot folder ``path``; False when they differ
    or ``model`` cannot be read."""
    try:
        with numpy.load(model, allow_pickle=False) as mine, \
                numpy.load(os.path.join(path, rank_file(FULL_RANK)), allow_pickle=False) as full:
            theirs = [key for key in full.files if key.startswith(PREDICTOR)]
            if sorted(mine.files) != sorted(key[len(PREDICTOR):] for key in theirs):
                return False
            return all(numpy.array_equal(mine[key[len(PREDICTOR):]], full[key])
                       for key in theirs)
    except Exception:  # npz/zip errors have many types
        return False


def set_aside(root, path, prefix):
    """Rename ``path`` to ``root/<prefix><name>`` (or ``.1``, ``.2``, ... if taken);
    returns the new path."""
    name = os.path.basename(path)
    dest = os.path.join(root, prefix + name)
    n = 1
    while os.path.lexists(dest):
        dest = os.path.join(root, '{}{}.{}'.format(prefix, name, n))
        n += 1
    os.replace(path, dest)
    return dest


def supersede_newer(out, path):
    """Set aside the complete snapshots in ``out`` newer than ``path`` (rank 0 only).

    Call after deciding to resume from ``path``: the snapshots of ``out`` with
    a higher iteration belong to the abandoned trajectory; left in place,
    pruning would keep them (it keeps the highest iterations) and
    ``--resume auto`` would pick them. Each is renamed to
    ``out/snapshots/.superseded-NAME`` (``.superseded-NAME.1``, ... if taken);
    nothing is deleted. Returns the original names of the renamed snapshots,
    oldest first.
    """
    iteration = read_manifest(path)['iteration']
    root = os.path.join(out, 'snapshots')
    moved = []
    for it, snap in list_snapshots(out):
        if it > iteration:
            set_aside(root, snap, '.superseded-')
            moved.append(os.path.basename(snap))
    if moved:
        _fsync_dir(root)
    return moved


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

    def latest_at(self, iteration):
        """The newest complete snapshot if it was taken at ``iteration``, else None
        (collective: rank 0 looks, every rank gets its answer)."""
        found = None
        if self._rank == 0:
            snaps = list_snapshots(os.path.dirname(self.root))
            if snaps and snaps[-1][0] == iteration:
                found = snaps[-1][1]
        if self.comm is None or self._size == 1:
            return found
        return self.comm.mpi_comm.bcast(found, root=0)

    def ensure_at(self, trainer, before=None):
        """The newest snapshot if it was taken at this iteration, else ``iter-N`` written now,
        after ``before()`` (e.g. the BN average); collective.  Returns its folder."""
        iteration = trainer.updater.iteration
        path = self.latest_at(iteration)
        if path is None:
            if before is not None:
                before()
            path = self.write(trainer, 'iter-{}'.format(iteration))
        return path

    def write(self, trainer, name):
        """Write snapshot ``name`` (collective); return its folder."""
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

        digest = None
        try:
            with atomic_files.replacing(os.path.join(partial, rank_file(self._rank))) as tmp:
                if self._rank == FULL_RANK:
                    _write_full(tmp, trainer)
                else:
                    _write_slim(tmp, trainer)
                digest = file_sha256(tmp)  # each rank its own file, all at once
        except Exception as e:
            error = e
        if not _all_ok(self.comm, error is None):
            if self._rank == 0:
                shutil.rmtree(partial, ignore_errors=True)
            # The error usually ends the job (MPI_Abort): no rank may raise
            # before rank 0 has removed the partial folder.
            _barrier(self.comm)
            self._fail(name, error)

        digests = _gather(self.comm, digest)
        if self._rank == 0:
            try:
                self._publish(trainer, partial, final, digests)
            except Exception as e:
                error = e
                shutil.rmtree(partial, ignore_errors=True)
        if not _all_ok(self.comm, error is None):
            self._fail(name, error)
        if self._rank == 0 and self.keep:
            self._prune()
        return final

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

    def _publish(self, trainer, partial, final, digests):
        """Rank 0: write the manifest (sizes and ``digests``, the ranks' SHA-256
        in rank order) into ``partial``, then rename it to ``final``."""
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
            'format': FORMAT,
            'full_rank': FULL_RANK,
            'world_size': self._size,
            'iteration': int(trainer.updater.iteration),
            'epoch': int(trainer.updater.epoch),
            'epoch_detail': float(trainer.updater.epoch_detail),
            'elapsed_time': float(trainer.elapsed_time),
            'files': files,
            'sha256': {rank_file(r): digest for r, digest in enumerate(digests)},
        })
        with atomic_files.replacing(os.path.join(partial, MANIFEST)) as tmp:
            with open(tmp, 'w') as f:
                json.dump(manifest, f, indent=1, sort_keys=True)
                f.flush()
                os.fsync(f.fileno())
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
        """Delete all but the last ``keep`` snapshots: rename each, then delete it.

        A crash mid-delete leaves a hidden ``.deleting-NAME`` (removed by the
        next prune), never a half-deleted folder under a snapshot's name.
        """
        snaps = list_snapshots(os.path.dirname(self.root))
        for _, path in snaps[:-self.keep]:
            try:
                set_aside(self.root, path, '.deleting-')
            except OSError:
                continue  # e.g. removed meanwhile; the next prune tries again
        _fsync_dir(self.root)
        for name in os.listdir(self.root):
            if name.startswith('.deleting-'):
                shutil.rmtree(os.path.join(self.root, name), ignore_errors=True)
