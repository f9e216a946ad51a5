"""Lower bounds: isotonic limit 9/160, d/2, certified width-one networks obey the sup bound;
closeness bounds against direct computation."""
import math

import numpy as np
import pytest
import scipy.optimize
import torch

from analysis import (certify, critical_weight_norm, euler_ode_bound, extremum_depth, isotonic_bound,
                      monotone_fit, regime_lower_bound, resnet_mlp_bound, sup_lower_bound,
                      target_sup_bound)
from odenet import ResNet


def test_isotonic_bound_for_square_tends_to_9_over_160():
    errs = []
    for n in (10 ** 3, 10 ** 4, 10 ** 5):
        x = np.linspace(-1, 1, n)
        errs.append(abs(isotonic_bound(x, x ** 2) - 9 / 160))
    assert errs[-1] < 1e-3 and errs[-1] < errs[0]
    # random uniform samples too (the uniform measure)
    x = np.random.default_rng(0).uniform(-1, 1, 10 ** 5)
    assert abs(isotonic_bound(x, x ** 2) - 9 / 160) < 1e-3
    fit = monotone_fit(x, x ** 2)
    # the fit is 1/4 on [-1, 1/2] and x² beyond (either direction by symmetry)
    left = fit.x < 0.45 if fit.increasing else fit.x > -0.45
    assert np.abs(fit.fit[left] - 0.25).max() < 0.01


def _monotone_lsq(y, w, increasing):
    """The best monotone fit as a bounded least-squares problem, independently of isotonic
    regression: ŷ_i = a ± Σ_{j<=i} d_j with d_j >= 0 (scipy.optimize.lsq_linear)."""
    n = len(y)
    basis = np.hstack([np.ones((n, 1)), np.tril(np.ones((n, n)))[:, 1:] * (1 if increasing else -1)])
    sw = np.sqrt(w)
    res = scipy.optimize.lsq_linear(sw[:, None] * basis, sw * y, bounds=([-np.inf] + [0] * (n - 1), np.inf),
                                    tol=1e-14, lsmr_tol="auto", max_iter=10_000)
    return basis @ res.x


def test_monotone_fit_matches_bounded_least_squares():
    rng = np.random.default_rng(1)
    for _ in range(20):
        x, y, w = rng.uniform(-1, 1, 30), rng.normal(size=30), rng.uniform(0.5, 2, size=30)
        fit = monotone_fit(x, y, w)
        order = np.argsort(x)
        for inc, mse in ((True, fit.mse_increasing), (False, fit.mse_decreasing)):
            ref = _monotone_lsq(y[order], w[order], inc)
            assert mse == pytest.approx(np.sum(w[order] * (y[order] - ref) ** 2) / np.sum(w), rel=1e-8, abs=1e-12)
        assert fit.mse == min(fit.mse_increasing, fit.mse_decreasing)
        assert np.all(np.diff(fit.fit) >= -1e-12) if fit.increasing else np.all(np.diff(fit.fit) <= 1e-12)
    # tiny case by hand: (3, 1, 2) at x = 0, 1, 2 -> increasing fit pools to 2 everywhere (mse 2/3)
    assert monotone_fit([0, 1, 2], [3.0, 1.0, 2.0]).mse_increasing == pytest.approx(2 / 3)
    # a monotone sequence is its own fit: zero bound
    assert isotonic_bound([0, 1, 2], [5.0, 3.0, 1.0]) == 0.0


def test_sup_bound_for_square_is_one_half():
    sq = lambda x: (x ** 2).sum(1)  # noqa: E731
    assert extremum_depth(sq, centre=[0.0], radius=1.0) == 1.0
    assert sup_lower_bound(1.0) == 0.5 and target_sup_bound(sq, centre=[0.0], radius=1.0) == 0.5
    assert target_sup_bound(sq, centre=[0.0, 0.0], radius=0.5) == pytest.approx(0.125)
    assert extremum_depth(lambda x: -sq(x), centre=[0.0], radius=1.0, kind="max") == 1.0
    with pytest.raises(ValueError, match="extremum_depth"):
        sup_lower_bound(0.0)


def _best_shift_sup_error(phi, psi):
    """min over (a, c) ∈ R² of sup |a φ + c - ψ| by a linear program on the samples: the network's
    output layer chosen optimally, so the bound is tested against the best readout."""
    n = len(phi)
    # variables (a, c, t): minimise t subject to ±(a φ_i + c - ψ_i) <= t
    A = np.block([[phi[:, None], np.ones((n, 1)), -np.ones((n, 1))],
                  [-phi[:, None], -np.ones((n, 1)), -np.ones((n, 1))]])
    b = np.concatenate([psi, -psi])
    res = scipy.optimize.linprog([0, 0, 1], A_ub=A, b_ub=b, bounds=[(None, None)] * 3)
    assert res.success
    return res.fun


def test_certified_width_one_networks_have_sup_error_at_least_one_half():
    gen = torch.Generator().manual_seed(0)
    x = torch.linspace(-1, 1, 2001, dtype=torch.float64)[:, None]
    psi = (x[:, 0] ** 2).numpy()
    checked = 0
    for k in range(60):
        L = int(torch.randint(1, 5, (1,), generator=gen))
        eps = float(torch.rand(1, generator=gen)) * 2 + 0.05
        delta = float(torch.rand(1, generator=gen)) * 2 + 0.05
        net = ResNet(1, 1, 1, L, eps=eps, delta=delta, seed=k).eval()
        # weights up to 1.5 times the critical norm ε/δ: some certified, some not
        w = (2 * torch.rand(L, generator=gen) - 1) * 1.5 * critical_weight_norm(eps=eps, delta=delta)
        b = (2 * torch.rand(L, generator=gen) - 1) * 3
        for l in range(L):
            net.set_block(l, w[l], b[l])
        if not certify(net).no_critical_points:
            continue
        checked += 1
        with torch.no_grad():
            h = net.blocks(net.embed(x))[:, 0].numpy()
        assert _best_shift_sup_error(h, psi) >= 0.5 - 1e-9
    assert checked >= 15
    # a folding width-one network (not certified) beats the bound: the certificate is what matters
    fold = ResNet(1, 1, 1, 1, eps=1.0, delta=2.0).eval().set_block(0, -1.0, 1.0)  # x + 2 tanh(1 - x)
    assert not certify(fold).no_critical_points
    with torch.no_grad():
        h = fold.blocks(x)[:, 0].numpy()
    assert _best_shift_sup_error(h, psi) < 0.2


def test_euler_ode_bound_holds_and_formula():
    # formula check against the closed form and the exponential form
    constants = dict(delta=0.1, depth=20, lipschitz=1.0, omega=2.0, sup_sigma=1.0, width=2)
    assert euler_ode_bound(**constants) == pytest.approx(math.sqrt(2) * 0.1 / 2 * (1.2 ** 20 - 1))
    assert euler_ode_bound(**constants) <= math.sqrt(2) * 0.1 / 2 * math.expm1(2.0 * 2.0)
    # the bound holds for a real network: ResNet blocks vs a tight reference flow
    net = ResNet(2, 2, 1, 10, eps=1.0, delta=0.2, seed=3).eval()
    x = torch.randn(200, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        import solvers
        ref = solvers.solve(net.ode(), x, method="DOP853", record="end").y[-1]
        err = (net.blocks(x) - ref).norm(dim=1).max().item()
    omega = torch.linalg.matrix_norm(net.field.weight.detach(), ord=2).max().item()
    assert err <= euler_ode_bound(delta=0.2, depth=10, lipschitz=1.0, omega=omega, sup_sigma=1.0, width=2)


def test_resnet_mlp_bound_holds():
    x = torch.randn(300, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    for eps in (0.05, 0.2, 0.5):
        net = ResNet(2, 2, 1, 6, eps=eps, delta=1.0, seed=5).eval()
        mlp = ResNet(2, 2, 1, 6, eps=0.0, delta=1.0, seed=5).eval()
        with torch.no_grad():
            gap = (net(x) - mlp(x)).abs().max().item()
            h0 = x.norm(dim=1).max().item()
        omega = torch.linalg.matrix_norm(net.field.weight.detach(), ord=2).max().item()
        wo = torch.linalg.matrix_norm(net.out.weight.detach(), ord=2).item()
        bound = resnet_mlp_bound(eps=eps, delta=1.0, depth=6, lipschitz=1.0, omega=omega, h0_norm=h0, out_norm=wo,
                                 sup_sigma=1.0, width=2)
        assert gap <= bound
    # H = max(0, δ S √m / (1 - ε)) = 2, q = δKω = 1 so the geometric sum is L = 3
    assert resnet_mlp_bound(eps=0.5, delta=1.0, depth=3, lipschitz=1.0, omega=1.0, h0_norm=0.0, out_norm=1.0,
                            sup_sigma=1.0, width=1) == pytest.approx(0.5 * 2.0 * 3)


def test_critical_weight_norm_and_bad_input():
    assert critical_weight_norm(eps=1.0, delta=0.1) == pytest.approx(10.0)
    assert critical_weight_norm(eps=0.5, delta=2.0, lipschitz=0.5) == pytest.approx(0.5)
    assert regime_lower_bound(extremum_depth=1.0, closeness=0.2) == pytest.approx(0.3)
    assert regime_lower_bound(extremum_depth=1.0, closeness=2.0) == 0.0
    with pytest.raises(ValueError, match="eps"):
        critical_weight_norm(eps=-0.1, delta=1.0)
    with pytest.raises(ValueError, match="delta"):
        critical_weight_norm(eps=1.0, delta=0.0)
    with pytest.raises(ValueError, match="eps"):
        resnet_mlp_bound(eps=1.0, delta=1.0, depth=2, lipschitz=1.0, omega=1.0, h0_norm=1.0, out_norm=1.0)
    with pytest.raises(ValueError, match="weights"):
        monotone_fit([0, 1], [0, 1], weights=[1, -1])


def test_bound_constants_are_keyword_only():
    # nine positional floats could be swapped silently (depth for width, ω for K); the signatures refuse them
    with pytest.raises(TypeError):
        euler_ode_bound(0.1, 20, 1.0, 2.0)
    with pytest.raises(TypeError):
        resnet_mlp_bound(0.5, 1.0, 3, 1.0, 1.0, 0.0, 1.0)
    with pytest.raises(TypeError):
        critical_weight_norm(1.0, 0.1)
    with pytest.raises(TypeError):
        regime_lower_bound(1.0, 0.2)
    with pytest.raises(TypeError):
        extremum_depth(lambda x: (x ** 2).sum(1), [0.0], 1.0)


def test_model_bounds_closeness_bounds_the_output_distance():
    # ε = 1: the closeness must bound |Φ_ResNet - Φ_flow| on the output, so it carries ‖w_out‖₂;
    # a large readout makes the hidden-state bound alone too small (1.13 against a gap of 1.18).
    from analysis import model_bounds
    net = ResNet(2, 2, 1, 10, eps=1.0, delta=0.2, seed=3).eval()
    with torch.no_grad():
        net.out.weight.mul_(50.0)
    x = torch.randn(200, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        gap = (net(x) - net.flow(x, method="DOP853", rtol=1e-12, atol=1e-12)).abs().max().item()
    b = model_bounds(net, x)
    omega = torch.linalg.matrix_norm(net.field.weight.detach(), ord=2).max().item()
    wo = torch.linalg.matrix_norm(net.out.weight.detach(), ord=2).item()
    assert b.closeness_kind == "ode" and b.closeness == pytest.approx(
        wo * euler_ode_bound(delta=0.2, depth=10, lipschitz=1.0, omega=omega, sup_sigma=1.0, width=2))
    assert gap <= b.closeness
    # ε < 1: the ResNet-MLP bound is already on the output
    mlp_net = ResNet(2, 2, 1, 6, eps=0.2, delta=1.0, seed=5).eval()
    mlp = ResNet(2, 2, 1, 6, eps=0.0, delta=1.0, seed=5).eval()
    with torch.no_grad():
        gap = (mlp_net(x) - mlp(x)).abs().max().item()
    b = model_bounds(mlp_net, x)
    assert b.closeness_kind == "mlp" and gap <= b.closeness
