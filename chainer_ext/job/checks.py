"""Start-up checks of ``train_imagenet.py``: bad flags and input fail before any model exists.

Checks only: single flags are checked by argparse ``type=`` validators
(:mod:`chainer_ext.job.flag_types`), combinations by :func:`flag_problems`, files and data
by the collective checks below, which every rank calls; each problem is one line
naming the flag, or the file and line, and every rank raises the same
:class:`~chainer_ext.job.input_error.InputError`.  The steps that change something are in
:mod:`chainer_ext.job.start_steps`.
"""
import os

from chainer_ext.machine import cuda_env
from chainer_ext import datasets
from chainer_ext.job.input_error import agree_on_problems
from chainer_ext.job.input_error import InputError

GPU_ONLY_COMMUNICATORS = ('pure_nccl', 'non_cuda_aware')
_CUPY_FIX = 'pip install ".[gpu-cuda13]" (CUDA 13 driver) or ".[gpu-cuda12]" (CUDA 12)'


def flag_problems(args, min_insize, gpus=None):
    """Problems of flag combinations (no MPI, no files): one line each.  ``gpus`` is
    :func:`chainer_ext.machine.cuda_env.survey`'s answer (surveyed here if not given)."""
    errors = []
    if args.insize < min_insize:
        errors.append('--insize {} is too small for {} (at least {})'.format(
            args.insize, args.arch, min_insize))
    modes = [m for m in ('demo', 'synthetic') if getattr(args, m)]
    if len(modes) > 1:
        errors.append('--demo and --synthetic cannot be combined')
    if modes and (args.train or args.val):
        errors.append('--{} builds its own data; drop --train/--val'.format(modes[0]))
    if not modes:
        errors += ['{} is required (or use --demo / --synthetic)'.format(flag)
                   for flag, path in (('--train', args.train), ('--val', args.val)) if not path]
    if args.check_dataset and args.synthetic:
        errors.append('--check-dataset needs list files, not --synthetic')
    return errors + communicator_problems(args, cuda_env.survey() if gpus is None else gpus)


def communicator_problems(args, found):
    """Communicator x all-reduce dtype x device combinations that cannot run.

    float16 gradient exchange (Section 3) exists in ChainerMN's ``pure_nccl``
    on GPUs and in the project's ring behind ``naive``/``flat`` on CPUs.
    ``found`` is :func:`chainer_ext.machine.cuda_env.survey`'s answer.
    """
    if args.device != 'cpu' and not isinstance(found, dict) and found.fatal:
        return ['--device {}: {}; or run on CPUs with --device cpu'.format(args.device, found)]
    if args.device == 'gpu' and not isinstance(found, dict):
        fix = _CUPY_FIX if 'not installed' in str(found) else 'check nvidia-smi and ' \
            'CUDA_VISIBLE_DEVICES'
        return ['--device gpu: {}; {}'.format(found, fix)]
    name, fp16 = args.communicator, args.allreduce_dtype == 'float16'
    if args.gpu and name == 'pure_nccl' and found['nccl'] is None:
        return ['--communicator pure_nccl: {}'.format(found['nccl_missing'])]
    if args.gpu and fp16 and name != 'pure_nccl':
        return ['--communicator {} with --allreduce-dtype float16: on GPUs float16 '
                'all-reduce needs pure_nccl (or use --allreduce-dtype float32)'.format(name)]
    if not args.gpu and name in GPU_ONLY_COMMUNICATORS:
        return ['--communicator {} needs GPUs (none in use here); on CPUs use naive or '
                'flat'.format(name)]
    if not args.gpu and name == 'flat' and not fp16:
        return ["--communicator flat with --allreduce-dtype float32: ChainerMN's flat "
                'communicator needs GPUs; on CPUs use naive']
    return []


def _file_problem(flag, path):
    if not os.path.exists(path):
        return '{} {}: no such file'.format(flag, path)
    if not os.path.isfile(path):
        return '{} {}: not a file'.format(flag, path)
    if os.path.getsize(path) == 0:
        return '{} {}: file is empty'.format(flag, path)
    try:
        open(path, 'rb').close()
    except OSError as e:
        return '{} {}: cannot read ({})'.format(flag, path, e.strerror)
    return None


def check_paths(args, comm, out_problem=None):
    """Lists, --root and --resume as every rank sees them (shared or not), with the
    problem :meth:`chainer_ext.job.start_steps.OutputFolder.make` found with --out."""
    problems = []
    if not (args.demo or args.synthetic):
        problems += [_file_problem('--train', args.train), _file_problem('--val', args.val)]
        if not os.path.isdir(args.root):
            problems.append('--root {}: no such folder'.format(args.root))
    problems.append(out_problem)
    if args.resume and args.resume != 'auto' and not os.path.isdir(args.resume):
        problems.append('--resume {}: no such snapshot folder'.format(args.resume))
    agree_on_problems(comm, [p for p in problems if p])


def check_world(args, comm, n_train, shard):
    """The training set must give every rank at least one example per iteration."""
    where = 'the training set ({})'.format(args.train or '--synthetic-size')
    if n_train < comm.size:
        raise InputError(['{} has {} example(s) for {} ranks: every rank needs at least '
                          'one; start at most {} ranks'.format(where, n_train, comm.size,
                                                               n_train)], status=2)
    if args.batchsize > shard:
        raise InputError(['--batchsize {} is larger than each rank\'s share of {} ({} of {} '
                          'examples over {} ranks): one iteration would run several epochs; '
                          'use --batchsize {} or less, or fewer ranks'.format(
                              args.batchsize, where, shard, n_train, comm.size, shard)],
                         status=2)


def check_images_exist(comm, *shards):
    """Every rank stats the images of its own ``(ImageList, indices)`` shards.

    Cheap at any scale and catches a wrong --root or a half-copied data set
    before any model is built; decoding every image is --check-dataset's job.
    """
    problems = []
    for pairs, indices in shards:
        for i in map(int, indices):
            path = pairs.full_path(i)
            try:
                if os.path.getsize(path) == 0:
                    problems.append('{}: image is empty: {}'.format(pairs.where(i), path))
            except OSError:
                problems.append('{}: image missing: {}'.format(pairs.where(i), path))
    # by file and line (line 1 first), each once (the ranks' shards may overlap)
    found = datasets.merge_problems([set(p for part in comm.mpi_comm.allgather(problems)
                                         for p in part)])
    if found:
        raise InputError(found)


def print_dataset_check(args, comm):
    """``--check-dataset``: every rank checks its share of lines; rank 0 prints.

    Returns the exit status (1 if anything is wrong), the same on every rank.
    """
    try:  # validation labels must be classes of the training list
        n_class = datasets.read_image_list(args.train, args.root).n_class
    except datasets.DatasetError:
        n_class = None  # check_dataset reports the training list's own problems
    problems = []
    for path, classes in ((args.train, None), (args.val, n_class)):
        problems += datasets.check_dataset(path, args.root, n_class=classes,
                                           rank=comm.rank, size=comm.size)
    gathered = comm.gather_obj(problems)
    status = None
    if comm.rank == 0:
        found = datasets.merge_problems(gathered)
        for line in found:
            print(line)
        print('check-dataset: {} problem(s) in {} and {}'.format(
            len(found), args.train, args.val))
        status = 1 if found else 0
    return comm.bcast_obj(status)
