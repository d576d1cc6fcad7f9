"""The paper's claim in miniature: top-1 against total batch size for each recipe (Sections 1-2, A).

    python -m chainer_ext.experiments.large_batch [--data {digits,fashion-mnist}] [--quick]
                                                  [--out DIR] [--jobs N]

``--data digits`` (default): He et al.'s ResNet-8 on scikit-learn's 8x8 digits, total
batch 64 to 1,024, the learning-rate rules taking that batch.  ``--data fashion-mnist``:
:class:`models.MiniResNet` on 10,000 Fashion-MNIST images, batch 32 to 512, the rules
taking the ImageNet batch of the same share of the data (256 stands for the paper's
32,768), with the absolute-batch control, the ablations and 90-epoch runs at 256.  32
images per emulated worker (:mod:`chainer_ext.experiments.emulated_workers`), for the
paper's recipe, Goyal et al.'s, You et al.'s (LARS) and ablations of the paper's.  Writes
``results.json``, ``table.md``, ``facts.md`` and ``top1_vs_batch.png``; finished runs are
kept, so an interrupted or extended sweep trains only what is missing, and a run that
diverges is recorded like any other (why and how: docs/DESIGN.md).
"""
import argparse
import collections
import concurrent.futures
import datetime
import json
import math
import multiprocessing
import os
import shutil
import signal
import sys
import tempfile
import textwrap
import time
from dataclasses import asdict
from dataclasses import dataclass

import numpy

import chainer_ext  # noqa: F401  (compatibility stand-ins before chainer loads)
import chainer
import chainer.links as L
from chainer import training

from chainer_ext.job import atomic_files
from chainer_ext.machine import blas as blas_setup
from chainer_ext.machine import cores
from chainer_ext.paper import numbers as paper_numbers
from chainer_ext.job import run_info
from chainer_ext.optimizers.recipe import schedules_of
from chainer_ext.optimizers.recipe import update_rule
from chainer_ext.optimizers import schedules
from chainer_ext.links.last_batch_bn import use_last_batch_statistics
from chainer_ext.experiments.emulated_workers import EmulatedWorkersUpdater
from chainer_ext.extensions import EpochSchedule
from chainer_ext.extensions.bn_stats_allreduce import batch_normalization_links
from chainer_ext.optimizer_hooks import add_weight_decay
from models import CifarResNet
from models import MiniResNet

PROG = 'python -m chainer_ext.experiments.large_batch'
RESULTS_JSON = 'results.json'
RUNS_JSONL = 'runs.jsonl'
TABLE_MD = 'table.md'
FACTS_MD = 'facts.md'
PLOT_PNG = 'top1_vs_batch.png'
#: Images per worker, as in the paper.
B_LOCAL = 32
#: eta_RMSprop of Appendix A.1.
LR_RMSPROP = 3e-4
WEIGHT_DECAY = 1e-4
#: LARS's trust coefficient and momentum (You, Gitman & Ginsburg 2017; docs/DESIGN.md).
LARS_ETA = 0.001
LARS_MOMENTUM = 0.9
#: What each optimizer is given besides its schedules.  LARS applies WEIGHT_DECAY in its
#: own update; the others get it from add_weight_decay.
OPTIMIZER_HYPERPARAMETERS = {
    'rmsprop_warmup': dict(lr_rmsprop=LR_RMSPROP),
    'momentum': {},
    'lars': dict(eta=LARS_ETA, weight_decay=WEIGHT_DECAY, momentum=LARS_MOMENTUM),
}
#: The recipe every other is compared with, seed by seed.
REFERENCE_RECIPE = 'paper'
#: Points of each run's hyperparameter trace kept in the results.
TRACE_POINTS = 21


@dataclass(frozen=True)
class Recipe:
    """One training recipe: optimizer, learning-rate schedule, alpha_SGD, BN statistics."""
    name: str
    optimizer: str   # 'rmsprop_warmup' (A.1 hybrid), 'momentum' or 'lars'
    lr: str          # 'slow_start' (A.2), 'goyal' (linear scaling, warm-up) or 'lars'
    alpha_sgd: str   # 'elu' (A.1 transition), 'one' (momentum SGD) or 'none' (LARS)
    bn: str          # 'last_batch' (Section 2) or 'moving_average'
    summary: str


RECIPES = collections.OrderedDict((r.name, r) for r in (
    Recipe('paper', 'rmsprop_warmup', 'slow_start', 'elu', 'last_batch',
           "the paper's: RMSprop warm-up, slow start, last-batch BN"),
    Recipe('goyal', 'momentum', 'goyal', 'one', 'moving_average',
           "Goyal et al.'s: momentum SGD, linear scaling with warm-up, moving-average BN"),
    Recipe('lars', 'lars', 'lars', 'none', 'moving_average',
           "You et al.'s: LARS, warm-up and polynomial decay of gamma, moving-average BN"),
    Recipe('no-rmsprop-warmup', 'rmsprop_warmup', 'slow_start', 'one', 'last_batch',
           "the paper's with alpha_SGD = 1 throughout (no RMSprop warm-up)"),
    Recipe('goyal-lr', 'rmsprop_warmup', 'goyal', 'elu', 'last_batch',
           "the paper's with Goyal et al.'s schedule instead of slow start"),
    Recipe('moving-average-bn', 'rmsprop_warmup', 'slow_start', 'elu', 'moving_average',
           "the paper's with moving-average BN instead of the last batch"),
))

#: The digits sweep: total batch sizes, seeds and the epoch budget of every run.
FULL = dict(batches=(64, 128, 256, 512, 1024), seeds=(0, 1, 2), epochs=30)
QUICK = dict(batches=(64, 256), seeds=(0,), epochs=2)
#: The Fashion-MNIST sweep: 1,000 training images per class, the ``recipes`` of Table 1
#: at every batch, then the ``extra`` groups (:func:`plan_keys`): the control (rules at
#: the absolute batch), the ablations, and 90-epoch runs.  Sized to 3 h with --jobs 2 on
#: an idle 2-core machine (EXPERIMENTS.md).
MAIN_RECIPES = ('paper', 'goyal', 'lars')
ABLATIONS = ('no-rmsprop-warmup', 'goyal-lr', 'moving-average-bn')
FASHION_FULL = dict(batches=(32, 64, 128, 256, 512), seeds=(0, 1, 2), epochs=30,
                    train_per_class=1000, recipes=MAIN_RECIPES, extra=(
                        dict(group='control', batches=(256,), recipes=MAIN_RECIPES,
                             rules='absolute'),
                        dict(group='ablations', batches=(256,), recipes=ABLATIONS),
                        dict(group='90 epochs', batches=(256,), recipes=MAIN_RECIPES,
                             seeds=(0,), epochs=90)))
FASHION_QUICK = dict(batches=(64, 256), seeds=(0,), epochs=2, train_per_class=100,
                     recipes=MAIN_RECIPES, extra=(
                         dict(group='control', batches=(256,), recipes=MAIN_RECIPES,
                              rules='absolute'),
                         dict(group='ablations', batches=(256,), recipes=ABLATIONS),
                         dict(group='90 epochs', batches=(256,), recipes=MAIN_RECIPES,
                              seeds=(0,), epochs=3)))


def alpha_sgd_one(epoch):
    """alpha_SGD = 1 at every epoch: A.1's update is plain momentum SGD."""
    return 1.0


def recipe_schedules(recipe, total_batch, epochs):
    """``{optimizer attribute: f(epoch)}`` of ``recipe``, built from
    :func:`~chainer_ext.optimizers.recipe.schedules_of`."""
    paper = schedules_of('rmsprop_warmup', total_batch, epochs)
    lr_of = {'slow_start': 'rmsprop_warmup', 'goyal': 'momentum', 'lars': 'lars'}
    result = {'lr': schedules_of(lr_of[recipe.lr], total_batch, epochs)['lr']}
    if recipe.optimizer == 'rmsprop_warmup':
        result['alpha_sgd'] = paper['alpha_sgd'] if recipe.alpha_sgd == 'elu' else alpha_sgd_one
    return result


def load_digits(plan=None, data_dir=None, val_fraction=0.2, split_seed=0):
    """``(x_train, t_train, x_val, t_val)``: ink in [0, 1], shape (N, 1, 8, 8), with the
    demo's stratified split."""
    from sklearn.datasets import load_digits as sklearn_digits
    from sklearn.model_selection import train_test_split
    digits = sklearn_digits()
    x = (digits.images / 16.0).astype(numpy.float32)[:, None]
    t = digits.target.astype(numpy.int32)
    train_idx, val_idx = train_test_split(numpy.arange(len(t)), test_size=val_fraction,
                                          stratify=t, random_state=split_seed)
    train_idx, val_idx = numpy.sort(train_idx), numpy.sort(val_idx)
    return x[train_idx], t[train_idx], x[val_idx], t[val_idx]


def load_fashion_mnist(plan, data_dir=None):
    """``(x_train, t_train, x_val, t_val)``: grey level in [0, 1], shape (N, 1, 28, 28);
    ``plan['train_per_class']`` training images of each class
    (:func:`~chainer_ext.datasets.fashion_mnist.stratified_subset`), the 10,000 test
    images for validation, from ``data_dir`` (default Debian's folder)."""
    from chainer_ext.datasets import fashion_mnist
    x_train, t_train, x_val, t_val = fashion_mnist.load(
        data_dir, train_per_class=plan['train_per_class'])
    return (numpy.float32(1 / 255.0) * x_train[:, None], t_train,
            numpy.float32(1 / 255.0) * x_val[:, None], t_val)


@dataclass(frozen=True)
class SweepData:
    """One data set of the sweep: its loader and network, how the learning-rate rules
    take the batch, augmentation, plans and what the write-up calls it."""
    name: str
    load: object          # f(plan, data_dir=None) -> (x_train, t_train, x_val, t_val)
    network: object       # f(n_class) -> predictor
    model: str            # results.json's description of network and data
    batch_rule: str       # 'absolute' or 'imagenet-equivalent'
    max_shift: int        # pixels of random translation of training images
    flip: bool            # random horizontal flips of training images
    full: dict
    quick: dict
    out: str              # default --out
    title: str            # the plot's


def digits_network(n_class):
    return CifarResNet(n=1, n_class=n_class, in_channels=1)


def fashion_network(n_class):
    return MiniResNet(n_class=n_class, in_channels=1)


DATA = collections.OrderedDict((d.name, d) for d in (
    SweepData('digits', load_digits, digits_network,
              'CifarResNet(n=1) (ResNet-8, widths 16/32/64), 8x8 grey digits',
              'absolute', 1, False, FULL, QUICK, os.path.join('result', 'large_batch'),
              'ResNet-8 on 8x8 digits, same epoch budget for every run'),
    SweepData('fashion-mnist', load_fashion_mnist, fashion_network,
              'MiniResNet (bottleneck blocks, mid widths 8/16/32, stem 16 of stride 2), '
              '28x28 grey Fashion-MNIST',
              'imagenet-equivalent', 2, True, FASHION_FULL, FASHION_QUICK,
              os.path.join('result', 'fashion_mnist'),
              'bottleneck ResNet on Fashion-MNIST (10,000 images), learning-rate rules '
              'at the ImageNet-equivalent batch'),
))


def rule_batch(data, total_batch, n_train):
    """The batch ``data``'s learning-rate rules take for ``total_batch``."""
    if data.batch_rule == 'absolute':
        return total_batch
    return schedules.imagenet_equivalent_batch(total_batch, n_train)


def standardize(x, mean, std):
    """``(x - mean) / std`` in float32."""
    return (x - numpy.float32(mean)) / numpy.float32(std)


class ShiftedImages(chainer.dataset.DatasetMixin):
    """``(image, label)`` pairs; training images move by up to ``max_shift`` pixels,
    filled with background, and with ``flip`` are mirrored with probability 1/2, then
    every image is standardised by ``mean``, ``std``."""

    def __init__(self, x, t, mean, std, max_shift=0, seed=0, flip=False):
        self.x, self.t = x, t
        self.mean, self.std = numpy.float32(mean), numpy.float32(std)
        self.max_shift = max_shift
        self.flip = flip
        self.rng = numpy.random.RandomState(seed)

    def __len__(self):
        return len(self.t)

    def get_example(self, i):
        image = self.x[i]
        if self.max_shift:
            s = self.max_shift
            dy, dx = self.rng.randint(-s, s + 1, size=2)
            padded = numpy.pad(image, ((0, 0), (s, s), (s, s)))
            h, w = image.shape[1:]
            image = padded[:, s + dy:s + dy + h, s + dx:s + dx + w]
        if self.flip and self.rng.randint(2):
            image = image[:, :, ::-1]
        return standardize(image, self.mean, self.std), self.t[i]


class HyperparameterTrace(object):
    """Optimizer hook (``'pre'``): the lr, alpha_SGD and eta_RMSprop each update runs with,
    read from a parameter's update rule, i.e. what the kernel actually receives (None
    for a hyperparameter the optimizer does not have: LARS has neither alpha nor eta_RMSprop)."""

    name = 'HyperparameterTrace'
    timing = 'pre'
    call_for_each_param = False

    def __init__(self):
        self.rows = []

    def __call__(self, optimizer):
        rule = next(iter(optimizer.target.params())).update_rule
        hp = rule.hyperparam
        self.rows.append((optimizer.t, float(hp.lr)) + tuple(
            None if getattr(hp, name, None) is None else float(getattr(hp, name))
            for name in ('alpha_sgd', 'lr_rmsprop')))

    def thinned(self, total_batch, n_train, points=TRACE_POINTS):
        """``[[update_index, epoch, lr, alpha_sgd, lr_rmsprop]]`` at evenly spaced updates;
        update ``t`` (from 0) runs at epoch ``t * total_batch / n_train``."""
        keep = sorted(set(numpy.linspace(0, len(self.rows) - 1, points).round().astype(int)))
        return [[t, t * total_batch / n_train, lr, alpha, lr_rms]
                for t, lr, alpha, lr_rms in (self.rows[k] for k in keep)]


def top1(model, x, t, chunk=1000):
    """Top-1 accuracy of ``model.predictor`` in test mode, ``chunk`` images at a time."""
    with chainer.using_config('train', False), chainer.no_backprop_mode():
        right = sum(int((model.predictor(x[k:k + chunk]).array.argmax(axis=1) ==
                         t[k:k + chunk]).sum()) for k in range(0, len(t), chunk))
    return right / float(len(t))


def train_one(recipe_name, total_batch, seed, epochs, lr_batch=None, data=None,
              dataset='digits'):
    """Train one run; returns its record (top-1 and what reached the optimizer and BN).

    ``lr_batch`` is the batch the learning-rate rules take (default ``total_batch``);
    ``data`` the arrays of ``dataset`` (loaded with its full plan when not given).
    """
    recipe = RECIPES[recipe_name]
    spec = DATA[dataset]
    if total_batch % B_LOCAL:
        raise ValueError('total batch {} is not a multiple of {} images per worker'.format(
            total_batch, B_LOCAL))
    x_train, t_train, x_val, t_val = data if data is not None else spec.load(spec.full)
    mean, std = float(x_train.mean()), float(x_train.std())
    n_train = len(t_train)
    lr_batch = total_batch if lr_batch is None else lr_batch

    numpy.random.seed(seed)  # Chainer's initializers draw from NumPy's global generator
    model = L.Classifier(spec.network(int(t_train.max()) + 1))
    if recipe.bn == 'last_batch':
        use_last_batch_statistics(model)
    plan = recipe_schedules(recipe, lr_batch, epochs)
    start = {attr: schedule(0.0) for attr, schedule in plan.items()}
    optimizer = update_rule(recipe.optimizer,
                            **OPTIMIZER_HYPERPARAMETERS[recipe.optimizer], **start)
    optimizer.setup(model)
    if recipe.optimizer != 'lars':   # LARS has it in its update
        add_weight_decay(model, rate=WEIGHT_DECAY)
    trace = HyperparameterTrace()
    optimizer.add_hook(trace)

    train = ShiftedImages(x_train, t_train, mean, std, spec.max_shift, seed=seed,
                          flip=spec.flip)
    order = chainer.iterators.ShuffleOrderSampler(numpy.random.RandomState(seed))
    iterator = chainer.iterators.SerialIterator(train, total_batch, shuffle=None,
                                                order_sampler=order)
    updater = EmulatedWorkersUpdater(iterator, optimizer, n_workers=total_batch // B_LOCAL)
    n_updates = max(1, int(round(epochs * n_train / total_batch)))
    out = tempfile.mkdtemp(prefix='large-batch-')
    try:
        trainer = training.Trainer(updater, (n_updates, 'iteration'), out=out)
        for attr, schedule in plan.items():
            trainer.extend(EpochSchedule(attr, schedule))
        started = time.time()
        trainer.run(show_loop_exception_msg=False)
        seconds = time.time() - started
    finally:
        shutil.rmtree(out, ignore_errors=True)
    updater.average_statistics()  # the workers' mean, as before the paper's validation

    finite = all(numpy.isfinite(p.array).all() for p in model.params())
    val, seen = standardize(x_val, mean, std), standardize(x_train, mean, std)
    return dict(
        recipe=recipe_name, total_batch=total_batch, seed=seed, epochs=epochs,
        workers=total_batch // B_LOCAL, b_local=B_LOCAL, updates=n_updates,
        top1=top1(model, val, t_val), train_top1=top1(model, seen, t_train),
        finite=bool(finite), seconds=round(seconds, 2),
        blas_threads=blas_setup.describe()['threads'],
        lr_batch=lr_batch, eta_base=schedules.eta_base(lr_batch),
        bn_decay=sorted({float(link.decay) for _, link in batch_normalization_links(model)}),
        trace=trace.thinned(total_batch, n_train))


def run_key(record):
    """``(recipe, total batch, seed, epochs, batch of the learning-rate rules)``."""
    return (record['recipe'], record['total_batch'], record['seed'], record['epochs'],
            record.get('lr_batch', record['total_batch']))


def read_finished(path):
    """Records already in ``runs.jsonl``.  A torn line (a sweep killed while writing) is
    named and dropped, and the file is rewritten without it before anything is added."""
    records, torn = [], False
    if os.path.exists(path):
        with open(path) as f:
            for number, line in enumerate(f, 1):
                try:
                    records.append(json.loads(line))
                except ValueError:
                    torn = True
                    print('{}: {}:{} is not a complete record; that run is done again'.format(
                        PROG, path, number), file=sys.stderr)
    if torn:
        atomic_files.write_text(path, ''.join(json.dumps(record) + '\n' for record in records))
    return records


def finished_runs(out):
    """``{run key: record}`` of the runs done in ``out``: the records of an earlier
    ``results.json`` (a committed sweep), then those of ``runs.jsonl``."""
    done = {}
    path = os.path.join(out, RESULTS_JSON)
    if os.path.exists(path):
        try:
            with open(path) as f:
                done.update((run_key(rec), rec) for rec in json.load(f)['records'])
        except (ValueError, KeyError, TypeError) as e:
            print('{}: {} is not a results file ({}); its runs are done again'.format(
                PROG, path, e), file=sys.stderr)
    done.update((run_key(rec), rec) for rec in read_finished(os.path.join(out, RUNS_JSONL)))
    return done


def plan_problem(out, plan, data_name='digits'):
    """Why ``out`` cannot take a sweep of ``plan`` on ``data_name`` (its results.json is of
    another plan or data set, whose runs would be dropped from it), or None."""
    path = os.path.join(out, RESULTS_JSON)
    try:
        with open(path) as f:
            result = json.load(f)
        old = result['plan']
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if result.get('data', 'digits') != data_name:
        return '{} holds a sweep on {}, not {}; use another --out'.format(
            path, result.get('data', 'digits'), data_name)
    if old.get('epochs') != plan['epochs']:
        return ('{} holds a sweep of {} epochs per run, not {}; use another --out'.format(
            path, old.get('epochs'), plan['epochs']))
    return None


def plan_keys(data, plan, n_train, recipes=tuple(RECIPES)):
    """The run keys (:func:`run_key`) of ``plan`` for ``recipes``: its ``batches`` x
    ``recipes`` (default all) x ``seeds`` with the rules at ``data``'s batch
    (:func:`rule_batch`), in batch, recipe, seed order, then each group of its ``extra``
    alike, with the group's own ``seeds`` and ``epochs`` where given, and the rules at
    the batch itself where its ``rules`` is ``'absolute'``."""
    keys = []
    for group in (plan,) + tuple(plan.get('extra', ())):
        for b in group['batches']:
            lr_batch = b if group.get('rules') == 'absolute' else rule_batch(data, b, n_train)
            keys += [(r, b, s, group.get('epochs', plan['epochs']), lr_batch)
                     for r in RECIPES if r in recipes and r in group.get('recipes', RECIPES)
                     for s in group.get('seeds', plan['seeds'])]
    return keys


def in_plan(records, keys):
    """The records whose run key is among ``keys``, in the order of ``keys``."""
    order = {key: k for k, key in enumerate(keys)}
    return sorted((r for r in records if run_key(r) in order), key=lambda r: order[run_key(r)])


def is_control(record, data, n_train):
    """Whether ``record``'s rules took another batch than ``data``'s rule gives."""
    return record.get('lr_batch', record['total_batch']) != rule_batch(
        data, record['total_batch'], n_train)


def split_records(records, data, plan, n_train):
    """``(main, control, longer)``: the runs of the plan's epochs with the rules at
    ``data``'s batch, those with the rules at the batch itself, and runs of other lengths."""
    main, control, longer = [], [], []
    for r in records:
        if r['epochs'] != plan['epochs']:
            longer.append(r)
        elif is_control(r, data, n_train):
            control.append(r)
        else:
            main.append(r)
    return main, control, longer


def _worker_init(jobs):
    # Ctrl-C reaches the terminal's whole process group: the sweep itself decides.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    blas_setup.limit_threads(cores.of_process(jobs), loader_processes=0)


class Interrupted(Exception):
    """The sweep stopped on Ctrl-C: ``kept`` of ``wanted`` runs are in ``runs.jsonl``."""

    def __init__(self, kept, wanted, dropped, runs_path):
        super(Interrupted, self).__init__(kept, wanted, dropped, runs_path)
        self.kept, self.wanted, self.dropped, self.runs_path = kept, wanted, dropped, runs_path

    def line(self):
        return ('interrupted: {} of {} runs kept in {} ({} in progress dropped); run the '
                'same command again to do the others'.format(
                    self.kept, self.wanted, self.runs_path, self.dropped))


def sweep(plan, out, jobs, recipes=tuple(RECIPES), log=print, data=None, arrays=None):
    """Run every run of ``plan`` (:func:`plan_keys`) on ``data`` (default: digits; its
    ``arrays`` loaded for ``plan`` when not given) not yet done in ``out``
    (:func:`finished_runs`); returns every record of the plan there, of any recipe, and
    how many of them this call trained."""
    data = data or DATA['digits']
    arrays = arrays if arrays is not None else data.load(plan)
    n_train = len(arrays[1])
    os.makedirs(out, exist_ok=True)
    runs_path = os.path.join(out, RUNS_JSONL)
    wanted = plan_keys(data, plan, n_train, recipes)
    done = finished_runs(out)
    todo = [key for key in wanted if key not in done]
    if len(todo) < len(wanted):
        log('{} of {} runs already in {} ({}, {})'.format(
            len(wanted) - len(todo), len(wanted), out, RESULTS_JSON, RUNS_JSONL))
    running = 0
    try:
        context = multiprocessing.get_context('spawn')
        pool = concurrent.futures.ProcessPoolExecutor(jobs, mp_context=context,
                                                      initializer=_worker_init,
                                                      initargs=(jobs,))
        futures = {pool.submit(train_one, *key, data=arrays, dataset=data.name): key
                   for key in todo}
        running = min(jobs, len(todo))
        for count, future in enumerate(concurrent.futures.as_completed(futures), 1):
            record = future.result()
            with open(runs_path, 'a') as f:
                f.write(json.dumps(record) + '\n')
            done[run_key(record)] = record
            running = min(jobs, len(todo) - count)
            log('[{}/{}] {:>18} batch {:>5}{} seed {}: top-1 {:.1%}{} ({:.0f} s)'.format(
                count, len(todo), record['recipe'], record['total_batch'],
                '' if data.batch_rule == 'absolute' else ' (rules at {:>6})'.format(
                    record['lr_batch']),
                record['seed'], record['top1'], '' if record['finite'] else ', not finite',
                record['seconds']))
        pool.shutdown()
    except KeyboardInterrupt:
        for worker in multiprocessing.active_children():  # the pool's: stop them now
            worker.terminate()
        kept = sum(key in done for key in wanted)
        raise Interrupted(kept, len(wanted), running, runs_path)
    return in_plan(done.values(), plan_keys(data, plan, n_train)), len(todo)


def summarize(records):
    """``{recipe: {batch: (mean, sd, n)}}`` of top-1 over seeds (sd with ddof 1)."""
    groups = collections.defaultdict(list)
    for rec in records:
        groups[rec['recipe'], rec['total_batch']].append(rec['top1'])
    table = collections.OrderedDict()
    for (recipe, batch), values in sorted(groups.items(), key=lambda kv: (
            list(RECIPES).index(kv[0][0]), kv[0][1])):
        sd = float(numpy.std(values, ddof=1)) if len(values) > 1 else float('nan')
        table.setdefault(recipe, collections.OrderedDict())[batch] = (
            float(numpy.mean(values)), sd, len(values))
    return table


def format_table(summary):
    """Markdown: mean ± sd top-1 per recipe and batch, and the drop from the smallest batch."""
    batches = sorted({b for row in summary.values() for b in row})
    lines = ['| recipe | ' + ' | '.join('batch {}'.format(b) for b in batches) +
             ' | drop at {} |'.format(batches[-1]),
             '|---|' + '---|' * (len(batches) + 1)]
    for recipe, row in summary.items():
        cells = []
        for b in batches:
            mean, sd, n = row.get(b, (float('nan'), float('nan'), 0))
            cells.append('' if not n else '{:.1f} ± {:.1f}'.format(100 * mean, 100 * sd)
                         if n > 1 else '{:.1f}'.format(100 * mean))
        if batches[0] in row and batches[-1] in row:
            drop = '{:+.1f}'.format(-100 * (row[batches[0]][0] - row[batches[-1]][0]))
        else:
            drop = ''
        lines.append('| {} | {} | {} |'.format(recipe, ' | '.join(cells), drop))
    return '\n'.join(lines) + '\n'


def paired_differences(records, reference=REFERENCE_RECIPE):
    """``{recipe: {batch: [(seed, top-1 - reference's top-1 at that seed)]}}`` for every
    recipe but ``reference``, over the seeds both ran (same seed: same initial weights,
    data order and shifts), from the unrounded top-1."""
    top1 = {(r['recipe'], r['total_batch'], r['seed']): r['top1'] for r in records}
    out = collections.OrderedDict()
    for (recipe, batch, seed), value in sorted(top1.items(), key=lambda kv: (
            list(RECIPES).index(kv[0][0]), kv[0][1], kv[0][2])):
        if recipe == reference or (reference, batch, seed) not in top1:
            continue
        out.setdefault(recipe, collections.OrderedDict()).setdefault(batch, []).append(
            (seed, value - top1[reference, batch, seed]))
    return out


def sign_agreement(differences):
    """``(k, n)``: how many of the ``n`` differences have the sign of their mean (a zero
    mean counts the zero differences)."""
    def sign(x):
        x = round(x, 12)   # top-1 is a multiple of 1 / |validation set|
        return (x > 0) - (x < 0)
    mean = sign(math.fsum(differences) / len(differences))
    return sum(1 for d in differences if sign(d) == mean), len(differences)


def format_paired(paired, reference=REFERENCE_RECIPE):
    """Markdown: per recipe and batch, the mean difference from ``reference`` in points,
    the per-seed differences, and how many seeds share the mean's sign."""
    batches = sorted({b for row in paired.values() for b in row})
    seeds = sorted({seed for row in paired.values() for diffs in row.values()
                    for seed, _ in diffs})
    lines = ['Validation top-1 minus `{}` on the same seed, in points: mean (seeds {}) '
             'k/n, k = seeds with the sign of the mean.'.format(
                 reference, ', '.join(map(str, seeds))), '',
             '| recipe − {} | '.format(reference) +
             ' | '.join('batch {}'.format(b) for b in batches) + ' |',
             '|---|' + '---|' * len(batches)]
    for recipe, row in paired.items():
        cells = []
        for b in batches:
            diffs = [d for _, d in row.get(b, [])]
            if not diffs:
                cells.append('')
                continue
            k, n = sign_agreement(diffs)
            cells.append('{:+.1f} ({}) {}/{}'.format(
                100 * math.fsum(diffs) / n, ', '.join('{:+.1f}'.format(100 * d) for d in diffs),
                k, n))
        lines.append('| {} | {} |'.format(recipe, ' | '.join(cells)))
    return '\n'.join(lines) + '\n'


def format_batch_share(batches, n_train):
    """One line: each total batch as a share of the training set, and the paper's; one
    decimal, two where the smallest share is below 1 %."""
    paper = paper_numbers.HEADLINE['total_batch'], paper_numbers.IMAGENET_TRAIN
    decimals = 1 if 100.0 * min(batches) / n_train >= 1 else 2
    return ('Total batch as a share of the {:,} training images: {}; the paper\'s '
            '{:,} of ImageNet\'s {:,}: {:.2f} %.\n'.format(
                n_train, ', '.join('{} = {:.{}f} %'.format(b, 100.0 * b / n_train, decimals)
                                   for b in batches),
                paper[0], paper[1], 100.0 * paper[0] / paper[1]))


def format_rule_batches(batches, n_train):
    """One line: the batch the learning-rate rules take for each total batch, with the
    eta_base and LARS peak and warm-up it gives."""
    cells = []
    for b in batches:
        big = schedules.imagenet_equivalent_batch(b, n_train)
        gamma, warmup = schedules.lars_peak(big)
        cells.append('{} → {:,} (η_base {:g}, LARS γ {:g} after {:g} warm-up epochs of '
                     '90)'.format(b, big, schedules.eta_base(big), gamma, warmup))
    return ('Learning-rate rules at the ImageNet-equivalent batch (total batch × {}): '
            '{}.\n'.format(schedules.imagenet_equivalent_batch(1, n_train), '; '.join(cells)))


def format_control(main, control, reference_seeds):
    """Markdown: at each control batch, per recipe, top-1 with the rules at the
    ImageNet-equivalent batch and at the absolute batch, and their per-seed difference."""
    top1 = {}
    for kind, records in (('equivalent', main), ('absolute', control)):
        for r in records:
            top1[kind, r['recipe'], r['total_batch'], r['seed']] = r['top1']
    lines = ['Control: the same runs with the learning-rate rules at the absolute batch. '
             'Validation top-1 (%), mean ± sd over seeds {}; the difference is equivalent '
             'minus absolute on the same seed, in points: mean (per seed) k/n.'.format(
                 list(reference_seeds)), '',
             '| recipe | batch | rules at the equivalent batch | rules at the batch itself '
             '| equivalent − absolute |', '|---|---|---|---|---|']
    for recipe, batch in sorted({(r['recipe'], r['total_batch']) for r in control},
                                key=lambda rb: (rb[1], list(RECIPES).index(rb[0]))):
        cells = []
        for kind in ('equivalent', 'absolute'):
            values = [v for (k, rc, b, _), v in sorted(top1.items())
                      if (k, rc, b) == (kind, recipe, batch)]
            cells.append(_mean_sd(values))
        diffs = [top1['equivalent', recipe, batch, s] - top1['absolute', recipe, batch, s]
                 for s in reference_seeds if ('equivalent', recipe, batch, s) in top1 and
                 ('absolute', recipe, batch, s) in top1]
        if diffs:
            k, n = sign_agreement(diffs)
            cells.append('{:+.1f} ({}) {}/{}'.format(
                100 * math.fsum(diffs) / n, ', '.join('{:+.1f}'.format(100 * d) for d in diffs),
                k, n))
        else:
            cells.append('')
        lines.append('| {} | {} | {} |'.format(recipe, batch, ' | '.join(cells)))
    return '\n'.join(lines) + '\n'


def _mean_sd(values):
    """``'mean ± sd'`` in percent (sd with ddof 1), ``'mean'`` for one value, '' for none."""
    if not values:
        return ''
    if len(values) == 1:
        return '{:.1f}'.format(100 * values[0])
    return '{:.1f} ± {:.1f}'.format(100 * float(numpy.mean(values)),
                                    100 * float(numpy.std(values, ddof=1)))


def format_longer(longer, main):
    """Markdown: the runs of another length beside the run of the same recipe, batch,
    seed and rules in the main plan."""
    short = {(r['recipe'], r['total_batch'], r['seed'], r.get('lr_batch')): r for r in main}
    lines = ['Longer runs: validation top-1 (%), beside the same recipe, batch, seed and '
             'rules in the table above.', '',
             '| recipe | batch | seed | epochs | updates | top-1 | top-1 at {} epochs |'.format(
                 main[0]['epochs'] if main else ''), '|---|---|---|---|---|---|---|']
    for r in sorted(longer, key=lambda r: (r['total_batch'], list(RECIPES).index(r['recipe']),
                                           r['seed'], r['epochs'])):
        other = short.get((r['recipe'], r['total_batch'], r['seed'], r.get('lr_batch')))
        lines.append('| {} | {} | {} | {} | {:,} | {:.1f} | {} |'.format(
            r['recipe'], r['total_batch'], r['seed'], r['epochs'], r['updates'],
            100 * r['top1'], '' if other is None else '{:.1f}'.format(100 * other['top1'])))
    return '\n'.join(lines) + '\n'


def format_nonfinite(records):
    """One line: the runs whose weights were not finite at the end, with their top-1."""
    bad = [r for r in records if not r.get('finite', True)]
    if not bad:
        return 'Every run ended with finite weights.\n'
    return 'Runs whose weights were not finite at the end (diverged): {}.\n'.format('; '.join(
        '{} batch {} (rules at {:,}) seed {}: top-1 {:.1f} %'.format(
            r['recipe'], r['total_batch'], r.get('lr_batch', r['total_batch']), r['seed'],
            100 * r['top1']) for r in bad))


def _clock(seconds):
    minutes, rest = divmod(int(round(seconds)), 60)
    return '{} min {} s'.format(minutes, rest)


def format_facts(result):
    """Markdown list of what ``results.json`` records about the runs: the wall-clock of
    each sweep that trained runs, the runs' own training times, the train/validation gap
    and the BLAS threads of the workers."""
    records = result['records']
    lines = []
    for sweep_ in result.get('sweeps', []):
        if sweep_.get('command') is None:
            lines.append('- {} runs {}: their wall-clock is not recorded (each run\'s own '
                         '`seconds` is).'.format(sweep_['new_runs'],
                                                 sweep_.get('note', EARLIER_RUNS)))
            continue
        kernel = (sweep_.get('parent_blas') or {}).get('kernel')
        where = ', '.join([str(sweep_[k]) for k in ('date', 'cpu') if sweep_.get(k)] + (
            ['OpenBLAS kernel ' + kernel] if kernel else []))
        load = sweep_.get('loadavg')
        lines.append('- `{}`: {} new runs in {:,.1f} s ({}) of wall-clock{}{}.'.format(
            sweep_['command'], sweep_['new_runs'], sweep_['elapsed_s'],
            _clock(sweep_['elapsed_s']), ', ' + where if where else '',
            ', load average {:.2f} / {:.2f} / {:.2f} (1 / 5 / 15 min) at the end'.format(
                *load) if load else ''))
    by_recipe = collections.OrderedDict()
    for rec in records:
        by_recipe.setdefault(rec['recipe'], []).append(rec['seconds'])
    lines.append('- Training time of the runs themselves (`seconds`, `trainer.run` in the '
                 'worker), summed: {:,.1f} s over {} runs ({}).'.format(
                     math.fsum(t for v in by_recipe.values() for t in v), len(records),
                     ', '.join('{} {:,.1f} s'.format(k, math.fsum(v))
                               for k, v in by_recipe.items())))
    gaps = collections.OrderedDict()
    for rec in records:
        gaps.setdefault((rec['recipe'], rec['total_batch']), []).append(
            (rec['train_top1'] - rec['top1'], rec['seed']))
    means = {key: numpy.mean([g for g, _ in v]) for key, v in gaps.items()}
    worst_group = max(means, key=means.get)
    worst_run = max(((g, seed, key) for key, v in gaps.items() for g, seed in v))
    lowest_run = min(((g, seed, key) for key, v in gaps.items() for g, seed in v))
    lines.append('- Training minus validation top-1: largest mean over seeds {:+.1f} points '
                 '({} at batch {}); largest single run {:+.1f} ({} at batch {}, seed {}); '
                 'smallest {:+.1f} ({} at batch {}, seed {}).'.format(
                     100 * means[worst_group], worst_group[0], worst_group[1],
                     100 * worst_run[0], worst_run[2][0], worst_run[2][1], worst_run[1],
                     100 * lowest_run[0], lowest_run[2][0], lowest_run[2][1],
                     lowest_run[1]))
    threads = collections.Counter(rec.get('blas_threads') for rec in records)
    known = sorted((t, n) for t, n in threads.items() if t is not None)
    lines.append('- BLAS threads of each run\'s worker process (`blas_threads`): {}{}.'.format(
        ', '.join('{} in {} runs'.format(t, n) for t, n in known) or 'not recorded',
        '; {} earlier runs do not record it'.format(threads[None]) if threads[None] else ''))
    return '\n'.join(lines) + '\n'


def plot(summary, path, title=None, control=None):
    """Top-1 against total batch size (log scale), one line per recipe, ± sd bars;
    ``control`` (a :func:`summarize` of the control runs) as open markers."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for recipe, row in summary.items():
        batches = list(row)
        means = [100 * row[b][0] for b in batches]
        sds = [100 * row[b][1] if row[b][2] > 1 else 0.0 for b in batches]
        style = '-' if recipe in ('paper', 'goyal', 'lars') else '--'
        ax.errorbar(batches, means, yerr=sds, fmt='o' + style, capsize=3, label=recipe,
                    linewidth=2 if style == '-' else 1)
    for recipe, row in (control or {}).items():
        ax.errorbar(list(row), [100 * row[b][0] for b in row],
                    yerr=[100 * row[b][1] if row[b][2] > 1 else 0.0 for b in row],
                    fmt='s', mfc='none', capsize=3,
                    label='{}, rules at the batch itself'.format(recipe))
    ax.set_xscale('log', base=2)
    batches = sorted({b for row in summary.values() for b in row})
    ax.set_xticks(batches)
    ax.set_xticklabels([str(b) for b in batches])
    ax.set_xlabel('total batch size (32 images per worker)')
    ax.set_ylabel('validation top-1 (%)')
    # Two lines where one would run past the figure's edges.
    ax.set_title(textwrap.fill(title or DATA['digits'].title, 80), fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


#: What ``facts.md`` says of runs that no recorded sweep trained.
EARLIER_RUNS = ('kept in `runs.jsonl` by earlier sweeps into this folder, stopped before they '
                'wrote `results.json`')


def sweep_history(out, records, command, seconds, trained):
    """The ``sweeps`` of ``results.json``: those of the one in ``out``, then, for the
    ``records`` it lacks that this sweep did not train (``trained`` of them it did),
    one entry with no command or wall-clock (:data:`EARLIER_RUNS`), then this one if it
    trained runs (an older file's single ``command``/``elapsed_s``/``blas`` becomes the
    first).  ``parent_blas`` is this process's BLAS, which trains nothing; each record has
    its worker's threads."""
    history, before = [], set()
    path = os.path.join(out, RESULTS_JSON)
    if os.path.exists(path):
        try:
            with open(path) as f:
                old = json.load(f)
            before = {run_key(rec) for rec in old['records']}
            history = old.get('sweeps') or [dict(
                command=old['command'], elapsed_s=old['elapsed_s'],
                new_runs=len(old['records']), parent_blas=old.get('blas'))]
        except (ValueError, KeyError, TypeError):
            history, before = [], set()
    new = sum(1 for rec in records if run_key(rec) not in before)
    if new > trained:
        history.append(dict(command=None, elapsed_s=None, new_runs=new - trained,
                            note=EARLIER_RUNS))
    if trained:
        history.append(dict(
            command=command, elapsed_s=round(seconds, 1), new_runs=trained,
            date=datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d'),
            cpu=run_info.cpu_model(), cores=cores.of_process(),
            loadavg=[round(x, 2) for x in os.getloadavg()],
            parent_blas=blas_setup.describe()))
    return history


def table_md(records, plan, n_train, data_name='digits'):
    """``table.md``: mean ± sd, the batch's share of the data, paired differences; with
    the rules at the ImageNet-equivalent batch also the batches they took, the control
    runs and the runs that diverged."""
    data = DATA[data_name]
    main, control, longer = split_records(records, data, plan, n_train)
    summary = summarize(main)
    batches = sorted({rec['total_batch'] for rec in main})
    text = ('Validation top-1 (%), mean ± sd over seeds {}, {} epochs per run.\n\n'.format(
        list(plan['seeds']), plan['epochs']) + format_table(summary) + '\n' +
        format_batch_share(batches, n_train) + '\n')
    if data.batch_rule == 'absolute':
        return text + format_paired(paired_differences(main))
    text += (format_rule_batches(batches, n_train) + '\n' +
             format_paired(paired_differences(main)) + '\n')
    if control:
        text += format_control(main, control, plan['seeds']) + '\n'
    if longer:
        text += format_longer(longer, main) + '\n'
    return text + format_nonfinite(records)


def write_outputs(out, plan, records, command, seconds, trained, data=None, n_train=None):
    """Write results.json, table.md, facts.md and the plot of ``records`` into ``out``;
    ``trained`` of them were trained by this sweep, in ``seconds``."""
    data = data or DATA['digits']
    n_train = n_train if n_train is not None else len(data.load(plan)[1])
    extra = {} if data.name == 'digits' else dict(data=data.name, batch_rule=data.batch_rule)
    result = dict(
        sweeps=sweep_history(out, records, command, seconds, trained), plan=plan, b_local=B_LOCAL,
        n_train=n_train, model=data.model, **extra,
        recipes={name: asdict(r) for name, r in RECIPES.items()}, records=records)
    paths = {name: os.path.join(out, name)
             for name in (RESULTS_JSON, TABLE_MD, FACTS_MD, PLOT_PNG)}
    atomic_files.write_json(paths[RESULTS_JSON], result, indent=1)
    with open(paths[TABLE_MD], 'w') as f:
        f.write(table_md(records, plan, n_train, data.name))
    with open(paths[FACTS_MD], 'w') as f:
        f.write(format_facts(result))
    main, control, _ = split_records(records, data, plan, n_train)
    plot(summarize(main), paths[PLOT_PNG], data.title,
         summarize(control) if control else None)
    return paths


def build_parser():
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.split('\n')[0])
    p.add_argument('--data', choices=list(DATA), default='digits',
                   help='data set, network and batch rule of the sweep (default digits)')
    p.add_argument('--data-dir', help="with --data fashion-mnist: the folder of its IDX files "
                   "(default Debian's, /usr/share/datasets/fashion-mnist)")
    p.add_argument('--quick', action='store_true',
                   help='a tiny sweep (2 batch sizes, 1 seed, 2 epochs) for tests')
    p.add_argument('--out', help='output folder (default result/large_batch, '
                   'result/fashion_mnist with --data fashion-mnist)')
    p.add_argument('--jobs', type=int, default=None,
                   help='runs in parallel (default: CPU cores available)')
    p.add_argument('--recipes', default=','.join(RECIPES),
                   help='comma-separated subset of: ' + ', '.join(RECIPES))
    return p


def main(argv=None):
    kernel = blas_setup.ensure_kernel(warn=False)  # may re-execute this process
    args = build_parser().parse_args(argv)
    recipes = [r for r in args.recipes.split(',') if r]
    unknown = [r for r in recipes if r not in RECIPES]
    if unknown or not recipes:
        print('{}: --recipes: unknown recipe {} (known: {})'.format(
            PROG, ', '.join(map(repr, unknown)) or "''", ', '.join(RECIPES)), file=sys.stderr)
        return 2
    jobs = args.jobs if args.jobs is not None else cores.of_process()
    if jobs < 1:
        print('{}: --jobs must be >= 1, got {}'.format(PROG, jobs), file=sys.stderr)
        return 2
    data = DATA[args.data]
    out = args.out or data.out
    plan = data.quick if args.quick else data.full
    problem = plan_problem(out, plan, data.name)
    if problem:
        print('{}: --out: {}'.format(PROG, problem), file=sys.stderr)
        return 2
    from chainer_ext.datasets.fashion_mnist import IdxError
    try:
        arrays = data.load(plan, args.data_dir)
    except IdxError as e:
        print('{}: --data {}: {}'.format(PROG, data.name, e), file=sys.stderr)
        return 2
    n_train = len(arrays[1])
    if kernel['warning']:  # once the flags and --out are accepted: a refusal stays one line
        print(kernel['warning'], file=sys.stderr, flush=True)
    command = ' '.join([PROG] + (list(argv) if argv is not None else sys.argv[1:]))
    started = time.time()
    try:
        records, trained = sweep(plan, out, jobs, recipes, data=data, arrays=arrays)
    except Interrupted as e:
        print('{}: {}'.format(PROG, e.line()), file=sys.stderr)
        return 128 + signal.SIGINT
    paths = write_outputs(out, plan, records, command, time.time() - started, trained, data,
                          n_train)
    print(format_table(summarize(split_records(records, data, plan, n_train)[0])), end='')
    print('wrote {} in {:.0f} s'.format(', '.join(paths.values()), time.time() - started))
    return 0


if __name__ == '__main__':
    sys.exit(main())
