#!/usr/bin/env python
"""Run every benchmark of the project, with the scaling figures, and write ``BENCHMARKS.md``.

    python bench/run_all.py            # goal settings (~20+ minutes on 2 cores)
    python bench/run_all.py --quick    # tiny settings (seconds; the smoke test's)

Each ``bench_NAME.py`` owns its settings (``RUN_ALL_SETTINGS``), what is recorded
(``run(**settings)``, or its ``collect``), its goals and its section of ``BENCHMARKS.md``
(``section``); this script runs them and assembles the file.  In order: ``bench_blas``
(GEMM per OpenBLAS kernel), ``bench_optimizer`` (goal 1), ``bench_allreduce`` (goal 2;
the 2 Gbit/s TCP link needs root and ``ip netns``/``tc``, and is skipped with a note
otherwise), ``bench_input_pipeline`` (goal 3), ``bench_iteration`` (goals 4 and 5),
``bench_demo`` (the demo's epoch with OpenBLAS's set-up and the project's),
``bench_scaling`` and ``bench_interconnect`` (a Slurm cluster of its own: root and
``slurm-wlm munge``, skipped with a note otherwise; not with ``--quick`` unless named in
``--only``), then the cost model (``python -m chainer_ext.cost_model``) for the
paper's set-up and, calibrated on the scaling figures, for this machine.

Writes ``bench/results/<name>.json`` (the raw result of each benchmark) and
``BENCHMARKS.md`` at the repository root: date, machine and versions, one table per goal
with the absolute figures and the side-by-side ratio, the goal, met or missed, and what
limits a missed one.  ``--quick`` writes to ``bench/results/quick/`` instead (its
figures are not the goal settings), so it never overwrites the real report.  A
benchmark that fails is reported as failed (with its error) and the others still run;
the exit status is then 1.
"""
import os

# Single-threaded BLAS/numba in this process (bench_optimizer's condition), before NumPy.
for _var in ('OMP_NUM_THREADS', 'MKL_NUM_THREADS', 'OPENBLAS_NUM_THREADS',
             'NUMBA_NUM_THREADS'):
    os.environ.setdefault(_var, '1')

import argparse
import datetime
import importlib
import importlib.metadata
import json
import platform
import subprocess
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
for _p in (REPO, HERE):
    if _p not in sys.path:
        sys.path.insert(0, _p)

import chainer_ext  # noqa: F401  (compatibility stand-ins before chainer loads)
from chainer_ext.job import atomic_files
from chainer_ext.machine import blas as blas_setup
from _markdown import load_average, met, na_or

BENCHMARKS = ('blas', 'optimizer', 'allreduce', 'input_pipeline', 'iteration', 'demo',
              'scaling', 'interconnect')


def bench_module(name):
    """``bench/bench_NAME.py``, imported when first needed (some import Chainer)."""
    return importlib.import_module('bench_' + name)


# ---------------------------------------------------------------------------
# Machine description
# ---------------------------------------------------------------------------

def _mem_total_gib():
    try:
        with open('/proc/meminfo') as f:
            for line in f:
                if line.startswith('MemTotal:'):
                    return int(line.split()[1]) / 1024.0 ** 2
    except OSError:
        pass
    return None


def _version(distribution):
    """Installed version of a distribution, without importing it."""
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def _open_mpi_version():
    try:
        from chainer_ext.job.mpiexec import find_mpiexec
        out = subprocess.run([find_mpiexec(), '--version'], stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True, timeout=60).stdout
        return out.strip().splitlines()[0] if out.strip() else 'unknown'
    except Exception as e:
        return 'unavailable ({})'.format(e)


def machine_info():
    from chainer_ext.job.run_info import cpu_model  # imports Chainer: not before it is needed
    return {
        'cpu_model': cpu_model(),
        'cores': os.cpu_count(),
        'memory_gib': _mem_total_gib(),
        'platform': platform.platform(),
        'python': platform.python_version(),
        'chainer': _version('chainer'),
        'numpy': _version('numpy'),
        'numba': _version('numba'),
        'mpi4py': _version('mpi4py'),
        'open_mpi': _open_mpi_version(),
        'pillow': _version('pillow'),
        'OMP_NUM_THREADS': os.environ.get('OMP_NUM_THREADS'),
        'blas': blas_setup.describe(),
        'load_average_at_start': os.getloadavg() if hasattr(os, 'getloadavg') else None,
    }


def cost_model(args):
    """Text output of ``python -m chainer_ext.cost_model ARGS`` (or the error)."""
    proc = subprocess.run([sys.executable, '-m', 'chainer_ext.cost_model'] + list(args),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          cwd=REPO, env=dict(os.environ, PYTHONPATH=REPO), timeout=600)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ['exit status {}'.format(
            proc.returncode)])[-1]
        return None, last
    return proc.stdout, None


# ---------------------------------------------------------------------------
# BENCHMARKS.md
# ---------------------------------------------------------------------------

def _demote(text, levels=2):
    return '\n'.join(('#' * levels + line) if line.startswith('#') else line
                     for line in text.rstrip().splitlines())


def machine_table(machine):
    """BENCHMARKS.md's table of the machine, the versions and the load."""
    return ['## Machine', '', '| | |', '|---|---|',
            '| CPU | {} |'.format(machine['cpu_model']),
            '| cores | {} |'.format(machine['cores']),
            '| memory | {} |'.format(na_or(machine['memory_gib'], '{:.1f} GiB')),
            '| OS | {} |'.format(machine['platform']),
            '| Python | {} |'.format(machine['python']),
            '| Chainer (ChainerMN) | {} |'.format(machine['chainer']),
            '| NumPy | {} |'.format(machine['numpy']),
            '| numba | {} |'.format(machine['numba']),
            '| mpi4py | {} |'.format(machine['mpi4py']),
            '| Open MPI | {} |'.format(machine['open_mpi']),
            '| OpenBLAS kernel (every figure) | {} ({} thread(s) in this process; '
            'OPENBLAS_CORETYPE={}) |'.format(machine['blas']['kernel'],
                                            machine['blas']['threads'],
                                            machine['blas']['openblas_coretype']),
            '| Pillow | {} |'.format(machine['pillow']),
            '| threads per process | OMP_NUM_THREADS={} |'.format(
                machine['OMP_NUM_THREADS']),
            '| load average (1, 5, 15 min) at start / end | {} / {} |'.format(
                load_average(machine['load_average_at_start']),
                load_average(machine.get('load_average_at_end'))), '']


def cost_model_section(cost_texts, results_dir):
    """BENCHMARKS.md's last section: the cost model's text, calibrated here and for the paper."""
    tail = ['## Cost model (MODELLED)', '']
    measured_text, measured_err = cost_texts.get('measured', (None, None))
    tail += ['### Calibrated on this machine\'s scaling figures',
             '', '`python -m chainer_ext.cost_model --measured {}/scaling.json` (MODELLED '
             'from the MEASURED figures above):'.format(os.path.relpath(results_dir, REPO)),
             '']
    if measured_text:
        tail += [_demote(measured_text, 3), '']
    else:
        tail += ['Not available: {}.'.format(measured_err), '']
    paper_text, paper_err = cost_texts.get('paper', (None, None))
    tail += ['### The paper\'s set-up (1024 Tesla P100, MN-1)', '',
             '`python -m chainer_ext.cost_model --paper` — MODELLED from published hardware '
             'figures, not measured here:', '']
    tail += [_demote(paper_text, 3), ''] if paper_text else [
        'Not available: {}.'.format(paper_err), '']
    return tail


def assemble(mode, machine, results, started, finished, cost_texts, results_dir,
             reused=(), ran=()):
    """The text of BENCHMARKS.md, and the goals of its summary table.

    Each benchmark's section and goals come from its own ``section``; ``reused`` names
    the benchmarks whose figures come from an earlier run (``ran`` ran now).
    """
    goals = []
    body = []
    for name in BENCHMARKS:
        if name in results:
            lines, own = bench_module(name).section(results[name], results)
            body += lines
            goals += own

    head = ['# Benchmarks', '',
            'Generated by `python bench/run_all.py{}` on {} (UTC; {:.0f} min). Raw results: '
            '`{}/*.json`.'.format(' --quick' if mode == 'quick' else '',
                                  started.strftime('%Y-%m-%d %H:%M'),
                                  (finished - started).total_seconds() / 60.0,
                                  os.path.relpath(results_dir, REPO)), '']
    if reused:
        head += ['Figures of {} are reused from an earlier run of this script (their JSON '
                 'in the results folder); {} ran now.'.format(', '.join(reused),
                                                               ', '.join(ran)), '']
    if mode == 'quick':
        head += ['**QUICK MODE: tiny smoke-test settings (ResNet-18 at 32 px, few '
                 'repetitions). These figures do NOT test the goals; run '
                 '`python bench/run_all.py` for them.**', '']
    head += machine_table(machine) + [
        'Every figure below is MEASURED on this machine unless labelled MODELLED.', '',
        '## Summary', '', '| goal | quantity | measured | target | status |',
        '|---|---|---|---|---|']
    for g, what, value, target, ok in goals:
        head.append('| {} | {} | {} | {} | {} |'.format(
            g, what, value, target, met(ok) if ok is not None else (
                'skipped' if value == 'skipped' else ('failed' if value == 'failed'
                                                      else 'reported'))))
    head.append('')
    return ('\n'.join(head + body + cost_model_section(cost_texts, results_dir)).rstrip()
            + '\n', goals)


def _log(msg):
    print(msg, flush=True)


def run_benchmarks(names, mode, results_dir):
    """Run each benchmark of ``names`` with its ``mode`` settings, writing its raw result to
    RESULTS_DIR/NAME.json; returns the results and the names that failed."""
    results = {}
    failed = []
    for name in names:
        cfg = bench_module(name).RUN_ALL_SETTINGS[mode]
        _log('== {} {}'.format(name, json.dumps(cfg)))
        t0 = time.monotonic()
        try:
            module = bench_module(name)
            res = (module.collect(dict(cfg)) if hasattr(module, 'collect')
                   else module.run(**cfg))
        except Exception:
            res = {'error': traceback.format_exc()}
            failed.append(name)
            _log('   FAILED:\n' + res['error'])
        res['settings_used'] = cfg
        res['bench_seconds'] = time.monotonic() - t0
        res['mode'] = mode
        results[name] = res
        atomic_files.write_json(os.path.join(results_dir, name + '.json'), res, indent=1,
                                default=list)
        _log('   done in {:.0f} s'.format(res['bench_seconds']))
    return results, failed


def main(argv=None):
    blas_setup.ensure_kernel()  # the CPU's own BLAS kernel, as train_imagenet.py uses
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--quick', action='store_true',
                   help='tiny settings (smoke test); writes to bench/results/quick/')
    p.add_argument('--reuse', action='store_true',
                   help='for benchmarks not run now, report the figures of an earlier run '
                        'from RESULTS_DIR/NAME.json (said so in the report)')
    p.add_argument('--only', nargs='+', choices=BENCHMARKS, metavar='NAME',
                   help='run only these ({})'.format(', '.join(BENCHMARKS)))
    p.add_argument('--skip', nargs='+', choices=BENCHMARKS, default=[], metavar='NAME',
                   help='skip these')
    p.add_argument('--results-dir', help='raw JSON folder (default bench/results, or '
                                         'bench/results/quick with --quick)')
    p.add_argument('--markdown', help='report path (default BENCHMARKS.md at the repo root, '
                                      'or RESULTS_DIR/BENCHMARKS.md with --quick)')
    args = p.parse_args(argv)

    mode = 'quick' if args.quick else 'full'
    default_dir = os.path.join(HERE, 'results', 'quick') if args.quick else os.path.join(
        HERE, 'results')
    results_dir = os.path.abspath(args.results_dir or default_dir)
    md_path = os.path.abspath(args.markdown or (
        os.path.join(results_dir, 'BENCHMARKS.md') if args.quick
        else os.path.join(REPO, 'BENCHMARKS.md')))
    os.makedirs(results_dir, exist_ok=True)
    # --quick leaves out what its benchmark says it is too slow for (RUN_ALL_IN_QUICK).
    names = [n for n in (args.only or [b for b in BENCHMARKS if not args.quick
                                       or getattr(bench_module(b), 'RUN_ALL_IN_QUICK', True)])
             if n not in args.skip]

    started = datetime.datetime.now(datetime.timezone.utc)
    machine = machine_info()
    _log('run_all ({} settings): {} on {} ({} cores)'.format(
        mode, ', '.join(names), machine['cpu_model'], machine['cores']))
    results, failed = run_benchmarks(names, mode, results_dir)

    reused = []
    if args.reuse:
        for name in BENCHMARKS:
            path = os.path.join(results_dir, name + '.json')
            if name not in results and os.path.exists(path):
                with open(path) as f:
                    results[name] = json.load(f)
                reused.append(name)

    cost_texts = {'paper': cost_model(['--paper'])}
    scaling_json = os.path.join(results_dir, 'scaling.json')
    if 'scaling' in results and 'error' not in results['scaling']:
        cost_texts['measured'] = cost_model(['--measured', scaling_json])
    else:
        cost_texts['measured'] = (None, 'the scaling benchmark did not run or failed')
    machine['load_average_at_end'] = os.getloadavg() if hasattr(os, 'getloadavg') else None
    atomic_files.write_json(os.path.join(results_dir, 'machine.json'), machine, indent=1)
    text, goals = assemble(mode, machine, results, started,
                           datetime.datetime.now(datetime.timezone.utc), cost_texts,
                           results_dir, reused=reused, ran=names)
    atomic_files.write_text(md_path, text)
    _log('wrote {} and {}/*.json'.format(md_path, results_dir))
    for g, what, value, target, ok in goals:
        _log('  goal {} {:<55s} {:>24s}  target {:<20s} {}'.format(
            g, what, value, target, {True: 'met', False: 'MISSED', None: '-'}[ok]))
    if failed:
        _log('FAILED: ' + ', '.join(failed))
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
