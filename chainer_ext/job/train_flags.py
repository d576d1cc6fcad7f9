"""``train_imagenet.py``'s flags: the parser, and the paper's (or ``--demo``'s) defaults.

Each flag is checked by its ``type=`` validator (:mod:`chainer_ext.job.flag_types`) as argparse
reads it; combinations of flags by :func:`chainer_ext.job.checks.flag_problems`.  Every
rank of an MPI job parses the same flags before MPI starts, and rank 0 alone prints
(:class:`~chainer_ext.job.flag_types.RankZeroParser`).
"""
import os

from chainer_ext import communicators
from chainer_ext.machine import cuda_env
from chainer_ext import datasets
from chainer_ext.job import flag_types
from chainer_ext import optimizers
from chainer_ext.job import stop_signals
from models import archs

PROG = 'train_imagenet.py'
# --demo: ResNet-18 on 32 px digits (sizes explained in chainer_ext.datasets.demo).
DEMO_DEFAULTS = dict(arch='resnet18', epoch=18, batchsize=32, val_batchsize=64,
                     loaderjob=0, out=os.path.join('result', 'demo'),
                     insize=datasets.DEMO_INSIZE, min_area=datasets.DEMO_MIN_AREA)
PAPER_DEFAULTS = dict(arch='resnet50', insize=224, epoch=90, batchsize=32,
                      val_batchsize=50, loaderjob=None, min_area=0.08, out='result')


def build_parser():
    p = flag_types.RankZeroParser(prog=PROG, description='ResNet-50 on ImageNet with extremely '
                              'large minibatches (Akiba et al. 2017) on Chainer/ChainerMN.')
    arg = p.add_argument
    arg('--train', help='training list file ("relative/path label" per line)')
    arg('--val', help='validation list file')
    arg('--root', default='.', help='folder the list paths are relative to')
    arg('--arch', choices=sorted(archs), help='network (default resnet50; resnet18 with --demo)')
    arg('--batchsize', type=flag_types.positive_int,
        help='images per worker per iteration (paper: 32)')
    arg('--val-batchsize', type=flag_types.positive_int,
        help='validation images per worker per batch')
    arg('--epoch', type=flag_types.positive_int, help='epochs to train (paper: 90); fewer '
        'compresses every schedule boundary and beta by epoch/90')
    arg('--insize', type=flag_types.positive_int, help='input crop side in pixels (paper: 224)')
    arg('--communicator', choices=communicators.NAMES, help='ChainerMN communicator (default: '
        'pure_nccl on GPUs, naive on CPUs, both with float16 all-reduce)')
    arg('--allreduce-dtype', default='float16', choices=('float16', 'float32'),
        help='dtype of the gradient all-reduce (paper: float16)')
    arg('--loaderjob', type=flag_types.nonnegative_int,
        help='data-loading worker processes per rank (0: load in-process)')
    arg('--out', help='output folder (default result, result/demo with --demo)')
    arg('--resume', default='', help='snapshot folder OUT/snapshots/epoch-N (or iter-N) to '
        'continue from, or "auto" for the newest complete one in --out')
    arg('--seed', type=flag_types.seed, default=0,
        help='seed of initial weights, data order and augmentation')
    arg('--stop-signals', type=flag_types.signals, default='TERM,USR1',
        help='signals that stop every rank at the next iteration with a snapshot and exit '
        'status {} (preempted: requeue with --resume auto)'.format(
            stop_signals.PREEMPTED_STATUS))
    arg('--wait-for-lock', type=flag_types.nonnegative_float, default=0.0, metavar='SECONDS',
        help='if another job holds --out, wait up to this long for it to end (0: refuse; inf: '
        'until it ends)')
    arg('--optimizer', default='rmsprop_warmup', choices=optimizers.NAMES,
        help='rmsprop_warmup (paper), momentum (Goyal et al. baseline) or lars (You et al. '
        'baseline: LARS, linear warm-up and polynomial decay of its global rate)')
    arg('--lr-rmsprop', type=flag_types.nonnegative_finite, default=3e-4,
        help='eta_RMSprop of Appendix A.1 (paper: 0.0003)')
    arg('--lars-eta', type=flag_types.positive_finite, default=0.001,
        help='trust coefficient eta of LARS (You et al.: 0.001)')
    arg('--weight-decay', type=flag_types.nonnegative_finite, default=1e-4,
        help='weight decay on conv/linear weights (Goyal et al.: 1e-4; inside the update '
        'with lars)')
    arg('--bn-moving-average', action='store_true',
        help="baseline: keep Chainer's moving averages in batch normalization")
    arg('--min-area', type=flag_types.area_fraction,
        help='smallest crop area fraction of the scale augmentation (paper: 0.08)')
    arg('--demo', action='store_true', help='build a small digits data set in the ImageNet '
        'list format and train resnet18 on it with a compressed schedule')
    arg('--demo-cache', help='where --demo keeps its data (default ~/.cache/akiba2017/demo-digits)')
    arg('--synthetic', action='store_true', help='random data of the right shape, no I/O')
    arg('--synthetic-size', type=flag_types.positive_int, default=1281167,
        help='images per epoch with --synthetic (default: ImageNet-1k train)')
    arg('--n-class', type=flag_types.at_least_two, default=1000, help='classes with --synthetic')
    arg('--max-iterations', type=flag_types.nonnegative_int, default=0,
        help='stop at this iteration, counted from the start of the run (a resumed run '
        'included), with a snapshot there, if the last epoch has not ended before (0: run all '
        'epochs)')
    arg('--log-interval', type=flag_types.nonnegative_int, default=0,
        help='LogReport every N iterations (0: every epoch)')
    arg('--no-plots', action='store_true', help='skip the per-epoch PNG plots (about 0.16 s '
        'per epoch on rank 0, which every rank waits for; python -m chainer_ext.report '
        'draws them afterwards)')
    arg('--no-validation', action='store_true', help='skip per-epoch validation')
    arg('--check-dataset', action='store_true', help='check the train and val lists (files '
        'exist, decode, labels in range), print every bad line, exit 1 if any is bad')
    arg('--keep-snapshots', type=flag_types.nonnegative_int, default=3,
        help='complete snapshots to keep (0: all)')
    arg('--snapshot-iterations', type=flag_types.nonnegative_int, default=0,
        help='also snapshot every N iterations (0: only at epoch ends)')
    arg('--max-nonfinite', type=flag_types.positive_int, default=20,
        help='stop after this many consecutive updates with non-finite gradients')
    arg('--device', default='auto', choices=('auto', 'cpu', 'gpu'),
        help='auto: one GPU per rank (intra-node rank) when CuPy is present')
    return p


def parse_args(argv=None, gpus=None):
    """Flags with the paper's (or the demo's) defaults filled in; exits 2 on bad flags.

    ``--device auto`` uses GPUs when ``gpus`` (:func:`chainer_ext.machine.cuda_env.survey`'s
    answer, surveyed here if not given) has some; the communicator follows the device.
    """
    args = build_parser().parse_args(argv)
    for key, value in (DEMO_DEFAULTS if args.demo else PAPER_DEFAULTS).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.demo_cache is None:
        cache = os.environ.get('XDG_CACHE_HOME') or os.path.join(os.path.expanduser('~'), '.cache')
        args.demo_cache = os.path.join(cache, 'akiba2017', 'demo-digits')
    resolve_device(args, cuda_env.survey() if gpus is None else gpus)
    return args


def resolve_device(args, gpus):
    """Set ``args.gpu`` from ``--device`` and ``gpus``
    (:func:`chainer_ext.machine.cuda_env.survey`'s answer); an unset ``args.communicator``
    follows the device."""
    args.gpu = args.device == 'gpu' or (args.device == 'auto' and isinstance(gpus, dict))
    if args.communicator is None:
        args.communicator = 'pure_nccl' if args.gpu else 'naive'
