"""Compare training runs with Akiba, Suzuki & Fukuda (2017): Table 1, headline numbers, schedules.

    python -m chainer_ext.report RESULT_DIR [RESULT_DIR ...] [--out DIR] [--label NAME ...]
                                 [--bench JSON]

Reads the result folders that ``train_imagenet.py`` writes (:mod:`chainer_ext.paper.run_summary`;
what reports while it trains is :mod:`chainer_ext.job.training_log`), summarizes each
(:class:`chainer_ext.paper.run_summary.RunSummary`) and writes ``report.md``, ``report.json`` and
``report_*.png``.  The paper's figures come from :mod:`chainer_ext.paper.numbers`; the
schedules from :func:`chainer_ext.optimizers.recipe.schedules_of`.
"""
import argparse
import json
import math
import os
import sys

import chainer_ext
from chainer_ext.paper.cost_model import model as cost_model
from chainer_ext.paper.cost_model import text as cost_model_text
from chainer_ext.paper import numbers as paper
from chainer_ext.optimizers import recipe as recipes
from chainer_ext.optimizers import schedules
from chainer_ext.paper.number_format import duration
from chainer_ext.paper.number_format import fmt
from chainer_ext.paper.number_format import integer
from chainer_ext.paper.number_format import NA
from chainer_ext.paper.number_format import percent
from chainer_ext.paper.run_summary import load_run
from chainer_ext.paper.run_summary import number
from chainer_ext.paper.run_summary import ReportError
from chainer_ext.paper.run_summary import series
from chainer_ext.paper.run_summary import summarize

#: Files written into the output folder.
REPORT_MD = 'report.md'
REPORT_JSON = 'report.json'
#: The batch-size sweep's write-up and committed table, relative to the project root.
EXPERIMENTS_MD = 'EXPERIMENTS.md'
EXPERIMENTS_TABLE = os.path.join('docs', 'experiments', 'large_batch', 'table.md')
PLOTS = {
    'loss': 'report_loss.png',
    'accuracy': 'report_accuracy.png',
    'schedule': 'report_schedule.png',
    'scaling': 'report_scaling.png',
}
#: The log convention checked: each entry's lr/alpha_sgd is the mean, over the
#: interval's updates, of the value each update ran with, and update t runs at
#: e = (t - 1) b_local / shard (``epoch_detail`` of a ChainerMN shard).
LOG_CONVENTION = ('mean over the interval\'s updates of the value each ran with; update t '
                  'at e = (t - 1) * b_local / ceil(n_train / ranks)')
#: Below this the logged schedule is reported as matching the definition.
MATCH_TOLERANCE = 1e-6
#: Per --optimizer: what it is, and whose schedule definitions it follows
#: (:func:`chainer_ext.optimizers.recipe.schedules_of`).
OPTIMIZERS = {
    'rmsprop_warmup': ('RMSprop warm-up -> SGD, slow-start lr',
                       "the paper's definitions (Appendix A)"),
    'momentum': ('momentum SGD, Goyal et al. schedule (baseline)',
                 "Goyal et al.'s definitions (the momentum SGD baseline)"),
    'lars': ('LARS, warm-up and polynomial decay (You et al. baseline)',
             "You et al.'s definitions (the LARS baseline)"),
}
#: What a baseline is called where it has no alpha_SGD.
_WITHOUT_ALPHA = {'momentum': 'momentum SGD', 'lars': 'LARS'}
#: Updates per log interval evaluated exactly; longer intervals are sampled.
_MAX_POINTS_PER_INTERVAL = 4000


# ---------------------------------------------------------------------------
# Schedules: what the run logged against its recipe's definitions
# ---------------------------------------------------------------------------

def _recipe(s):
    """The run's schedules (:func:`chainer_ext.optimizers.recipe.schedules_of`), or None if
    unknown."""
    if not (s.total_batch and s.epochs_planned and s.optimizer):
        return None
    return recipes.schedules_of(s.optimizer, s.total_batch, s.epochs_planned)


def _describe(recipe):
    return '; '.join('{} = {}(e, {})'.format(attr, f.func.__name__, ', '.join(
        '{}={:g}'.format(k, v) for k, v in sorted(f.keywords.items())))
        for attr, f in sorted(recipe.items()))


def _interval_mean(fn, prev_it, it, per_update):
    """Mean of ``fn((t - 1) * per_update)`` over updates t = prev_it + 1 .. it."""
    count = it - prev_it
    if count <= 0:
        return None
    if count <= _MAX_POINTS_PER_INTERVAL:
        ts = range(prev_it + 1, it + 1)
    else:                                           # sampled, evenly
        k = _MAX_POINTS_PER_INTERVAL
        ts = [prev_it + 1 + (count - 1) * i // (k - 1) for i in range(k)]
    return sum(fn((t - 1) * per_update) for t in ts) / len(ts)


def schedule_check(run, summary=None):
    """Logged ``lr``/``alpha_sgd`` against the run's recipe, under :data:`LOG_CONVENTION`.

    Returns a dict with ``available`` (False with ``reason`` when it cannot
    check), ``rows`` (per log entry), ``lr_max_abs``, ``lr_max_rel``,
    ``alpha_max_abs`` (None when not applicable), ``matches`` and ``eta_base``
    (config vs recomputed).
    """
    s = summary or summarize(run)
    recipe = _recipe(s)
    if recipe is None:
        return {'available': False, 'reason': 'total batch, --epoch or --optimizer unknown'}
    n_train, world, b = s.n_train, s.world_size, s.batch_per_worker
    if not (n_train and world and b):
        return {'available': False,
                'reason': 'n_train, world_size or batchsize missing from config.json'}
    entries = [e for e in run['log'] if number(e.get('iteration')) is not None]
    logged = {key: any(number(e.get(key)) is not None for e in entries)
              for key in ('lr', 'alpha_sgd')}
    if not any(logged.values()):
        return {'available': False, 'reason': 'the log has no lr or alpha_sgd entries'}
    per_update = b / float(cost_model.shard_size(world, n_train))
    alpha_fn = recipe.get('alpha_sgd')
    rows, prev = [], 0
    lr_abs = lr_rel = a_abs = 0.0
    for e in entries:
        it = int(number(e['iteration']))
        row = {'epoch': e.get('epoch'), 'iteration': it,
               'lr': number(e.get('lr')), 'alpha_sgd': number(e.get('alpha_sgd')),
               'lr_expected': _interval_mean(recipe['lr'], prev, it, per_update),
               'alpha_expected': (_interval_mean(alpha_fn, prev, it, per_update)
                                  if alpha_fn else None)}
        if row['lr'] is not None and row['lr_expected'] is not None:
            d = abs(row['lr'] - row['lr_expected'])
            lr_abs = max(lr_abs, d)
            lr_rel = max(lr_rel, d / abs(row['lr_expected']) if row['lr_expected'] else d)
        if row['alpha_sgd'] is not None and row['alpha_expected'] is not None:
            a_abs = max(a_abs, abs(row['alpha_sgd'] - row['alpha_expected']))
        rows.append(row)
        prev = it
    eb_cfg, eb_def = s.eta_base, schedules.eta_base(s.total_batch)
    out = {
        'available': True, 'definition': _describe(recipe), 'convention': LOG_CONVENTION,
        'rows': rows,
        'lr_max_abs': lr_abs if logged['lr'] else None,
        'lr_max_rel': lr_rel if logged['lr'] else None,
        'alpha_max_abs': a_abs if (alpha_fn and logged['alpha_sgd']) else None,
        'alpha_applicable': alpha_fn is not None, 'alpha_logged': logged['alpha_sgd'],
        'eta_base': {'config': eb_cfg, 'definition': eb_def},
    }
    worst = max(v for v in (out['lr_max_rel'], out['alpha_max_abs'], 0.0) if v is not None)
    out['matches'] = worst <= MATCH_TOLERANCE and (
        eb_cfg is None or abs(eb_cfg - eb_def) <= MATCH_TOLERANCE * eb_def)
    if alpha_fn and not logged['alpha_sgd']:
        out['matches'] = False
        out['problem'] = 'optimizer rmsprop_warmup but the log has no alpha_sgd'
    return out


# ---------------------------------------------------------------------------
# Text
# ---------------------------------------------------------------------------

def _top1(value_percent, digits=2):
    return percent(None if value_percent is None else value_percent / 100.0, digits)


def _model(s):
    arch = s.arch or NA
    arch = {'resnet50': 'ResNet-50', 'resnet18': 'ResNet-18'}.get(arch, arch)
    return '{} at {} px'.format(arch, fmt(s.insize, '{}'))


def scale_statement(s):
    """One plain sentence saying how this run's scale compares with the paper's."""
    h = paper.HEADLINE
    same = (s.world_size == h['workers'] and s.total_batch == h['total_batch']
            and s.arch == 'resnet50' and s.insize == 224
            and s.n_train == paper.IMAGENET_TRAIN and s.unit == 'GPU')
    who = '{} {} rank{}'.format(fmt(s.world_size, '{}'), s.unit,
                                '' if s.world_size == 1 else 's')
    if s.nodes is not None:
        who += ' on {} node{}'.format(s.nodes, '' if s.nodes == 1 else 's')
    data = s.data or 'unknown data'
    if s.n_train is not None:
        data += ' ({:,} training images, {} classes)'.format(
            int(s.n_train), fmt(s.n_class, '{}'))
    epochs = '{} of {} epochs'.format(fmt(s.epochs_done, '{:g}'),
                                      fmt(s.epochs_planned, '{}'))
    text = '{}: {}, total batch {}, {} on {}, {}'.format(
        s.label, who, integer(s.total_batch), _model(s), data, epochs)
    if same:
        return text + ': the paper\'s scale, directly comparable.'
    return (text + ': not comparable in absolute terms with the paper\'s {:,} Tesla P100 '
            'GPUs, total batch {:,}, ResNet-50 at 224 px on ImageNet ({:,} images, '
            '{} classes), 90 epochs.'.format(h['workers'], h['total_batch'],
                                             paper.IMAGENET_TRAIN, paper.IMAGENET_CLASSES))


def table1_md(summaries):
    """Table 1 (top-1 only: the paper gives no top-5) with each run's top-1 and top-5."""
    lines = ['| team | hardware | software | batch | time | top-1 | top-5 |',
             '|---|---|---|---|---|---|---|']
    for r in paper.TABLE1:
        lines.append('| {} | {} | {} | {:,} | {} | {} | {} |'.format(
            r['team'], r['hardware'], r['software'], r['batch'], r['time'], r['top1'], NA))
    for s in summaries:
        done, planned = s.epochs_done, s.epochs_planned
        time = duration(s.time_s)
        if s.time_s is not None:
            time += ' ({:.1f} s'.format(s.time_s)
            if done is not None and planned is not None and done < planned:
                time += ', {:g} of {} epochs'.format(done, planned)
            elif done is not None:
                time += ', {:g} epochs'.format(done)
            time += ')'
        lines.append('| this run: {} | {} | {} | {} | {} | {} | {} |'.format(
            s.label, s.hardware, s.software, integer(s.total_batch), time,
            _top1(s.top1_percent, 1), _top1(s.top5_percent, 1)))
    return '\n'.join(lines)


def headline_md(s):
    h = paper.HEADLINE
    bn = ('last-minibatch statistics, averaged over workers before validation'
          if s.bn_moving_average is False else
          'moving averages (baseline)' if s.bn_moving_average else NA)
    opt = OPTIMIZERS[s.optimizer][0] if s.optimizer in OPTIMIZERS else s.optimizer or NA
    epochs = NA if s.epochs_planned is None else '{} (schedule compressed by {}/90)'.format(
        s.epochs_planned, s.epochs_planned) if s.epochs_planned != 90 else '90'
    rows = [
        ('workers', '{:,} Tesla P100 GPUs ({} nodes x {})'.format(
            h['workers'], h['nodes'], h['gpus_per_node']),
         '{} {} ranks ({} node{})'.format(fmt(s.world_size, '{}'), s.unit,
                                          fmt(s.nodes, '{}'),
                                          '' if s.nodes == 1 else 's')),
        ('batch per worker', str(h['batch_per_worker']), fmt(s.batch_per_worker, '{}')),
        ('total batch', '{:,}'.format(h['total_batch']), integer(s.total_batch)),
        ('eta_base = 0.1 b_total / 256', '{:g}'.format(h['eta_base']),
         fmt(s.eta_base, '{:g}')),
        ('model', 'ResNet-50 at 224 px', _model(s)),
        ('data', 'ImageNet-1k: {:,} train / {:,} val images, {} classes'.format(
            paper.IMAGENET_TRAIN, paper.IMAGENET_VAL, paper.IMAGENET_CLASSES),
         '{}: {} train / {} val images, {} classes'.format(
             s.data or NA, integer(s.n_train), integer(s.n_val),
             fmt(s.n_class, '{}'))),
        ('epochs', '90', epochs),
        ('epochs completed', '90', fmt(s.epochs_done, '{:g}')),
        ('training time incl. validation', '{} ± {} s (mean ± sd, {} runs)'.format(
            h['time_s'], h['time_sd_s'], h['runs']),
         NA if s.time_s is None else '{:.1f} s (one run)'.format(s.time_s)),
        ('top-1 single-crop validation accuracy', '{} ± {} %'.format(
            h['top1_percent'], h['top1_sd_percent']),
         _top1(s.top1_percent) + ('' if s.best_top1_percent is None
                                    else ' (best epoch {})'.format(
                                        _top1(s.best_top1_percent)))),
        ('top-5 single-crop validation accuracy', 'not reported', _top1(s.top5_percent)),
        ('scaling efficiency vs 1 GPU / vs 1 node',
         '{:.0f}% / {:.0f}%'.format(100 * h['efficiency_vs_1gpu'],
                                    100 * h['efficiency_vs_1node']),
         'not measured by one run (give runs at several sizes)'),
        ('optimizer', 'RMSprop warm-up -> SGD, slow-start lr', opt),
        ('batch normalization', 'last-minibatch statistics, averaged over workers '
         'before validation', bn),
        ('gradient all-reduce', 'float16, NCCL 2.0.5 (ChainerMN pure_nccl)',
         '{}, {}'.format(s.allreduce_dtype or NA, s.communicator or NA)),
    ]
    lines = ['| quantity | paper (measured) | {} (measured) |'.format(s.label),
             '|---|---|---|']
    lines += ['| {} | {} | {} |'.format(*r) for r in rows]
    return '\n'.join(lines)


def schedule_md(s, chk):
    if not chk['available']:
        return 'Schedule check for {}: n/a ({}).'.format(s.label, chk['reason'])
    eb = chk['eta_base']
    whose = OPTIMIZERS[s.optimizer][1]  # known: the check is available
    out = ['Definition: `{}` (chainer_ext.optimizers.schedules).'.format(chk['definition']),
           'eta_base: config.json {} vs 0.1 x {} / 256 = {:g}.'.format(
               fmt(eb['config'], '{:g}'), integer(s.total_batch), eb['definition']),
           'Log convention: {}.'.format(chk['convention']),
           'Max deviation of the logged values from the definitions: lr {} absolute '
           '({} relative); alpha_SGD {}.'.format(
               fmt(chk['lr_max_abs'], '{:.3g}'), fmt(chk['lr_max_rel'], '{:.3g}'),
               fmt(chk['alpha_max_abs'], '{:.3g}') if chk['alpha_applicable']
               else 'n/a ({} has no RMSprop->SGD transition)'.format(
                   _WITHOUT_ALPHA.get(s.optimizer, s.optimizer))),
           '**{}**'.format('Matches {} (within {:g}).'.format(whose, MATCH_TOLERANCE)
                           if chk['matches'] else 'DEVIATES from {}{}.'.format(
                               whose, ': ' + chk['problem'] if chk.get('problem') else '')),
           '',
           '| epoch | iteration | lr (log) | lr (definition) | alpha_SGD (log) | '
           'alpha_SGD (definition) |', '|---|---|---|---|---|---|']
    for r in chk['rows']:
        out.append('| {} | {} | {} | {} | {} | {} |'.format(
            fmt(r['epoch'], '{}'), r['iteration'], fmt(r['lr'], '{:.6g}'),
            fmt(r['lr_expected'], '{:.6g}'), fmt(r['alpha_sgd'], '{:.6g}'),
            fmt(r['alpha_expected'], '{:.6g}')))
    return '\n'.join(out)


def scaling_from_runs(summaries):
    """Measured weak-scaling efficiency among runs that differ only in size."""
    groups = {}
    for s in summaries:
        if s.per_worker_images_per_s is None or not s.world_size:
            continue
        key = (s.arch, s.insize, s.batch_per_worker, s.device,
               s.optimizer, s.communicator)
        groups.setdefault(key, []).append(s)
    out = []
    for key, runs in groups.items():
        sizes = {r.world_size for r in runs}
        if len(sizes) < 2:
            continue
        base = min(runs, key=lambda r: r.world_size)
        for r in sorted(runs, key=lambda r: r.world_size):
            out.append({'label': r.label, 'world_size': r.world_size,
                        'baseline': base.label, 'baseline_size': base.world_size,
                        'efficiency': r.per_worker_images_per_s
                        / base.per_worker_images_per_s})
    return out


def side_by_side_md(summaries, checks):
    h = paper.HEADLINE
    cols = ['paper'] + [s.label for s in summaries]
    rows = [
        ('workers', ['{:,} GPUs'.format(h['workers'])]
         + ['{} {}'.format(fmt(s.world_size, '{}'), s.unit) for s in summaries]),
        ('total batch', ['{:,}'.format(h['total_batch'])]
         + [integer(s.total_batch) for s in summaries]),
        ('model', ['ResNet-50 at 224 px'] + [_model(s) for s in summaries]),
        ('optimizer', ['rmsprop_warmup'] + [s.optimizer or NA for s in summaries]),
        ('BN moving average', ['no'] + [NA if s.bn_moving_average is None else
                                        ('yes' if s.bn_moving_average else 'no')
                                        for s in summaries]),
        ('communicator', ['pure_nccl (float16)'] + ['{} ({})'.format(
            s.communicator or NA, s.allreduce_dtype or NA) for s in summaries]),
        ('epochs done / planned', ['90 / 90'] + ['{} / {}'.format(
            fmt(s.epochs_done, '{:g}'), fmt(s.epochs_planned, '{}'))
            for s in summaries]),
        ('time (s)', ['{} ± {}'.format(h['time_s'], h['time_sd_s'])]
         + [fmt(s.time_s, '{:.1f}') for s in summaries]),
        ('time per iteration (s)', ['{:.3f} (derived)'.format(
            h['time_s'] / (90 * math.ceil(paper.IMAGENET_TRAIN / h['total_batch'])))]
         + [fmt(s.time_per_iteration_s, '{:.3f}') for s in summaries]),
        ('final top-1', ['{} ± {} %'.format(h['top1_percent'], h['top1_sd_percent'])]
         + [_top1(s.top1_percent) for s in summaries]),
        ('best top-1', [NA] + [_top1(s.best_top1_percent) for s in summaries]),
        ('final train loss', [NA] + [fmt(s.train_loss, '{:.4f}') for s in summaries]),
        ('final validation loss', [NA] + [fmt(s.val_loss, '{:.4f}')
                                          for s in summaries]),
        ('lr max rel. deviation', ['-'] + [
            fmt(c.get('lr_max_rel'), '{:.2g}') if c['available'] else NA
            for c in checks]),
        ('alpha_SGD max abs. deviation', ['-'] + [
            fmt(c.get('alpha_max_abs'), '{:.2g}') if c['available'] else NA
            for c in checks]),
    ]
    lines = ['| | ' + ' | '.join(cols) + ' |', '|---' * (len(cols) + 1) + '|']
    lines += ['| {} | {} |'.format(name, ' | '.join(vals)) for name, vals in rows]
    eff = scaling_from_runs(summaries)
    if eff:
        lines += ['', 'Measured weak-scaling efficiency among these runs (per-worker '
                  'images/s incl. validation, against the smallest run of the same '
                  'configuration):', '',
                  '| run | ranks | baseline | efficiency |', '|---|---|---|---|']
        lines += ['| {} | {} | {} ({} ranks) | {:.0f}% |'.format(
            e['label'], e['world_size'], e['baseline'], e['baseline_size'],
            100 * e['efficiency']) for e in eff]
    return '\n'.join(lines)


# ---------------------------------------------------------------------------
# Figures
# ---------------------------------------------------------------------------

def _plt():
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    return plt


def plot_curves(runs, out_dir):
    """Loss and accuracy per epoch, train (solid) and validation (dashed)."""
    plt = _plt()
    paths = {}
    for kind, keys, ylabel in (
            ('loss', ('main/loss', 'validation/main/loss'), 'loss'),
            ('accuracy', ('main/accuracy', 'validation/main/accuracy'), 'top-1 accuracy')):
        fig, ax = plt.subplots(figsize=(7, 4.5))
        for i, run in enumerate(runs):
            color = 'C{}'.format(i % 10)
            for key, style, what in ((keys[0], '-', 'train'), (keys[1], '--', 'validation')):
                xs, ys = series(run['log'], key)
                if xs:
                    ax.plot(xs, ys, style, color=color, marker='.',
                            label='{} {}'.format(run['label'], what))
        if kind == 'accuracy':
            ax.axhline(paper.HEADLINE['top1_percent'] / 100.0, color='k', lw=0.8, ls=':',
                       label='paper: {}% (1024 GPUs, 90 epochs)'.format(
                           paper.HEADLINE['top1_percent']))
            ax.set_ylim(0, 1)
        ax.set_xlabel('epoch')
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
        ax.set_title('{}: train (solid) and validation (dashed)'.format(ylabel))
        fig.tight_layout()
        path = os.path.join(out_dir, PLOTS[kind])
        fig.savefig(path, dpi=100)
        plt.close(fig)
        paths[kind] = path
    return paths


def plot_schedules(runs, summaries, checks, out_dir):
    """Logged lr and alpha_SGD (markers) over the definitions (lines)."""
    plt = _plt()
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(7, 6.5), sharex=True)
    for i, (run, s, chk) in enumerate(zip(runs, summaries, checks)):
        color = 'C{}'.format(i % 10)
        epochs = s.epochs_planned
        if chk.get('available'):
            recipe = _recipe(s)
            lr_fn, alpha_fn = recipe['lr'], recipe.get('alpha_sgd')
            if epochs:
                grid = [epochs * k / 600.0 for k in range(601)]
                ax1.plot(grid, [lr_fn(e) for e in grid], '-', color=color, lw=1,
                         label='{} definition'.format(s.label))
                if alpha_fn:
                    ax2.plot(grid, [alpha_fn(e) for e in grid], '-', color=color, lw=1,
                             label='{} definition'.format(s.label))
        for ax, key in ((ax1, 'lr'), (ax2, 'alpha_sgd')):
            xs, ys = series(run['log'], key)
            if xs:
                # an entry is the mean over the epoch just finished: draw it
                # over that interval, marked at its middle
                starts = [0.0] + xs[:-1]
                ax.hlines(ys, starts, xs, color=color, lw=2.5, alpha=0.35)
                ax.plot([(a + b) / 2.0 for a, b in zip(starts, xs)], ys, 'o',
                        color=color, ms=4, mfc='none',
                        label='{} logged (mean over each epoch)'.format(s.label))
    ax1.set_yscale('log')
    ax1.set_ylabel('learning rate eta')
    ax2.set_ylabel('alpha_SGD')
    ax2.set_xlabel('epoch')
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    ax1.set_title('schedules: logged values vs the paper\'s definitions')
    fig.tight_layout()
    path = os.path.join(out_dir, PLOTS['schedule'])
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_scaling(out_dir):
    """MODELLED efficiency vs workers, with the paper's two measured points."""
    plt = _plt()
    rows = cost_model.scaling_table(cost_model.paper_machine())
    h = paper.HEADLINE
    fig, ax = plt.subplots(figsize=(7, 4.5))
    ns = [r['n'] for r in rows]
    ax.plot(ns, [r['efficiency_vs_1gpu'] for r in rows], '-o', label='modelled vs 1 GPU')
    ax.plot([r['n'] for r in rows if r['efficiency_vs_1node'] is not None],
            [r['efficiency_vs_1node'] for r in rows if r['efficiency_vs_1node'] is not None],
            '-s', label='modelled vs 1 node')
    ax.plot([h['workers']], [h['efficiency_vs_1gpu']], 'k*', ms=12,
            label='paper vs 1 GPU ({:.0f}%)'.format(100 * h['efficiency_vs_1gpu']))
    ax.plot([h['workers']], [h['efficiency_vs_1node']], 'kX', ms=10,
            label='paper vs 1 node ({:.0f}%)'.format(100 * h['efficiency_vs_1node']))
    ax.set_xscale('log', base=2)
    ax.set_ylim(0, 1.05)
    ax.set_xlabel('workers (GPUs), 32 images each')
    ax.set_ylabel('scaling efficiency')
    ax.set_title('MODELLED scaling of the paper\'s set-up (cost_model) vs paper')
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = os.path.join(out_dir, PLOTS['scaling'])
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


# ---------------------------------------------------------------------------
# Putting it together
# ---------------------------------------------------------------------------

def experiments_md(out):
    """Where the batch-size sweep's results are, linked relative to ``out``, with its table."""
    root = chainer_ext.REPO
    page = os.path.join(root, EXPERIMENTS_MD)
    table = os.path.join(root, EXPERIMENTS_TABLE)
    if not os.path.exists(page):
        return ('The sweep of the paper\'s recipe, Goyal et al.\'s and ablations over total '
                'batch sizes is described in EXPERIMENTS.md of the project\'s repository '
                '(`python -m chainer_ext.experiments.large_batch`).')
    md = ['The paper\'s recipe, Goyal et al.\'s and one-at-a-time ablations over total '
          'batch sizes 64-1,024 (ResNet-8 on the digits): [EXPERIMENTS.md]({}).'.format(
              os.path.relpath(page, os.path.abspath(out)))]
    if os.path.exists(table):
        with open(table) as f:
            md += ['', f.read().strip()]
    return '\n'.join(md)


def build_report(paths, out=None, labels=None, bench=None):
    """Read ``paths``, write report.md, report.json and the figures into ``out``.

    Returns the data of report.json plus ``'files'`` (what was written).
    Raises :class:`ReportError` for unreadable result folders.
    """
    if not paths:
        raise ReportError('give at least one result folder')
    labels = list(labels or [])
    if labels and len(labels) != len(paths):
        raise ReportError('{} labels for {} result folders'.format(len(labels), len(paths)))
    seen_paths = {}
    for p in paths:
        first = seen_paths.setdefault(os.path.realpath(p), p)
        if first is not p:
            raise ReportError('{} is given twice (as {} and {}): give each result folder '
                              'once'.format(p, first, p))
    runs = [load_run(p, labels[i] if labels else None) for i, p in enumerate(paths)]
    seen = {}
    for r in runs:                      # distinct labels for legends and columns
        if r['label'] in seen:
            seen[r['label']] += 1
            r['label'] = '{} ({})'.format(r['label'], seen[r['label']])
        else:
            seen[r['label']] = 1
    out = out or paths[0]
    os.makedirs(out, exist_ok=True)
    summaries = [summarize(r) for r in runs]
    checks = [schedule_check(r, s) for r, s in zip(runs, summaries)]

    files = {}
    files.update(plot_curves(runs, out))
    files['schedule'] = plot_schedules(runs, summaries, checks, out)
    files['scaling'] = plot_scaling(out)
    cost_md, cost_data = cost_model_text.report_section(summaries, bench)

    md = ['# Comparison with Akiba, Suzuki & Fukuda (2017)', '',
          'Source of the paper\'s numbers: {} (`chainer_ext.paper.numbers`).  '
          'Runs: {}.'.format(paper.CITATION, ', '.join(
              '`{}`'.format(r['path']) for r in runs)), '',
          '## Scale of the run{}'.format('s' if len(runs) > 1 else ''), '']
    md += ['- ' + scale_statement(s) for s in summaries]
    md += ['', '## Table 1 of the paper, with this run', '',
           'Rows 1-5 are the paper\'s Table 1 (ResNet-50, ImageNet, 90 epochs); the '
           'last row(s) are measured here.', '', table1_md(summaries)]
    for s in summaries:
        md += ['', '## Headline numbers: paper vs {}'.format(s.label), '',
               headline_md(s)]
    if len(runs) > 1:
        md += ['', '## Side by side', '', side_by_side_md(summaries, checks)]
    md += ['', '## Learning rate and alpha_SGD: logged vs their definitions', '',
           'Each log entry holds the values the run reported during that epoch; they '
           'are recomputed here from `chainer_ext.optimizers.schedules` for the run\'s total '
           'batch and --epoch (boundaries and beta compressed by epochs/90).']
    for s, chk in zip(summaries, checks):
        md += ['', '### {}'.format(s.label), '', schedule_md(s, chk)]
    md += ['', '## Curves', '',
           '![loss]({})'.format(PLOTS['loss']), '',
           '![accuracy]({})'.format(PLOTS['accuracy']), '',
           '![schedules]({})'.format(PLOTS['schedule']), '',
           '## Cost model (MODELLED)', '', cost_md, '',
           '![modelled scaling]({})'.format(PLOTS['scaling']), '',
           '## Accuracy against total batch size, in miniature', '',
           experiments_md(out), '']
    md_path = os.path.join(out, REPORT_MD)
    with open(md_path, 'w') as f:
        f.write('\n'.join(md))
    files['report'] = md_path

    data = {'paper': {'headline': paper.HEADLINE, 'table1': paper.TABLE1},
            'runs': [s.as_dict() for s in summaries], 'schedule_checks': checks,
            'scaling_from_runs': scaling_from_runs(summaries),
            'cost_model': cost_data, 'bench': bench}
    json_path = os.path.join(out, REPORT_JSON)
    files['json'] = json_path
    data['files'] = files
    with open(json_path, 'w') as f:
        json.dump(data, f, indent=1, default=str)
    return data


def main(argv=None):
    ap = argparse.ArgumentParser(
        prog='python -m chainer_ext.report',
        description='Compare result folders of train_imagenet.py with Akiba et al. '
                    '(2017): writes report.md, report.json and report_*.png.')
    ap.add_argument('results', nargs='+', metavar='RESULT_DIR',
                    help='--out folder(s) of train_imagenet.py (log + config.json)')
    ap.add_argument('--out', help='where to write (default: the first RESULT_DIR)')
    ap.add_argument('--label', action='append', default=[],
                    help='name of each run, in order (default: folder names)')
    ap.add_argument('--bench', help='JSON of bench/bench_scaling.py on this machine, to '
                                    'calibrate the cost model (e.g. bench/results/scaling.json)')
    args = ap.parse_args(argv)
    try:
        data = build_report(args.results, args.out, args.label, args.bench)
    except ReportError as e:
        print('{}: error: {}'.format(ap.prog, e), file=sys.stderr)
        return 2
    print('wrote {}'.format(', '.join(sorted(data['files'].values()))))
    return 0


if __name__ == '__main__':
    sys.exit(main())
