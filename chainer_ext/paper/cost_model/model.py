"""Cost model of synchronous data-parallel training time (paper, Section 4 and Table 1).

Everything it outputs is MODELLED: ``T_iter = T_compute + (1 - overlap) T_allreduce
+ T_optimizer`` with an alpha-beta ring (or hierarchical) all-reduce, ``ceil(epochs
ceil(n_train / n) / b_local)`` iterations plus a validation per epoch.
Its constants, each with its source and none tuned to the paper's 897.9 s, are
:data:`chainer_ext.paper.cost_model.constants.PAPER_CONSTANTS`; :func:`paper_comparison` checks the
model against that time and the 70 % / 80 % scaling efficiencies (Section 4), and
:mod:`chainer_ext.paper.cost_model.text` says in tables and words what the sourced terms do and
do not account for.  :func:`machine_from_measurements` calibrates on
bench/bench_scaling.py's JSON.  The formulas in full: docs/DESIGN.md.
"""
import json
import math
from dataclasses import dataclass, field, replace

import numpy as np

from chainer_ext.paper import numbers as paper
from chainer_ext.paper.cost_model.constants import constant


# ---------------------------------------------------------------------------
# Formulas
# ---------------------------------------------------------------------------

def ring_allreduce_time(n, nbytes, alpha, bandwidth, base=0.0):
    """Ring all-reduce of ``nbytes`` over ``n`` ranks: base + 2(n-1)a + 2(n-1)/n S/B.

    ``alpha`` in seconds per step, ``bandwidth`` in bytes per second, ``base`` in
    seconds once per collective (NCCL's baseLat).  One rank needs no
    communication (0 s).
    """
    n = int(n)
    if n < 1:
        raise ValueError('n must be >= 1, got {}'.format(n))
    if n == 1:
        return 0.0
    return (base + 2.0 * (n - 1) * alpha
            + 2.0 * (n - 1) / n * float(nbytes) / bandwidth)


@dataclass(frozen=True)
class Link:
    """Latency ``alpha`` (s per ring step) and ``bandwidth`` (B/s) of a link."""
    alpha: float
    bandwidth: float


def multinode_ring_allreduce_time(n, gpus_per_node, nbytes, intra, inter, base=0.0):
    """One ring through all ``n`` ranks, ``gpus_per_node`` per node (NCCL 2.5.6's model).

    Within one node it is a ring over ``intra``.  Across nodes the ring runs in
    lock-step, so each of its 2(n-1) steps costs the slowest hop's latency and
    the chunks move at the slowest hop's bandwidth.  ``base`` once per call.
    """
    n = int(n)
    if n <= gpus_per_node:
        return ring_allreduce_time(n, nbytes, intra.alpha, intra.bandwidth, base)
    return ring_allreduce_time(n, nbytes, max(intra.alpha, inter.alpha),
                               min(intra.bandwidth, inter.bandwidth), base)


def nccl27_ring_allreduce_time(n, gpus_per_node, nbytes, intra, inter, base=0.0,
                               plateau=1.0):
    """The same ring under NCCL 2.7-2.9's latency model (src/graph/tuning.cc).

    Of the 2(n-1) steps, the 2(N-1) that cross between the N nodes cost
    ``inter.alpha`` and the others ``intra.alpha``; over several nodes, an
    all-reduce of at least n/16 * 64 KiB has its latency multiplied by
    ``plateau`` ("Plateau effect of ring").  Bandwidth as in
    :func:`multinode_ring_allreduce_time`.
    """
    n, g = int(n), int(gpus_per_node)
    if n <= g:
        return ring_allreduce_time(n, nbytes, intra.alpha, intra.bandwidth, base)
    nodes = int(math.ceil(n / float(g)))
    inter_steps = 2 * (nodes - 1)
    lat = base + (2 * (n - 1) - inter_steps) * intra.alpha + inter_steps * inter.alpha
    if nbytes >= n / 16.0 * 65536:
        lat *= plateau
    return lat + ring_allreduce_time(n, nbytes, 0.0, min(intra.bandwidth, inter.bandwidth))


def hierarchical_allreduce_time(nodes, gpus_per_node, nbytes, intra, inter, base=0.0):
    """Intra-node reduce-scatter + inter-node ring + intra-node all-gather.

    ``inter`` is the node's network link (all adapters together): the
    ``gpus_per_node`` inter-node rings, each on a shard of S / g bytes, share it,
    so the inter-node term is that of one ring carrying all S bytes.  ``base``
    once for the intra-node and once for the inter-node collective.
    """
    nodes, g = int(nodes), int(gpus_per_node)
    t_intra = ring_allreduce_time(g, nbytes, intra.alpha, intra.bandwidth, base)
    t_inter = ring_allreduce_time(nodes, nbytes, inter.alpha, inter.bandwidth, base)
    return t_intra + t_inter


def shard_size(n, n_train=paper.IMAGENET_TRAIN):
    """Examples per worker: ``ceil(n_train / n)``.

    ``chainermn.scatter_dataset`` (1.0.0 as in Chainer 7) gives worker i the slice
    ``[n_train * i // n, n_train * i // n + ceil(n_train / n))``: every shard has that
    length, and neighbouring shards share an example where n does not divide n_train.
    """
    return int(math.ceil(n_train / float(int(n))))


def iterations_per_epoch(n, b_local, n_train=paper.IMAGENET_TRAIN):
    """``shard / b_local``, a fraction: the iterator carries the rest of an epoch's
    last batch into the next epoch, so no partial batch is ever run."""
    return shard_size(n, n_train) / float(int(b_local))


def total_iterations(epochs, n, b_local, n_train=paper.IMAGENET_TRAIN):
    """Iterations of an ``epochs``-epoch run: ``ceil(epochs * shard / b_local)``.

    The trainer's ``(epochs, 'epoch')`` stop trigger fires at the first iteration
    whose ``epoch_detail`` (iterations * b_local / shard) reaches ``epochs``; at
    1024 workers that is ceil(90 * 1252 / 32) = 3522, not 90 * ceil(39.1) = 3600.
    """
    return int(math.ceil(round(epochs * shard_size(n, n_train) / float(int(b_local)), 9)))


def fit_alpha_bandwidth(points, n=None):
    """Fit the ring model's alpha and B to measured all-reduce times.

    ``points``: iterable of ``(nbytes, seconds)`` pairs (then ``n``, the number
    of ranks, is required) or ``(n, nbytes, seconds)`` triples.  The model
    ``t = 2(n-1) alpha + 2(n-1)/n * S * (1/B)`` is linear in (alpha, 1/B); this
    solves it by least squares, with alpha >= 0 (if the unconstrained fit gives
    a negative latency it refits the bandwidth alone through the origin).

    Returns ``{'alpha': s, 'bandwidth': B/s, 'rms_residual': s, 'points': k}``.
    Raises ValueError when there are fewer than two distinct sizes or the
    times do not grow with size (bandwidth not identifiable).
    """
    rows = []
    for p in points:
        p = tuple(p)
        if len(p) == 2:
            if n is None:
                raise ValueError('give n (ranks) for (nbytes, seconds) pairs')
            rows.append((int(n), float(p[0]), float(p[1])))
        elif len(p) == 3:
            rows.append((int(p[0]), float(p[1]), float(p[2])))
        else:
            raise ValueError('points must be (nbytes, s) or (n, nbytes, s)')
    if any(r[0] < 2 for r in rows):
        raise ValueError('all-reduce measurements need at least 2 ranks')
    sizes = {(r[0], r[1]) for r in rows}
    if len(sizes) < 2:
        raise ValueError('need all-reduce times for at least two sizes, got {}'
                         .format(len(sizes)))
    a = np.array([[2.0 * (k - 1), 2.0 * (k - 1) / k * s] for k, s, _ in rows])
    t = np.array([r[2] for r in rows])
    (alpha, inv_b), *_ = np.linalg.lstsq(a, t, rcond=None)
    if alpha < 0:
        alpha = 0.0
        inv_b = float(a[:, 1] @ t / (a[:, 1] @ a[:, 1]))
    if not inv_b > 0:
        raise ValueError('all-reduce times do not grow with size; cannot fit a '
                         'bandwidth from {}'.format(rows))
    resid = t - a @ np.array([alpha, inv_b])
    return {'alpha': float(alpha), 'bandwidth': float(1.0 / inv_b),
            'rms_residual': float(np.sqrt(np.mean(resid ** 2))),
            'points': len(rows)}


# ---------------------------------------------------------------------------
# Machines and predictions
# ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Machine:
    """What the model needs to know about a cluster.

    ``t_optimizer`` is seconds per iteration (update + float16 pack/unpack);
    ``inter`` is the whole node's network link; ``allreduce`` is ``'ring'``
    (one ring over all ranks, NCCL 2.0 / ChainerMN ``pure_nccl``, latency as NCCL
    2.5.6 models it), ``'ring-nccl27'`` (the same ring, latency as NCCL 2.7-2.9
    model it, with ``ring_plateau``) or ``'hierarchical'``; ``ring_base_latency``
    is paid once per collective.  ``calibration`` says where the numbers come from.
    """
    name: str
    gpus_per_node: int
    images_per_s: float
    t_optimizer: float
    intra: Link
    inter: Link
    gradient_bytes: float
    bn_stat_bytes: float = 0.0
    forward_fraction: float = 1.0 / 3.0
    overlap: float = 0.0
    allreduce: str = 'ring'
    ring_base_latency: float = 0.0
    ring_plateau: float = 1.0
    calibration: str = 'modelled'
    notes: dict = field(default_factory=dict, compare=False)

    def allreduce_time(self, n, nbytes=None):
        nbytes = self.gradient_bytes if nbytes is None else nbytes
        n = int(n)
        if n <= 1:
            return 0.0
        base = self.ring_base_latency
        if self.allreduce == 'hierarchical':
            g = min(self.gpus_per_node, n)
            nodes = int(math.ceil(n / float(g)))
            return hierarchical_allreduce_time(nodes, g, nbytes, self.intra, self.inter,
                                               base)
        if self.allreduce == 'ring':
            return multinode_ring_allreduce_time(n, self.gpus_per_node, nbytes,
                                                 self.intra, self.inter, base)
        if self.allreduce == 'ring-nccl27':
            return nccl27_ring_allreduce_time(n, self.gpus_per_node, nbytes, self.intra,
                                              self.inter, base, self.ring_plateau)
        raise ValueError('unknown all-reduce algorithm {!r}'.format(self.allreduce))

    def compute_time(self, b_local):
        return float(b_local) / self.images_per_s

    def forward_time_per_image(self):
        return self.forward_fraction / self.images_per_s

    def iteration(self, n, b_local=32):
        """Per-iteration breakdown (seconds) for ``n`` workers."""
        tc = self.compute_time(b_local)
        ta = self.allreduce_time(n)
        return {'compute': tc, 'allreduce': ta, 'optimizer': self.t_optimizer,
                'total': tc + (1.0 - self.overlap) * ta + self.t_optimizer}

    def validation_time(self, n, n_val=paper.IMAGENET_VAL):
        """Forward pass over ``ceil(n_val / n)`` images + BN-statistics all-reduce."""
        per_worker = int(math.ceil(n_val / float(n)))
        t = per_worker * self.forward_time_per_image()
        if self.bn_stat_bytes:
            t += self.allreduce_time(n, self.bn_stat_bytes)
        return t


def paper_machine(**overrides):
    """MN-1 as modelled from
    :data:`~chainer_ext.paper.cost_model.constants.PAPER_CONSTANTS` (keyword overrides
    allowed).

    The single-GPU speed is ``images_per_s`` (P100 SXM2) times ``pcie_fp32_ratio``:
    MN-1's P100s are the PCIe model.  Overrides accept any :class:`Machine` field
    (``images_per_s`` then replaces the derated speed), plus ``nics_per_node``,
    ``inter_latency``, ``intra_latency``, ``intra_bandwidth``.
    """
    nics = overrides.pop('nics_per_node', constant('nics_per_node'))
    inter_latency = overrides.pop('inter_latency', constant('inter_latency'))
    intra_latency = overrides.pop('intra_latency', constant('intra_latency'))
    intra_bw = overrides.pop('intra_bandwidth', constant('intra_bandwidth'))
    images_per_s = overrides.pop('images_per_s',
                                 constant('images_per_s') * constant('pcie_fp32_ratio'))
    params = paper.RESNET50_PARAMS
    t_opt = (constant('optimizer_bytes_per_param') * params / constant('hbm_bandwidth')
             + paper.RESNET50_PARAM_ARRAYS * constant('per_array_overhead'))
    m = Machine(
        name='MN-1: {} nodes x {} Tesla P100 for PCIe, InfiniBand FDR'.format(
            paper.HARDWARE['nodes'], paper.HARDWARE['gpus_per_node']),
        gpus_per_node=paper.HARDWARE['gpus_per_node'],
        images_per_s=images_per_s,
        t_optimizer=t_opt,
        intra=Link(intra_latency, intra_bw),
        inter=Link(inter_latency, nics * constant('inter_bandwidth')),
        gradient_bytes=constant('gradient_bytes'),
        bn_stat_bytes=constant('bn_stat_bytes'),
        forward_fraction=constant('forward_fraction'),
        ring_base_latency=constant('ring_base_latency'),
        ring_plateau=constant('ring_plateau_nccl27'),
        calibration='modelled from published P100 / InfiniBand FDR figures '
                    '(PAPER_CONSTANTS)',
    )
    return replace(m, **overrides)


def _read_bench(bench):
    """Compute, optimizer and all-reduce figures from ``bench/bench_scaling.py``'s JSON.

    That JSON holds per-rank-count medians (``ranks: {"1": {...}, "2": {...}}``):
    ``forward_backward``, ``optimizer``, ``allreduce_float16``, the project's ring in
    float32 ``allreduce_float32_ring`` and ``grad_bytes_float16/32``.  Compute and
    optimizer come from the smallest rank count (more ranks share one small
    machine's cores); the all-reduce points are the float16 and float32 ring times
    of every rank count >= 2: one algorithm at two sizes.
    """
    if isinstance(bench, str):
        with open(bench) as f:
            bench = json.load(f)
    if not isinstance(bench, dict) or not isinstance(bench.get('ranks'), dict):
        raise ValueError("expected the JSON of bench/bench_scaling.py (an object with "
                         "'ranks'), got {}".format(type(bench).__name__ if not isinstance(
                             bench, dict) else 'keys {}'.format(sorted(bench))))
    per = {int(k): v for k, v in bench['ranks'].items()}
    if not per:
        raise ValueError("its 'ranks' is empty: no rank count was measured")
    base = per[min(per)]
    points = [(n, r['grad_bytes_' + dtype], r[key])
              for n, r in sorted(per.items()) if n >= 2
              for key, dtype in (('allreduce_float16', 'float16'),
                                 ('allreduce_float32_ring', 'float32'))
              if r.get(key) is not None and r.get('grad_bytes_' + dtype)]
    return {'b_local': bench['batchsize'], 't_forward_backward': base['forward_backward'],
            't_optimizer': base['optimizer'], 'allreduce': points,
            'gradient_bytes': base['grad_bytes_float16'], 'ranks_per_node': max(per),
            'arch': bench.get('arch'), 'insize': bench.get('insize'),
            'host': (bench.get('machine') or {}).get('platform', 'local')}


def machine_from_measurements(bench, name=None):
    """A :class:`Machine` calibrated on this machine's ``bench/bench_scaling.py`` JSON
    (a dict or a path); alpha and B come from :func:`fit_alpha_bandwidth`, and with
    all ranks on one host the same link stands for intra- and inter-node."""
    meas = _read_bench(bench)
    fit = fit_alpha_bandwidth(meas['allreduce'])
    link = Link(fit['alpha'], fit['bandwidth'])
    return Machine(
        name=name or 'this machine ({})'.format(meas['host']),
        gpus_per_node=int(meas['ranks_per_node']),
        images_per_s=float(meas['b_local']) / float(meas['t_forward_backward']),
        t_optimizer=float(meas['t_optimizer']),
        intra=link, inter=link,
        gradient_bytes=float(meas['gradient_bytes']),
        calibration='calibrated on measurements of this machine '
                    '(forward+backward, optimizer, all-reduce fit)',
        notes={'fit': fit, 'arch': meas['arch'], 'insize': meas['insize'],
               'b_local': meas['b_local']},
    )


def predict(machine, n, b_local=32, epochs=90, n_train=paper.IMAGENET_TRAIN,
            n_val=paper.IMAGENET_VAL):
    """Modelled time of ``epochs`` epochs on ``n`` workers, with its breakdown."""
    n = int(n)
    it = machine.iteration(n, b_local)
    iters = total_iterations(epochs, n, b_local, n_train)
    t_val = machine.validation_time(n, n_val) if n_val else 0.0
    total = iters * it['total'] + epochs * t_val
    return {
        'n': n, 'nodes': int(math.ceil(n / float(machine.gpus_per_node))),
        'b_local': int(b_local), 'total_batch': n * int(b_local),
        'iterations_per_epoch': iterations_per_epoch(n, b_local, n_train),
        'iterations': iters,
        't_compute': it['compute'], 't_allreduce': it['allreduce'],
        't_optimizer': it['optimizer'], 't_iter': it['total'],
        't_validation_epoch': t_val, 't_epoch': total / epochs if epochs else 0.0,
        't_total': total, 'epochs': epochs,
        'images_per_s': n * b_local / it['total'],
    }


def scaling_efficiency(machine, n, baseline=1, b_local=32):
    """Per-worker throughput at ``n`` relative to ``baseline`` workers."""
    return (machine.iteration(baseline, b_local)['total']
            / machine.iteration(n, b_local)['total'])


def default_worker_counts(max_n=1024, gpus_per_node=8):
    """1, then g, 2g, 4g, ... up to ``max_n``."""
    ns, n = [1], gpus_per_node
    while n <= max_n:
        ns.append(n)
        n *= 2
    return ns


def scaling_table(machine, ns=None, b_local=32, epochs=90):
    """:func:`predict` for each n plus efficiencies against 1 GPU and 1 node."""
    ns = ns or default_worker_counts(gpus_per_node=machine.gpus_per_node)
    rows = []
    for n in ns:
        r = predict(machine, n, b_local, epochs)
        r['efficiency_vs_1gpu'] = scaling_efficiency(machine, n, 1, b_local)
        r['efficiency_vs_1node'] = (
            scaling_efficiency(machine, n, machine.gpus_per_node, b_local)
            if n >= machine.gpus_per_node else None)
        rows.append(r)
    return rows


#: How close the model must come to the paper to count as accounting for it:
#: relative error of the 90-epoch time, and points of each scaling efficiency.
TIME_TOLERANCE = 0.15
EFFICIENCY_TOLERANCE = 0.10


def paper_comparison(machine=None):
    """The model's numbers for the paper's set-up next to the paper's.

    Returns a dict: ``modelled`` (predict() at 1024 workers plus efficiencies),
    ``paper`` (:data:`paper_numbers.HEADLINE`), ``relative_time_error``
    (modelled / paper - 1), ``alpha_to_match``: the inter-node per-step
    latency that, all else fixed, would make the modelled time equal the
    paper's (a diagnostic of the discrepancy, not a calibration),
    ``t_iter_by_n`` (modelled) and ``paper_t_iter_by_n`` (implied) for 1 GPU,
    one node and 1024 GPUs, and ``check``: each criterion's difference and
    whether it is within :data:`TIME_TOLERANCE` / :data:`EFFICIENCY_TOLERANCE`.

    The paper's time per iteration at 1024 GPUs is its 897.9 s less the modelled
    validation, over the modelled iteration count; at 1 GPU and one node it is
    that times the paper's efficiencies (efficiency = T_iter(base) / T_iter(n)).
    """
    m = machine or paper_machine()
    h = paper.HEADLINE
    n, b = h['workers'], h['batch_per_worker']
    pred = predict(m, n, b, h['epochs'])
    pred['efficiency_vs_1gpu'] = scaling_efficiency(m, n, 1, b)
    pred['efficiency_vs_1node'] = scaling_efficiency(m, n, m.gpus_per_node, b)
    n_iter = pred['iterations']
    t_val = pred['t_validation_epoch'] * h['epochs']
    t_iter_paper = (h['time_s'] - t_val) / n_iter
    # Per-step latency of the inter-node link that would make the modelled
    # time equal the paper's, everything else fixed (the time is linear in it
    # once it exceeds the intra-node latency).  A diagnostic, not a calibration.
    a0 = max(m.intra.alpha, m.inter.alpha)
    a1 = a0 + 1e-5

    def total_with(alpha):
        mm = replace(m, inter=Link(alpha, m.inter.bandwidth))
        return predict(mm, n, b, h['epochs'])['t_total']
    t0, t1 = total_with(a0), total_with(a1)
    alpha_match = a0 + (h['time_s'] - t0) * (a1 - a0) / (t1 - t0)
    g = m.gpus_per_node
    rel = pred['t_total'] / h['time_s'] - 1.0
    d1 = pred['efficiency_vs_1gpu'] - h['efficiency_vs_1gpu']
    dg = pred['efficiency_vs_1node'] - h['efficiency_vs_1node']
    return {
        'machine': m.name, 'calibration': m.calibration,
        'images_per_s': m.images_per_s, 'inter_latency': m.inter.alpha,
        'allreduce': m.allreduce, 'modelled': pred, 'paper': dict(h),
        'relative_time_error': rel,
        'paper_t_iter': t_iter_paper,
        'paper_implied_1gpu_images_per_s': (
            b / (h['efficiency_vs_1gpu'] * t_iter_paper)),
        'alpha_to_match': alpha_match,
        't_iter_by_n': {k: m.iteration(k, b)['total'] for k in (1, g, n)},
        'paper_t_iter_by_n': {1: h['efficiency_vs_1gpu'] * t_iter_paper,
                              g: h['efficiency_vs_1node'] * t_iter_paper,
                              n: t_iter_paper},
        'check': {'time': (rel, abs(rel) <= TIME_TOLERANCE),
                  'efficiency_vs_1gpu': (d1, abs(d1) <= EFFICIENCY_TOLERANCE),
                  'efficiency_vs_1node': (dg, abs(dg) <= EFFICIENCY_TOLERANCE)},
    }


# ---------------------------------------------------------------------------
# Alternative assumptions
# ---------------------------------------------------------------------------









def pessimistic_machine():
    """The slowest-communicating MN-1 the sourced constants allow: NCCL 2.7-2.9's
    ring latency model and a ring through QPI inside each node."""
    return paper_machine(allreduce='ring-nccl27', inter_latency=constant('inter_latency_nccl27'),
                         intra_bandwidth=constant('qpi_bandwidth'))




def sensitivity_rows():
    """The 1024-GPU prediction under alternative assumptions (all modelled)."""
    cases = [
        ('baseline (PAPER_CONSTANTS)', {}),
        ('single GPU at the SXM2 speed, 195 images/s (no PCIe derating)',
         {'images_per_s': constant('images_per_s')}),
        ('single GPU 138 images/s (Table 1, He et al. 29 h on 8 P100)',
         {'images_per_s': constant('images_per_s_low')}),
        ('2 InfiniBand FDR adapters per node', {'nics_per_node': 2}),
        ('ring crosses QPI inside each node (8 GB/s, NCCL 2.5.6)',
         {'intra_bandwidth': constant('qpi_bandwidth')}),
        ('hierarchical all-reduce', {'allreduce': 'hierarchical'}),
        ('NCCL 2.7-2.9 latency model (9.6 us across nodes, x1.9 plateau)',
         {'allreduce': 'ring-nccl27', 'inter_latency': constant('inter_latency_nccl27')}),
        ('per-step latency 1 us (FDR adapter only, no NCCL software)',
         {'inter_latency': 1e-6, 'intra_latency': 1e-6, 'ring_base_latency': 0.0}),
        ('per-step latency 30 us', {'inter_latency': 30e-6}),
        ('overlap 50% of the all-reduce', {'overlap': 0.5}),
    ]
    rows = []
    for label, kw in cases:
        c = paper_comparison(paper_machine(**kw))
        rows.append((label, c['modelled']['t_total'],
                     c['modelled']['efficiency_vs_1gpu'],
                     c['modelled']['efficiency_vs_1node']))
    return rows













