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

from chainer_ext.job.mpiexec import run_mpi
from _markdown import failed_section, Goal, met, na_or

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


# ---------------------------------------------------------------------------
# In bench/run_all.py: settings, what it records, and this benchmark's section
# ---------------------------------------------------------------------------

#: run_all's settings: the goals', and the smoke test's (``--quick``).
RUN_ALL_SETTINGS = {
    'full': dict(arch='resnet50', insize=224, batchsize=32, iterations=5, warmup=2,
                 rounds=2, state_arch='resnet50'),
    'quick': dict(arch='resnet18', insize=32, batchsize=4, iterations=4, warmup=2,
                  rounds=1, state_arch='resnet18'),
}


def collect(cfg):
    """What run_all records with ``cfg``, saying how far it got."""
    return run(log=lambda msg: print(msg, flush=True), **cfg)


def _attribution(it, opt, ar):
    """Expected extra time per iteration of ours, from goals 1 and 2's figures."""
    parts = []
    base = it['throughput']['baseline']['median_iteration_s']
    extra = 0.0
    if opt and 'error' not in opt:
        d = 1e-3 * (opt['update_ms']['RMSpropWarmup']['median_ms']
                    - opt['update_ms']['MomentumSGD']['median_ms'])
        extra += d
        parts.append('optimizer update {:+.0f} ms (goal 1: RMSpropWarmup - MomentumSGD, '
                     'one thread)'.format(1e3 * d))
    shm = (ar or {}).get('links', {}).get('shm') if ar and 'error' not in ar else None
    if shm:
        d = shm['median_s']['fp16_ring'] - shm['median_s']['chainermn_naive']
        extra += d
        parts.append('all-reduce {:+.0f} ms (goal 2, shared memory: fp16 ring - '
                     'ChainerMN naive)'.format(1e3 * d))
    if not parts:
        return None
    return ('Expected from goals 1 and 2 (same ResNet-50 gradients): {} = {:+.0f} ms, '
            '{:+.1%} of the baseline iteration of {:.2f} s. Forward, backward and data are '
            'the same code in both set-ups (last-batch BN is Chainer\'s BN with decay 0); '
            'the remaining differences are small per-iteration extensions (learning-rate '
            'and alpha_SGD schedules, the non-finite guard\'s finiteness check and its '
            'one-integer all-reduce).'.format(' and '.join(parts), 1e3 * extra, extra / base,
                                              base))


def _spread(r, warmup):
    kept = [v for j in r['jobs'] for k, v in j['iteration_s'].items() if int(k) > warmup]
    return (max(kept) - min(kept)) / r['median_iteration_s'] if kept else None


def _throughput_section(res, results):
    """Goal 4's part: ``(markdown lines, goals)``."""
    title = ('## Goal 4 — training iteration vs ChainerMN\'s ImageNet example '
             '(`bench/bench_iteration.py`)')
    if 'error' in res:
        return failed_section(title, 'bench_iteration', res, Goal(
            '4', 'train_imagenet.py throughput / ChainerMN example', 'failed',
            '>= {}x'.format(GOAL_THROUGHPUT_RATIO), None))
    goals = []
    out = [title, '']
    s = res['settings']
    t = res['throughput']
    out += ['{} at {} px, batch {} per rank, {} ranks (`mpiexec -n {}`), synthetic N(0, 1) '
            'images through a `SerialIterator` in both; {} iterations per job, the first '
            '{} not timed; {} job(s) per set-up, alternating. Iteration time = difference '
            'of the LogReport\'s `elapsed_time` between consecutive iterations; '
            'median.'.format(s['arch'], s['insize'], s['batchsize'], s['ranks'],
                             s['ranks'], s['iterations'], s['warmup'], s['rounds']), '',
            '* **ours**: {}'.format(res['setups']['ours']),
            '* **baseline**: {}'.format(res['setups']['baseline']), '',
            '| set-up | median s / iteration | min s | per-job medians s | images/s '
            '(all ranks) |', '|---|---|---|---|---|']
    for name in ('ours', 'baseline'):
        r = t[name]
        out.append('| {} | {:.3f} | {:.3f} | {} | {:.2f} |'.format(
            name, r['median_iteration_s'], r['min_iteration_s'],
            ', '.join('{:.3f}'.format(v) for v in r['round_medians_s']), r['images_per_s']))
    out += ['', 'Goal: ours >= {}x the baseline\'s throughput: **{:.3f}x** — {}.'.format(
        res['goal_throughput_ratio'], res['throughput_ratio'],
        met(res['goal_throughput_met'])), '']
    # Goals 1 and 2 time ResNet-50's gradients: comparable only for a ResNet-50 iteration.
    note = (_attribution(res, results.get('optimizer'), results.get('allreduce'))
            if s['arch'] == 'resnet50' else None)
    if note:
        out += [note, '']
    spread = {name: _spread(t[name], s['warmup']) for name in ('ours', 'baseline')}
    out += ['Spread of the timed iterations, (max - min) / median: ours {}, baseline {}; '
            'load average at start / end of the run in the machine table.'.format(
                na_or(spread['ours'], '{:.1%}'), na_or(spread['baseline'], '{:.1%}')), '']
    if not res['goal_throughput_met']:
        out += ['What limits it: if the spread above is comparable to the gap, the miss is '
                'within the noise of this shared 2-core machine (two ranks on two cores, '
                'anything else running steals a rank\'s core); rerun on a quiet machine '
                'with more rounds. If the gap is reproducible, the optimizer update, the '
                'all-reduce and the per-iteration extensions are the only code that differs '
                '(see the expected difference above).', '']
    goals.append(Goal('4', '{} iteration throughput, ours / ChainerMN example'.format(s['arch']),
                      '{:.3f}x'.format(res['throughput_ratio']),
                      '>= {}x'.format(GOAL_THROUGHPUT_RATIO), res['goal_throughput_met']))
    return out, goals


def _memory_section(res):
    """Goal 5's part: ``(markdown lines, goals)``."""
    title = '## Goal 5 — memory (`bench/bench_iteration.py`)'
    if 'error' in res:
        return failed_section(title, 'bench_iteration', res, Goal(
            '5', 'optimizer state = 2 parameter-sized arrays', 'failed', '', None))
    goals = []
    out = [title, '']
    t = res['throughput']
    out += ['Peak resident set size of each rank during the jobs of goal 4 (`ru_maxrss` '
            'of the rank process, read by a wrapper that `wait4`s it: '
            '`bench/_iteration_worker.py rss-wrap`; maximum over the jobs).', '',
            '| set-up | ' + ' | '.join('rank {} MB'.format(i) for i in range(
                len(t['ours']['peak_rss_mb_per_rank']))) + ' |',
            '|---|' + '---|' * len(t['ours']['peak_rss_mb_per_rank'])]
    for name in ('ours', 'baseline'):
        out.append('| {} | {} |'.format(name, ' | '.join(
            '{:.0f}'.format(v) for v in t[name]['peak_rss_mb_per_rank'])))
    diff = [a - b for a, b in zip(t['ours']['peak_rss_mb_per_rank'],
                                  t['baseline']['peak_rss_mb_per_rank'])]
    out += ['', 'Peak RSS ours / baseline (largest rank): {:.3f}x; ours - baseline per rank: '
            '{} MB. Expected difference: one '
            'more parameter-sized array of optimizer state (RMSpropWarmup keeps 2, '
            'MomentumSGD 1), the float16 all-reduce buffers, and numba (imported and its '
            'kernel loaded by RMSpropWarmup, ~55 MB) and matplotlib (PlotReport, rank 0).'
            .format(res['peak_rss_ratio'], ' / '.join('{:+.0f}'.format(d) for d in diff)),
            '']
    st = res.get('optimizer_state')
    if st:
        out += ['Optimizer state after one RMSpropWarmup update on {} ({} parameter arrays, '
                '{:,} values, {}), fresh process, gradients set in place, numba warmed up '
                'on a toy model first:'.format(st['arch'], st['n_arrays'], st['n_params'],
                                               '/'.join(st['dtypes'])), '',
                '| check | measured | expected |', '|---|---|---|',
                '| state keys per parameter | {} | exactly {{delta, ms}}, parameter\'s '
                'shape and dtype, own buffer |'.format(
                    'as expected for all {}'.format(st['n_arrays']) if not st['n_problems']
                    else '{} problem(s): {}'.format(st['n_problems'], st['problems'][:3])),
                '| `_fp32_param` copies / other arrays on rules, hooks, optimizer | {} | '
                'none |'.format('none' if not st['n_problems'] else 'see above'),
                '| state bytes | {:,} ({:.4f}x parameter bytes {:,}) | 2x |'.format(
                    st['state_bytes'], st['state_over_param_bytes'], st['param_bytes']),
                '| live allocation after the first update (tracemalloc) | {:,} B '
                '({:.4f}x) | 2x |'.format(st['traced_live_bytes_after_first_update'],
                                          st['traced_live_over_param_bytes']),
                '| peak allocation during the first update (tracemalloc) | {:,} B '
                '({:.4f}x) | 2x + temporaries |'.format(
                    st['traced_peak_bytes_during_first_update'],
                    st['traced_peak_bytes_during_first_update'] / st['param_bytes']),
                '| resident-set growth over the first update (VmRSS) | {:.1f} MB '
                '({:.3f}x) | ~2x (page granularity, malloc) |'.format(
                    st['rss_delta_bytes'] / 1e6, st['rss_delta_over_param_bytes']), '',
                'Goal: the optimizer state is exactly two parameter-sized arrays with no '
                'hidden copies — {}.'.format(met(st['ok'])), '']
        goals.append(Goal('5', 'RMSpropWarmup state on {}: bytes / parameter bytes'.format(
            st['arch']), '{:.4f}x (traced {:.4f}x)'.format(
                st['state_over_param_bytes'], st['traced_live_over_param_bytes']),
            'exactly 2 arrays, 2x', st['ok']))
    goals.append(Goal('5', 'peak RSS per rank, ours / baseline', '{:.3f}x'.format(
        res['peak_rss_ratio']), 'reported', None))
    return out, goals


def section(res, results):
    """This benchmark's part of BENCHMARKS.md, goals 4 (throughput) and 5 (memory):
    ``(markdown lines, goals)``; goal 4 draws on goals 1 and 2's ``results``."""
    lines, goals = _throughput_section(res, results)
    more, more_goals = _memory_section(res)
    return lines + more, goals + more_goals


def main(argv=None):
    from chainer_ext.machine import blas as blas_setup
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
