"""Benchmark: float16 gradient all-reduce against ChainerMN's float32.

The paper all-reduces gradients in float16 "to reduce the communication
overhead" (Section 3).  This benchmark times ``multi_node_mean_grad`` on
ResNet-50-sized gradients (161 arrays, 25,557,032 float32 values; shapes
generated below, not imported from ``models``) on 2 MPI ranks, for

* ``fp16_ring``: ``chainer_ext.communicators.create_communicator('naive' or
  'flat', allreduce_grad_dtype='float16')`` (both names give the same
  :class:`PackedRingCommunicator`);
* ``chainermn_naive``: ChainerMN's ``naive`` communicator (one float32
  ``MPI_Allreduce`` per array);
* ``chainermn_flat``: ChainerMN's ``FlatCommunicator`` code (pack, one float32
  ``MPI_Allreduce``, unpack), its two CuPy buffers replaced by host buffers,
  since ChainerMN's ``flat`` needs CuPy;
* ``fp32_ring``: the same ring as ``fp16_ring`` in float32 (reference).

All four run in the same MPI job, interleaved (the order rotates each
repetition), over two links: shared memory, and TCP over a loopback shaped to
2 Gbit/s in a network namespace of the benchmark's own (``ip netns``, ``tc
tbf``; needs root; Open MPI forced onto its TCP BTL with ``--mca pml ob1
--mca btl tcp,self``: this Open MPI 5 also has the ``ucx`` and ``cm`` PMLs,
which ignore the BTL list, so ``pml ob1`` is required).  The loopback's byte
counter and the bandwidth-bound timings confirm that the data crossed TCP.
Each timing is the slowest rank's time of one call, between barriers; the
report gives medians, bytes sent per rank (counted by the ring communicators;
the bandwidth-optimal ``2 (p-1)/p`` figure for
ChainerMN's ``MPI_Allreduce``), the bytes the shaped loopback actually carried
(``/proc/net/dev``) and the ratios against the goals (float16 <= 1.5x
ChainerMN's time over shared memory, <= 0.65x over the 2 Gbit/s link).

Usage: ``python bench/bench_allreduce.py [--json PATH] [--reps N]``; or
``run(...)`` from Python (``bench/run_all.py``).
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import numpy

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(HERE)
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

from chainer_ext.job import mpiexec as mpi_launch
from _markdown import failed_section, Goal, met, na_or

COMMUNICATORS = ('fp16_ring', 'chainermn_naive', 'chainermn_flat', 'fp32_ring')
GOALS = {'shm': 1.5, 'tcp_2gbit': 0.65}


def ring_allreduce_bytes(n_elems, size, itemsize):
    """Bytes one rank sends in a bandwidth-optimal (ring) all-reduce.

    ``2 (size-1)/size * n_elems * itemsize`` in whole bytes: the theoretical
    count for ChainerMN's float32 ``MPI_Allreduce`` (the ring communicators
    count their own bytes).
    """
    if size < 1:
        raise ValueError('size must be >= 1, got {}'.format(size))
    return 2 * (size - 1) * int(n_elems) * int(itemsize) // int(size)


def resnet50_param_shapes(n_classes=1000):
    """Shapes of ResNet-50's 161 parameter arrays (no convolution biases).

    Stem 7x7/64 convolution and BN; stages of 3, 4, 6, 3 bottleneck blocks
    (1x1, 3x3, 1x1 convolutions with BN, widths 64..512, expansion 4, a 1x1
    projection with BN in each stage's first block); 1000-way classifier.
    """
    shapes = [(64, 3, 7, 7), (64,), (64,)]
    in_ch = 64
    for width, blocks in zip((64, 128, 256, 512), (3, 4, 6, 3)):
        out_ch = 4 * width
        for b in range(blocks):
            shapes += [(width, in_ch, 1, 1), (width,), (width,),
                       (width, width, 3, 3), (width,), (width,),
                       (out_ch, width, 1, 1), (out_ch,), (out_ch,)]
            if b == 0:
                shapes += [(out_ch, in_ch, 1, 1), (out_ch,), (out_ch,)]
            in_ch = out_ch
    shapes += [(n_classes, in_ch), (n_classes,)]
    return shapes


# ---------------------------------------------------------------------------
# Worker (runs on every rank under mpiexec)
# ---------------------------------------------------------------------------

class _HostBuffer(object):
    """The slice of ChainerMN's DeviceMemory interface FlatCommunicator uses."""

    def __init__(self):
        self.size = 0
        self.memory = None

    def assign(self, size):
        if size > self.size:
            self.size = size
            self.memory = numpy.empty(size, dtype=numpy.uint8)

    def from_device(self, src, size, offset=0, stream=None):
        self.memory[offset:offset + size] = numpy.ascontiguousarray(
            src).reshape(-1).view(numpy.uint8)

    def to_device(self, dst, size, offset=0, stream=None):
        dst.reshape(-1).view(numpy.uint8)[...] = self.memory[offset:offset + size]

    def array(self, shape, offset=0, dtype=numpy.float32):
        count = int(numpy.prod(shape))
        itemsize = numpy.dtype(dtype).itemsize
        return self.memory[offset:offset + count * itemsize].view(
            dtype).reshape(shape)


def _host_flat_communicator(mpi_comm):
    """ChainerMN's FlatCommunicator running on host buffers."""
    from chainermn.communicators import flat_communicator
    from chainermn.communicators import mpi_communicator_base

    class HostFlatCommunicator(flat_communicator.FlatCommunicator):
        def __init__(self, mpi_comm):
            # FlatCommunicator.__init__ would allocate CuPy DeviceMemory.
            mpi_communicator_base.MpiCommunicatorBase.__init__(self, mpi_comm)
            self.gpu_buffer_a = _HostBuffer()
            self.gpu_buffer_b = _HostBuffer()

    comm = HostFlatCommunicator(mpi_comm)
    comm.set_config('batched_copy', False)  # the batched path is CUDA-only
    return comm


def _lo_tx_bytes():
    with open('/proc/net/dev') as f:
        for line in f:
            name, _, rest = line.partition(':')
            if name.strip() == 'lo':
                return int(rest.split()[8])
    return 0


def worker(out_path, reps, n_classes):
    import chainer
    import chainermn
    from mpi4py import MPI

    from chainer_ext.communicators import create_communicator

    world = MPI.COMM_WORLD
    comms = {
        'fp16_ring': create_communicator('naive', world,
                                         allreduce_grad_dtype='float16'),
        'chainermn_naive': chainermn.create_communicator('naive', world),
        'chainermn_flat': _host_flat_communicator(world),
        'fp32_ring': create_communicator('flat', world,
                                         allreduce_grad_dtype='float32'),
    }
    shapes = resnet50_param_shapes(n_classes)
    model = chainer.Link()
    rng = numpy.random.RandomState(1234 + world.rank)
    saved = []
    with model.init_scope():
        for i, shape in enumerate(shapes):
            setattr(model, 'p{:03d}'.format(i),
                    chainer.Parameter(numpy.zeros(shape, numpy.float32)))
    for _, param in sorted(model.namedparams()):
        g = (rng.standard_normal(param.shape) * 0.01).astype(numpy.float32)
        saved.append(g)
        param.grad = g.copy()
    params = [p for _, p in sorted(model.namedparams())]
    n_elems = sum(p.size for p in params)

    def restore():
        for param, g in zip(params, saved):
            param.grad[...] = g

    times = {name: [] for name in COMMUNICATORS}
    lo_bytes = {name: [] for name in COMMUNICATORS}
    ring_bytes = {}
    for rep in range(reps + 1):  # repetition 0 warms up (buffers, JIT)
        k = rep % len(COMMUNICATORS)
        for name in COMMUNICATORS[k:] + COMMUNICATORS[:k]:
            comm = comms[name]
            restore()
            before_sent = getattr(comm, 'bytes_sent', 0)
            world.Barrier()
            lo0 = _lo_tx_bytes()
            t0 = time.perf_counter()
            comm.multi_node_mean_grad(model)
            elapsed = time.perf_counter() - t0
            world.Barrier()
            lo1 = _lo_tx_bytes()
            elapsed = world.allreduce(elapsed, op=MPI.MAX)
            if rep > 0:
                times[name].append(elapsed)
                lo_bytes[name].append(lo1 - lo0)
                if hasattr(comm, 'bytes_sent'):
                    ring_bytes[name] = comm.bytes_sent - before_sent
    size = world.size
    bytes_per_rank = {
        'fp16_ring': ring_bytes['fp16_ring'],
        'fp32_ring': ring_bytes['fp32_ring'],
        'chainermn_naive': sum(ring_allreduce_bytes(p.size, size, 4)
                               for p in params),
        'chainermn_flat': ring_allreduce_bytes(n_elems, size, 4),
    }
    if world.rank == 0:
        result = {
            'n_ranks': size, 'n_arrays': len(params), 'n_elems': n_elems,
            'reps': reps,
            'median_s': {k: statistics.median(v) for k, v in times.items()},
            'times_s': times,
            'bytes_sent_per_rank': bytes_per_rank,
            'bytes_counted': {'fp16_ring': 'measured', 'fp32_ring': 'measured',
                              'chainermn_naive': 'ring formula',
                              'chainermn_flat': 'ring formula'},
            'loopback_tx_bytes_all_ranks': {
                k: statistics.median(v) for k, v in lo_bytes.items()},
        }
        with open(out_path, 'w') as f:
            json.dump(result, f)
    for comm in comms.values():
        if hasattr(comm, 'finalize'):
            comm.finalize()


# ---------------------------------------------------------------------------
# Launcher
# ---------------------------------------------------------------------------

def _run_job(link, n_ranks, reps, n_classes, rate, timeout):
    fd, out_path = tempfile.mkstemp(suffix='.json', prefix='bench_allreduce_')
    os.close(fd)
    argv = [sys.executable, os.path.abspath(__file__), '--worker', out_path,
            '--reps', str(reps), '--classes', str(n_classes)]
    env = {'PYTHONPATH': REPO_ROOT + os.pathsep + os.environ.get(
        'PYTHONPATH', '')}
    netns = None
    try:
        if link == 'shm':
            mca = {'pml': 'ob1', 'btl': 'self,sm'}
            cmd = mpi_launch.mpiexec_command(n_ranks, argv, mca=mca)
        elif link == 'tcp_2gbit':
            netns = 'bench_allreduce_{}'.format(os.getpid())
            _netns_up(netns, rate)
            mca = {'pml': 'ob1', 'btl': 'tcp,self',
                   'btl_tcp_if_include': 'lo', 'oob_tcp_if_include': 'lo'}
            cmd = ['ip', 'netns', 'exec', netns] + mpi_launch.mpiexec_command(
                n_ranks, argv, mca=mca)
        else:
            raise ValueError('unknown link {!r}; use shm or tcp_2gbit'.format(
                link))
        proc = subprocess.run(cmd, env=mpi_launch.mpi_env(env),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)
        if proc.returncode != 0:
            raise RuntimeError('benchmark job on {} failed ({}):\n{}'.format(
                link, proc.returncode, proc.stdout[-5000:]))
        with open(out_path) as f:
            return json.load(f)
    finally:
        if netns is not None:
            subprocess.run(['ip', 'netns', 'del', netns],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.unlink(out_path)


def _netns_up(name, rate):
    def sh(*args):
        subprocess.run(list(args), check=True, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT)
    sh('ip', 'netns', 'add', name)
    sh('ip', 'netns', 'exec', name, 'ip', 'link', 'set', 'lo', 'up')
    # Token bucket on the loopback: both ranks' traffic shares the 2 Gbit/s.
    sh('ip', 'netns', 'exec', name, 'tc', 'qdisc', 'add', 'dev', 'lo', 'root',
       'tbf', 'rate', rate, 'burst', '256kb', 'latency', '50ms')


def run(links=('shm', 'tcp_2gbit'), n_ranks=2, reps=9, n_classes=1000,
        rate='2gbit', timeout=1800):
    """Run the benchmark; return a JSON-serialisable dict of results."""
    results = {'shapes': 'resnet50', 'links': {}}
    for link in links:
        res = _run_job(link, n_ranks, reps, n_classes, rate, timeout)
        med = res['median_s']
        res['ratio_fp16_vs'] = {
            name: med['fp16_ring'] / med[name]
            for name in ('chainermn_naive', 'chainermn_flat', 'fp32_ring')}
        by = res['bytes_sent_per_rank']
        res['bytes_ratio_fp16_vs_fp32_ring'] = by['fp16_ring'] / by['fp32_ring']
        if link in GOALS:
            goal = GOALS[link]
            res['goal_ratio'] = goal
            res['goal_met'] = all(
                res['ratio_fp16_vs'][name] <= goal
                for name in ('chainermn_naive', 'chainermn_flat'))
        results['links'][link] = res
    return results


def _summary(results):
    lines = []
    for link, res in results['links'].items():
        lines.append('{} ({} ranks, {} arrays, {} values, {} reps):'.format(
            link, res['n_ranks'], res['n_arrays'], res['n_elems'], res['reps']))
        for name in COMMUNICATORS:
            lines.append('  {:16s} {:8.1f} ms  {:11d} B/rank  lo {:11.0f} B'.format(
                name, 1e3 * res['median_s'][name],
                res['bytes_sent_per_rank'][name],
                res['loopback_tx_bytes_all_ranks'][name]))
        lines.append('  fp16/naive {:.3f}  fp16/flat {:.3f}  fp16/fp32_ring {:.3f}'
                     '  (goal <= {}: {})'.format(
                         res['ratio_fp16_vs']['chainermn_naive'],
                         res['ratio_fp16_vs']['chainermn_flat'],
                         res['ratio_fp16_vs']['fp32_ring'],
                         res.get('goal_ratio'), res.get('goal_met')))
    return '\n'.join(lines)


# ---------------------------------------------------------------------------
# In bench/run_all.py: settings, what it records, and this benchmark's section
# ---------------------------------------------------------------------------

#: run_all's settings: the goals', and the smoke test's (``--quick``).
RUN_ALL_SETTINGS = {
    'full': dict(reps=9, links=('shm', 'tcp_2gbit')),
    'quick': dict(reps=1, links=('shm',)),
}


def netns_available():
    """``(True, '')`` if the shaped-TCP link can be set up, else ``(False, why)``."""
    if not hasattr(os, 'geteuid') or os.geteuid() != 0:
        return False, 'not running as root (ip netns and tc need root)'
    for tool in ('ip', 'tc'):
        if shutil.which(tool) is None:
            return False, '`{}` not found'.format(tool)
    probe = subprocess.run(['ip', 'netns', 'list'], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)
    if probe.returncode != 0:
        return False, '`ip netns list` failed: {}'.format(probe.stdout.strip()[:200])
    return True, ''


def collect(cfg):
    """What run_all records with ``cfg``: the shaped-TCP link is skipped, with the reason,
    where it cannot be set up."""
    links = list(cfg['links'])
    skipped = {}
    if 'tcp_2gbit' in links:
        ok, why = netns_available()
        if not ok:
            links.remove('tcp_2gbit')
            skipped['tcp_2gbit'] = why
    res = run(links=tuple(links), reps=cfg['reps']) if links else {
        'links': {}}
    res['skipped_links'] = skipped
    return res


def section(res, results):
    """This benchmark's part of BENCHMARKS.md: ``(markdown lines, goals)``."""
    title = '## Goal 2 — float16 gradient all-reduce (`bench/bench_allreduce.py`)'
    if 'error' in res:
        return failed_section(title, 'bench_allreduce', res, Goal(
            '2', 'float16 all-reduce vs ChainerMN float32', 'failed', '', None))
    goals = []
    out = [title, '']
    out += ['`multi_node_mean_grad` on ResNet-50-sized gradients, 2 ranks, slowest rank\'s '
            'time between barriers, median over repetitions. fp16_ring = this project\'s '
            'float16 all-reduce; chainermn_naive / chainermn_flat = ChainerMN\'s float32 '
            'communicators; fp32_ring = our ring in float32 (reference).', '']
    labels = {'shm': 'shared memory', 'tcp_2gbit': 'TCP over a loopback shaped to 2 Gbit/s '
              'in its own network namespace'}
    for link, r in res['links'].items():
        out += ['### {} ({} arrays, {:,} values, {} reps)'.format(
            labels.get(link, link), r['n_arrays'], r['n_elems'], r['reps']), '',
            '| communicator | median ms | bytes sent per rank | fp16_ring / this |',
            '|---|---|---|---|']
        for name, t in r['median_s'].items():
            ratio = r['ratio_fp16_vs'].get(name)
            out.append('| {} | {:.1f} | {:,} | {} |'.format(
                name, 1e3 * t, int(r['bytes_sent_per_rank'][name]),
                '1 (itself)' if name == 'fp16_ring' else na_or(ratio, '{:.3f}x')))
        worst = max(r['ratio_fp16_vs']['chainermn_naive'],
                    r['ratio_fp16_vs']['chainermn_flat'])
        out += ['', 'Goal: fp16_ring <= {}x ChainerMN\'s float32 time (naive and flat): '
                'worst {:.3f}x — {}.'.format(r.get('goal_ratio'), worst,
                                            met(r.get('goal_met'))), '']
        goals.append(Goal('2', 'fp16 all-reduce / ChainerMN float32, {}'.format(link),
                          '{:.3f}x'.format(worst), '<= {}x'.format(r.get('goal_ratio')),
                          r.get('goal_met')))
    for link, why in res.get('skipped_links', {}).items():
        out += ['**{} skipped**: {}. Run `python bench/run_all.py` (or '
                '`bench/bench_allreduce.py`) as root on a machine with `ip netns` and `tc` '
                'for this link.'.format(labels.get(link, link), why), '']
        goals.append(Goal('2', 'fp16 all-reduce / ChainerMN float32, {}'.format(link),
                          'skipped', '<= {}x'.format(GOALS[link]), None))
    return out, goals


def main(argv=None):
    from chainer_ext.machine import blas as blas_setup
    blas_setup.ensure_kernel()  # the CPU's own BLAS kernel, as train_imagenet.py uses
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--json', help='write the results here')
    parser.add_argument('--reps', type=int, default=9)
    parser.add_argument('--links', default='shm,tcp_2gbit')
    parser.add_argument('--ranks', type=int, default=2)
    parser.add_argument('--classes', type=int, default=1000)
    parser.add_argument('--worker', help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.reps < 1:
        parser.error('--reps must be >= 1, got {}'.format(args.reps))
    if args.worker:
        worker(args.worker, args.reps, args.classes)
        return
    results = run(links=tuple(args.links.split(',')), n_ranks=args.ranks,
                  reps=args.reps, n_classes=args.classes)
    print(_summary(results))
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(results, f, indent=1)


if __name__ == '__main__':
    main()
