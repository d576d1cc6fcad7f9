"""Time one ``optimizer.update()`` of RMSpropWarmup against Chainer's MomentumSGD and RMSprop
on ResNet-50's parameters (float32, CPU).

    OMP_NUM_THREADS=1 python bench/bench_optimizer.py [--rounds 20] [--json PATH]

The parameter list is that of torchvision-style ResNet-50 (bottleneck blocks [3, 4, 6, 3],
no convolution biases, BN gamma/beta, fc with bias): 161 arrays, 25,557,032 values,
generated from the architecture without importing a model.  All three optimizers get the
same gradients; the rounds interleave them (rotating the order every round) so that load
on the shared machine hits all of them alike, and the median per optimizer is reported.
Two warm-up updates per optimizer come first, so numba's compilation (or cache load) is
not timed.  Goals (A.1 implementation): RMSpropWarmup <= 1.6x MomentumSGD and faster than
Chainer's RMSprop.

Run single-threaded (the script sets OMP_NUM_THREADS/MKL_NUM_THREADS/OPENBLAS_NUM_THREADS
to 1 unless already set, before NumPy is imported when run as a script); all three update
paths are single-threaded elementwise code, so this is the fair comparison.
"""
import argparse
import json
import os
import platform
import statistics
import sys
import time

for _var in ('OMP_NUM_THREADS', 'MKL_NUM_THREADS', 'OPENBLAS_NUM_THREADS',
             'NUMBA_NUM_THREADS'):
    os.environ.setdefault(_var, '1')

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, REPO)

import numpy

import chainer_ext  # noqa: F401  (compatibility stand-ins before chainer loads)
import chainer
from chainer import optimizers as chainer_optimizers

from chainer_ext.optimizers import RMSpropWarmup
from _markdown import failed_section, Goal, met

#: Goal 1: an RMSpropWarmup update within this multiple of a MomentumSGD update ...
GOAL_VS_MOMENTUM = 1.6
#: ... and faster than Chainer's own RMSprop (a ratio below this).
GOAL_VS_RMSPROP = 1.0


def resnet50_param_shapes(n_classes=1000):
    """``[(name, shape)]`` of torchvision-style ResNet-50's parameters, in model order."""
    shapes = [('conv1/W', (64, 3, 7, 7)), ('bn1/gamma', (64,)), ('bn1/beta', (64,))]
    in_ch = 64
    for stage, (planes, blocks) in enumerate(zip((64, 128, 256, 512), (3, 4, 6, 3)), 1):
        for block in range(blocks):
            prefix = 'res{}/{}'.format(stage + 1, block)
            out_ch = planes * 4
            for i, (cout, cin, k) in enumerate(
                    ((planes, in_ch, 1), (planes, planes, 3), (out_ch, planes, 1)), 1):
                shapes.append(('{}/conv{}/W'.format(prefix, i), (cout, cin, k, k)))
                shapes.append(('{}/bn{}/gamma'.format(prefix, i), (cout,)))
                shapes.append(('{}/bn{}/beta'.format(prefix, i), (cout,)))
            if block == 0:   # projection shortcut
                shapes.append(('{}/downsample/W'.format(prefix), (out_ch, in_ch, 1, 1)))
                shapes.append(('{}/downsample/gamma'.format(prefix), (out_ch,)))
                shapes.append(('{}/downsample/beta'.format(prefix), (out_ch,)))
            in_ch = out_ch
    shapes += [('fc/W', (n_classes, in_ch)), ('fc/b', (n_classes,))]
    return shapes


class _Params(chainer.Link):
    def __init__(self, shapes, rng, grads):
        super(_Params, self).__init__()
        with self.init_scope():
            for i, ((name, shape), g) in enumerate(zip(shapes, grads)):
                p = chainer.Parameter(
                    (rng.standard_normal(shape) * 0.05).astype(numpy.float32))
                p.grad = g          # shared, read-only for these optimizers
                setattr(self, 'p{:03d}'.format(i), p)


def _optimizers():
    return {
        'RMSpropWarmup': RMSpropWarmup(lr=0.1, alpha_sgd=0.5),
        'MomentumSGD': chainer_optimizers.MomentumSGD(lr=0.1, momentum=0.9),
        'RMSprop': chainer_optimizers.RMSprop(lr=0.01),
    }


def run(rounds=20, warmup=2, seed=0):
    """Returns a dict with per-optimizer median/min ms per update, the ratios and goals."""
    shapes = resnet50_param_shapes()
    rng = numpy.random.RandomState(seed)
    grads = [(rng.standard_normal(s) * 0.01).astype(numpy.float32) for _, s in shapes]
    opts = _optimizers()
    for opt in opts.values():
        opt.setup(_Params(shapes, rng, grads))
        for _ in range(warmup):
            opt.update()
    names = list(opts)
    times = {name: [] for name in names}
    for r in range(rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            t0 = time.perf_counter()
            opts[name].update()
            times[name].append(time.perf_counter() - t0)
    ms = {name: {'median_ms': 1e3 * statistics.median(ts), 'min_ms': 1e3 * min(ts)}
          for name, ts in times.items()}
    ours = ms['RMSpropWarmup']['median_ms']
    ratios = {'RMSpropWarmup/MomentumSGD': ours / ms['MomentumSGD']['median_ms'],
              'RMSpropWarmup/RMSprop': ours / ms['RMSprop']['median_ms']}
    return {
        'machine': {'cpu_count': os.cpu_count(), 'platform': platform.platform(),
                    'processor': platform.processor(),
                    'OMP_NUM_THREADS': os.environ.get('OMP_NUM_THREADS')},
        'versions': {'numpy': numpy.__version__, 'chainer': chainer.__version__,
                     'numba': _numba_version()},
        'n_arrays': len(shapes),
        'n_params': int(sum(numpy.prod(s) for _, s in shapes)),
        'dtype': 'float32', 'rounds': rounds, 'warmup': warmup,
        'update_ms': ms, 'ratios': ratios,
        'goals': {'vs_momentum_le_{}'.format(GOAL_VS_MOMENTUM):
                  ratios['RMSpropWarmup/MomentumSGD'] <= GOAL_VS_MOMENTUM,
                  'faster_than_rmsprop': ratios['RMSpropWarmup/RMSprop'] < 1.0},
    }


def _numba_version():
    try:
        import numba
    except ImportError:
        return None
    return numba.__version__


# ---------------------------------------------------------------------------
# In bench/run_all.py: settings, what it records, and this benchmark's section
# ---------------------------------------------------------------------------

#: run_all's settings: the goals', and the smoke test's (``--quick``).
RUN_ALL_SETTINGS = {
    'full': dict(rounds=20, warmup=2),
    'quick': dict(rounds=2, warmup=1),
}


def section(res, results):
    """This benchmark's part of BENCHMARKS.md: ``(markdown lines, goals)``."""
    title = '## Goal 1 — optimizer update time (`bench/bench_optimizer.py`)'
    if 'error' in res:
        return failed_section(title, 'bench_optimizer', res, Goal(
            '1', 'RMSpropWarmup update vs MomentumSGD', 'failed',
            '<= {}x'.format(GOAL_VS_MOMENTUM), None))
    goals = []
    out = [title, '']
    out += ['One `optimizer.update()` on ResNet-50\'s parameters ({} arrays, {:,} float32 '
            'values), CPU, single thread; {} interleaved rounds, median.'.format(
                res['n_arrays'], res['n_params'], res['rounds']), '',
            '| optimizer | median ms | min ms | RMSpropWarmup / this |', '|---|---|---|---|']
    ours = res['update_ms']['RMSpropWarmup']['median_ms']
    for name, t in res['update_ms'].items():
        out.append('| {} | {:.1f} | {:.1f} | {:.2f}x |'.format(
            name, t['median_ms'], t['min_ms'], ours / t['median_ms']))
    r_m = res['ratios']['RMSpropWarmup/MomentumSGD']
    r_r = res['ratios']['RMSpropWarmup/RMSprop']
    ok_m = r_m <= GOAL_VS_MOMENTUM
    ok_r = r_r < GOAL_VS_RMSPROP
    out += ['', '| goal | measured | met |', '|---|---|---|',
            '| RMSpropWarmup <= {}x MomentumSGD | {:.2f}x | {} |'.format(
                GOAL_VS_MOMENTUM, r_m, met(ok_m)),
            '| RMSpropWarmup faster than Chainer\'s RMSprop | {:.2f}x | {} |'.format(
                r_r, met(ok_r)), '']
    goals.append(Goal('1', 'RMSpropWarmup update / MomentumSGD', '{:.2f}x'.format(r_m),
                      '<= {}x'.format(GOAL_VS_MOMENTUM), ok_m))
    goals.append(Goal('1', 'RMSpropWarmup update / RMSprop', '{:.2f}x'.format(r_r),
                      '< {:g}x'.format(GOAL_VS_RMSPROP), ok_r))
    return out, goals


def main(argv=None):
    from chainer_ext.machine import blas as blas_setup
    blas_setup.ensure_kernel()  # the CPU's own BLAS kernel, as train_imagenet.py uses
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--rounds', type=int, default=20)
    parser.add_argument('--warmup', type=int, default=2)
    parser.add_argument('--json', metavar='PATH', help='write the results here')
    args = parser.parse_args(argv)
    res = run(rounds=args.rounds, warmup=args.warmup)
    print('ResNet-50: {} arrays, {:,} float32 values; {} interleaved rounds, '
          'OMP_NUM_THREADS={}'.format(res['n_arrays'], res['n_params'], res['rounds'],
                                      res['machine']['OMP_NUM_THREADS']))
    for name, t in res['update_ms'].items():
        print('  {:<14s} median {:8.1f} ms   min {:8.1f} ms'.format(
            name, t['median_ms'], t['min_ms']))
    for name, r in res['ratios'].items():
        print('  {:<26s} {:.2f}x'.format(name, r))
    for name, ok in res['goals'].items():
        print('  goal {:<24s} {}'.format(name, 'met' if ok else 'NOT met'))
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(res, f, indent=2)
    return res


if __name__ == '__main__':
    main()
