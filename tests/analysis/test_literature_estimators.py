"""The literature studies' estimators recover synthetic ground truth."""

import numpy as np
import pytest

from analysis.experiments.literature.estimators import (brownian_path, fgn_autocovariance, fractional_gaussian_noise,
                                            hurst_index, p_variation, power_law_slope, roughness_exponent)


def test_power_law_slope_interval_covers_the_true_slope_at_its_level():
    rng = np.random.default_rng(1)
    x = np.geomspace(25, 400, 6)
    hits = 0
    for _ in range(400):
        y = 3.0 * x ** -1.0 * np.exp(0.1 * rng.standard_normal(x.size))
        fit = power_law_slope(x, y)
        hits += fit.ci_low <= -1.0 <= fit.ci_high
    assert 0.91 <= hits / 400 <= 0.98  # a 95 % interval: binomial sd ≈ 1.1 %


def test_p_variation_closed_forms():
    t = np.linspace(0, 1, 201)
    # monotone path: V_p = |x_n - x_0|^p for p >= 1 (one interval is optimal)
    assert p_variation(t ** 2, 2) == pytest.approx(1.0)
    assert p_variation(t ** 2, 1) == pytest.approx(1.0)
    # zig-zag 0, 1, 0, 1: V_1 = 3, V_2 = 3 (each unit step squared), V_3 = 3
    z = np.array([0.0, 1.0, 0.0, 1.0])
    assert p_variation(z, 1) == pytest.approx(3.0)
    assert p_variation(z, 3) == pytest.approx(3.0)
    # two steps up then one down: 0, .5, 1, 0: V_2 = max(.25+.25+1, 1+1) = 2
    assert p_variation(np.array([0.0, 0.5, 1.0, 0.0]), 2) == pytest.approx(2.0)
    # vector path: Euclidean distances, p = 1 is the arc length of a polygon
    square = np.array([[0, 0], [1, 0], [1, 1], [0, 1]], dtype=float)
    assert p_variation(square, 1) == pytest.approx(3.0)


def test_p_variation_is_at_least_the_finest_partition_sum_and_bad_p_raises():
    b = brownian_path(200, rng=np.random.default_rng(0))
    assert p_variation(b, 2) >= float((np.diff(b[:, 0]) ** 2).sum()) - 1e-12
    with pytest.raises(ValueError, match="p must"):
        p_variation(b, 0.5)
    with pytest.raises(ValueError, match="path"):
        p_variation(np.zeros(1), 2)


@pytest.mark.parametrize("p", [1, 2, 3])
def test_roughness_exponent_smooth_is_one_and_brownian_is_one_half(p):
    t = np.linspace(0, 1, 2049)
    smooth = np.stack([np.sin(3 * t), np.cos(2 * t) + t ** 2], axis=1)
    assert roughness_exponent(smooth, p).exponent == pytest.approx(1.0, abs=0.01)
    rng = np.random.default_rng(p)
    est = [roughness_exponent(brownian_path(2048, 4, rng=rng), p).exponent for _ in range(20)]
    assert abs(np.mean(est) - 0.5) < 0.03
    assert abs(np.mean(est) - 1.0) > 0.4


def test_fgn_sampler_has_the_fgn_autocovariance():
    rng = np.random.default_rng(3)
    for H in (0.3, 0.5, 0.8):
        x = fractional_gaussian_noise(H, 256, 2000, rng=rng)
        emp = np.array([np.mean(x[: 256 - k] * x[k:]) for k in range(5)])
        assert np.abs(emp - fgn_autocovariance(H, 5)).max() < 0.03
    # closed form at H = 1/2: white noise
    assert np.allclose(fgn_autocovariance(0.5, 4), [1, 0, 0, 0])


@pytest.mark.parametrize("H", [0.2, 0.5, 0.75, 0.9])
def test_hurst_index_recovers_H_of_synthetic_fgn(H):
    x = fractional_gaussian_noise(H, 2048, 50, rng=np.random.default_rng(int(100 * H)))
    h, lo, hi = hurst_index(x)
    assert abs(h - H) < 0.03
    assert lo <= h <= hi


def test_hurst_index_rejects_short_series():
    with pytest.raises(ValueError, match="noise"):
        hurst_index(np.zeros(10))
    with pytest.raises(ValueError, match="hurst"):
        fgn_autocovariance(1.0, 4)
