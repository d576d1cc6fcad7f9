"""The cost model's 90-epoch verdict at both ends of the PCIe derating, by hand."""
import json
import subprocess
import sys

import pytest

from chainer_ext.paper.cost_model import model as cm
from chainer_ext.paper.cost_model import text as cost_model_text
from chainer_ext.paper.cost_model import pcie_derating

S = 2 * 25557032                                            # float16 gradients, bytes
T_OPT = 40 * 25557032 / 732e9 + 161 * 20e-6                 # optimizer, s per iteration
T_ALLREDUCE = 8.4e-6 + 2046 * 6.6e-6 + 2 * 1023 / 1024 * S / 6.8e9
T_BN = 13512e-6 + 2 * 1023 / 1024 * 212480 / 6.8e9          # BN statistics all-reduce


def total_by_hand(images_per_s):
    """3522 iterations of 32 images + 90 validations of 49 images at 1/3 of the cost."""
    return (3522 * (32 / images_per_s + T_ALLREDUCE + T_OPT)
            + 90 * (49 / 3.0 / images_per_s + T_BN))


def test_both_ends_and_their_verdicts_by_hand():
    r = pcie_derating.verdict_range()
    derated, sxm2 = 195.0 * 9.3 / 10.6, 195.0
    assert r['derated']['images_per_s'] == pytest.approx(derated)
    assert r['sxm2']['images_per_s'] == sxm2
    for end, speed in (('derated', derated), ('sxm2', sxm2)):
        t = total_by_hand(speed)
        assert r[end]['t_total'] == pytest.approx(t, rel=1e-12)
        assert r[end]['relative_time_error'] == pytest.approx(t / 897.9 - 1, rel=1e-12)
        assert r[end]['within'] == (abs(t / 897.9 - 1) <= 0.15)
    assert total_by_hand(derated) == pytest.approx(785.32, abs=0.01)   # -12.5 %: yes
    assert total_by_hand(sxm2) == pytest.approx(703.47, abs=0.01)      # -21.7 %: NO
    assert r['derated']['within'] and not r['sxm2']['within']


def test_threshold_and_paper_implied_speed_by_hand():
    r = pcie_derating.verdict_range()
    # the speed at which the hand-computed time is exactly 15 % short of 897.9 s
    lo, hi = 150.0, 250.0
    for _ in range(200):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if total_by_hand(mid) > 0.85 * 897.9 else (lo, mid)
    assert r['threshold_images_per_s'] == pytest.approx(lo, rel=1e-9)
    assert 171.08 < lo < 195.0
    # the paper's single-GPU iteration: 0.70 x (897.9 s - validation) / 3522, less the optimizer
    t_val = 90 * (49 / 3.0 * 10.6 / (195.0 * 9.3) + T_BN)
    t1 = 0.70 * (897.9 - t_val) / 3522
    implied = 32 / (t1 - T_OPT)
    assert r['implied']['images_per_s'] == pytest.approx(implied, rel=1e-12)
    assert r['implied']['t_total'] == pytest.approx(total_by_hand(implied), rel=1e-12)
    assert not r['implied']['within']


def test_range_printed_wherever_the_verdict_is():
    text = cost_model_text.paper_report(sensitivity=False, constants=False)
    md, data = cost_model_text.report_section([])
    for out in (text, md):
        for speed, verdict in ((195.0, 'NO'), (195.0 * 9.3 / 10.6, 'yes')):
            t = total_by_hand(speed)
            assert '| {:.1f} | {:.1f} s | {:+.1f}% | {} |'.format(
                speed, t, 100 * (t / 897.9 - 1), verdict) in out
        assert 'Which end the sources support' in out
        assert 'NOT within 15%' in out
    assert data['derating_range']['sxm2']['t_total'] == pytest.approx(total_by_hand(195.0))
    # an explicit single-GPU speed replaces the derating: no range then
    assert 'Which end' not in cost_model_text.paper_report(cm.paper_machine(images_per_s=180.0),
                                              derating_range=False)


def test_cli_prints_the_range_and_leaves_it_out_with_a_given_speed():
    def cli(*args):
        return subprocess.run([sys.executable, '-m', 'chainer_ext.cost_model'] + list(args),
                              capture_output=True, text=True, timeout=120)
    out = cli('--paper', '--no-constants').stdout
    assert '| P100 SXM2 speed, no derating | 195.0 | {:.1f} s |'.format(
        total_by_hand(195.0)) in out
    assert 'Which end the sources support' in cli('--paper', '--no-constants').stdout
    assert 'Which end' not in cli('--paper', '--images-per-s', '180').stdout
    data = json.loads(cli('--json').stdout)
    assert data['derating_range']['derated']['t_total'] == pytest.approx(
        total_by_hand(195.0 * 9.3 / 10.6))
