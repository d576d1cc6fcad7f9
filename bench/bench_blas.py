"""float32 GEMM GFLOP/s of each OpenBLAS kernel this CPU can run, side by side.

Each kernel runs in its own process (OpenBLAS reads OPENBLAS_CORETYPE when it
loads), rounds interleaved; 'auto' is what blas_setup.ensure_kernel leaves in
place.  Prints one JSON object; --json writes it too.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
from _markdown import failed_section, Goal

_WORKER = '''
import json, os, sys, time
import numpy
from threadpoolctl import threadpool_info
n, reps = int(sys.argv[1]), int(sys.argv[2])
rng = numpy.random.RandomState(0)
a, b = rng.rand(n, n).astype(numpy.float32), rng.rand(n, n).astype(numpy.float32)
ref = a.astype(numpy.float64) @ b.astype(numpy.float64)
c = a @ b
err = float(numpy.abs(c - ref).max() / numpy.abs(ref).max())
times = []
for _ in range(reps):
    t0 = time.perf_counter()
    a @ b
    times.append(time.perf_counter() - t0)
best = min(times)
lib = [x for x in threadpool_info() if x.get('internal_api') == 'openblas'][0]
print(json.dumps(dict(kernel=lib['architecture'], threads=lib['num_threads'],
                      gflops=2 * n ** 3 / best / 1e9, rel_error=err)))
'''


def measure(coretype, n, reps, threads):
    env = {k: v for k, v in os.environ.items() if k != 'OPENBLAS_CORETYPE'}
    if coretype != 'auto':
        env['OPENBLAS_CORETYPE'] = coretype
    env['OPENBLAS_NUM_THREADS'] = str(threads)
    out = subprocess.run([sys.executable, '-c', _WORKER, str(n), str(reps)], env=env,
                         stdout=subprocess.PIPE, text=True, check=True).stdout
    return json.loads(out)


def run(kernels=('Prescott', 'Haswell', 'SkylakeX', 'Cooperlake', 'auto'), n=2048, reps=3,
        rounds=3, threads=None):
    from chainer_ext.machine import blas as blas_setup, cores
    threads = threads or cores.of_process()
    flags = blas_setup.cpu_flags()
    runnable = [k for k in kernels if k == 'auto' or not blas_setup.older(
        blas_setup.cpu_kernel(flags) or 'Prescott', k)]
    samples = {k: [] for k in runnable}
    seen = {}
    for _ in range(rounds):
        for k in runnable:
            res = measure(k, n, reps, threads)
            samples[k].append(res['gflops'])
            seen[k] = res
    base = statistics.median(samples[runnable[0]])
    return {'n': n, 'threads': threads, 'cpu_kernel': blas_setup.cpu_kernel(flags),
            'kernels': {k: dict(kernel_in_use=seen[k]['kernel'],
                                gflops=statistics.median(v),
                                vs_first=statistics.median(v) / base,
                                rel_error=seen[k]['rel_error'])
                        for k, v in samples.items()}}


# ---------------------------------------------------------------------------
# In bench/run_all.py: settings, what it records, and this benchmark's section
# ---------------------------------------------------------------------------

#: run_all's settings: the goals', and the smoke test's (``--quick``).
RUN_ALL_SETTINGS = {
    'full': dict(n=2048, rounds=3),
    'quick': dict(n=256, rounds=1),
}


def section(res, results):
    """This benchmark's part of BENCHMARKS.md: ``(markdown lines, goals)``."""
    title = '## BLAS kernel: float32 GEMM (`bench/bench_blas.py`)'
    if 'error' in res:
        return failed_section(title, 'bench_blas', res, Goal(
            'BLAS', 'GEMM, pinned kernel / OpenBLAS default', 'failed', '', None))
    goals = []
    out = [title, '']
    out += ['{0}x{0} float32 matrix product, {1} BLAS thread(s), each kernel in its own '
            'process (`OPENBLAS_CORETYPE`), rounds interleaved, median. `auto` is '
            'OpenBLAS\'s own pick; this CPU\'s kernel is {2}.'.format(
                res['n'], res['threads'], res['cpu_kernel']), '',
            '| OPENBLAS_CORETYPE | kernel in use | GFLOP/s | vs {} | max rel. error vs '
            'float64 |'.format(next(iter(res['kernels']))), '|---|---|---|---|---|']
    for name, k in res['kernels'].items():
        out.append('| {} | {} | {:.0f} | {:.2f}x | {:.1e} |'.format(
            name, k['kernel_in_use'], k['gflops'], k['vs_first'], k['rel_error']))
    pinned = res['kernels'].get(res['cpu_kernel'] or '')
    auto = res['kernels'].get('auto')
    if pinned and auto:
        ratio = pinned['gflops'] / auto['gflops']
        goals.append(Goal('BLAS', 'GEMM GFLOP/s, pinned {} / OpenBLAS\'s pick ({})'.format(
            res['cpu_kernel'], auto['kernel_in_use']), '{:.2f}x'.format(ratio), 'reported',
            None))
    return out + [''], goals


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--n', type=int, default=2048)
    p.add_argument('--rounds', type=int, default=3)
    p.add_argument('--threads', type=int, help='BLAS threads (default: all cores)')
    p.add_argument('--json', help='write the results here')
    args = p.parse_args(argv)
    res = run(n=args.n, rounds=args.rounds, threads=args.threads)
    text = json.dumps(res, indent=1)
    print(text)
    if args.json:
        with open(args.json, 'w') as f:
            f.write(text + '\n')
    return 0


if __name__ == '__main__':
    HERE = os.path.dirname(os.path.abspath(__file__))
    sys.path.insert(0, os.path.dirname(HERE))
    sys.exit(main())
