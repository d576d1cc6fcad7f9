"""A result folder of ``train_imagenet.py`` read back and summarized.

:func:`load_run` reads its ``log`` (Chainer's LogReport) and ``config.json``
(:mod:`chainer_ext.job.run_info`), with errors naming the file; :func:`summarize` derives a
:class:`RunSummary` from them.  Read at the end of a run
(:func:`chainer_ext.job.training_log.final_summary`) and afterwards (``python -m
chainer_ext.report``, the cost model).
"""
import dataclasses
import json
import math
import os
from typing import Optional

from chainer_ext.paper.number_format import NA


class ReportError(Exception):
    """A result folder cannot be read (the message names the file)."""


def _read_json(path, what):
    if not os.path.exists(path):
        raise ReportError('{}: file not found (expected {})'.format(path, what))
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, UnicodeDecodeError) as e:
        raise ReportError('{}: cannot read ({})'.format(path, e))
    except ValueError as e:
        raise ReportError('{}: not valid JSON ({}); expected {}'.format(path, e, what))


def load_run(path, label=None):
    """Read one result folder: ``{'path', 'label', 'log', 'config'}``.

    Raises :class:`ReportError` when the folder, its ``log`` or its
    ``config.json`` is missing or malformed.
    """
    if not os.path.isdir(path):
        raise ReportError('{}: not a folder (expected the --out folder of '
                          'train_imagenet.py)'.format(path))
    log_path = os.path.join(path, 'log')
    log = _read_json(log_path, "the Chainer LogReport written by train_imagenet.py: "
                               "a JSON list with one dict per epoch")
    if not isinstance(log, list) or not all(isinstance(e, dict) for e in log):
        raise ReportError('{}: expected a JSON list of dicts (one per epoch), got {}'
                          .format(log_path, type(log).__name__))
    if not log:
        raise ReportError('{}: the log is empty (no epoch finished yet?)'.format(log_path))
    if not any('iteration' in e or 'epoch' in e for e in log):
        raise ReportError('{}: no entry has "epoch" or "iteration"; is this a '
                          'LogReport file?'.format(log_path))
    cfg_path = os.path.join(path, 'config.json')
    config = _read_json(cfg_path, 'the run description written by train_imagenet.py')
    if not isinstance(config, dict):
        raise ReportError('{}: expected a JSON object, got {}'.format(
            cfg_path, type(config).__name__))
    if label is None:
        label = os.path.basename(os.path.normpath(os.path.abspath(path)))
    return {'path': path, 'label': label, 'log': log, 'config': config}


def number(x):
    """float(x), or None for missing/null/non-numeric/non-finite values."""
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def last(log, key):
    """The last numeric value of ``key`` in ``log``, or None."""
    for e in reversed(log):
        v = number(e.get(key))
        if v is not None:
            return v
    return None


def series(log, key, x='epoch'):
    """``(xs, ys)``: the entries of ``log`` with numeric ``x`` and ``key``."""
    xs, ys = [], []
    for e in log:
        xv, yv = number(e.get(x)), number(e.get(key))
        if xv is not None and yv is not None:
            xs.append(xv)
            ys.append(yv)
    return xs, ys


@dataclasses.dataclass
class RunSummary(object):
    """Derived facts of one training run; None where its folder does not say.

    Read by :mod:`chainer_ext.report` (the tables beside the paper) and by
    :func:`chainer_ext.paper.cost_model.text.report_section` (measured against modelled time).
    """
    label: str
    path: str
    world_size: Optional[int]             # ranks
    nodes: Optional[int]
    unit: str                             # 'GPU' or 'CPU'
    device: Optional[str]
    hardware: str                         # e.g. 'Tesla P100 x 1024 (128 nodes)'
    software: str
    communicator: Optional[str]
    allreduce_dtype: Optional[str]
    batch_per_worker: Optional[int]
    total_batch: Optional[int]
    eta_base: Optional[float]
    arch: Optional[str]
    insize: Optional[int]
    optimizer: Optional[str]
    bn_moving_average: Optional[bool]
    epochs_planned: Optional[int]         # --epoch
    epochs_done: Optional[float]          # the log's last epoch
    max_iterations: Optional[int]
    iterations: Optional[float]
    time_s: Optional[float]               # elapsed_time of the last log entry
    time_per_iteration_s: Optional[float]
    per_worker_images_per_s: Optional[float]
    top1_percent: Optional[float]         # validation, last entry
    best_top1_percent: Optional[float]
    top5_percent: Optional[float]         # validation, last entry
    train_loss: Optional[float]
    train_top1_percent: Optional[float]
    val_loss: Optional[float]
    data: Optional[str]                   # what was trained on, in words
    n_train: Optional[int]
    n_val: Optional[int]
    n_class: Optional[int]
    seed: Optional[int]
    start_time: Optional[str]
    versions: dict

    def as_dict(self):
        """The fields in order, for report.json."""
        return dataclasses.asdict(self)


def summarize(run):
    """The :class:`RunSummary` of a run read by :func:`chainer_ext.paper.run_summary.load_run`."""
    cfg, log = run['config'], run['log']
    args = cfg.get('args') or {}
    hw = cfg.get('hardware') or {}
    ver = cfg.get('versions') or {}
    world = cfg.get('world_size')
    b_local = args.get('batchsize')
    total = cfg.get('total_batch')
    if total is None and world is not None and b_local is not None:
        total = world * b_local
    if b_local is None and total is not None and world:
        b_local = total // world
    time_s = last(log, 'elapsed_time')
    iters = last(log, 'iteration')
    top1 = last(log, 'validation/main/accuracy')
    top5 = last(log, 'validation/main/top5')
    vals = [v for v in (number(e.get('validation/main/accuracy')) for e in log)
            if v is not None]
    device = cfg.get('device')
    gpu = hw.get('gpu_name')
    if device == 'cuda' or gpu:
        hardware = '{} x {}'.format(gpu or 'GPU', world if world is not None else NA)
        unit = 'GPU'
    else:
        hardware = '{} x {} ranks'.format(hw.get('cpu_model') or 'CPU',
                                          world if world is not None else NA)
        unit = 'CPU'
    if hw.get('nodes') is not None:
        hardware += ' ({} node{})'.format(hw['nodes'], '' if hw['nodes'] == 1 else 's')
    if args.get('demo'):
        data = 'the built-in digits demo'
    elif args.get('synthetic'):
        data = 'synthetic random images'
    elif args.get('train'):
        data = 'list {}'.format(os.path.basename(str(args['train'])))
    else:
        data = None
    per_worker_rate = None
    if time_s and iters and b_local:
        per_worker_rate = iters * b_local / time_s
    return RunSummary(
        label=run['label'], path=run['path'],
        world_size=world, nodes=hw.get('nodes'), unit=unit,
        device=device, hardware=hardware,
        software='Chainer {}'.format(ver['chainer']) if ver.get('chainer') else NA,
        communicator=cfg.get('communicator') or args.get('communicator'),
        allreduce_dtype=args.get('allreduce_dtype'),
        batch_per_worker=b_local, total_batch=total,
        eta_base=number(cfg.get('eta_base')),
        arch=args.get('arch'), insize=args.get('insize'),
        optimizer=args.get('optimizer'),
        bn_moving_average=args.get('bn_moving_average'),
        epochs_planned=args.get('epoch'), epochs_done=last(log, 'epoch'),
        max_iterations=args.get('max_iterations') or None,
        iterations=iters, time_s=time_s,
        time_per_iteration_s=(time_s / iters) if time_s and iters else None,
        per_worker_images_per_s=per_worker_rate,
        top1_percent=None if top1 is None else 100.0 * top1,
        best_top1_percent=100.0 * max(vals) if vals else None,
        top5_percent=None if top5 is None else 100.0 * top5,
        train_loss=last(log, 'main/loss'),
        train_top1_percent=(None if last(log, 'main/accuracy') is None
                            else 100.0 * last(log, 'main/accuracy')),
        val_loss=last(log, 'validation/main/loss'),
        data=data, n_train=cfg.get('n_train'), n_val=cfg.get('n_val'),
        n_class=cfg.get('n_class'),
        seed=args.get('seed'),
        start_time=cfg.get('start_time'),
        versions=ver)
