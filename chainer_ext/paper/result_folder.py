"""A result folder of ``train_imagenet.py`` read back: its ``log`` (Chainer's LogReport) and
``config.json`` (:mod:`chainer_ext.job.run_info`), with clear errors naming the file.

Read at the end of a run (:func:`chainer_ext.job.training_log.final_summary`) and afterwards
(:mod:`chainer_ext.report`).
"""
import json
import math
import os


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
