"""The critical-point finder: injected points, Morse functions with known critical points,
independent Hessians, and bad input."""
import math

import numpy as np
import pytest
import torch

from analysis import find_critical_points, inject_critical_point
from odenet import ResNet

AH = torch.autograd.functional.hessian


def _fd_hessian(f, x, h=1e-4):
    """Central second differences of a scalar numpy-free function of one point (n,)."""
    n = x.numel()
    H = torch.zeros(n, n, dtype=torch.float64)
    E = torch.eye(n, dtype=torch.float64) * h
    for i in range(n):
        for j in range(n):
            H[i, j] = (f(x + E[i] + E[j]) - f(x + E[i] - E[j]) - f(x - E[i] + E[j]) + f(x - E[i] - E[j])) / (4 * h * h)
    return H


@pytest.mark.parametrize("seed, block, x0", [(0, 2, (0.1234, -0.2345)), (1, 0, (-0.31, 0.47)), (2, 4, (0.05, 0.6))])
def test_injected_critical_point_is_found(seed, block, x0):
    base = ResNet(2, 2, 1, 5, eps=1.0, delta=0.2, seed=seed).eval()
    x0 = torch.tensor(x0, dtype=torch.float64)
    m = inject_critical_point(base, block, x0)
    assert m is not base and not torch.equal(m.field.weight, base.field.weight)
    W = m.field.weight[block].detach()
    assert torch.allclose(W, -5.0 * torch.eye(2, dtype=torch.float64))

    def phi(v):
        return m(v[None])[0, 0]

    # independent check of the injection: autograd gradient vanishes at x0
    g0 = torch.autograd.functional.jacobian(phi, x0)
    assert float(g0.norm()) < 1e-14
    cps = find_critical_points(m, [(-1.0, 1.0), (-1.0, 1.0)])
    d = (cps.points - x0).norm(dim=1)
    i = int(torch.argmin(d))
    assert float(d[i]) <= 1e-8
    assert float(cps.gradient_residual[i]) <= 1e-10
    # classification against the sign pattern of an independently computed Hessian: at an
    # injected point the Hessian vanishes too (tanh''(0) = 0), so the point is degenerate
    H = AH(phi, cps.points[i])
    lam = torch.linalg.eigvalsh(H)
    assert float(lam.abs().max()) < 1e-6
    assert cps.kinds[i] == "degenerate" and bool(cps.degenerate[i])
    assert cps[i].kind == "degenerate" and cps[i].point.shape == (2,)


def test_morse_function_in_2d():
    # f = x³ - 3x + y³ - 3y: minimum (1, 1), maximum (-1, -1), saddles (1, -1), (-1, 1)
    def f(X):
        return X[:, 0] ** 3 - 3 * X[:, 0] + X[:, 1] ** 3 - 3 * X[:, 1]

    cps = find_critical_points(f, [(-2.0, 2.0), (-1.7, 2.3)])
    assert len(cps) == 4
    expect = {(1, 1): "minimum", (-1, -1): "maximum", (1, -1): "saddle", (-1, 1): "saddle"}
    for cp in cps:
        key = tuple(int(round(v)) for v in cp.point.tolist())
        assert float((cp.point - torch.tensor(key, dtype=torch.float64)).abs().max()) < 1e-12
        assert cp.gradient_residual <= 1e-12
        assert cp.kind == expect[key]
        H = _fd_hessian(lambda v: f(v[None])[0], cp.point)
        neg = int((torch.linalg.eigvalsh(H) < 0).sum())
        assert cp.morse_index == neg and not cp.degenerate
        assert abs(cp.value - float(f(cp.point[None]))) < 1e-14


def test_morse_function_in_3d():
    # Σ cos x_i on [-1, 4]³: critical points at x_i ∈ {0, π}; index = number of zeros
    def f(X):
        return torch.cos(X).sum(1, keepdim=True)

    cps = find_critical_points(f, [(-1.0, 4.0)] * 3, resolution=21)
    assert len(cps) == 8
    for cp in cps:
        zeros = [abs(v) < 1e-9 for v in cp.point.tolist()]
        assert all(z or abs(v - math.pi) < 1e-9 for z, v in zip(zeros, cp.point.tolist()))
        signs = np.sign(np.diag(_fd_hessian(lambda v: f(v[None])[0, 0], cp.point).numpy()))
        assert cp.morse_index == int((signs < 0).sum()) == sum(zeros)
        assert cp.kind == {0: "minimum", 3: "maximum"}.get(cp.morse_index, "saddle")


def test_a_degenerate_minimum_is_flagged():
    # x⁴ + y²: degenerate minimum at 0
    cps = find_critical_points(lambda X: X[:, 0] ** 4 + X[:, 1] ** 2, [(-1.0, 1.3), (-1.0, 1.1)])
    assert len(cps) == 1 and cps.kinds == ["degenerate"]
    assert float(cps.points.abs().max()) < 1e-4  # a quartic zero: |x| ~ gradient^(1/3)


def test_folding_resnet_in_1d_matches_the_layer_closed_form():
    # width one, ε = δ = 1, w = -5: Φ(x) = F(x) critical at x = ±acosh(√5)/5
    m = ResNet(1, 1, 1, 1, eps=1.0, delta=1.0, seed=0).eval()
    m.set_block(0, [[-5.0]], [0.0])
    cps = find_critical_points(m, [(-2.0, 2.0)])
    r = math.acosh(math.sqrt(5)) / 5
    pts = sorted(cps.points[:, 0].tolist())
    assert len(pts) == 2 and abs(pts[0] + r) < 1e-12 and abs(pts[1] - r) < 1e-12
    sign_out = math.copysign(1, float(m.out.weight.detach()))
    kinds = dict(zip(cps.points[:, 0].tolist(), cps.kinds))
    assert kinds[pts[0]] == ("maximum" if sign_out > 0 else "minimum")


def test_bad_input():
    f = lambda X: (X ** 2).sum(1)
    with pytest.raises(ValueError, match="empty"):
        find_critical_points(f, [(1.0, 1.0), (0.0, 1.0)])
    with pytest.raises(ValueError, match="shape"):
        find_critical_points(f, [(0.0, 1.0, 2.0)])
    with pytest.raises(ValueError, match="shape"):
        find_critical_points(f, [])
    with pytest.raises(ValueError, match="scalar"):
        find_critical_points(lambda X: X, [(0.0, 1.0), (0.0, 1.0)])
    with pytest.raises(ValueError, match="n_in"):
        find_critical_points(ResNet(2, 2, seed=0).eval(), [(0.0, 1.0)] * 3)
    with pytest.raises(ValueError, match="scalar"):
        find_critical_points(ResNet(2, 2, 2, seed=0).eval(), [(0.0, 1.0)] * 2)
    with pytest.raises(ValueError, match="n=3"):
        find_critical_points(lambda X: X @ torch.ones(2, dtype=X.dtype), [(0.0, 1.0)] * 3)
    with pytest.raises(ValueError, match="finite"):
        find_critical_points(f, [(0.0, float("inf"))])
    with pytest.raises(ValueError, match="resolution"):
        find_critical_points(f, [(0.0, 1.0)], resolution=2)
    m = ResNet(2, 2, 1, 3, seed=0).eval()
    with pytest.raises(ValueError, match="block"):
        inject_critical_point(m, 3, [0.0, 0.0])
    with pytest.raises(ValueError, match="x0"):
        inject_critical_point(m, 0, [0.0, 0.0, 0.0])
    with pytest.raises(ValueError, match="tanh"):
        inject_critical_point(ResNet(2, 2, 1, 3, activation="relu", seed=0).eval(), 0, [0.0, 0.0])
    with pytest.raises(ValueError, match="eps"):
        inject_critical_point(ResNet.mlp(2, 2, 1, 3, seed=0).eval(), 0, [0.0, 0.0])


@pytest.mark.parametrize("seed", [1, 3])
def test_critical_points_of_a_folding_resnet_are_honest(seed):
    # ε = δ = 1 with large weights: folds; every reported point must be a critical point by an
    # independent autograd gradient, and its kind must match finite-difference Hessian signs
    m = ResNet(2, 2, 1, 3, eps=1.0, delta=1.0, seed=seed).eval()
    with torch.no_grad():
        m.field.weight.mul_(6.0)

    def phi(v):
        return m(v[None])[0, 0]

    cps = find_critical_points(m, [(-2.0, 2.0), (-2.0, 2.0)], resolution=81)
    assert len(cps) >= 4 and {"minimum", "maximum", "saddle"} <= set(cps.kinds)
    assert torch.cdist(cps.points, cps.points).add(torch.eye(len(cps))).min() > 1e-6  # deduplicated
    for cp in cps:
        g = torch.autograd.functional.jacobian(phi, cp.point)
        assert float(g.norm()) <= 1e-10
        if not cp.degenerate:
            with torch.no_grad():
                lam = torch.linalg.eigvalsh(_fd_hessian(phi, cp.point, h=1e-4))
            assert cp.morse_index == int((lam < 0).sum())
