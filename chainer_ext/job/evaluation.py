"""Top-1 and top-5 of a trained model on a validation list (paper, Section 4), on any ranks.

    python -m chainer_ext.evaluate OUT/model.npz --val val.txt --root ROOT [--json top.json]
    mpiexec -n 8 python -m chainer_ext.evaluate OUT/snapshots/epoch-90 --val val.txt --root ROOT

The architecture, class count and input size are the training run's: ``config.json``
of its --out folder (beside ``model.npz``, two folders above a snapshot), checked
against the layers and shapes of the weights.  The validation set is split over the
ranks and evaluated as the trainer does
(:mod:`chainer_ext.extensions.multi_node_evaluator`), with top-1 and top-5 summed as whole
counts: the trainer's final validation top-1 comes back exactly, on any number of ranks.
Bad input is refused in one line, exit status 2.
"""
import json
import os
import sys

from chainer_ext.job import input_error
from chainer_ext.machine import cuda_env
from chainer_ext.job import except_hook
from chainer_ext.job import flag_types
from chainer_ext.job import start_steps
from chainer_ext.job import atomic_files
from chainer_ext.job import checks
from chainer_ext.job import train_flags
from chainer_ext.job.input_error import InputError

PROG = 'python -m chainer_ext.evaluate'


def build_parser():
    p = flag_types.RankZeroParser(prog=PROG, description='Top-1 and top-5 of a model trained by '
                              'train_imagenet.py on a validation list, on one or many ranks.')
    arg = p.add_argument
    arg('weights', metavar='MODEL.npz|SNAPSHOT_DIR',
        help="the run's model.npz or one of its snapshot folders (OUT/snapshots/epoch-N)")
    arg('--val', required=True, help='validation list file ("relative/path label" per line)')
    arg('--root', default='.', help='folder the list paths are relative to')
    arg('--config', help="the run's config.json (default: in the run's --out folder)")
    arg('--batchsize', type=flag_types.positive_int,
        help="images per rank per batch (default: the run's --val-batchsize)")
    arg('--json', metavar='PATH', help='also write the results to this JSON file')
    arg('--device', default='auto', choices=('auto', 'cpu', 'gpu'),
        help='auto: one GPU per rank (intra-node rank) when CuPy is present')
    p.set_defaults(communicator='naive')  # only results travel: no gradient all-reduce
    return p


def locate(weights):
    """``(npz file, key prefix, run folder, snapshot manifest or None)`` of ``weights``."""
    from chainer_ext.extensions import multi_node_snapshot as snapshots
    if os.path.isdir(weights):
        try:
            manifest = snapshots.read_manifest(weights)
        except snapshots.SnapshotError as e:
            raise InputError(['{}: not a snapshot folder ({})'.format(weights, e)], 2)
        if not snapshots.is_complete(weights) or snapshots.damaged_files(weights):
            raise InputError(['{}: incomplete or damaged snapshot (its files do not '
                                     'match {})'.format(weights, snapshots.MANIFEST)], 2)
        run = os.path.dirname(os.path.dirname(os.path.abspath(weights)))
        return (os.path.join(weights, snapshots.rank_file(snapshots.FULL_RANK)),
                snapshots.PREDICTOR, run, manifest)
    if os.path.isfile(weights):
        return weights, '', os.path.dirname(os.path.abspath(weights)), None
    raise InputError(['{}: no such file or snapshot folder'.format(weights)], 2)


def read_config(path):
    """``(arch, n_class, insize, val_batchsize)`` recorded by the training run."""
    try:
        with open(path) as f:
            config = json.load(f)
    except FileNotFoundError:
        raise InputError(['{}: no such file: the config.json of the training run '
                                 'is needed (give it with --config)'.format(path)], 2)
    except (OSError, ValueError) as e:
        raise InputError(['{}: cannot read the run\'s config.json ({})'.format(
            path, e)], 2)
    args = config.get('args') if isinstance(config, dict) else None
    try:
        return (args['arch'], int(config['n_class']), int(args['insize']),
                int(args.get('val_batchsize') or 50))
    except (KeyError, TypeError, ValueError):
        raise InputError(['{}: not a config.json of train_imagenet.py (needs '
                                 'args.arch, args.insize and n_class)'.format(path)], 2)


def array_shapes(npz_file, prefix):
    """``{name: shape}`` of the arrays under ``prefix`` in ``npz_file``."""
    import numpy
    try:
        with numpy.load(npz_file, allow_pickle=False) as npz:
            return {key[len(prefix):]: npz[key].shape for key in npz.files
                    if key.startswith(prefix)}
    except Exception as e:  # zip and npy errors have many types
        raise InputError(['{}: cannot read the weights ({}: {})'.format(
            npz_file, type(e).__name__, e)], 2)


def expected_shapes(arch, n_class):
    """``{name: shape}`` that ``chainer.serializers.save_npz`` writes for the network."""
    import chainer
    from models import archs
    s = chainer.serializers.DictionarySerializer()
    s.save(archs[arch](n_class=n_class))
    return {key: value.shape for key, value in s.target.items()}


def check_weights(found, arch, n_class, where, config):
    """Refuse weights of another architecture or class count than ``config`` records."""
    from models import archs
    expected = expected_shapes(arch, n_class)
    if set(found) != set(expected):
        fits = [a for a in sorted(archs) if set(expected_shapes(a, 2)) == set(found)]
        raise InputError(['{}: weights of {}, but {} records --arch {}'.format(
            where, fits[0] if fits else 'another network ({} arrays, {} expected)'.format(
                len(found), len(expected)), config, arch)], 2)
    wrong = sorted(k for k in expected if tuple(found[k]) != tuple(expected[k]))
    if wrong and set(wrong) <= {'fc/W', 'fc/b'}:
        raise InputError(['{}: a {}-class classifier (fc/W is {}), but {} records '
                                 'n_class {}'.format(where, found['fc/W'][0], ' x '.join(
                                     map(str, found['fc/W'])), config, n_class)], 2)
    if wrong:
        raise InputError(['{}: array {} has shape {}, {} has {}'.format(
            where, wrong[0], tuple(found[wrong[0]]), arch, tuple(expected[wrong[0]]))], 2)


def path_problems(args, gpus):
    """The lists, --root and --json's folder, as this rank sees them."""
    problems = []
    if not os.path.isfile(args.val):
        problems.append('--val {}: no such file'.format(args.val))
    if not os.path.isdir(args.root):
        problems.append('--root {}: no such folder'.format(args.root))
    if args.device == 'gpu' and not isinstance(gpus, dict):
        problems.append('--device gpu: {}'.format(gpus))
    if args.json and not os.path.isdir(os.path.dirname(os.path.abspath(args.json))):
        problems.append('--json {}: its folder does not exist'.format(args.json))
    return problems


def read_val(args, comm, n_class):
    """The validation list (read by rank 0), its labels classes of the model."""
    from chainer_ext import datasets

    def read():
        pairs = datasets.read_image_list(args.val, args.root)
        problems = datasets.list_problems(pairs, n_class=n_class)
        if problems:
            raise InputError(['--val {}; the model has {} classes'.format(
                one_line(problems), n_class)], 2)
        return pairs
    return input_error.rank0_then_bcast(comm, read, status=2)


def evaluate(args, comm, gpus):
    """Check the input, evaluate on every rank; returns the results (rank 0 prints)."""
    import chainer
    import chainer.links as L
    from chainer_ext import datasets
    from chainer_ext.datasets import scatter
    from chainer_ext.extensions import multi_node_evaluator
    from models import archs

    input_error.agree_on_problems(comm, path_problems(args, gpus), status=2)
    try:  # every rank reads the weights and config.json: all must agree
        npz_file, prefix, run, manifest = locate(args.weights)
        config = args.config or os.path.join(run, 'config.json')
        arch, n_class, insize, val_batchsize = read_config(config)
        if arch not in archs:
            raise InputError(['{}: --arch {} is not a network of models.archs '
                                     '({})'.format(config, arch, ', '.join(sorted(archs)))], 2)
        check_weights(array_shapes(npz_file, prefix), arch, n_class, args.weights, config)
        problems = []
    except InputError as e:
        problems = e.problems
    input_error.agree_on_problems(comm, problems, status=2)
    pairs = read_val(args, comm, n_class)
    idx = scatter.shard_indices(len(pairs), comm, train=False)
    try:
        checks.check_images_exist(comm, (pairs, idx))
    except InputError as e:
        raise InputError([one_line(e.problems)], 2)

    device = start_steps.activate_device(args, comm, gpus)
    model = L.Classifier(archs[arch](n_class=n_class))
    chainer.serializers.load_npz(npz_file, model.predictor, path=prefix)
    if device >= 0:
        model.to_gpu(device)
    val = datasets.EpochSeededDataset(
        datasets.ImageNetDataset(pairs.subset(idx), args.root, insize, train=False), seed=0)
    iterator = chainer.iterators.SerialIterator(val, args.batchsize or val_batchsize,
                                                repeat=False, shuffle=False)
    evaluator = multi_node_evaluator.make_evaluator(iterator, model, comm, device=device)
    evaluator.name = 'validation'  # the name a trainer gives it: the log's keys
    result = evaluator()
    out = multi_node_evaluator.counts(result, len(pairs))
    out.update(weights=args.weights, config=config, arch=arch, n_class=n_class,
               insize=insize, val=os.path.abspath(args.val), root=os.path.abspath(args.root),
               n=len(pairs), ranks=comm.size,
               iteration=manifest['iteration'] if manifest else None)
    return out


def one_line(problems):
    """The first problem, and how many more there are."""
    more = len(problems) - 1
    return problems[0] + (' (and {} more)'.format(more) if more else '')


def describe(r):
    """The lines printed: what was evaluated, then top-1 and top-5 with their counts."""
    return '\n'.join([
        '{}: {} ({}, {} classes, {} px) on {} images of {}, {} rank{}'.format(
            PROG, r['weights'], r['arch'], r['n_class'], r['insize'], r['n'], r['val'],
            r['ranks'], '' if r['ranks'] == 1 else 's'),
        'top-1 {!r} ({} of {})'.format(r['top1'], r['correct_top1'], r['n']),
        'top-5 {!r} ({} of {})'.format(r['top5'], r['correct_top5'], r['n'])])


def main(argv=None):
    except_hook.check_mpi_can_start()  # a second main() in one process
    args = build_parser().parse_args(argv)
    gpus = cuda_env.survey()  # what CUDA offers this process, or why it cannot be used
    train_flags.resolve_device(args, gpus)
    except_hook.add_hook(PROG)
    from chainer_ext import communicators
    comm = communicators.create_communicator(args.communicator)
    try:
        result = evaluate(args, comm, gpus)
        status = 0
    except InputError as e:
        if comm.rank == 0:
            sys.stderr.write('{}: error: {}\n'.format(PROG, one_line(e.problems)))
        status = 2
    if status == 0 and comm.rank == 0:
        print(describe(result), flush=True)
        if args.json:
            atomic_files.write_json(args.json, result, indent=2, sort_keys=True, default=str,
                                    end='\n')
    except_hook.end_together()
    return status


if __name__ == '__main__':
    sys.exit(main())
