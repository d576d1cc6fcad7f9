"""Measure one iteration at 1 and 2 ranks, split like the paper's Figure 1.

    python bench/bench_scaling.py [--insize 224] [--iterations 3] [--json PATH]

Launches ``bench/_phase_worker.py`` under ``mpiexec -n 1`` and ``-n 2`` and
collects the median time of forward+backward, the float16 and float32
gradient all-reduce and the optimizer update per iteration, and the implied
throughput and scaling efficiency. These are the *measured* inputs of the
cost model (:mod:`chainer_ext.cost_model`), which extrapolates to 1024
workers. On this 2-core machine two ranks share the cores, so the 2-rank
compute time is not that of two machines: the figures calibrate the
communication and optimizer terms; compute per GPU is taken from published
P100 numbers for the paper's set-up.
"""
import argparse
import json
import os
import platform
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, REPO)

from chainer_ext.job.mpiexec import run_mpi
from _markdown import failed_section, na_or


def measure(ranks, arch='resnet50', batchsize=32, insize=224, iterations=3,
            communicator='naive', timeout=1800):
    proc = run_mpi(ranks, [sys.executable, os.path.join(HERE, '_phase_worker.py'),
                           '--arch', arch, '--batchsize', str(batchsize),
                           '--insize', str(insize), '--iterations', str(iterations),
                           '--communicator', communicator],
                   timeout=timeout, env={'PYTHONPATH': REPO}, cwd=REPO)
    if proc.returncode != 0:
        raise RuntimeError('phase worker on {} ranks failed:\n{}'.format(
            ranks, proc.stdout[-5000:]))
    for line in proc.stdout.splitlines():
        if line.startswith('PHASES '):
            return json.loads(line[len('PHASES '):])
    raise RuntimeError('phase worker printed no result:\n' + proc.stdout[-5000:])


def run(ranks=(1, 2), arch='resnet50', batchsize=32, insize=224, iterations=3):
    results = {}
    for n in ranks:
        r = measure(n, arch=arch, batchsize=batchsize, insize=insize, iterations=iterations)
        r['images_per_second'] = n * batchsize / r['iteration']
        results[str(n)] = r
    base = results[str(ranks[0])]
    for n in ranks:
        r = results[str(n)]
        r['scaling_efficiency_vs_{}'.format(ranks[0])] = (
            r['images_per_second'] / (base['images_per_second'] * n / ranks[0]))
    return {'machine': {'cpu_count': os.cpu_count(), 'platform': platform.platform()},
            'arch': arch, 'batchsize': batchsize, 'insize': insize,
            'iterations': iterations, 'ranks': results}


# ---------------------------------------------------------------------------
# In bench/run_all.py: settings, what it records, and this benchmark's section
# ---------------------------------------------------------------------------

#: run_all's settings: the goals', and the smoke test's (``--quick``).
RUN_ALL_SETTINGS = {
    'full': dict(arch='resnet50', insize=224, batchsize=32, iterations=3),
    'quick': dict(arch='resnet18', insize=32, batchsize=4, iterations=1),
}


def section(res, results):
    """This benchmark's part of BENCHMARKS.md: ``(markdown lines, goals)``."""
    title = '## Scaling at 1 and 2 ranks, per-iteration phases (`bench/bench_scaling.py`)'
    if 'error' in res:
        return failed_section(title, 'bench_scaling', res)
    goals = []
    out = [title, '']
    out += ['{} at {} px, batch {} per rank; median of {} iterations after a warm-up, a '
            'barrier before each phase. Two ranks share this machine\'s cores, so the '
            '2-rank compute time is not that of two machines.'.format(
                res['arch'], res['insize'], res['batchsize'], res['iterations']), '',
            'all-reduce: fp16 = the project\'s float16 ring; fp32 ring = the same ring in '
            'float32; fp32 ChainerMN = ChainerMN\'s float32 communicator of the same name.', '',
            '| ranks | forward+backward s | all-reduce fp16 s | all-reduce fp32 ring s | '
            'all-reduce fp32 ChainerMN s | optimizer s | iteration s | images/s | '
            'efficiency vs 1 rank |',
            '|---|---|---|---|---|---|---|---|---|']
    for n, r in res['ranks'].items():
        eff = [v for k, v in r.items() if k.startswith('scaling_efficiency_vs_')]
        out.append('| {} | {:.4f} | {:.4f} | {} | {:.4f} | {:.4f} | {:.4f} | {:.2f} | {} |'
                   .format(n, r['forward_backward'], r['allreduce_float16'],
                           na_or(r.get('allreduce_float32_ring'), '{:.4f}'),
                           r['allreduce_float32'], r['optimizer'], r['iteration'],
                           r.get('images_per_second', r.get('images_per_s')),
                           na_or(eff[0] if eff else None, '{:.1%}')))
    return out + [''], goals


def main(argv=None):
    from chainer_ext.machine import blas as blas_setup
    blas_setup.ensure_kernel()  # the CPU's own BLAS kernel, as train_imagenet.py uses
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--arch', default='resnet50')
    p.add_argument('--batchsize', type=int, default=32)
    p.add_argument('--insize', type=int, default=224)
    p.add_argument('--iterations', type=int, default=3)
    p.add_argument('--json', default=None, help='write the figures here')
    args = p.parse_args(argv)
    res = run(arch=args.arch, batchsize=args.batchsize, insize=args.insize,
              iterations=args.iterations)
    print('{:>5} {:>12} {:>12} {:>12} {:>12} {:>10}'.format(
        'ranks', 'fwd+bwd s', 'ar16 s', 'ar32 s', 'optim s', 'img/s'))
    for n, r in res['ranks'].items():
        print('{:>5} {:>12.4f} {:>12.4f} {:>12.4f} {:>12.4f} {:>10.2f}'.format(
            n, r['forward_backward'], r['allreduce_float16'], r['allreduce_float32'],
            r['optimizer'], r['images_per_second']))
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(res, f, indent=1)
    return res


if __name__ == '__main__':
    main()
