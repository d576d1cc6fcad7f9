"""The summary of one training run: :class:`RunSummary`, what :func:`summarize` derives from a
result folder's ``config.json`` and ``log``."""
import dataclasses
import os
from typing import Optional

from chainer_ext.paper.number_format import NA
from chainer_ext.paper.result_folder import last
from chainer_ext.paper.result_folder import number


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
    """The :class:`RunSummary` of a run read by :func:`chainer_ext.paper.result_folder.load_run`."""
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
