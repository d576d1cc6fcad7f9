#!/usr/bin/env python
"""The demo's time per epoch with OpenBLAS's own set-up and with the project's, side by side.

    python bench/bench_demo.py [--iterations 68] [--rounds 1] [--json FILE]

Runs ``mpiexec -n 2 train_imagenet.py --demo --no-plots`` for ``--iterations``
iterations under each setting, rounds interleaved:

- ``openblas_default``: ``OPENBLAS_CORETYPE=Prescott`` (what NumPy 1.26's OpenBLAS picked
  on this project's AVX-512 VM; NumPy 2's OpenBLAS runs its ``Katmai`` for that value) and
  every core's worth of BLAS threads in each rank;
- ``project``: nothing set, so ``blas_setup`` runs the CPU's kernel (restarting the rank
  with it where OpenBLAS picked an older one) and gives each rank
  the cores it owns (chainer_ext.machine.cores).

Time per epoch is read from the run's log between its first and last entries (start-up
and the first interval excluded; validation included), scaled to the demo's epoch.
Involuntary context switches are those of the finished job (``RUSAGE_CHILDREN``).
"""
import argparse
import json
import math
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from _markdown import failed_section, Goal

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
RANKS = 2
#: Goal: the demo's 18 epochs (training and validation) within this many seconds.
GOAL_SECONDS_18_EPOCHS = 200
#: Images per epoch and per iteration of the demo (1,437 training digits, 2 ranks x 32).
DEMO_TRAIN, DEMO_BATCH = 1437, 64
SETTINGS = ('openblas_default', 'project')


def environment(setting):
    from chainer_ext.machine import cores
    from chainer_ext.machine.blas import REEXEC_MARK, THREAD_VARS
    env = {k: v for k, v in os.environ.items()
           if k not in THREAD_VARS + ('OPENBLAS_CORETYPE', REEXEC_MARK)}
    if setting == 'openblas_default':
        env['OPENBLAS_CORETYPE'] = 'Prescott'
        env['OMP_NUM_THREADS'] = str(cores.of_process())
    env['PYTHONPATH'] = REPO + os.pathsep + env.get('PYTHONPATH', '')
    return env


def measure(setting, iterations, log_interval, cache):
    """One demo run; ``{seconds_per_epoch, seconds_per_iteration, involuntary_switches}``."""
    from chainer_ext.job.mpiexec import find_mpiexec
    out = tempfile.mkdtemp(prefix='bench-demo-')
    try:
        cmd = [find_mpiexec(), '-n', str(RANKS), '--oversubscribe']
        for var in ('OPENBLAS_CORETYPE', 'OMP_NUM_THREADS'):
            if var in environment(setting):
                cmd += ['-x', var]
        cmd += [sys.executable, os.path.join(REPO, 'train_imagenet.py'), '--demo', '--no-plots',
                '--out', out, '--demo-cache', cache, '--max-iterations', str(iterations),
                '--log-interval', str(log_interval)]
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_nivcsw
        started = time.monotonic()
        proc = subprocess.run(cmd, env=environment(setting), cwd=REPO, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        wall = time.monotonic() - started
        switches = resource.getrusage(resource.RUSAGE_CHILDREN).ru_nivcsw - before
        if proc.returncode != 0:
            raise RuntimeError('demo run ({}) failed with status {}:\n{}'.format(
                setting, proc.returncode, proc.stdout[-3000:]))
        with open(os.path.join(out, 'log')) as f:
            log = json.load(f)
        with open(os.path.join(out, 'config.json')) as f:
            blas = json.load(f).get('blas', {})
    finally:
        shutil.rmtree(out, ignore_errors=True)
    if len(log) < 2:
        raise RuntimeError('demo run ({}) logged {} entries; need 2'.format(setting, len(log)))
    per_iteration = ((log[-1]['elapsed_time'] - log[0]['elapsed_time']) /
                     (log[-1]['iteration'] - log[0]['iteration']))
    return dict(seconds_per_iteration=per_iteration,
                seconds_per_epoch=per_iteration * DEMO_TRAIN / DEMO_BATCH,
                involuntary_switches=switches, wall_seconds=wall,
                kernel=blas.get('kernel'), threads=blas.get('threads'))


def run(iterations=68, log_interval=0, rounds=1):
    """``log_interval`` 0 logs at epoch ends (validation included in the interval)."""
    cache = tempfile.mkdtemp(prefix='bench-demo-data-')
    try:
        samples = {s: [] for s in SETTINGS}
        for _ in range(rounds):
            for setting in SETTINGS:
                samples[setting].append(measure(setting, iterations, log_interval, cache))
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    result = {'iterations': iterations, 'log_interval': log_interval, 'rounds': rounds,
              'ranks': RANKS, 'settings': {}}
    for setting, runs in samples.items():
        epoch = statistics.median(r['seconds_per_epoch'] for r in runs)
        result['settings'][setting] = dict(
            seconds_per_epoch=epoch, demo_seconds_18_epochs=18 * epoch,
            involuntary_switches=statistics.median(r['involuntary_switches'] for r in runs),
            kernel=runs[-1]['kernel'], threads=runs[-1]['threads'], runs=runs)
    before = result['settings']['openblas_default']['seconds_per_epoch']
    after = result['settings']['project']['seconds_per_epoch']
    result['speedup'] = before / after if after > 0 else math.inf
    return result


# ---------------------------------------------------------------------------
# In bench/run_all.py: settings, what it records, and this benchmark's section
# ---------------------------------------------------------------------------

#: run_all's settings: the goals', and the smoke test's (``--quick``).
RUN_ALL_SETTINGS = {
    'full': dict(iterations=68, log_interval=0, rounds=3),
    'quick': dict(iterations=3, log_interval=1, rounds=1),
}


def section(res, results):
    """This benchmark's part of BENCHMARKS.md: ``(markdown lines, goals)``."""
    title = '## The demo, per epoch (`bench/bench_demo.py`)'
    if 'error' in res:
        return failed_section(title, 'bench_demo', res, Goal(
            'demo', 'demo training time (18 epochs)', 'failed',
            '<= {} s'.format(GOAL_SECONDS_18_EPOCHS), None))
    goals = []
    out = [title, '']
    out += ['`mpiexec -n {} train_imagenet.py --demo --no-plots`, {} iterations per run, '
            'time between the first and last log entries (validation included) scaled to '
            'one epoch of 1,437 images; {} round(s), settings interleaved.'.format(
                res['ranks'], res['iterations'], res['rounds']), '',
            '| setting | kernel | BLAS threads per rank | s per epoch | 18 epochs | '
            'involuntary context switches |', '|---|---|---|---|---|---|']
    for name, r in res['settings'].items():
        out.append('| {} | {} | {} | {:.2f} | {:.0f} s | {:,.0f} |'.format(
            name, r['kernel'], r['threads'], r['seconds_per_epoch'],
            r['demo_seconds_18_epochs'], r['involuntary_switches']))
    after = res['settings']['project']['demo_seconds_18_epochs']
    out += ['', 'Speed-up of the project\'s set-up: {:.2f}x.'.format(res['speedup']), '']
    goals.append(Goal('demo', 'demo training, 18 epochs (from s per epoch)',
                      '{:.0f} s'.format(after), '<= {} s'.format(GOAL_SECONDS_18_EPOCHS),
                      after <= GOAL_SECONDS_18_EPOCHS))
    return out, goals


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--iterations', type=int, default=68, help='iterations per run (68: 3 epochs)')
    p.add_argument('--log-interval', type=int, default=0)
    p.add_argument('--rounds', type=int, default=1)
    p.add_argument('--json', help='write the results here')
    args = p.parse_args(argv)
    res = run(args.iterations, args.log_interval, args.rounds)
    text = json.dumps(res, indent=1)
    print(text)
    if args.json:
        with open(args.json, 'w') as f:
            f.write(text + '\n')
    return 0


if __name__ == '__main__':
    sys.path.insert(0, REPO)
    import chainer_ext  # noqa: F401  (compatibility stand-ins before chainer loads)
    sys.exit(main())
