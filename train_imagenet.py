#!/usr/bin/env python
"""Train ResNet-50 on ImageNet with the recipe of Akiba, Suzuki and Fukuda (2017).

    mpiexec -n 1024 python train_imagenet.py --train train.txt --val val.txt --root /data/ILSVRC2012

With its defaults this is the paper's recipe (Sections 2-3, Appendix A): 32
images per worker, 90 epochs, ResNet-50 at 224 px, the RMSprop→SGD hybrid
optimizer with the ELU-shaped transition and the slow-start learning rate,
batch normalization without moving averages (last-minibatch statistics,
averaged over workers before every validation), gradients all-reduced in
float16, validation after every epoch inside the timed run. The same program
runs at small scale with flags (``--epoch 18`` compresses every schedule by
18/90) and on built-in demo data with ``--demo``:

    mpiexec -n 2 python train_imagenet.py --demo

Baselines for comparison: ``--optimizer momentum`` (momentum SGD with Goyal et
al.'s 5-epoch warm-up and step schedule) and ``--bn-moving-average``.
"""
import argparse
import multiprocessing
import os
import sys

import chainer_ext  # NOQA: compatibility stand-ins before chainer loads

# --demo: ResNet-18 on 32 px digits, 18 epochs (every schedule compressed by
# 18/90), 32 images per rank, loading in-process (the images are tiny); insize
# and min_area come from chainer_ext.datasets.demo, which explains them.
DEMO_DEFAULTS = dict(arch='resnet18', epoch=18, batchsize=32, val_batchsize=64,
                     loaderjob=0, out=os.path.join('result', 'demo'))
PAPER_DEFAULTS = dict(arch='resnet50', insize=224, epoch=90, batchsize=32,
                      val_batchsize=50, loaderjob=None, min_area=0.08,
                      out='result')


def build_parser():
    p = argparse.ArgumentParser(
        prog='train_imagenet.py',
        description='ResNet-50 on ImageNet with extremely large minibatches '
                    '(Akiba et al. 2017) on Chainer/ChainerMN.')
    p.add_argument('--train', help='training list file ("relative/path label" per line)')
    p.add_argument('--val', help='validation list file')
    p.add_argument('--root', default='.', help='folder the list paths are relative to')
    p.add_argument('--arch', choices=('resnet50', 'resnet18'),
                   help='network (default resnet50; resnet18 with --demo)')
    p.add_argument('--batchsize', type=int,
                   help='images per worker per iteration (paper: 32)')
    p.add_argument('--val-batchsize', type=int, help='validation images per worker per batch')
    p.add_argument('--epoch', type=int,
                   help='epochs to train (paper: 90); fewer compresses every '
                        'schedule boundary and beta by epoch/90')
    p.add_argument('--insize', type=int, help='input crop side in pixels (paper: 224)')
    p.add_argument('--communicator', default=None,
                   choices=('pure_nccl', 'naive', 'flat', 'hierarchical',
                            'two_dimensional', 'single_node', 'non_cuda_aware'),
                   help='ChainerMN communicator (default: pure_nccl on GPUs, '
                        "naive on CPUs, both with float16 all-reduce)")
    p.add_argument('--allreduce-dtype', default='float16', choices=('float16', 'float32'),
                   help='dtype of the gradient all-reduce (paper: float16)')
    p.add_argument('--loaderjob', type=int,
                   help='data-loading worker processes per rank (0: load in-process)')
    p.add_argument('--out', help='output folder (default result, result/demo with --demo)')
    p.add_argument('--resume', default='',
                   help='snapshot folder OUT/snapshots/epoch-N to continue from, '
                        'or "auto" for the newest complete one in --out')
    p.add_argument('--seed', type=int, default=0, help='seed of data order and augmentation')
    p.add_argument('--optimizer', default='rmsprop_warmup',
                   choices=('rmsprop_warmup', 'momentum'),
                   help='rmsprop_warmup (paper) or momentum (Goyal et al. baseline)')
    p.add_argument('--lr-rmsprop', type=float, default=3e-4,
                   help='eta_RMSprop of Appendix A.1 (paper: 0.0003)')
    p.add_argument('--weight-decay', type=float, default=1e-4,
                   help='weight decay on conv/linear weights (Goyal et al.: 1e-4)')
    p.add_argument('--bn-moving-average', action='store_true',
                   help="baseline: keep Chainer's moving averages in batch normalization")
    p.add_argument('--min-area', type=float,
                   help='smallest crop area fraction of the scale augmentation (paper: 0.08)')
    p.add_argument('--demo', action='store_true',
                   help='build a small digits data set in the ImageNet list format '
                        'and train resnet18 on it with a compressed schedule')
    p.add_argument('--demo-cache', default=None,
                   help='where --demo keeps its data (default ~/.cache/akiba2017/demo-digits)')
    p.add_argument('--synthetic', action='store_true',
                   help='random data of the right shape, no I/O (throughput runs)')
    p.add_argument('--synthetic-size', type=int, default=1281167,
                   help='images per epoch with --synthetic (default: ImageNet-1k train)')
    p.add_argument('--n-class', type=int, default=1000, help='classes with --synthetic')
    p.add_argument('--max-iterations', type=int, default=0,
                   help='stop after this many iterations (0: run all epochs)')
    p.add_argument('--log-interval', type=int, default=0,
                   help='LogReport every N iterations (0: every epoch)')
    p.add_argument('--no-plots', action='store_true',
                   help='skip the per-epoch PNG plots (about 0.16 s per epoch on rank 0, '
                        'which every rank waits for; draw them afterwards with '
                        'python -m chainer_ext.report)')
    p.add_argument('--no-validation', action='store_true',
                   help='skip per-epoch validation (throughput runs only)')
    p.add_argument('--check-dataset', action='store_true',
                   help='check the train and val lists (files exist, decode, labels '
                        'in range), print every bad line, exit 1 if any is bad')
    p.add_argument('--keep-snapshots', type=int, default=3,
                   help='complete snapshots to keep (0: all)')
    p.add_argument('--snapshot-iterations', type=int, default=0,
                   help='also snapshot every N iterations (0: only at epoch ends)')
    p.add_argument('--max-nonfinite', type=int, default=20,
                   help='stop after this many consecutive updates with non-finite gradients')
    p.add_argument('--device', default='auto', choices=('auto', 'cpu', 'gpu'),
                   help='auto: one GPU per rank (intra-node rank) when CuPy is present')
    return p


def env_rank():
    """This process's MPI rank from the launcher's environment (before MPI init)."""
    for var in ('OMPI_COMM_WORLD_RANK', 'PMIX_RANK', 'PMI_RANK', 'SLURM_PROCID',
                'MV2_COMM_WORLD_RANK'):
        if var in os.environ:
            try:
                return int(os.environ[var])
            except ValueError:
                pass
    return 0


def fill_defaults(args):
    if args.demo:
        from chainer_ext.datasets import DEMO_INSIZE, DEMO_MIN_AREA
        defaults = dict(DEMO_DEFAULTS, insize=DEMO_INSIZE, min_area=DEMO_MIN_AREA)
    else:
        defaults = PAPER_DEFAULTS
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.demo_cache is None:
        base = os.environ.get('XDG_CACHE_HOME') or os.path.join(
            os.path.expanduser('~'), '.cache')
        args.demo_cache = os.path.join(base, 'akiba2017', 'demo-digits')
    return args


def _nonempty_file(flag, path):
    if not os.path.exists(path):
        return '{} {}: no such file'.format(flag, path)
    if not os.path.isfile(path):
        return '{} {}: not a file'.format(flag, path)
    if os.path.getsize(path) == 0:
        return '{} {}: file is empty'.format(flag, path)
    try:
        with open(path, 'rb'):
            pass
    except OSError as e:
        return '{} {}: cannot read ({})'.format(flag, path, e.strerror)
    return None


def _writable_dir(flag, path):
    try:
        os.makedirs(path, exist_ok=True)
        probe = os.path.join(path, '.write-test-{}'.format(os.getpid()))
        with open(probe, 'w') as f:
            f.write('ok')
        os.remove(probe)
    except OSError as e:
        return '{} {}: output folder not writable ({})'.format(flag, path, e.strerror or e)
    return None


def validate_args(args):
    """Problems with the flags that need no MPI and no data: one line each."""
    from models import archs
    errors = []
    if args.batchsize <= 0:
        errors.append('--batchsize must be a positive integer, got {}'.format(args.batchsize))
    if args.val_batchsize <= 0:
        errors.append('--val-batchsize must be a positive integer, got {}'.format(
            args.val_batchsize))
    if not args.epoch > 0:
        errors.append('--epoch must be positive, got {}'.format(args.epoch))
    min_insize = getattr(archs[args.arch], 'min_insize', 32)
    if args.insize < min_insize:
        errors.append('--insize {} is too small for {} (at least {})'.format(
            args.insize, args.arch, min_insize))
    if args.loaderjob is not None and args.loaderjob < 0:
        errors.append('--loaderjob must be >= 0, got {}'.format(args.loaderjob))
    if not 0 < args.min_area <= 1:
        errors.append('--min-area must be in (0, 1], got {}'.format(args.min_area))
    if args.lr_rmsprop < 0:
        errors.append('--lr-rmsprop must be >= 0, got {}'.format(args.lr_rmsprop))
    if args.weight_decay < 0:
        errors.append('--weight-decay must be >= 0, got {}'.format(args.weight_decay))
    if args.keep_snapshots < 0:
        errors.append('--keep-snapshots must be >= 0, got {}'.format(args.keep_snapshots))
    if args.snapshot_iterations < 0:
        errors.append('--snapshot-iterations must be >= 0, got {}'.format(
            args.snapshot_iterations))
    if args.max_iterations < 0:
        errors.append('--max-iterations must be >= 0, got {}'.format(args.max_iterations))
    if args.log_interval < 0:
        errors.append('--log-interval must be >= 0, got {}'.format(args.log_interval))
    if args.max_nonfinite < 1:
        errors.append('--max-nonfinite must be >= 1, got {}'.format(args.max_nonfinite))
    if args.synthetic and args.synthetic_size <= 0:
        errors.append('--synthetic-size must be positive, got {}'.format(args.synthetic_size))
    if args.synthetic and args.n_class < 2:
        errors.append('--n-class must be >= 2, got {}'.format(args.n_class))
    modes = [m for m in ('demo', 'synthetic') if getattr(args, m)]
    if len(modes) > 1:
        errors.append('--demo and --synthetic cannot be combined')
    if modes and (args.train or args.val):
        errors.append('--{} builds its own data; drop --train/--val'.format(modes[0]))
    if not modes:
        for flag, path in (('--train', args.train), ('--val', args.val)):
            if not path:
                errors.append('{} is required (or use --demo / --synthetic)'.format(flag))
    if args.check_dataset and args.synthetic:
        errors.append('--check-dataset needs list files, not --synthetic')
    errors += communicator_problems(args)
    return errors


GPU_ONLY_COMMUNICATORS = ('pure_nccl', 'hierarchical', 'two_dimensional', 'single_node',
                          'non_cuda_aware')


def gpu_count():
    """CUDA devices visible to this process (0 without CuPy or without GPUs)."""
    try:
        import cupy
        return cupy.cuda.runtime.getDeviceCount()
    except Exception:
        return 0


def resolve_device_and_communicator(args):
    """Set ``args.gpu`` and ``args.communicator`` from --device and the machine."""
    args.gpu = args.device == 'gpu' or (args.device == 'auto' and gpu_count() > 0)
    if args.communicator is None:
        args.communicator = 'pure_nccl' if args.gpu else 'naive'


def communicator_problems(args):
    """Communicator x all-reduce dtype x device combinations that cannot work.

    float16 gradient exchange (Section 3) exists in ChainerMN's ``pure_nccl``
    on GPUs and in the project's ring communicator behind ``naive``/``flat`` on
    CPUs (:mod:`chainer_ext.communicators`). ``--allreduce-dtype float32``
    means ChainerMN's own communicator of that name, unchanged.
    """
    problems = []
    if args.device == 'gpu' and gpu_count() == 0:
        problems.append('--device gpu: no CUDA device visible (is CuPy installed? '
                        'pip install ".[gpu]")')
        return problems
    name, fp16 = args.communicator, args.allreduce_dtype == 'float16'
    if args.gpu:
        if fp16 and name != 'pure_nccl':
            problems.append('--communicator {} with --allreduce-dtype float16: on GPUs '
                            'float16 all-reduce needs pure_nccl (or use '
                            '--allreduce-dtype float32)'.format(name))
    else:
        if name in GPU_ONLY_COMMUNICATORS:
            problems.append('--communicator {} needs GPUs (none in use here); on CPUs use '
                            'naive or flat'.format(name))
        elif name == 'flat' and not fp16:
            problems.append("--communicator flat with --allreduce-dtype float32: ChainerMN's "
                            'flat communicator needs GPUs; on CPUs use naive')
    return problems


def path_problems(args):
    """Problems with files and folders, as this rank sees them (shared or not)."""
    errors = []
    if not (args.demo or args.synthetic):
        for flag, path in (('--train', args.train), ('--val', args.val)):
            problem = _nonempty_file(flag, path)
            if problem:
                errors.append(problem)
        if not os.path.isdir(args.root):
            errors.append('--root {}: no such folder'.format(args.root))
    if not args.check_dataset:
        problem = _writable_dir('--out', args.out)
        if problem:
            errors.append(problem)
    if args.resume and args.resume != 'auto' and not os.path.isdir(args.resume):
        errors.append('--resume {}: no such snapshot folder'.format(args.resume))
    return errors


def agree_on_problems(comm, problems):
    """Union of every rank's problems, each noting the ranks that saw it if not all."""
    gathered = comm.mpi_comm.allgather(list(problems))
    seen = {}
    for rank, part in enumerate(gathered):
        for p in part:
            seen.setdefault(p, []).append(rank)
    out = []
    for p in sorted(seen):
        ranks = seen[p]
        if len(ranks) < comm.size:
            shown = ', '.join(str(r) for r in ranks[:8]) + (' ...' if len(ranks) > 8 else '')
            p = '{} (on rank {})'.format(p, shown)
        out.append(p)
    return out


def start_forkserver():
    """Set the forkserver start method before the communicator exists.

    Forking a process that holds InfiniBand resources crashes it (Open MPI
    FAQ; ChainerMN's tips): worker processes must come from a forkserver that
    was started before MPI touched the network. Starting one dummy process
    makes the forkserver itself start now.
    """
    try:
        multiprocessing.set_start_method('forkserver')
    except RuntimeError:
        pass  # already set (e.g. by a test harness)
    # loaders unpickle Chainer objects first: chainer_ext's compat must precede them
    multiprocessing.set_forkserver_preload(['chainer_ext'])
    p = multiprocessing.Process(target=_noop)
    p.start()
    p.join()


def _noop():
    pass


def choose_device(args, comm):
    """GPU id of this rank (its intra-node rank) or -1 for the CPU."""
    if not args.gpu:
        return -1
    n = gpu_count()
    if comm.intra_rank >= n:
        raise InputError(['rank {} is intra-node rank {} but its node has only {} GPU(s): '
                          'start one rank per GPU'.format(comm.rank, comm.intra_rank, n)],
                         status=2)
    return comm.intra_rank


def prepare_data(args, comm):
    """This rank's train and validation data sets, and facts about the data.

    Rank 0 reads the list files (or builds the demo data) and broadcasts the
    entries; the index arrays are scattered with ``chainermn.scatter_dataset``
    (:func:`chainer_ext.data_parallel.shard_indices`), and each rank keeps a
    data set of its own shard only. Examples are seeded per epoch and index
    (:class:`chainer_ext.reproducible_order.EpochSeededDataset`).
    """
    from chainer_ext import datasets
    from chainer_ext.reproducible_order import EpochSeededDataset
    from chainer_ext.data_parallel import IndexedView, shard_indices
    from chainer_ext.synthetic import SyntheticImageDataset

    if args.synthetic:
        n_class = args.n_class
        train_all = SyntheticImageDataset(args.synthetic_size, args.insize, n_class,
                                          seed=args.seed)
        val_all = SyntheticImageDataset(2 * args.val_batchsize * comm.size, args.insize,
                                        n_class, seed=args.seed + 1)
        n_train, n_val = len(train_all), len(val_all)
        train = IndexedView(train_all, shard_indices(n_train, comm, train=True, seed=args.seed))
        val = IndexedView(val_all, shard_indices(n_val, comm, train=False))
    else:
        if args.demo:
            use_demo_lists(args, comm)
        lists = None
        if comm.rank == 0:
            try:
                pairs = (datasets.read_image_list(args.train, args.root),
                         datasets.read_image_list(args.val, args.root))
                lists = {'pairs': pairs, 'problems': _list_problems(*pairs)}
            except datasets.DatasetError as e:
                lists = {'pairs': None, 'problems': [str(e)]}
        lists = comm.bcast_obj(lists)
        if lists['problems']:
            raise InputError(lists['problems'])
        train_pairs, val_pairs = lists['pairs']
        n_class, n_train, n_val = train_pairs.n_class, len(train_pairs), len(val_pairs)
        train_idx = shard_indices(n_train, comm, train=True, seed=args.seed)
        val_idx = shard_indices(n_val, comm, train=False)
        _check_images_exist(comm, (train_pairs, train_idx), (val_pairs, val_idx))
        # Only this rank's entries (with their line numbers, for error
        # messages): its loader workers then receive 1/size of the list.
        train = datasets.ImageNetDataset(_sub_list(train_pairs, train_idx), args.root,
                                         args.insize, train=True, min_area=args.min_area)
        val = datasets.ImageNetDataset(_sub_list(val_pairs, val_idx), args.root,
                                       args.insize, train=False)
    train = EpochSeededDataset(train, seed=_rank_seed(args.seed, comm.rank))
    val = EpochSeededDataset(val, seed=args.seed)
    return train, val, dict(n_class=n_class, n_train=n_train, n_val=n_val)


def _sub_list(pairs, indices):
    """The entries ``indices`` of an ImageList, keeping source and line numbers."""
    from chainer_ext.datasets import ImageList
    idx = [int(i) for i in indices]
    return ImageList([pairs[i] for i in idx], source=pairs.source, root=pairs.root,
                     lines=[pairs.lines[i] for i in idx])


class InputError(Exception):
    """Flags (status 2) or data (status 1) unusable; ``problems`` are one line each.

    Raised on every rank alike (after an agreement), so the job ends without
    an MPI_Abort and rank 0 prints each problem once.
    """

    def __init__(self, problems, status=1):
        self.problems = list(problems)
        self.status = status
        super(InputError, self).__init__('\n'.join(self.problems))


def _list_problems(train_pairs, val_pairs):
    """Whole-list problems found at start (rank 0): duplicates, foreign labels."""
    problems = []
    for pairs in (train_pairs, val_pairs):
        first = {}
        for i, (rel, _) in enumerate(pairs):
            if rel in first:
                problems.append('{}: duplicate of line {} ({})'.format(
                    pairs.where(i), pairs.lines[first[rel]], rel))
            else:
                first[rel] = i
    n_class = train_pairs.n_class
    for i, (_, label) in enumerate(val_pairs):
        if label >= n_class:
            problems.append('{}: label {} but the training list has only classes '
                            '0..{}'.format(val_pairs.where(i), label, n_class - 1))
    return problems


def _check_images_exist(comm, *shards):
    """Every rank stats the images of its own shards; all ranks learn the verdict.

    Cheap at any scale (1/size of the files per rank) and catches a wrong
    ``--root`` or a half-copied data set before any model is built; decoding
    every image is ``--check-dataset``'s job.
    """
    problems = []
    for pairs, indices in shards:
        for i in indices:
            path = pairs.full_path(int(i))
            try:
                if os.path.getsize(path) == 0:
                    problems.append('{}: image is empty: {}'.format(pairs.where(int(i)), path))
            except OSError:
                problems.append('{}: image missing: {}'.format(pairs.where(int(i)), path))
    gathered = comm.mpi_comm.allgather(problems)
    found = sorted(set(p for part in gathered for p in part))
    if found:
        raise InputError(found)


def use_demo_lists(args, comm):
    """``--demo``: rank 0 builds (or reuses) the digits data set; all ranks use its lists."""
    from chainer_ext import datasets
    demo = datasets.build_demo_dataset(args.demo_cache) if comm.rank == 0 else None
    args.train, args.val, args.root = comm.bcast_obj(demo)


def check_dataset(args, comm):
    """``--check-dataset``: every rank checks its share of lines; rank 0 prints."""
    from chainer_ext import datasets
    if args.demo:
        use_demo_lists(args, comm)
    try:  # validation labels must be classes of the training list
        n_class = datasets.read_image_list(args.train, args.root).n_class
    except datasets.DatasetError:
        n_class = None  # check_dataset reports the training list's own problems
    problems = []
    for path, classes in ((args.train, None), (args.val, n_class)):
        problems += datasets.check_dataset(path, args.root, n_class=classes,
                                           rank=comm.rank, size=comm.size)
    gathered = comm.gather_obj(problems)
    if comm.rank == 0:
        allp = datasets.merge_problems(gathered)
        for line in allp:
            print(line)
        print('check-dataset: {} problem(s) in {} and {}'.format(
            len(allp), args.train, args.val))
        status = 1 if allp else 0
    else:
        status = None
    return comm.bcast_obj(status)


def make_optimizer(args, comm, model, total_batch):
    """The paper's hybrid optimizer (or the momentum baseline) and its schedules."""
    from chainer_ext import schedules
    from chainer_ext.extensions import AlphaSGDSchedule, LearningRateSchedule
    from chainer_ext.nonfinite import SkipNonFiniteUpdate
    from chainer_ext.optimizers import RMSpropWarmup, add_weight_decay

    eta_base = schedules.eta_base(total_batch)
    epochs = args.epoch
    if args.optimizer == 'rmsprop_warmup':
        lr0 = schedules.slow_start_lr(0.0, eta_base, total_epochs=epochs)
        actual = RMSpropWarmup(lr=lr0, lr_rmsprop=args.lr_rmsprop, alpha_sgd=0.0)
        beta_center, beta_period = schedules.compressed_beta(epochs)
        exts = [
            LearningRateSchedule(
                lambda e: schedules.slow_start_lr(e, eta_base, total_epochs=epochs)),
            AlphaSGDSchedule(beta_center=beta_center, beta_period=beta_period),
        ]
    else:
        # Momentum SGD *with* Goyal et al.'s momentum correction: the A.1 rule at
        # alpha_SGD = 1 and no RMSprop term is Δ ← μΔ − g, θ ← θ + ηΔ, whose
        # momentum does not contain η (Chainer's MomentumSGD keeps η inside v,
        # so every warm-up step and schedule drop would go uncorrected).
        lr0 = schedules.goyal_lr(0.0, eta_base, total_epochs=epochs)
        actual = RMSpropWarmup(lr=lr0, lr_rmsprop=0.0, alpha_sgd=1.0)
        exts = [LearningRateSchedule(
            lambda e: schedules.goyal_lr(e, eta_base, total_epochs=epochs))]
    import chainermn
    optimizer = chainermn.create_multi_node_optimizer(actual, comm)
    optimizer.setup(model)
    if args.weight_decay > 0:
        add_weight_decay(model, rate=args.weight_decay)
    guard = SkipNonFiniteUpdate(comm, max_consecutive=args.max_nonfinite)
    optimizer.add_hook(guard)
    return optimizer, exts, eta_base


def run(args):
    """Everything after the flags were found sound (collective over all ranks)."""
    import numpy

    import chainer
    import chainer.links as L
    from chainer import training
    from chainer.training import extensions

    from chainer_ext import datasets, snapshots
    from chainer_ext.batchnorm import use_last_batch_statistics
    from chainer_ext.communicators import create_communicator
    from chainer_ext.data_parallel import broadcast_params
    from chainer_ext.evaluators import MultiNodeEvaluator
    from chainer_ext.extensions import BatchNormStatsAllreduce
    from chainer_ext.reproducible_order import EpochTaggedOrderSampler
    from chainer_ext.run_info import gather_run_info, write_json_atomic
    from models import archs

    use_workers = not args.check_dataset and (args.loaderjob is None or args.loaderjob > 0)
    if use_workers:
        start_forkserver()  # before the communicator exists

    dtype = 'float16' if args.allreduce_dtype == 'float16' else None  # None: ChainerMN's own
    comm = create_communicator(args.communicator, allreduce_grad_dtype=dtype)
    problems = agree_on_problems(comm, path_problems(args))
    if problems:
        raise InputError(problems, status=2)
    if args.check_dataset:
        return check_dataset(args, comm)

    device = choose_device(args, comm)
    if device >= 0:
        chainer.backends.cuda.get_device_from_id(device).use()
        if not chainer.backends.cuda.cudnn_enabled and comm.rank == 0:
            sys.stderr.write('train_imagenet.py: warning: cuDNN is not available to Chainer '
                             '(CuPy {}); convolutions and batch normalization will be several '
                             'times slower than in the paper\n'.format(
                                 chainer.backends.cuda.cupy.__version__))
    if args.loaderjob is None:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else (
            os.cpu_count() or 2)
        args.loaderjob = max(1, cores // max(1, comm.intra_size) - 1)

    # Rank 0 alone inspects the snapshots (not 1024 ranks statting 1024 files).
    resume = None
    if comm.rank == 0:
        try:
            resume = {'path': snapshots.resolve_resume(args.resume, args.out), 'error': None}
            if resume['path']:
                snapshots.check_compatible(resume['path'], comm.size, args.batchsize,
                                           info=manifest_info(args))
                moved = snapshots.supersede_newer(args.out, resume['path'])
                if moved:
                    print('resuming from {}: newer snapshots {} set aside as .superseded-*'
                          .format(resume['path'], ', '.join(moved)), flush=True)
        except snapshots.SnapshotError as e:
            resume = {'path': None, 'error': str(e)}
    resume = comm.bcast_obj(resume)  # ChainerMN wants a non-None object on the root only
    if resume['error']:
        raise InputError([resume['error']], status=2)
    resume = resume['path']

    train, val, facts = prepare_data(args, comm)
    total_batch = comm.size * args.batchsize

    # Rank 0's initial weights are broadcast to every rank: seeding them makes a
    # run repeatable (Chainer's initializers draw from NumPy's global generator).
    numpy.random.seed(args.seed)
    model = L.Classifier(archs[args.arch](n_class=facts['n_class']))
    if not args.bn_moving_average:
        use_last_batch_statistics(model)
    if device >= 0:
        model.to_gpu(device)
    optimizer, schedule_exts, eta_base = make_optimizer(args, comm, model, total_batch)
    # Identical initial weights on every rank. ChainerMN's multi-node optimizer
    # would broadcast at its first update() *instead of* updating; doing it
    # here and recording the parameter set makes iteration 1 a real update,
    # both in a fresh run and right after --resume (so that a resumed run
    # follows the uninterrupted trajectory).
    broadcast_params(model, comm)
    optimizer.is_changed(model)

    order = EpochTaggedOrderSampler(len(train), seed=_rank_seed(args.seed, comm.rank))
    if args.loaderjob > 0:
        # Raises a worker's error (a truncated JPEG, say) here instead of
        # hanging as Chainer's MultiprocessIterator does.
        train_iter = datasets.StrictMultiprocessIterator(
            train, args.batchsize, n_processes=args.loaderjob, order_sampler=order,
            shuffle=None)
        val_iter = datasets.StrictMultiprocessIterator(
            val, args.val_batchsize, repeat=False, shuffle=False,
            n_processes=args.loaderjob)
    else:
        train_iter = chainer.iterators.SerialIterator(
            train, args.batchsize, order_sampler=order, shuffle=None)
        val_iter = chainer.iterators.SerialIterator(
            val, args.val_batchsize, repeat=False, shuffle=False)

    updater = training.StandardUpdater(train_iter, optimizer, device=device)
    stop = (args.max_iterations, 'iteration') if args.max_iterations else (args.epoch, 'epoch')
    trainer = training.Trainer(updater, stop, out=args.out)

    for ext in schedule_exts:
        trainer.extend(ext)
    if not args.no_validation:
        if not args.bn_moving_average:
            trainer.extend(BatchNormStatsAllreduce(model, comm), trigger=(1, 'epoch'))
        trainer.extend(MultiNodeEvaluator(val_iter, model, comm, device=device),
                       trigger=(1, 'epoch'))
    snapshot_info = manifest_info(args)
    trainer.extend(snapshots.MultiNodeSnapshot(comm, args.out, keep=args.keep_snapshots,
                                               info=snapshot_info),
                   trigger=(1, 'epoch'))
    if args.snapshot_iterations:
        trainer.extend(snapshots.MultiNodeSnapshot(comm, args.out, keep=args.keep_snapshots,
                                                   info=snapshot_info, by='iteration'),
                       trigger=(args.snapshot_iterations, 'iteration'),
                       name='MultiNodeSnapshotIterations')

    if comm.rank == 0:
        keys = ['epoch', 'iteration', 'main/loss', 'main/accuracy',
                'validation/main/loss', 'validation/main/accuracy', 'lr']
        if args.optimizer == 'rmsprop_warmup':
            keys.append('alpha_sgd')
        keys.append('elapsed_time')
        log_trigger = (args.log_interval, 'iteration') if args.log_interval else (1, 'epoch')
        trainer.extend(extensions.LogReport(trigger=log_trigger))
        trainer.extend(extensions.PrintReport(keys), trigger=log_trigger)
        trainer.extend(extensions.ProgressBar(update_interval=10))
        if not args.no_plots and extensions.PlotReport.available():
            trainer.extend(extensions.PlotReport(
                ['main/loss', 'validation/main/loss'], 'epoch', file_name='loss.png'))
            trainer.extend(extensions.PlotReport(
                ['main/accuracy', 'validation/main/accuracy'], 'epoch',
                file_name='accuracy.png'))
            trainer.extend(extensions.PlotReport(['lr'], 'iteration', file_name='lr.png',
                                                 trigger=(1, 'epoch')))
            if args.optimizer == 'rmsprop_warmup':
                trainer.extend(extensions.PlotReport(['alpha_sgd'], 'iteration',
                                                     file_name='alpha_sgd.png',
                                                     trigger=(1, 'epoch')))

    config = gather_run_info(args, comm, device, extra=dict(
        facts, eta_base=eta_base, total_batch=total_batch,
        resumed_from=resume, communicator=args.communicator))
    if comm.rank == 0:
        write_json_atomic(os.path.join(args.out, 'config.json'), config)
        print('{} ranks x {} images = total batch {}; eta_base {:g}; {} train / {} val '
              'images, {} classes; {} on {}'.format(
                  comm.size, args.batchsize, total_batch, eta_base, facts['n_train'],
                  facts['n_val'], facts['n_class'], args.arch,
                  'GPU' if device >= 0 else 'CPU'), flush=True)

    if resume:
        snapshots.load_snapshot(resume, trainer, comm)
        if comm.rank == 0:
            print('resumed from {} (iteration {})'.format(
                resume, trainer.updater.iteration), flush=True)

    # The global except hook prints the cause once, with the rank; Chainer's
    # own loop message would print it a second time.
    trainer.run(show_loop_exception_msg=False)

    # Final statistics: the average over workers, as before every validation.
    if not args.bn_moving_average:
        BatchNormStatsAllreduce(model, comm)()
    if comm.rank == 0:
        path = os.path.join(args.out, 'model.npz')
        chainer.serializers.save_npz(path + '.tmp.npz', model.predictor)
        os.replace(path + '.tmp.npz', path)
    if use_workers:
        train_iter.finalize()
        val_iter.finalize()
    return 0


def manifest_info(args):
    """What a snapshot must agree with to be resumed by this job."""
    return {'batchsize': args.batchsize, 'arch': args.arch, 'optimizer': args.optimizer,
            'epochs': args.epoch}


def _rank_seed(seed, rank):
    """Distinct, reproducible seed of one rank's data order and augmentation."""
    return int(seed) * 100003 + int(rank)


def main(argv=None):
    parser = build_parser()
    args = fill_defaults(parser.parse_args(argv))
    resolve_device_and_communicator(args)

    problems = validate_args(args)
    if problems:  # flag values: the same on every rank, so rank 0 speaks
        if env_rank() == 0:
            for line in problems:
                sys.stderr.write('train_imagenet.py: error: {}\n'.format(line))
        return 2

    # Any uncaught exception on any rank aborts the whole MPI job at once
    # (MPI_Abort) instead of leaving the other ranks waiting in a collective.
    import chainermn.global_except_hook
    chainermn.global_except_hook.add_hook()
    try:
        return run(args)
    except InputError as e:  # raised on every rank alike: no abort needed
        if env_rank() == 0:
            shown = e.problems[:50]
            for line in shown:
                sys.stderr.write('train_imagenet.py: error: {}\n'.format(line))
            if len(e.problems) > len(shown):
                sys.stderr.write('train_imagenet.py: error: ... {} more\n'.format(
                    len(e.problems) - len(shown)))
            if e.status == 1:
                sys.stderr.write('train_imagenet.py: {} problem(s) in the input; '
                                 '--check-dataset lists them all\n'.format(len(e.problems)))
        return e.status


if __name__ == '__main__':
    sys.exit(main())
