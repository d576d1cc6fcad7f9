"""What reports a run while it trains, on rank 0: Chainer's LogReport, PrintReport,
ProgressBar and PlotReports (:func:`training_reporters`), the log made to follow a resumed
snapshot (:func:`restore_log`), and the closing lines (:func:`final_summary`).

The comparison with the paper, afterwards, is :mod:`chainer_ext.paper.report`.
"""
import json
import os
import shlex
import sys

from chainer_ext.job import atomic_files
from chainer_ext.paper.number_format import duration
from chainer_ext.paper.number_format import fmt
from chainer_ext.paper.number_format import percent
from chainer_ext.paper.run_summary import load_run
from chainer_ext.paper.run_summary import number
from chainer_ext.paper.run_summary import ReportError

#: What the trainer's LogReport records (``alpha_sgd`` with rmsprop_warmup only).
LOG_KEYS = ('epoch', 'iteration', 'main/loss', 'main/accuracy', 'validation/main/loss',
            'validation/main/accuracy', 'validation/main/top5', 'lr', 'alpha_sgd',
            'elapsed_time')
#: The PNGs the trainer's PlotReports draw into --out.
TRAINING_PLOTS = ('loss.png', 'accuracy.png', 'lr.png', 'alpha_sgd.png')


def training_reporters(optimizer, log_interval=0, plots=True):
    """Rank 0's reporting extensions of a training run, as ``(extension, trigger)``.

    LogReport writes the ``log`` that :mod:`chainer_ext.paper.report` reads (every epoch, or every
    ``log_interval`` iterations); PrintReport, ProgressBar and PNG plots follow it.
    """
    from chainer.training import extensions
    every = (log_interval, 'iteration') if log_interval else (1, 'epoch')
    keys = [k for k in LOG_KEYS if k != 'alpha_sgd' or optimizer == 'rmsprop_warmup']
    out = [(extensions.LogReport(trigger=every), None), (extensions.PrintReport(keys), every),
           (extensions.ProgressBar(update_interval=10), None)]
    if plots and extensions.PlotReport.available():
        out += [(extensions.PlotReport(['main/loss', 'validation/main/loss'], 'epoch',
                                       file_name=TRAINING_PLOTS[0]), None),
                (extensions.PlotReport(['main/accuracy', 'validation/main/accuracy'], 'epoch',
                                       file_name=TRAINING_PLOTS[1]), None)]
        out += [(extensions.PlotReport([key], 'iteration', file_name=key + '.png',
                                       trigger=(1, 'epoch')), None)
                for key in ('lr', 'alpha_sgd') if key in keys]
    return out


def restore_log(trainer, out):
    """Rank 0, after loading a snapshot: make ``OUT/log`` the snapshot's log.

    The snapshot holds LogReport's entries up to its iteration.  A log in ``out``
    with other entries (a resume from an older snapshot) describes weights that no
    longer exist: it is set aside as ``.superseded-log`` with ``model.npz`` and the
    plots, so that the summary, the report and the plots follow the resumed run.
    Returns the names set aside.
    """
    from chainer_ext.extensions import multi_node_snapshot as snapshots
    restored = trainer.get_extension('LogReport').log
    path = os.path.join(out, 'log')
    try:
        with open(path) as f:
            on_disk = json.load(f)
    except (OSError, ValueError):
        on_disk = None
    if on_disk == json.loads(json.dumps(restored)):
        return []
    moved = []
    if on_disk:
        for name in ('log', 'model.npz') + TRAINING_PLOTS:
            if os.path.exists(os.path.join(out, name)):
                snapshots.set_aside(out, os.path.join(out, name), '.superseded-')
                moved.append(name)
    if restored:
        atomic_files.write_json(path, restored, indent=4)
    return moved


def _plural(n, word):
    return '{} {}{}'.format(n, word, '' if n == 1 else 's')


def final_summary(path, iteration, epoch_detail, elapsed, length, validated=True,
                  python=None):
    """Closing lines of a run: how far it trained, the validation top-1 of the final weights
    (or why there is none), where the results are and the command that compares them with
    the paper.

    ``iteration``, ``epoch_detail`` and ``elapsed`` are the trainer's at the end;
    ``length`` is its :class:`chainer_ext.job.run_length.RunLength`; ``validated`` is False
    under --no-validation.  A figure of the log is called final only when it was measured
    at ``iteration``: a resumed log may end on a validation of earlier weights.
    ``python`` is the interpreter to name in the next command (``sys.executable``).
    """
    python = shlex.quote(python or sys.executable)
    logged = os.path.exists(os.path.join(path, 'log'))  # an epoch has ended
    spent = '{} of training{}'.format(duration(elapsed), ', validation included'
                                      if validated and logged else '')
    if length.max_iterations and epoch_detail < length.epochs:
        how = 'stopped at iteration {} by --max-iterations (epoch {:.2f} of {}) after {}'.format(
            iteration, epoch_detail, length.epochs, spent)
    else:
        how = 'finished {} ({}) in {}'.format(_plural(length.epochs, 'epoch'),
                                              _plural(iteration, 'iteration'), spent)
    why_not = ('--no-validation' if not validated else
               'validation runs at the end of each epoch' if epoch_detail % 1 else
               'the log holds no validation at this iteration')
    if not logged:
        return '\n'.join([
            'train_imagenet.py: {}, before the first epoch ended'.format(how),
            '  validation top-1: n/a ({})'.format(why_not),
            '  results in {}: config.json, model.npz (python -m chainer_ext.report needs the '
            'log of at least one epoch)'.format(path)])
    try:
        run = load_run(path)
    except ReportError as e:
        return 'train_imagenet.py: {}; no summary ({})'.format(how, e)
    measured = [(e.get('validation/main/accuracy'), e.get('epoch'), e.get('iteration'))
                for e in run['log'] if number(e.get('validation/main/accuracy')) is not None]
    best = max(measured, key=lambda m: m[0]) if measured else None
    if measured and measured[-1][2] == iteration:
        top1 = 'final {} (epoch {}), best {} (epoch {})'.format(
            percent(measured[-1][0], 2), fmt(measured[-1][1]), percent(best[0], 2),
            fmt(best[1]))
    elif measured:
        top1 = ('not measured on the final weights (iteration {}: {}); last measured {} at '
                'epoch {} (iteration {}), best {} (epoch {})'.format(
                    iteration, why_not, percent(measured[-1][0], 2), fmt(measured[-1][1]),
                    fmt(measured[-1][2]), percent(best[0], 2), fmt(best[1])))
    else:
        top1 = 'n/a ({})'.format(why_not)
    return '\n'.join([
        'train_imagenet.py: {}'.format(how),
        '  validation top-1: {}'.format(top1),
        '  results in {}: log, config.json, model.npz, snapshots/ and plots'.format(path),
        '  next: {} -m chainer_ext.report {}'.format(python, shlex.quote(path))])
