"""Width-one closed forms against scipy root finding, and the per-layer report."""
import math

import numpy as np
import pytest
import torch
from scipy.optimize import brentq

from analysis import find_critical_points, layer_fold, width_one_layers
from odenet import ResNet


def _roots(eps, delta, w, b):
    """Zeros of F'(h) = ε + δ w sech²(w h + b) by brentq: F' < 0 at the centre -b/w and > 0 far out."""
    def dF(h):
        return eps + delta * w / math.cosh(w * h + b) ** 2

    c = -b / w
    far = 60.0 / abs(w)
    return sorted(brentq(dF, a, z, xtol=1e-15, rtol=4 * np.finfo(float).eps, maxiter=500)
                  for a, z in ((c - far, c), (c, c + far)))


def test_closed_forms_match_brentq():
    rng = np.random.default_rng(0)
    for _ in range(200):
        eps, delta = rng.uniform(0.1, 3.0, 2)
        rho = rng.uniform(1.05, 30.0)
        w = -rho * eps / delta
        b = rng.uniform(-3, 3)
        fold = layer_fold(eps, delta, w, b)
        assert bool(fold.exists) and abs(float(fold.rho) - rho) < 1e-12 * rho
        lo, hi = _roots(eps, delta, w, b)
        # w < 0: h+ < h-
        assert abs(float(fold.h_plus) - lo) <= 1e-10 and abs(float(fold.h_minus) - hi) <= 1e-10

        def F(h):
            return eps * h + delta * math.tanh(w * h + b)

        assert F(lo) > F(hi)  # local maximum first
        assert abs(float(fold.fold_height) - (F(lo) - F(hi))) <= 1e-10
        assert 0 < float(fold.fold_height) < 2 * delta


def test_no_fold_below_threshold_and_vectorised():
    eps, delta = 1.0, 0.5
    w = torch.tensor([-1.9, -2.0, 1.0, 5.0, -2.5], dtype=torch.float64)
    fold = layer_fold(eps, delta, w, 0.3)
    assert fold.exists.tolist() == [False, False, False, False, True]
    assert torch.isnan(fold.h_plus[:4]).all() and torch.all(fold.fold_height[:4] == 0)
    # F' > 0 everywhere without a fold
    h = torch.linspace(-10, 10, 2001, dtype=torch.float64)
    for wi in w[:4]:
        assert torch.all(eps + delta * wi / torch.cosh(wi * h + 0.3) ** 2 >= 0)
    assert not bool(layer_fold(0.0, 1.0, -3.0, 0.0).exists)  # MLP layer: F' = δ w sech² never 0
    with pytest.raises(ValueError):
        layer_fold(-1.0, 1.0, 1.0, 0.0)
    with pytest.raises(ValueError):
        layer_fold(1.0, 0.0, 1.0, 0.0)


def test_layer_report_locates_the_critical_points_of_phi():
    m = ResNet(1, 1, 1, 3, eps=1.0, delta=1.0, seed=3).eval()
    m.set_block(0, [[0.5]], [0.1]).set_block(1, [[-4.0]], [0.2]).set_block(2, [[-0.5]], [0.0])
    x = torch.linspace(-3, 3, 6001, dtype=torch.float64)[:, None]
    layers = width_one_layers(m, x)
    assert [bool(l.fold.exists) for l in layers] == [False, True, False]
    assert layers[1].zeros_in_range.numel() == 2
    crit = torch.sort(layers[1].critical_inputs).values
    found = torch.sort(find_critical_points(m, [(-3.0, 3.0)]).points[:, 0]).values
    assert crit.shape == found.shape == (2,)
    assert torch.allclose(crit, found, atol=1e-5)  # linear interpolation on a 1e-3 grid
    with pytest.raises(ValueError, match="width"):
        width_one_layers(ResNet(2, 2, seed=0).eval(), torch.zeros(3, 2, dtype=torch.float64))
