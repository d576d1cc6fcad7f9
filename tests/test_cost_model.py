"""The cost model's formulas against hand computations, its fit, and its CLI."""
import json
import re
import subprocess
import sys

import numpy as np
import pytest

from chainer_ext.paper.cost_model import constants as cost_constants
from chainer_ext.paper.cost_model import model as cm
from chainer_ext.paper.cost_model import text as cost_model_text
from chainer_ext.paper.cost_model import pcie_derating

S = 2 * 25557032          # float16 ResNet-50 gradients, bytes


def test_ring_allreduce_by_hand():
    alpha, bw = 5e-6, 6.8e9
    # n = 2: 2 steps of latency, 2 * 1/2 * S / B of data
    assert cm.ring_allreduce_time(2, S, alpha, bw) == pytest.approx(
        2 * 5e-6 + S / 6.8e9)
    assert cm.ring_allreduce_time(2, S, alpha, bw) == pytest.approx(0.0075267741, rel=1e-8)
    # n = 1024: 2046 steps, 2 * 1023/1024 * S / B
    assert cm.ring_allreduce_time(1024, S, alpha, bw) == pytest.approx(
        2046 * 5e-6 + 2 * 1023 / 1024 * S / 6.8e9)
    assert cm.ring_allreduce_time(1024, S, alpha, bw) == pytest.approx(0.02524887, rel=1e-6)
    assert cm.ring_allreduce_time(1, S, alpha, bw) == 0.0
    with pytest.raises(ValueError):
        cm.ring_allreduce_time(0, S, alpha, bw)


def test_hierarchical_and_multinode_ring_by_hand():
    intra, inter = cm.Link(2e-6, 12e9), cm.Link(1e-6, 6.8e9)
    t = cm.hierarchical_allreduce_time(128, 8, S, intra, inter)
    want = (2 * 7 * 2e-6 + 2 * 7 / 8 * S / 12e9) + (2 * 127 * 1e-6 + 2 * 127 / 128 * S / 6.8e9)
    assert t == pytest.approx(want)
    # one node: the intra-node ring only; one GPU per node: the inter-node ring only
    assert cm.hierarchical_allreduce_time(1, 8, S, intra, inter) == pytest.approx(
        cm.ring_allreduce_time(8, S, 2e-6, 12e9))
    assert cm.hierarchical_allreduce_time(4, 1, S, intra, inter) == pytest.approx(
        cm.ring_allreduce_time(4, S, 1e-6, 6.8e9))
    # a ring through all 1024 GPUs pays the slowest hop at every step
    assert cm.multinode_ring_allreduce_time(1024, 8, S, intra, inter) == pytest.approx(
        2046 * 2e-6 + 2 * 1023 / 1024 * S / 6.8e9)
    assert cm.multinode_ring_allreduce_time(8, 8, S, intra, inter) == pytest.approx(
        cm.ring_allreduce_time(8, S, 2e-6, 12e9))


def test_shards_and_iterations_by_hand():
    assert cm.shard_size(1024) == 1252                      # 1,281,167 / 1024 = 1251.1
    assert cm.shard_size(8) == 160146                       # 160145.9
    assert cm.iterations_per_epoch(1024, 32) == 39.125      # 1252 / 32
    assert cm.iterations_per_epoch(1, 32) == pytest.approx(40036.46875)
    assert cm.total_iterations(90, 1024, 32) == 3522        # 112,680 / 32 = 3521.25
    assert cm.total_iterations(90, 8, 32) == 450411         # 90 * 160146 / 32 = 450410.6
    assert cm.total_iterations(90, 1, 32) == 3603283        # 90 * 1281167 / 32 = 3603282.2
    assert cm.total_iterations(1, 2, 32, n_train=1797) == 29  # shard 899: 28.1
    assert cm.total_iterations(2, 2, 32, n_train=1797) == 57  # 56.2, not 2 * 29
    assert cm.total_iterations(3, 2, 32, n_train=64) == 3     # exactly 1 per epoch


@pytest.mark.parametrize('n_train, n, epochs', [(1281167, 1024, 90), (1797, 2, 3), (100, 3, 5)])
def test_total_iterations_is_what_chainer_runs(n_train, n, epochs):
    """Chainer's own iterator and stop trigger on one shard count the same."""
    import chainer
    from chainer.training import triggers
    shard = -(-n_train // n)
    it = chainer.iterators.SerialIterator(list(range(shard)), 32, repeat=True, shuffle=False)

    class Updater(object):
        pass

    class Trainer(object):
        updater = Updater()

    stop = triggers.IntervalTrigger(epochs, 'epoch')
    every_epoch = triggers.IntervalTrigger(1, 'epoch')
    done = validations = 0
    while True:
        it.next()
        done += 1
        Trainer.updater.epoch_detail, Trainer.updater.iteration = it.epoch_detail, done
        validations += every_epoch(Trainer)
        if stop(Trainer):
            break
    assert cm.total_iterations(epochs, n, 32, n_train=n_train) == done
    assert validations == epochs


@pytest.mark.parametrize('alpha, bw', [(3e-6, 6.8e9), (80e-6, 1.2e9), (0.0, 5e8)])
def test_fit_recovers_alpha_and_bandwidth(alpha, bw):
    sizes = [2 ** k for k in range(10, 27, 2)]
    pts = [(s, cm.ring_allreduce_time(2, s, alpha, bw)) for s in sizes]
    fit = cm.fit_alpha_bandwidth(pts, n=2)
    assert fit['alpha'] == pytest.approx(alpha, abs=1e-12)
    assert fit['bandwidth'] == pytest.approx(bw, rel=1e-9)
    assert fit['rms_residual'] < 1e-12
    # triples with several rank counts work too, and noise stays small
    rng = np.random.RandomState(0)
    pts3 = [(n, s, cm.ring_allreduce_time(n, s, alpha, bw) * (1 + 0.01 * rng.randn()))
            for n in (2, 4) for s in sizes]
    fit3 = cm.fit_alpha_bandwidth(pts3)
    assert fit3['bandwidth'] == pytest.approx(bw, rel=0.05)


def test_fit_rejects_unidentifiable_input():
    with pytest.raises(ValueError, match='two sizes'):
        cm.fit_alpha_bandwidth([(1e6, 0.01), (1e6, 0.011)], n=2)
    with pytest.raises(ValueError, match='give n'):
        cm.fit_alpha_bandwidth([(1e6, 0.01), (2e6, 0.02)])
    with pytest.raises(ValueError, match='do not grow'):
        cm.fit_alpha_bandwidth([(1e6, 0.02), (2e6, 0.01)], n=2)
    # negative intercept: alpha clipped to 0, bandwidth refitted through the origin
    fit = cm.fit_alpha_bandwidth([(1e6, 0.0009), (2e6, 0.0021)], n=2)
    assert fit['alpha'] == 0.0 and fit['bandwidth'] > 0


def test_ring_base_latency_by_hand():
    # NCCL 2.5.6's ring: 8.4 us once, then 5.7 us per step within a node (PCIe)
    assert cm.ring_allreduce_time(8, S, 5.7e-6, 12e9, base=8.4e-6) == pytest.approx(
        88.2e-6 + 1.75 * S / 12e9)                      # 8.4 + 14 * 5.7 us
    assert cm.ring_allreduce_time(1, S, 5.7e-6, 12e9, base=8.4e-6) == 0.0
    intra, inter = cm.Link(5.7e-6, 12e9), cm.Link(6.6e-6, 6.8e9)
    # across nodes every one of the 2046 steps pays the network's 6.6 us
    assert cm.multinode_ring_allreduce_time(1024, 8, S, intra, inter, base=8.4e-6) == (
        pytest.approx(0.013512 + 0.0150188672, rel=1e-8))
    # hierarchical: two collectives, two base latencies
    assert cm.hierarchical_allreduce_time(128, 8, S, intra, inter, base=8.4e-6) == (
        pytest.approx(cm.hierarchical_allreduce_time(128, 8, S, intra, inter) + 16.8e-6))


def test_nccl27_ring_latency_by_hand():
    intra, inter = cm.Link(5.7e-6, 12e9), cm.Link(9.6e-6, 6.8e9)
    bw_1024 = 0.0150188672                              # 2 * 1023/1024 * S / 6.8 GB/s
    # 254 of the 2046 steps cross nodes; a 51 MB all-reduce is past the plateau
    lat = (8.4 + 1792 * 5.7 + 254 * 9.6) * 1.9e-6       # 12,661.2 us x 1.9
    assert lat == pytest.approx(0.02405628)
    assert cm.nccl27_ring_allreduce_time(1024, 8, S, intra, inter, 8.4e-6, 1.9) == (
        pytest.approx(lat + bw_1024, rel=1e-8))
    # 212,480 bytes of BN statistics are below 1024/16 * 64 KiB = 4 MiB: no plateau
    assert cm.nccl27_ring_allreduce_time(1024, 8, 212480, intra, inter, 8.4e-6, 1.9) == (
        pytest.approx(12661.2e-6 + 2 * 1023 / 1024 * 212480 / 6.8e9))
    # two nodes of 8: 2 of the 30 steps cross, (8.4 + 28 * 5.7 + 2 * 9.6) us x 1.9
    assert cm.nccl27_ring_allreduce_time(16, 8, S, intra, inter, 8.4e-6, 1.9) == (
        pytest.approx(355.68e-6 + 2 * 15 / 16 * S / 6.8e9))
    # within one node it is the ordinary ring, no plateau
    assert cm.nccl27_ring_allreduce_time(8, 8, S, intra, inter, 8.4e-6, 1.9) == (
        pytest.approx(88.2e-6 + 1.75 * S / 12e9))


def test_iteration_and_validation_by_hand():
    m = cm.paper_machine()
    # 195 images/s on a P100 SXM2, times 9.3 / 10.6 TFLOPS for MN-1's P100s for PCIe
    assert m.images_per_s == pytest.approx(171.0849, rel=1e-6)
    tc = 32 * 10.6 / (195.0 * 9.3)
    assert tc == pytest.approx(0.1870416)
    assert m.compute_time(32) == pytest.approx(tc)
    t_opt = 40 * 25557032 / 732e9 + 161 * 20e-6
    assert m.t_optimizer == pytest.approx(t_opt)
    it = m.iteration(1024, 32)
    ta = 8.4e-6 + 2046 * 6.6e-6 + 2 * 1023 / 1024 * S / 6.8e9
    assert ta == pytest.approx(0.0285308672)
    assert it['allreduce'] == pytest.approx(ta)
    assert it['total'] == pytest.approx(tc + ta + t_opt)
    assert m.iteration(1, 32)['allreduce'] == 0.0
    assert m.iteration(8, 32)['allreduce'] == pytest.approx(88.2e-6 + 1.75 * S / 12e9)
    # validation: ceil(50000/1024) = 49 images at 1/3 of a training image + BN all-reduce
    tv = 49 * (1 / 3.0) * tc / 32 + (13512e-6 + 2 * 1023 / 1024 * 212480 / 6.8e9)
    assert m.validation_time(1024) == pytest.approx(tv)
    p = cm.predict(m, 1024, 32, 90)
    assert p['iterations'] == 3522 and p['total_batch'] == 32768
    assert p['t_total'] == pytest.approx(3522 * (tc + ta + t_opt) + 90 * tv)
    # overlap hides part of the all-reduce
    half = cm.paper_machine(overlap=0.5).iteration(1024, 32)
    assert half['total'] == pytest.approx(tc + 0.5 * ta + t_opt)
    # an explicit speed replaces the derated one
    assert cm.paper_machine(images_per_s=195.0).compute_time(32) == pytest.approx(32 / 195.0)
    # the QPI case: an 8 GB/s link inside the node bounds the ring everywhere
    q = cm.paper_machine(intra_bandwidth=8e9)
    assert q.allreduce_time(8) == pytest.approx(88.2e-6 + 1.75 * S / 8e9)
    assert q.allreduce_time(1024) == pytest.approx(0.013512 + 2 * 1023 / 1024 * S / 6.8e9)


@pytest.mark.parametrize('kw', [{}, {'allreduce': 'hierarchical'}, {'allreduce': 'ring-nccl27'},
                                {'inter_latency': 30e-6}, {'nics_per_node': 2}])
def test_monotonic_scaling(kw):
    m = cm.paper_machine(**kw)
    rows = cm.scaling_table(m)
    assert [r['n'] for r in rows] == [1, 8, 16, 32, 64, 128, 256, 512, 1024]
    times = [r['t_total'] for r in rows]
    assert all(a > b for a, b in zip(times, times[1:]))          # time falls with n
    for r in rows:
        assert 0 < r['efficiency_vs_1gpu'] <= 1
        assert r['efficiency_vs_1node'] is None or 0 < r['efficiency_vs_1node'] <= 1
        if r['n'] >= 8:
            assert r['efficiency_vs_1node'] >= r['efficiency_vs_1gpu']
    assert rows[0]['efficiency_vs_1gpu'] == 1.0
    allr = [r['t_allreduce'] for r in rows]
    assert all(a <= b for a, b in zip(allr, allr[1:]))           # comm grows with n


# Each constant as its source states it: the figures quoted in its 'source' text and
# the arithmetic that turns them into the value.  Tuning a value breaks the match with
# its quoted figures; a new constant needs its derivation here.
SOURCED = {
    'images_per_s': (['195 images/s'], 195.0),
    'pcie_fp32_ratio': (['9.3 TFLOPS', 'against 10.6'], 9.3 / 10.6),
    'images_per_s_low': (['90 epochs in 29 h on 8 Tesla P100'],
                         90 * 1281167 / (29 * 3600.0) / 8),
    'forward_fraction': (['about twice the forward pass'], 1 / (1 + 2)),
    'gradient_bytes': (['25,557,032', 'x 2 bytes'], 25557032 * 2),
    'bn_stat_bytes': (['mean and variance (float32)', '26,560'], 26560 * 2 * 4),
    # 4 lanes x 14.0625 Gbit/s, 64b/66b: 6.82 GB/s, quoted to two figures
    'inter_bandwidth': (['4 lanes x 14.0625 Gbit/s', '64b/66b', '6.8 GB/s'],
                        round(4 * 14.0625e9 * 64 / 66 / 8, -8)),
    'inter_latency': (['hwLat[NET][Ring][Simple] = 6.6 us'], 6.6e-6),
    'ring_base_latency': (['baseLat[Ring][Simple] = 8.4 us'], 8.4e-6),
    'inter_latency_nccl27': (['hwLat[NET][Ring][Simple] = 9.6 us'], 9.6e-6),
    'ring_plateau_nccl27': (['lat *= 1.9'], 1.9),
    'nics_per_node': (['One adapter here'], 1),
    'intra_bandwidth': (['PCI_WIDTH 12'], 12e9),
    'qpi_bandwidth': (['QPI_WIDTH 8 (GB/s)'], 8e9),
    'intra_latency': (['hwLat[PCI][Ring][Simple] = 5.7 us'], 5.7e-6),
    'hbm_bandwidth': (['732 GB/s'], 732e9),
    'optimizer_bytes_per_param': (['(16 B)', '(12 B) = 28 B', '= 12 B'], 16 + 12 + 6 + 6),
    'per_array_overhead': (['Assumed', '10-30 us'], 20e-6),
}


def test_constants_are_the_figures_their_sources_quote():
    assert set(cost_constants.PAPER_CONSTANTS) == set(SOURCED)
    for name, c in cost_constants.PAPER_CONSTANTS.items():
        quoted, value = SOURCED[name]
        assert c['unit'], name
        for figure in quoted:
            assert figure in c['source'], (name, figure)
        assert c['value'] == pytest.approx(value, rel=1e-12), name
    # the assumed one lies inside the range its source states
    assert 10e-6 <= cost_constants.PAPER_CONSTANTS['per_array_overhead']['value'] <= 30e-6


def test_the_model_is_not_fitted_to_the_paper():
    """With the sourced constants the model misses 897.9 s; it reports by how much and
    the latency per ring step that would close the gap."""
    cmp = cm.paper_comparison()
    assert cmp['paper']['time_s'] == 897.9
    assert cmp['relative_time_error'] == pytest.approx(
        cmp['modelled']['t_total'] / 897.9 - 1)
    assert abs(cmp['relative_time_error']) > 0.05
    assert cmp['alpha_to_match'] > cost_constants.PAPER_CONSTANTS['inter_latency']['value']
    m2 = cm.paper_machine(inter_latency=cmp['alpha_to_match'])
    assert cm.predict(m2, 1024, 32, 90)['t_total'] == pytest.approx(897.9, rel=1e-3)


def test_paper_check_by_hand():
    """Each criterion against the paper, from the hand-computed iteration times."""
    t_opt = 40 * 25557032 / 732e9 + 161 * 20e-6                 # 4.6166 ms
    t1 = 32 * 10.6 / (195.0 * 9.3) + t_opt                      # 191.658 ms
    t8 = t1 + 88.2e-6 + 1.75 * S / 12e9                         # + 7.542 ms
    t1024 = t1 + 0.0285308672                                   # + 28.531 ms
    t_val = 49 / 3.0 * 10.6 / (195.0 * 9.3) + 13512e-6 + 2 * 1023 / 1024 * 212480 / 6.8e9
    total = 3522 * t1024 + 90 * t_val
    assert total == pytest.approx(785.32, abs=0.01)
    cmp = cm.paper_comparison()
    assert cmp['modelled']['t_total'] == pytest.approx(total)
    assert cmp['t_iter_by_n'] == pytest.approx({1: t1, 8: t8, 1024: t1024})
    # the paper's: (897.9 s - validation) / 3522 at 1024, times 0.70 and 0.80 below
    paper_1024 = (897.9 - 90 * t_val) / 3522
    assert paper_1024 == pytest.approx(0.252154, abs=1e-6)
    assert cmp['paper_t_iter_by_n'] == pytest.approx(
        {1: 0.7 * paper_1024, 8: 0.8 * paper_1024, 1024: paper_1024})
    c = cmp['check']
    assert c['time'][0] == pytest.approx(total / 897.9 - 1) and c['time'][1]
    assert c['efficiency_vs_1gpu'][0] == pytest.approx(t1 / t1024 - 0.70)     # +17.0 points
    assert c['efficiency_vs_1node'][0] == pytest.approx(t8 / t1024 - 0.80)    # +10.5 points
    assert not c['efficiency_vs_1gpu'][1] and not c['efficiency_vs_1node'][1]
    text = cost_model_text.target_check_text(cmp)
    assert '| 90-epoch time | 15% | {:+.1f}% | yes |'.format(100 * (total / 897.9 - 1)) in text
    assert 'Not within the tolerances' in text
    # had every criterion been met, no reason would be given
    met = dict(cmp, check={k: (v, True) for k, (v, _) in c.items()})
    assert 'Not within' not in cost_model_text.target_check_text(met)


def test_pessimistic_machine_by_hand():
    worst = cm.pessimistic_machine()
    # 8 GPUs on one node: NCCL's PCIe step latency, QPI's 8 GB/s
    assert worst.allreduce_time(8) == pytest.approx(88.2e-6 + 1.75 * S / 8e9)
    # 1024: NCCL 2.7-2.9 latency (x1.9), the network still the narrowest link
    assert worst.allreduce_time(1024) == pytest.approx(0.02405628 + 0.0150188672)


def bench_scaling_json(t_fb=0.8, t_opt=0.05, alpha=20e-6, bw=2e9, params=25557032):
    """The JSON bench/bench_scaling.py writes, with all-reduce times from the ring model."""
    ring = {dt: cm.ring_allreduce_time(2, size * params, alpha, bw)
            for dt, size in (('float16', 2), ('float32', 4))}
    per_rank = {'grad_bytes_float16': 2 * params, 'grad_bytes_float32': 4 * params}
    return {'arch': 'resnet50', 'batchsize': 32, 'insize': 224, 'iterations': 3,
            'machine': {'cpu_count': 2, 'platform': 'box'},
            'ranks': {'1': dict(per_rank, forward_backward=t_fb, optimizer=t_opt,
                                allreduce_float16=0.0, allreduce_float32=0.0),
                      '2': dict(per_rank, forward_backward=1.7 * t_fb, optimizer=1.5 * t_opt,
                                allreduce_float16=ring['float16'],
                                allreduce_float32_ring=ring['float32'],
                                allreduce_float32=0.5 * ring['float32'])}}


def test_machine_from_measurements(tmp_path):
    path = tmp_path / 'scaling.json'
    path.write_text(json.dumps(bench_scaling_json()))
    m = cm.machine_from_measurements(str(path))
    assert m.images_per_s == pytest.approx(40.0)          # 32 images / 0.8 s on one rank
    assert m.t_optimizer == 0.05
    # fitted on the project's ring at two sizes, not on ChainerMN's float32 time
    assert m.intra.alpha == pytest.approx(20e-6) and m.inter.bandwidth == pytest.approx(2e9)
    assert m.forward_time_per_image() == pytest.approx(1 / 3.0 / 40.0)
    it = m.iteration(2, 32)
    assert it['total'] == pytest.approx(0.8 + cm.ring_allreduce_time(2, S, 20e-6, 2e9) + 0.05)
    assert m.name == 'this machine (box)'
    with pytest.raises(ValueError, match='bench_scaling.py'):
        cm.machine_from_measurements({'t_forward_backward': 1.0, 'allreduce': []})


def _cli(*args):
    return subprocess.run([sys.executable, '-m', 'chainer_ext.cost_model'] + list(args),
                          capture_output=True, text=True, timeout=120)


def test_cli_paper_prints_paper_beside_prediction():
    proc = _cli('--paper')
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert 'MODELLED' in out
    cmp = cm.paper_comparison()
    rows = {}
    for line in out.splitlines():
        cells = [c.strip() for c in line.strip().strip('|').split('|')]
        if len(cells) == 4:
            rows[cells[0]] = cells[1:]
    t = rows['training time incl. validation']
    assert t[0] == '897.9 ± 3.3 s'
    assert t[1] == '{:.1f} s'.format(cmp['modelled']['t_total'])
    assert rows['scaling efficiency vs 1 GPU'][0] == '70%'
    assert rows['scaling efficiency vs 1 node (8 GPUs)'][0] == '80%'
    assert rows['scaling efficiency vs 1 GPU'][1] == '{:.1f}%'.format(
        100 * cmp['modelled']['efficiency_vs_1gpu'])
    # the time's verdict is the one at the speed the paper implies (the derating's text)
    implied = pcie_derating.verdict_range()['implied']
    assert rows['90-epoch time'] == ['15%', '{:+.1f}% at the {:.0f} images/s the paper '
                                     'implies ({:+.1f}% clock-derated)'.format(
                                         100 * implied['relative_time_error'],
                                         implied['images_per_s'],
                                         100 * cmp['relative_time_error']), 'NO']
    assert rows['efficiency vs 1 GPU'] == ['10 points', '{:+.1f} points'.format(
        100 * cmp['check']['efficiency_vs_1gpu'][0]), 'NO']
    assert 'Not within the tolerances with sourced terms' in out
    for n in (8, 16, 32, 64, 128, 256, 512, 1024):
        assert re.search(r'^\| {} \| {} \| {} \|'.format(n, max(1, n // 8), 32 * n), out, re.M)
    assert 'Calibration constants' in out and 'tensorflow.org' in out


def test_cli_json_and_measured(tmp_path):
    proc = _cli('--json')
    data = json.loads(proc.stdout)
    assert data['comparison']['modelled']['n'] == 1024
    # the file's verdict on the time is the table's: at the speed the paper implies
    implied = pcie_derating.verdict_range()['implied']
    assert data['comparison']['check']['time'] == [
        pytest.approx(implied['relative_time_error']), False]
    assert data['comparison']['check']['time_images_per_s'] == pytest.approx(
        implied['images_per_s'])
    assert data['comparison']['relative_time_error'] == pytest.approx(
        cm.paper_comparison()['relative_time_error'])
    assert len(data['scaling']) == 9
    path = tmp_path / 'm.json'
    path.write_text(json.dumps(bench_scaling_json()))
    proc = _cli('--measured', str(path), '--ranks', '1', '2', '4')
    assert proc.returncode == 0, proc.stderr
    assert 'MEASURED inputs' in proc.stdout and 'FITTED' in proc.stdout
    assert 'paper' not in proc.stdout.split('FITTED')[0].lower().replace('paper_', '')



@pytest.mark.parametrize('args,line', [
    (['--images-per-s', '0'], '--images-per-s must be a finite number > 0, got 0'),
    (['--images-per-s', '-5'], '--images-per-s must be a finite number > 0, got -5'),
    (['--images-per-s', 'nan'], '--images-per-s must be a finite number > 0, got nan'),
    (['--nics-per-node', '0'], '--nics-per-node must be a positive integer, got 0'),
    (['--inter-latency-us', 'inf'], '--inter-latency-us must be a finite number >= 0, got inf'),
    (['--overlap', '2'], '--overlap must be in [0, 1], got 2'),
    (['--overlap', 'nan'], '--overlap must be in [0, 1], got nan'),
    (['--ranks', '0', '--measured', 'm.json'], '--ranks must be a positive integer, got 0'),
    (['--measured', 'missing.json'], '--measured missing.json: No such file or directory'),
])
def test_cli_refuses_bad_input_in_one_line(tmp_path, args, line):
    """Zeros used to be replaced by defaults, negative rates gave negative times, an overlap
    of 2 gave 117 % efficiency and nan a table of nan; a missing file a traceback."""
    (tmp_path / 'm.json').write_text(json.dumps(bench_scaling_json()))
    proc = subprocess.run([sys.executable, '-m', 'chainer_ext.cost_model'] + args,
                          capture_output=True, text=True, timeout=120, cwd=str(tmp_path))
    assert proc.returncode == 2 and proc.stdout == ''
    assert proc.stderr == 'python -m chainer_ext.cost_model: error: {}\n'.format(line)


def test_cli_refuses_a_file_that_is_not_a_benchmark(tmp_path):
    path = tmp_path / 'other.json'
    path.write_text('{"ranks": {}}')
    proc = _cli('--measured', str(path))
    assert proc.returncode == 2 and len(proc.stderr.splitlines()) == 1, proc.stderr
    assert proc.stderr == ('python -m chainer_ext.cost_model: error: --measured {}: not the '
                           "JSON of bench/bench_scaling.py (its 'ranks' is empty: no rank count "
                           'was measured)\n'.format(path))


def test_bench_scaling_format_is_accepted():
    """The JSON of bench/bench_scaling.py (per rank count medians)."""
    p = 25557032
    t16 = cm.ring_allreduce_time(2, 2 * p, 50e-6, 1e9)
    t32 = cm.ring_allreduce_time(2, 4 * p, 50e-6, 1e9)
    bench = {'arch': 'resnet50', 'batchsize': 32, 'insize': 224, 'iterations': 3,
             'machine': {'cpu_count': 2, 'platform': 'Linux'},
             'ranks': {'1': {'forward_backward': 4.0, 'allreduce_float16': 0.0,
                             'allreduce_float32': 0.0, 'optimizer': 0.2,
                             'grad_bytes_float16': 2 * p, 'grad_bytes_float32': 4 * p},
                       '2': {'forward_backward': 7.0, 'allreduce_float16': t16,
                             'allreduce_float32_ring': t32, 'allreduce_float32': 3 * t32,
                             'optimizer': 0.3,
                             'grad_bytes_float16': 2 * p, 'grad_bytes_float32': 4 * p}}}
    m = cm.machine_from_measurements(bench)
    assert m.images_per_s == pytest.approx(8.0)          # 1-rank compute: 32 / 4 s
    assert m.t_optimizer == 0.2
    assert m.inter.bandwidth == pytest.approx(1e9) and m.inter.alpha == pytest.approx(50e-6)
    assert m.gradient_bytes == 2 * p and m.gpus_per_node == 2
    assert m.notes['arch'] == 'resnet50' and m.notes['insize'] == 224
