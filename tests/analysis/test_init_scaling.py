"""Initialisation scaling regimes: 1/L vs 1/√L with i.i.d. and smooth weights (analysis.continuum.init_scaling)."""
import math

import pytest
import torch

from analysis.continuum.depth_weights import iid_weights
from analysis.continuum.init_scaling import init_scaling_study, residual_weight


@pytest.fixture(scope="module")
def study():
    return init_scaling_study((4, 16, 64, 256), width=8, n_samples=2, seed=0)


@pytest.mark.parametrize("weights, scaling, exponent", [
    ("smooth", "1/L", 0.0),         # the ODE regime: a depth-independent flow
    ("smooth", "1/sqrt(L)", 0.5),   # Σ L^-1/2 σ(W(t_l) h) ≈ √L ∫ σ: explodes
    ("iid", "1/L", -0.5),           # averages to E σ(W h) = 0: collapses to the identity
    ("iid", "1/sqrt(L)", 0.0),      # a random walk: the SDE-like regime
])
def test_residual_norm_exponents(study, weights, scaling, exponent):
    assert abs(study.exponent(weights, scaling) - exponent) < 0.1


def test_output_norm_stays_order_one_except_smooth_sqrt(study):
    i, j = study.weights.index("smooth"), study.scalings.index("1/sqrt(L)")
    assert study.output_exponent[i, j] > 0.3
    for a in range(2):
        for b in range(2):
            if (a, b) != (i, j):
                assert abs(study.output_exponent[a, b]) < 0.1


def test_one_depth_by_hand():
    # iid, 1/sqrt(L), depth 4, one draw: the residual norm is the explicit recursion's
    s = init_scaling_study((1, 2, 4), width=3, weights=("iid",), scalings=("1/sqrt(L)",), n_samples=1,
                           n_inputs=5, seed=7)
    x = torch.randn(5, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(7))
    W, b = iid_weights(4, 3, seed=7)
    h = x.clone()
    for l in range(4):
        h = h + 0.5 * torch.tanh(h @ W[l].T + b[l])
    assert s.residual_norm[0, 0, 2] == pytest.approx(float((h - x).square().sum(1).mean().sqrt()), rel=1e-12)
    assert s.output_norm[0, 0, 2] == pytest.approx(float(h.square().sum(1).mean().sqrt()), rel=1e-12)


def test_residual_weight():
    assert residual_weight("1/L", 8, 2.0) == 0.25
    assert residual_weight("1/sqrt(L)", 16) == 0.25
    assert math.isclose(residual_weight("1/sqrt(L)", 2), 2 ** -0.5)


def test_bad_input():
    with pytest.raises(ValueError, match="strictly increasing"):
        init_scaling_study((16, 4, 64))
    with pytest.raises(ValueError, match="scalings must be one of"):
        init_scaling_study((4, 16, 64), scalings=("1/L^2",))
    with pytest.raises(ValueError, match="weights must be one of"):
        init_scaling_study((4, 16, 64), weights=("orthogonal",))
