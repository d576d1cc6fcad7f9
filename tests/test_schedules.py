"""Schedules of Akiba et al. (2017), Appendix A.1 (alpha_SGD) and A.2 (learning rates),
checked against the numbers written in the paper / EQUATIONS.md."""
import math

import pytest
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from chainer_ext.optimizers.schedules import compressed_beta
from chainer_ext.optimizers.schedules import elu_alpha_sgd
from chainer_ext.optimizers.schedules import eta_base
from chainer_ext.optimizers.schedules import goyal_lr
from chainer_ext.optimizers.schedules import lars_lr
from chainer_ext.optimizers.schedules import lars_peak
from chainer_ext.optimizers.recipe import schedules_of as recipe
from chainer_ext.optimizers.schedules import slow_start_lr

BEFORE = 1e-9      # "just before" a boundary


# ---------------------------------------------------------------- eta_base (A.2)

def test_eta_base_paper_value():
    assert eta_base(1024 * 32) == pytest.approx(12.8, rel=1e-15)
    assert eta_base(256) == pytest.approx(0.1)
    assert eta_base(8192) == pytest.approx(3.2)        # Goyal et al.'s 8k batch


@pytest.mark.parametrize('bad', [0, -256, float('nan')])
def test_eta_base_rejects(bad):
    with pytest.raises(ValueError, match='total_batch={!r}'.format(bad)):
        eta_base(bad)


# ---------------------------------------------------------------- alpha_SGD (A.1)

def test_alpha_sgd_at_epoch_zero_is_half_e_minus_4():
    assert elu_alpha_sgd(0.0) == pytest.approx(0.5 * math.exp(-4), rel=1e-15)
    assert elu_alpha_sgd(0.0) == pytest.approx(0.00916, abs=5e-6)


def test_alpha_sgd_half_at_center_and_one_from_center_plus_half_period():
    assert elu_alpha_sgd(10.0) == 0.5
    assert elu_alpha_sgd(10.0 - BEFORE) == pytest.approx(0.5, abs=1e-9)
    assert elu_alpha_sgd(12.5 - BEFORE) == pytest.approx(1.0, abs=1e-9)
    assert elu_alpha_sgd(12.5 - BEFORE) < 1.0
    assert elu_alpha_sgd(12.5) == 1.0
    assert elu_alpha_sgd(30.0) == 1.0
    assert elu_alpha_sgd(90.0) == 1.0


def test_alpha_sgd_pieces():
    # exponential part: 0.5 exp(2 (e - 10) / 5); linear part: 0.5 + (e - 10) / 5
    assert elu_alpha_sgd(5.0) == pytest.approx(0.5 * math.exp(-2))
    assert elu_alpha_sgd(7.5) == pytest.approx(0.5 * math.exp(-1))
    assert elu_alpha_sgd(11.0) == pytest.approx(0.7)
    assert elu_alpha_sgd(12.0) == pytest.approx(0.9)


def test_alpha_sgd_value_and_slope_continuous_at_center():
    h = 1e-6
    c = 10.0
    left_slope = (elu_alpha_sgd(c) - elu_alpha_sgd(c - h)) / h
    right_slope = (elu_alpha_sgd(c + h) - elu_alpha_sgd(c)) / h
    assert left_slope == pytest.approx(1 / 5, rel=1e-5)
    assert right_slope == pytest.approx(1 / 5, rel=1e-9)
    assert abs(elu_alpha_sgd(c - h) - elu_alpha_sgd(c + h)) < 3 * h


def test_alpha_sgd_other_betas():
    assert elu_alpha_sgd(2.0, beta_center=2, beta_period=1) == 0.5
    assert elu_alpha_sgd(0.0, beta_center=2, beta_period=1) == pytest.approx(
        0.5 * math.exp(-4))
    assert elu_alpha_sgd(2.5, beta_center=2, beta_period=1) == 1.0
    assert elu_alpha_sgd(0.0, beta_center=0, beta_period=1) == 0.5


@settings(max_examples=200, deadline=None)
@given(st.floats(min_value=0, max_value=200), st.floats(min_value=0, max_value=200))
def test_alpha_sgd_monotone_in_0_1(e1, e2):
    lo, hi = sorted((e1, e2))
    a, b = elu_alpha_sgd(lo), elu_alpha_sgd(hi)
    assert 0 < a <= b <= 1


@pytest.mark.parametrize('kwargs, name', [
    (dict(epoch=-1e-9), 'epoch'), (dict(epoch=float('nan')), 'epoch'),
    (dict(epoch=1.0, beta_period=0), 'beta_period'),
    (dict(epoch=1.0, beta_period=-5), 'beta_period'),
    (dict(epoch=1.0, beta_center=-1), 'beta_center'),
])
def test_alpha_sgd_rejects(kwargs, name):
    with pytest.raises(ValueError, match='{}='.format(name)):
        elu_alpha_sgd(**kwargs)


# ---------------------------------------------------------------- slow start (A.2)

@pytest.mark.parametrize('epoch, factor', [
    (0.0, 0.5), (39.5, 0.5), (40 - BEFORE, 0.5),
    (40.0, 0.075), (69.0, 0.075), (70 - BEFORE, 0.075),
    (70.0, 0.01), (85 - BEFORE, 0.01),
    (85.0, 0.001), (89.99, 0.001), (90.0, 0.001), (95.0, 0.001),
])
def test_slow_start_table(epoch, factor):
    assert slow_start_lr(epoch, 12.8) == pytest.approx(factor * 12.8, rel=1e-15)


def test_slow_start_compressed_to_18_epochs():
    # boundaries 40/70/85 of 90 -> 8/14/17 of 18
    for e, factor in [(0, 0.5), (8 - BEFORE, 0.5), (8, 0.075), (14 - BEFORE, 0.075),
                      (14, 0.01), (17 - BEFORE, 0.01), (17, 0.001), (18, 0.001)]:
        assert slow_start_lr(e, 2.0, total_epochs=18) == pytest.approx(factor * 2.0), e


@pytest.mark.parametrize('kwargs, name', [
    (dict(epoch=-1, eta_base=1), 'epoch'),
    (dict(epoch=1, eta_base=0), 'eta_base'), (dict(epoch=1, eta_base=-1), 'eta_base'),
    (dict(epoch=1, eta_base=1, total_epochs=0), 'total_epochs'),
    (dict(epoch=1, eta_base=1, total_epochs=-90), 'total_epochs'),
])
def test_slow_start_rejects(kwargs, name):
    with pytest.raises(ValueError, match='{}='.format(name)):
        slow_start_lr(**kwargs)


@settings(max_examples=100, deadline=None)
@given(st.floats(min_value=0, max_value=100), st.floats(min_value=0, max_value=100),
       st.floats(min_value=1, max_value=200))
def test_slow_start_non_increasing(e1, e2, total):
    lo, hi = sorted((e1, e2))
    assert slow_start_lr(lo, 1.0, total) >= slow_start_lr(hi, 1.0, total)


# ---------------------------------------------------------------- Goyal et al. (A.2)

@pytest.mark.parametrize('epoch, factor', [
    (5.0, 1.0), (30 - BEFORE, 1.0), (30.0, 0.1), (60 - BEFORE, 0.1),
    (60.0, 0.01), (80 - BEFORE, 0.01), (80.0, 0.001), (90.0, 0.001),
])
def test_goyal_table(epoch, factor):
    assert goyal_lr(epoch, 12.8) == pytest.approx(factor * 12.8, rel=1e-15)


def test_goyal_linear_warmup_from_0_1_to_eta_base_over_5_epochs():
    eb = 12.8
    assert goyal_lr(0.0, eb) == pytest.approx(0.1)
    assert goyal_lr(2.5, eb) == pytest.approx((0.1 + 12.8) / 2)
    assert goyal_lr(1.0, eb) == pytest.approx(0.1 + (12.8 - 0.1) / 5)
    assert goyal_lr(5 - BEFORE, eb) == pytest.approx(12.8, abs=1e-7)
    assert goyal_lr(5.0, eb) == 12.8


def test_goyal_no_warmup_for_small_batches_or_when_disabled():
    assert goyal_lr(0.0, 0.1) == pytest.approx(0.1)
    assert goyal_lr(0.0, 0.05) == pytest.approx(0.05)
    assert goyal_lr(0.0, 12.8, warmup_epochs=0) == 12.8
    assert goyal_lr(1.0, 12.8, warmup_epochs=0) == 12.8


def test_goyal_compressed_to_18_epochs():
    # boundaries 30/60/80 of 90 -> 6/12/16 of 18; 5-epoch warm-up -> 1 epoch
    eb = 3.2
    assert goyal_lr(0.5, eb, total_epochs=18) == pytest.approx(0.1 + (eb - 0.1) * 0.5)
    assert goyal_lr(1.0, eb, total_epochs=18) == eb
    for e, factor in [(6 - BEFORE, 1.0), (6, 0.1), (12 - BEFORE, 0.1), (12, 0.01),
                      (16 - BEFORE, 0.01), (16, 0.001)]:
        assert goyal_lr(e, eb, total_epochs=18) == pytest.approx(factor * eb), e


@pytest.mark.parametrize('kwargs, name', [
    (dict(epoch=-0.5, eta_base=1), 'epoch'),
    (dict(epoch=1, eta_base=0), 'eta_base'),
    (dict(epoch=1, eta_base=1, total_epochs=0), 'total_epochs'),
    (dict(epoch=1, eta_base=1, warmup_epochs=-1), 'warmup_epochs'),
    (dict(epoch=1, eta_base=1, warmup_epochs=31), 'warmup_epochs'),
])
def test_goyal_rejects(kwargs, name):
    with pytest.raises(ValueError, match='{}='.format(name)):
        goyal_lr(**kwargs)


# ---------------------------------------------------------------- LARS (You et al.)

@pytest.mark.parametrize('batch, peak', [
    (64, (10.0, 5)), (1024, (10.0, 5)), (8192, (10.0, 5)), (16383, (10.0, 5)),
    (16384, (25.0, 5)), (32767, (25.0, 5)), (32768, (32.0, 14)), (65535, (32.0, 14)),
    (65536, (35.6, 40)), (10 ** 6, (35.6, 40))])
def test_lars_peak_table_of_the_reference_code(batch, peak):
    assert lars_peak(batch) == peak


@pytest.mark.parametrize('bad', [0, -64, float('nan'), float('inf')])
def test_lars_peak_rejects(bad):
    with pytest.raises(ValueError, match='total_batch='):
        lars_peak(bad)


@pytest.mark.parametrize('epoch, gamma', [
    (0.0, 0.0), (1.0, 2.0), (2.5, 5.0), (5.0 - BEFORE, 10.0), (5.0, 10.0),
    (5.0 + 85 / 4, 10.0 * 0.75 ** 2), (47.5, 2.5), (90.0 - 8.5, 0.1), (90.0, 0.0),
    (120.0, 0.0)])
def test_lars_warmup_then_polynomial_decay_at_90_epochs(epoch, gamma):
    # linear from 0 to 10 over 5 epochs, then 10 (1 - (e - 5) / 85) ** 2, 0 from epoch 90
    assert lars_lr(epoch, 10.0, 90, 5) == pytest.approx(gamma, rel=1e-9, abs=1e-12)


def test_lars_compressed_to_30_epochs():
    # warm-up 5 of 90 epochs becomes 5/3; the decay runs over the remaining 30 - 5/3
    w = 5.0 / 3.0
    assert lars_lr(0.0, 10.0, 30, 5) == 0.0
    assert lars_lr(w / 2, 10.0, 30, 5) == pytest.approx(5.0)
    assert lars_lr(w - BEFORE, 10.0, 30, 5) == pytest.approx(10.0, rel=1e-8)
    assert lars_lr(w, 10.0, 30, 5) == pytest.approx(10.0)
    assert lars_lr(w + (30 - w) / 2, 10.0, 30, 5) == pytest.approx(2.5)
    assert lars_lr(30.0, 10.0, 30, 5) == 0.0
    for e in (0.3, 1.0, 4.0, 17.0, 29.0):   # the 90-epoch curve with time scaled by 30/90
        assert lars_lr(e, 10.0, 30, 5) == pytest.approx(lars_lr(e * 3, 10.0, 90, 5))


def test_lars_without_warmup_is_algorithm_1():
    # gamma_t = gamma_0 (1 - t / T) ** 2, in epochs
    for e in (0.0, 9.0, 45.0, 81.0, 90.0):
        assert lars_lr(e, 2.0, 90, 0) == pytest.approx(2.0 * (1 - e / 90) ** 2)


@pytest.mark.parametrize('kwargs, name', [
    (dict(epoch=-1.0), 'epoch'), (dict(epoch=float('nan')), 'epoch'),
    (dict(gamma_peak=0.0), 'gamma_peak'), (dict(warmup_epochs=90), 'warmup_epochs'),
    (dict(warmup_epochs=-1), 'warmup_epochs'), (dict(total_epochs=0), 'total_epochs')])
def test_lars_lr_rejects(kwargs, name):
    args = dict(epoch=1.0, gamma_peak=10.0, total_epochs=90, warmup_epochs=5)
    args.update(kwargs)
    with pytest.raises(ValueError, match=name + '='):
        lars_lr(**args)


# ---------------------------------------------------------------- compression

def test_compressed_beta():
    assert compressed_beta(90) == (10, 5)
    assert compressed_beta(18) == (2, 1)
    c, p = compressed_beta(9)
    assert (c, p) == pytest.approx((1.0, 0.5))
    # the compressed transition is the 90-epoch one with time scaled by 18/90
    for e in (0.0, 1.0, 2.0, 2.2, 2.5, 3.0):
        assert elu_alpha_sgd(e, *compressed_beta(18)) == pytest.approx(
            elu_alpha_sgd(e * 90 / 18))


@pytest.mark.parametrize('bad', [0, -18, float('nan')])
def test_compressed_beta_rejects(bad):
    with pytest.raises(ValueError, match='total_epochs='):
        compressed_beta(bad)


# ---------------------------------------------------------------- one run's recipe

def test_recipe_of_the_paper_at_18_epochs_and_64_images():
    # eta_base = 0.1 * 64 / 256 = 0.025; slow start 0.5/0.075/0.01/0.001 from 0/8/14/17;
    # alpha_SGD: beta_center 2, beta_period 1 (10 and 5 scaled by 18/90)
    fns = recipe('rmsprop_warmup', 64, 18)
    assert sorted(fns) == ['alpha_sgd', 'lr']
    for e, factor in [(0.0, 0.5), (8 - BEFORE, 0.5), (8.0, 0.075), (14.0, 0.01), (17.5, 0.001)]:
        assert fns['lr'](e) == pytest.approx(factor * 0.025), e
    assert fns['alpha_sgd'](0.0) == pytest.approx(0.5 * math.exp(-4))
    assert fns['alpha_sgd'](2.0) == pytest.approx(0.5)
    assert fns['alpha_sgd'](2.25) == pytest.approx(0.75)
    assert fns['alpha_sgd'](2.5) == 1.0


def test_recipe_of_the_momentum_baseline():
    # eta_base = 0.1 * 8192 / 256 = 3.2 > 0.1: warm-up over 5 epochs, then 30/60/80
    fns = recipe('momentum', 8192, 90)
    assert list(fns) == ['lr']
    assert fns['lr'](0.0) == pytest.approx(0.1)
    assert fns['lr'](2.5) == pytest.approx(0.1 + 3.1 / 2)
    assert fns['lr'](30.0) == pytest.approx(0.32)


def test_recipe_of_lars_at_30_epochs_and_1024_images():
    fns = recipe('lars', 1024, 30)
    assert list(fns) == ['lr']
    assert fns['lr'](0.0) == 0.0
    assert fns['lr'](5.0 / 3.0) == pytest.approx(10.0)
    assert fns['lr'](29.0) == pytest.approx(10.0 * (1 - (29 - 5 / 3) / (30 - 5 / 3)) ** 2)
    assert recipe('lars', 32768, 90)['lr'](14.0) == pytest.approx(32.0)


@pytest.mark.parametrize('args, name', [
    (('adam', 64, 18), 'optimizer'), (('lars', 64, 0), 'epochs'),
    (('momentum', 0, 18), 'total_batch'),
    (('rmsprop_warmup', 64, 0), 'epochs')])
def test_recipe_rejects(args, name):
    with pytest.raises(ValueError, match=name):
        recipe(*args)
