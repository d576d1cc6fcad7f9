"""Smoke test of the benchmark harness: ``bench/run_all.py --quick`` end to end.

Tiny settings (ResNet-18 at 32 px, one repetition), so it checks that the benchmark code
runs and writes its report, not the goals.  The shaped-TCP all-reduce link is never
exercised here (``--quick`` uses shared memory only).
"""
import json
import os
import subprocess
import sys

import pytest

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(TESTS_DIR)
BENCH_DIR = os.path.join(REPO_ROOT, 'bench')


def _import_bench(name):
    if BENCH_DIR not in sys.path:
        sys.path.insert(0, BENCH_DIR)
    return __import__(name)


def _demo_rank_cores():
    """The cores a rank of bench_demo's ``mpiexec -n 2 --oversubscribe`` owns, from the CPU
    sets its ranks get: each CPU split among the ranks allowed on it (the demo has no loaders)."""
    from chainer_ext.job.mpiexec import find_mpiexec, mpi_env
    code = 'import os; print(sorted(os.sched_getaffinity(0)))'
    out = subprocess.run([find_mpiexec(), '-n', '2', '--oversubscribe', sys.executable, '-c',
                          code], env=mpi_env(), stdout=subprocess.PIPE, text=True,
                         timeout=120, check=True).stdout
    masks = [set(json.loads(line)) for line in out.splitlines()]
    assert len(masks) == 2, out
    shares = [sum(1 / sum(cpu in other for other in masks) for cpu in mine) for mine in masks]
    assert shares[0] == shares[1], masks  # the rank recorded is rank 0; both alike here
    return max(1, int(shares[0] + 1e-9))


def test_iteration_times_from_logreport():
    bench_iteration = _import_bench('bench_iteration')
    log = [{'iteration': 1, 'elapsed_time': 5.0}, {'iteration': 2, 'elapsed_time': 7.5},
           {'iteration': 3, 'elapsed_time': 9.0, 'main/loss': 6.9},
           {'epoch': 1}]                       # an entry without timing is ignored
    assert bench_iteration.iteration_times(log) == {2: 2.5, 3: 1.5}
    with pytest.raises(ValueError):
        bench_iteration.run(iterations=2, warmup=2)


def test_run_all_quick(tmp_path):
    results = tmp_path / 'results'
    md = tmp_path / 'BENCHMARKS.md'
    env = dict(os.environ, PYTHONPATH=REPO_ROOT)
    proc = subprocess.run(
        [sys.executable, os.path.join(BENCH_DIR, 'run_all.py'), '--quick',
         '--results-dir', str(results), '--markdown', str(md)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=300,
        cwd=REPO_ROOT, env=env)
    assert proc.returncode == 0, proc.stdout[-20000:]

    names = ('blas', 'optimizer', 'allreduce', 'input_pipeline', 'iteration', 'demo',
             'scaling')
    for name in names:
        with open(str(results / (name + '.json'))) as f:
            res = json.load(f)
        assert 'error' not in res, res.get('error')
        assert res['mode'] == 'quick'
    with open(str(results / 'iteration.json')) as f:
        it = json.load(f)
    for setup in ('ours', 'baseline'):
        t = it['throughput'][setup]
        assert t['images_per_s'] > 0 and t['kept_samples'] >= 1
        assert all(mb > 50 for mb in t['peak_rss_mb_per_rank'])
    assert it['optimizer_state']['ok'], it['optimizer_state']['problems']
    assert it['optimizer_state']['state_over_param_bytes'] == 2.0

    text = md.read_text()
    assert 'QUICK MODE' in text
    for heading in ('## Machine', '## Summary', '## Goal 1', '## Goal 2', '## Goal 3',
                    '## Goal 4', '## Goal 5', '## Scaling', '## Cost model (MODELLED)',
                    '## BLAS kernel', '## The demo, per epoch'):
        assert heading in text, heading
    assert 'Open MPI' in text and 'MODELLED, not measured' in text
    assert '**FAILED**' not in text
    with open(str(results / 'demo.json')) as f:
        demo = json.load(f)
    old, project = demo['settings']['openblas_default'], demo['settings']['project']
    assert old['seconds_per_epoch'] > 0 and project['seconds_per_epoch'] > 0
    # every CPU the harness may use (a Slurm or cgroup cpuset may allow fewer than the node's)
    assert old['threads'] == len(os.sched_getaffinity(0))
    assert project['threads'] == _demo_rank_cores()
    from chainer_ext.machine import blas as blas_setup
    best = blas_setup.cpu_kernel(blas_setup.cpu_flags())
    if best:  # the project's setting runs the CPU's kernel, whatever the harness had set
        # (or one of its generation: NumPy 2's OpenBLAS runs SkylakeX for Cooperlake)
        assert not blas_setup.older(project['kernel'], best), project['kernel']
        # OPENBLAS_CORETYPE=Prescott: NumPy 1.26's OpenBLAS runs Prescott, NumPy 2's Katmai
        assert blas_setup.older(old['kernel'], best), old['kernel']


def test_interconnect_model_is_the_ring_formula_at_the_shaped_rate():
    """bench_interconnect's prediction: 2(n-1) alpha + 2(n-1)/n S/B with B the tc rate
    in bytes/s, S the gradient bytes of each dtype; the demo's parameter count is
    ResNet-18's with 10 classes."""
    bench = _import_bench('bench_interconnect')
    from models import archs
    assert bench.DEMO_PARAMETERS == sum(
        p.size for p in archs['resnet18'](n_class=10).params())
    assert bench.parse_rate('2gbit') == 2e9 and bench.parse_rate('500mbit') == 5e8
    result = {'nodes': 4, 'allreduce': {'latency_s': 1e-4, 'n_elems': 1000000,
                                        'link_Bps': 1e8},
              'phases': {'forward_backward': 0.3, 'optimizer': 0.02}}
    m = bench.predict(result, '2gbit')
    by_hand = 2 * 3 * 1e-4 + 2 * 3 / 4.0 * 2e6 / 2.5e8
    assert abs(m['allreduce_float16'] - by_hand) < 1e-12
    assert abs(m['allreduce_float32'] - (2 * 3 * 1e-4 + 2 * 3 / 4.0 * 4e6 / 2.5e8)) < 1e-12
    assert abs(m['allreduce_float16_at_link_rate'] - (6e-4 + 1.5 * 2e6 / 1e8)) < 1e-12
    demo_ring = 6e-4 + 1.5 * 2 * bench.DEMO_PARAMETERS / 2.5e8
    assert abs(m['demo_s_per_iteration'] - (0.32 + demo_ring)) < 1e-12
    assert set(bench.predict(result, None)) == {'alpha_s', 'bandwidth_Bps'}
