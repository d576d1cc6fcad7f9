#!/usr/bin/env python
"""Training iteration and memory of ``train_imagenet.py`` against ChainerMN's ImageNet
example.

    python bench/bench_iteration.py [--arch resnet50] [--insize 224] [--batchsize 32]
                                    [--iterations 5] [--warmup 2] [--rounds 2] [--json PATH]

Goal 4 (throughput).  Two set-ups, each a separate ``mpiexec -n 2`` job on the same
model class (``models.ResNet50`` in ``L.Classifier``), batch (32 per rank), input size
(224) and synthetic data (:class:`chainer_ext.datasets.synthetic.SyntheticImageDataset`, N(0, 1)
images from one seeded generator per example, read in-process by a ``SerialIterator``):

* **ours**: ``train_imagenet.py`` itself, unmodified: ``--synthetic --no-validation
  --loaderjob 0 --log-interval 1 --max-iterations K`` -- RMSpropWarmup with its
  learning-rate and alpha_SGD schedule extensions, weight decay hooks, the float16
  all-reduce (``PackedRingCommunicator``), the non-finite update guard, batch
  normalization keeping the last batch's statistics, snapshots, LogReport/PrintReport;
* **baseline**: ChainerMN's own ImageNet example wiring (``bench/_iteration_worker.py
  baseline``): ``MomentumSGD(lr=0.01, momentum=0.9)`` under
  ``chainermn.create_multi_node_optimizer``, ``chainermn.create_communicator('naive')``
  (one float32 ``MPI_Allreduce`` per array), Chainer's batch normalization with moving
  averages, ``StandardUpdater``, the example's extensions.

Both log with Chainer's ``LogReport`` after every iteration; an iteration's time is the
difference of ``elapsed_time`` between consecutive entries, the first ``--warmup``
iterations dropped (iteration 1 includes start-up; ChainerMN's multi-node optimizer
broadcasts the weights at its first update and creates its state at the second;
``train_imagenet.py`` creates RMSpropWarmup's state at its first).  Jobs alternate
(ours, baseline, then baseline, ours, ...: the order flips every round) so that load on
the shared machine hits both; the reported figure is the median over all kept
iterations of all rounds, throughput = ranks x batch / median.  Goal: ours >= 0.97x the
baseline's throughput (the paper's additions cost <= 3 %).

Goal 5 (memory).  Peak resident set size of every rank of those same jobs, measured
from outside: each rank runs under ``_iteration_worker.py rss-wrap``, which starts the
real command as its child and reads ``ru_maxrss`` of ``os.wait4`` (the kernel's
high-water mark, ``VmHWM``) when it ends; ``train_imagenet.py`` needs no change for
this.  The maximum over rounds is reported per rank.  And the optimizer-state proof
(``_iteration_worker.py state-check``, a fresh process): RMSpropWarmup on ResNet-50
after one update keeps, for each of the 161 parameters, exactly ``{'delta', 'ms'}`` of
the parameter's shape and dtype, no ``_fp32_param`` copy, no other array on the rule
or optimizer, 2 x 102,228,128 bytes in all; the first update's live allocation
(``tracemalloc``) and resident-set growth are measured against that.

On this 2-core machine two ranks share the cores and run single-threaded BLAS
(``OMP_NUM_THREADS=1``); a ResNet-50 iteration at 224 px takes tens of seconds, so the
absolute throughput says nothing about GPUs -- the ratio is the figure of interest.
``--arch resnet18 --insize 32 --batchsize 4`` is a seconds-long smoke setting.
"""
import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
if REPO not in sys.path:
    sys.path.insert(0, REPO)

from chainer_ext.mpi_launch import run_mpi

WORKER = os.path.join(HERE, '_iteration_worker.py')
GOAL_THROUGHPUT_RATIO = 0.97
SETUPS = ('ours', 'baseline')


def _command(setup, out, arch, insize, batchsize, iterations, seed):
    if setup == 'ours':
        return [sys.executable, os.path.join(REPO, 'train_imagenet.py'), '--synthetic',
                '--arch', arch, '--insize', str(insize), '--batchsize', str(batchsize),
                '--max-iterations', str(iterations), '--no-validation', '--loaderjob', '0',
                '--log-interval', '1', '--keep-snapshots', '1', '--seed', str(seed),
                '--device', 'cpu', '--out', out]
    if setup == 'baseline':
        return [sys.executable, WORKER, 'baseline', '--arch', arch, '--insize', str(insize),
                '--batchsize', str(batchsize), '--max-iterations', str(iterations),
                '--seed', str(seed), '--out', out]
    raise ValueError('unknown set-up {!r}'.format(setup))


def iteration_times(log):
    """``{iteration: seconds}`` from a per-iteration LogReport list (iteration >= 2)."""
    entries = sorted((int(e['iteration']), float(e['elapsed_time'])) for e in log
                     if 'iteration' in e and 'elapsed_time' in e)
    out = {}
    for (i0, t0), (i1, t1) in zip(entries, entries[1:]):
        if i1 == i0 + 1:
            out[i1] = t1 - t0
    return out


def run_job(setup, ranks=2, arch='resnet50', insize=224, batchsize=32, iterations=5,
            seed=0, timeout=1800):
    """One ``mpiexec`` job of ``setup``; returns its per-iteration times and peak RSS."""
    tmp = tempfile.mkdtemp(prefix='bench-iter-{}-'.format(setup))
    try:
        out = os.path.join(tmp, 'out')
        prefix = os.path.join(tmp, 'rss')
        cmd = [sys.executable, WORKER, 'rss-wrap', prefix, '--'] + _command(
            setup, out, arch, insize, batchsize, iterations, seed)
        t0 = time.monotonic()
        proc = run_mpi(ranks, cmd, timeout=timeout, env={'PYTHONPATH': REPO}, cwd=REPO)
        wall = time.monotonic() - t0
        if proc.returncode != 0:
            raise RuntimeError('{} job ({} ranks) failed with status {}:\n{}'.format(
                setup, ranks, proc.returncode, proc.stdout[-5000:]))
        try:
            with open(os.path.join(out, 'log')) as f:
                log = json.load(f)
        except (OSError, ValueError) as e:
            raise RuntimeError('{} job wrote no readable LogReport ({}):\n{}'.format(
                setup, e, proc.stdout[-5000:]))
        rss = []
        for r in range(ranks):
            with open('{}.rank{}.json'.format(prefix, r)) as f:
                rss.append(json.load(f))
        times = iteration_times(log)
        if len(times) < iterations - 1:
            raise RuntimeError('{} job logged {} iteration times, expected {}'.format(
                setup, len(times), iterations - 1))
        return {'iteration_s': {str(k): v for k, v in sorted(times.items())},
                'peak_rss_kb': [r['maxrss_kb'] for r in rss],
                'cpu_s_per_rank': [r['user_s'] + r['sys_s'] for r in rss],
                'job_wall_s': wall, 'last_loss': log[-1].get('main/loss')}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def state_check(arch='resnet50', timeout=600):
    """Goal 5's optimizer-state proof, in a fresh single-threaded process."""
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONPATH=REPO)
    proc = subprocess.run([sys.executable, WORKER, 'state-check', '--arch', arch],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=timeout, env=env, cwd=REPO)
    for line in proc.stdout.splitlines():
        if line.startswith('STATE '):
            return json.loads(line[len('STATE '):])
    raise RuntimeError('state check printed no result (status {}):\n{}'.format(
        proc.returncode, proc.stdout[-5000:]))


def run(arch='resnet50', insize=224, batchsize=32, iterations=5, warmup=2, rounds=2,
        ranks=2, seed=0, timeout=1800, memory=True, state_arch=None, log=print):
    """Both set-ups, alternating, ``rounds`` jobs each; returns a JSON-able dict."""
    if warmup < 1 or iterations < warmup + 1:
        raise ValueError('need --warmup >= 1 (iteration 1 has no previous LogReport '
                         'entry) and --iterations >= --warmup + 1, got {} and {}'
                         .format(iterations, warmup))
    jobs = {s: [] for s in SETUPS}
    for r in range(rounds):
        order = SETUPS if r % 2 == 0 else SETUPS[::-1]
        for setup in order:
            job = run_job(setup, ranks, arch, insize, batchsize, iterations, seed, timeout)
            job['round'] = r
            job['load_average_after'] = list(os.getloadavg())
            jobs[setup].append(job)
            if log:
                log('  round {} {:<8s} iterations {}  peak RSS {} MB  CPU {} s  '
                    'load {:.2f}'.format(
                        r, setup, ' '.join('{:.3f}'.format(v)
                                           for v in job['iteration_s'].values()),
                        '/'.join(str(kb // 1024) for kb in job['peak_rss_kb']),
                        '/'.join('{:.0f}'.format(c) for c in job['cpu_s_per_rank']),
                        job['load_average_after'][0]))
    res = {}
    for setup, js in jobs.items():
        kept = [v for j in js for k, v in j['iteration_s'].items() if int(k) > warmup]
        med = statistics.median(kept)
        res[setup] = {
            'median_iteration_s': med, 'min_iteration_s': min(kept),
            'images_per_s': ranks * batchsize / med,
            'round_medians_s': [statistics.median(
                [v for k, v in j['iteration_s'].items() if int(k) > warmup]) for j in js],
            'kept_samples': len(kept),
            'peak_rss_mb_per_rank': [max(j['peak_rss_kb'][r] for j in js) / 1024.0
                                     for r in range(ranks)],
            'jobs': js,
        }
    ratio = res['ours']['images_per_s'] / res['baseline']['images_per_s']
    out = {
        'machine': {'cpu_count': os.cpu_count(), 'platform': platform.platform(),
                    'OMP_NUM_THREADS': os.environ.get('OMP_NUM_THREADS', '1 (mpi_env)')},
        'settings': {'arch': arch, 'insize': insize, 'batchsize': batchsize,
                     'ranks': ranks, 'iterations': iterations, 'warmup': warmup,
                     'rounds': rounds, 'seed': seed},
        'setups': {'ours': 'train_imagenet.py --synthetic (RMSpropWarmup + schedules + '
                           'weight decay + float16 ring all-reduce + non-finite guard + '
                           'last-batch BN)',
                   'baseline': "ChainerMN ImageNet example wiring: MomentumSGD(0.01, 0.9), "
                               "create_communicator('naive') float32, BN moving averages, "
                               'StandardUpdater'},
        'throughput': res,
        'throughput_ratio': ratio,
        'goal_throughput_ratio': GOAL_THROUGHPUT_RATIO,
        'goal_throughput_met': ratio >= GOAL_THROUGHPUT_RATIO,
        'peak_rss_ratio': (max(res['ours']['peak_rss_mb_per_rank'])
                           / max(res['baseline']['peak_rss_mb_per_rank'])),
    }
    if memory:
        st = state_check(state_arch or arch)
        out['optimizer_state'] = st
        out['goal_optimizer_state_met'] = bool(st['ok'])
    return out


def summary(res):
    s = res['settings']
    lines = ['{} at {} px, batch {} per rank, {} ranks; {} iterations per job, first {} '
             'dropped; {} round(s) per set-up'.format(
                 s['arch'], s['insize'], s['batchsize'], s['ranks'], s['iterations'],
                 s['warmup'], s['rounds'])]
    for name in SETUPS:
        r = res['throughput'][name]
        lines.append('  {:<8s} median {:8.3f} s/iteration  {:8.2f} images/s  '
                     'peak RSS per rank {} MB'.format(
                         name, r['median_iteration_s'], r['images_per_s'],
                         ' / '.join('{:.0f}'.format(v) for v in r['peak_rss_mb_per_rank'])))
    lines.append('  throughput ours/baseline {:.3f} (goal >= {}: {})'.format(
        res['throughput_ratio'], res['goal_throughput_ratio'],
        'met' if res['goal_throughput_met'] else 'NOT met'))
    lines.append('  peak RSS ours/baseline {:.3f}'.format(res['peak_rss_ratio']))
    st = res.get('optimizer_state')
    if st:
        lines.append('  optimizer state ({}): {} arrays, state {:,} B = {:.4f} x params '
                     '{:,} B; first update: traced live {:.4f} x, RSS +{:.1f} MB '
                     '({:.3f} x); {}'.format(
                         st['arch'], st['n_arrays'], st['state_bytes'],
                         st['state_over_param_bytes'], st['param_bytes'],
                         st['traced_live_over_param_bytes'], st['rss_delta_bytes'] / 1e6,
                         st['rss_delta_over_param_bytes'],
                         'OK' if st['ok'] else 'PROBLEMS: {}'.format(st['problems'][:5])))
    return '\n'.join(lines)


def main(argv=None):
    from chainer_ext import blas_setup
    blas_setup.ensure_kernel()  # the CPU's own BLAS kernel, as train_imagenet.py uses
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--arch', default='resnet50', choices=('resnet50', 'resnet18'))
    p.add_argument('--insize', type=int, default=224)
    p.add_argument('--batchsize', type=int, default=32)
    p.add_argument('--iterations', type=int, default=5,
                   help='iterations per job (K), warm-up included')
    p.add_argument('--warmup', type=int, default=2, help='first iterations not timed')
    p.add_argument('--rounds', type=int, default=2, help='jobs per set-up, alternating')
    p.add_argument('--ranks', type=int, default=2)
    p.add_argument('--timeout', type=int, default=1800, help='seconds per job')
    p.add_argument('--no-memory', action='store_true', help='skip the optimizer-state check')
    p.add_argument('--state-arch', default=None,
                   help='network of the optimizer-state check (default: --arch)')
    p.add_argument('--json', metavar='PATH', help='write the results here')
    args = p.parse_args(argv)
    if args.rounds < 1 or args.ranks < 1 or args.warmup < 1:
        p.error('--rounds, --ranks and --warmup must be >= 1')
    res = run(arch=args.arch, insize=args.insize, batchsize=args.batchsize,
              iterations=args.iterations, warmup=args.warmup, rounds=args.rounds,
              ranks=args.ranks, timeout=args.timeout, memory=not args.no_memory,
              state_arch=args.state_arch)
    print(summary(res))
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(res, f, indent=1)
    return res


if __name__ == '__main__':
    main()
