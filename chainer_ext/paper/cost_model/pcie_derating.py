"""The cost model's 90-epoch verdict over the range the PCIe derating allows (Section 3, Hardware).

The single-GPU speed of :mod:`chainer_ext.paper.cost_model.model` (195 images/s) was measured on a
Tesla P100 SXM2; MN-1's P100s are the PCIe model: the same chip at a lower clock (FP32
peaks 9.3 against 10.6 TFLOPS) with the same 732 GB/s memory, so their speed lies
between the clock-derated 171 images/s (all of training bound by the clock) and 195
(none of it).  The model's time is affine in 1 / speed; :func:`verdict_range` gives it
and the "within 15 %" verdict at both ends, the speed where the verdict flips, and the
speed the paper's own 897.9 s and 70 % against one GPU imply.  Reasoning: docs/DESIGN.md.
"""
from dataclasses import replace

from chainer_ext.paper.cost_model import model as cost_model
from chainer_ext.paper.cost_model.constants import PAPER_CONSTANTS
from chainer_ext.paper import numbers as paper
from chainer_ext.paper.number_format import percent




def sxm2_speed():
    """Images/s of one P100 SXM2 (PAPER_CONSTANTS['images_per_s'])."""
    return PAPER_CONSTANTS['images_per_s']['value']


def derated_speed():
    """Images/s with the full clock derating, ``195 * 9.3 / 10.6``."""
    return sxm2_speed() * PAPER_CONSTANTS['pcie_fp32_ratio']['value']


def _at(machine, images_per_s):
    """The paper comparison of ``machine`` with the single-GPU speed ``images_per_s``."""
    cmp = cost_model.paper_comparison(replace(machine, images_per_s=images_per_s))
    error, within = cmp['check']['time']
    return {'images_per_s': images_per_s, 't_total': cmp['modelled']['t_total'],
            'relative_time_error': error, 'within': within}


def verdict_range(machine=None):
    """The 90-epoch time and its verdict at both ends of the derating, for ``machine``
    (default: :func:`cost_model.paper_machine`) with only its single-GPU speed changed.

    Returns ``{'derated', 'sxm2', 'implied'}`` (each :func:`_at`'s dict: speed,
    ``t_total``, ``relative_time_error``, ``within``) and ``'threshold_images_per_s'``:
    the speed at which the time is exactly :data:`cost_model.TIME_TOLERANCE` short of
    the paper's (the verdict is "yes" at or below it).  ``implied`` is the speed the
    paper's single-GPU iteration (its 897.9 s and 70 %, as :func:`paper_comparison`
    derives it at the derated end) leaves for forward and backward after the model's
    optimizer time.
    """
    m = machine or cost_model.paper_machine()
    derated, sxm2 = _at(m, derated_speed()), _at(m, sxm2_speed())
    # t_total = A + B / speed: solve for t_total = (1 - tolerance) * paper's time
    target = (1.0 - cost_model.TIME_TOLERANCE) * paper.HEADLINE['time_s']
    u0, u1 = 1.0 / derated['images_per_s'], 1.0 / sxm2['images_per_s']
    t0, t1 = derated['t_total'], sxm2['t_total']
    threshold = 1.0 / (u0 + (target - t0) * (u1 - u0) / (t1 - t0))
    base = cost_model.paper_comparison(replace(m, images_per_s=derated_speed()))
    b = paper.HEADLINE['batch_per_worker']
    implied = b / (base['paper_t_iter_by_n'][1] - m.t_optimizer)
    return {'derated': derated, 'sxm2': sxm2, 'implied': _at(m, implied),
            'threshold_images_per_s': threshold}


def range_text(r):
    """Markdown of :func:`verdict_range`'s ``r``: the range, the verdict at each end and
    which end the sources support."""
    yes = {True: 'yes', False: 'NO'}
    tol = cost_model.TIME_TOLERANCE
    rows = (('P100 SXM2 speed, no derating', r['sxm2']),
            ('clock-derated by 9.3 / 10.6 (the model above)', r['derated']),
            ('implied by the paper (897.9 s, 70 % vs 1 GPU)', r['implied']))
    lines = ['The 90-epoch time over the PCIe derating (MODELLED): MN-1\'s P100s for PCIe '
             'compute between {:.0f} images/s (all of training bound by the clock) and {:.0f} '
             '(none of it).'.format(derated_speed(), sxm2_speed()), '',
             '| single-GPU speed | images/s | 90-epoch time | model - paper | within {:.0%} |'
             .format(tol), '|---|---|---|---|---|']
    lines += ['| {} | {:.1f} | {:.1f} s | {:+.1f}% | {} |'.format(
        name, e['images_per_s'], e['t_total'], 100 * e['relative_time_error'],
        yes[e['within']]) for name, e in rows]
    threshold = r['threshold_images_per_s']
    lines += ['', 'Within {:.0%} only at or below {:.1f} images/s, i.e. with the PCIe card at '
              'least {} slower than the SXM2 (the full clock derating is {}).'.format(
                  tol, threshold, percent(1 - threshold / sxm2_speed(), 1),
                  percent(1 - derated_speed() / sxm2_speed(), 1)),
              sources_support(r)]
    return '\n'.join(lines)


def sources_support(r):
    """Which end of :func:`verdict_range`'s ``r`` the sources support, and why."""
    implied = r['implied']
    share = (implied['images_per_s'] - derated_speed()) / (sxm2_speed() - derated_speed())
    nearer = 'the SXM2 (no derating)' if share > 0.5 else 'the derated'
    verdict = ('within {:.0%}'.format(cost_model.TIME_TOLERANCE) if implied['within'] else
               'NOT within {:.0%}: the "yes" above holds only near the upper bound of the '
               'derating, which no source supports'.format(cost_model.TIME_TOLERANCE))
    return (
        'Which end the sources support: the datasheets (pcie_fp32_ratio) make the clock '
        'ratio an upper bound of the slowdown, since the memory-bound layers (batch '
        'normalization, ReLU, the update) see the same 732 GB/s on both cards, and the '
        'paper\'s own 897.9 s and 70 % against one GPU imply a single MN-1 P100 computing '
        '{:.0f} images/s, {:.0%} of the way from the derated end towards the SXM2 speed, '
        'nearer {} end; there the model is {:+.1f}% from the paper, so on the sources\' '
        'reading the time is {}.'.format(implied['images_per_s'], share, nearer,
                                         100 * implied['relative_time_error'], verdict))
