"""Observed orders, refinement/depth studies and work-precision data (analysis.continuum.convergence)."""
import math
import warnings

import numpy as np
import pytest
import scipy.integrate
import scipy.linalg
import torch
from scipy import stats

from analysis.continuum.convergence import (ReferenceAccuracyWarning, depth_study, error_norms, fit_order, richardson_orders,
                                  refinement_study, work_precision)
from odenet import ResNet, SmoothField


A = torch.tensor([[-0.5, 1.0, 0.2], [-1.0, -0.3, 0.4], [0.1, -0.6, -0.2]], dtype=torch.float64)
T = 1.5


def linear_field(t, x):
    """x' = A x (batched: rows of x)."""
    return x @ A.T


@pytest.fixture(scope="module")
def x0():
    return torch.randn(16, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))


@pytest.fixture(scope="module")
def exact(x0):
    """The closed-form flow x(T) = expm(A T) x0."""
    return x0 @ torch.from_numpy(scipy.linalg.expm(A.numpy() * T)).T


def smooth_field(seed=1, width=3, knots=4, T=2.0):
    g = torch.Generator().manual_seed(seed)
    return SmoothField(torch.randn(knots + 1, width, width, dtype=torch.float64, generator=g),
                       torch.randn(knots + 1, width, dtype=torch.float64, generator=g), T=T)


# --- the estimators -----------------------------------------------------------------------------
def test_fit_order_matches_scipy_linregress():
    rng = np.random.default_rng(0)
    h = 2.0 ** -np.arange(2, 9)
    err = 3.0 * h ** 1.7 * np.exp(0.05 * rng.standard_normal(h.size))
    fit = fit_order(h, err, confidence=0.9)
    ref = stats.linregress(np.log(h), np.log(err))
    assert fit.order == pytest.approx(ref.slope, rel=1e-12)
    assert fit.log_constant == pytest.approx(ref.intercept, rel=1e-10)
    assert fit.stderr == pytest.approx(ref.stderr, rel=1e-10)
    q = stats.t.ppf(0.95, h.size - 2)
    assert fit.ci_high - fit.ci_low == pytest.approx(2 * q * ref.stderr, rel=1e-10)
    assert fit.contains(1.7)


def test_fit_order_exact_power_law():
    h = np.array([0.1, 0.05, 0.025, 0.0125])
    fit = fit_order(h, 7 * h ** 3)
    assert fit.order == pytest.approx(3, abs=1e-12)
    assert math.exp(fit.log_constant) == pytest.approx(7, rel=1e-10)


def test_richardson_orders_of_an_exact_expansion():
    # y_h = y* + C h^2 exactly: every Richardson order is 2
    h = 0.5 ** np.arange(5)
    y = 1.0 + 0.3 * h ** 2
    assert np.allclose(richardson_orders(h, np.abs(np.diff(y))), 2.0, atol=1e-12)


def test_error_norms_definition():
    y = torch.tensor([[1.0, 2.0], [0.0, 0.0]], dtype=torch.float64)
    ref = torch.zeros_like(y)
    sup, rms = error_norms(y, ref)
    assert sup == 2.0
    assert rms == pytest.approx(math.sqrt(5 / 2))


# --- observed orders on a linear ODE with a closed-form flow ------------------------------------
@pytest.mark.parametrize("method, order, steps", [
    ("euler", 1, (32, 64, 128, 256, 512)),
    ("heun", 2, (8, 16, 32, 64, 128)),
    ("midpoint", 2, (8, 16, 32, 64, 128)),
    ("rk4", 4, (4, 8, 16, 32, 64)),
])
def test_observed_orders_against_matrix_exponential(x0, exact, method, order, steps):
    study = refinement_study(linear_field, x0, (0.0, T), method=method, steps=steps, reference=exact)
    assert abs(study.fit_sup.order - order) < 0.1
    assert abs(study.fit_rms.order - order) < 0.1
    assert study.fit_sup.ci_low < study.fit_sup.order < study.fit_sup.ci_high
    assert np.all(np.diff(study.err_sup) < 0)
    assert study.resolved.all()
    assert list(study.nfev) == [n * {"euler": 1, "heun": 2, "midpoint": 2, "rk4": 4}[method] for n in steps]


@pytest.mark.parametrize("method, order, steps", [("euler", 1, (32, 64, 128, 256, 512)),
                                                  ("rk4", 4, (4, 8, 16, 32, 64))])
def test_computed_reference_agrees_with_closed_form(x0, exact, method, order, steps):
    study = refinement_study(linear_field, x0, (0.0, T), method=method, steps=steps, reference="DOP853")
    closed = refinement_study(linear_field, x0, (0.0, T), method=method, steps=steps, reference=exact)
    assert study.reference_error < 1e-9
    assert np.allclose(study.err_sup, closed.err_sup, rtol=1e-4, atol=0)
    assert abs(study.order - order) < 0.1


@pytest.mark.parametrize("method, order, steps", [("euler", 1, (64, 128, 256, 512, 1024)),
                                                  ("heun", 2, (16, 32, 64, 128, 256)),
                                                  ("rk4", 4, (4, 8, 16, 32, 64))])
def test_richardson_self_convergence_without_reference(x0, method, order, steps):
    study = refinement_study(linear_field, x0, (0.0, T), method=method, steps=steps, reference=None)
    assert np.isnan(study.err_sup).all()
    assert abs(study.richardson[-1] - order) < 0.1
    assert abs(study.fit_sup.order - order) < 0.1


def test_resnet_refinement_starts_at_the_network_itself():
    net = ResNet(3, 3, 1, depth=8, eps=0.9, delta=0.25, T=2.0, seed=3)  # damped: gamma != 0
    x = torch.randn(12, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    study = refinement_study(net, x, steps=[8 * m for m in (1, 2, 4, 8, 16)])
    with torch.no_grad():
        resnet = net.blocks(net.embed(x))
        flow = torch.stack([torch.from_numpy(_flow_one(net, xi)) for xi in net.embed(x)])
    assert study.err_sup[0] == pytest.approx(float((resnet - flow).abs().max()), rel=1e-6)
    assert abs(study.order - 1) < 0.1


def _flow_one(net, xi):
    """The associated ODE integrated layer by layer with scipy, independently of solvers."""
    y = xi.numpy()
    W, b = net.field.weight.detach().numpy(), net.field.bias.detach().numpy()
    for l in range(net.depth):
        rhs = lambda t, v, l=l: -net.gamma * v + net.gain * np.tanh(W[l] @ v + b[l])  # noqa: E731
        y = scipy.integrate.solve_ivp(rhs, (l * net.h, (l + 1) * net.h), y, method="DOP853",
                                      rtol=1e-12, atol=1e-12).y[:, -1]
    return y


def test_depth_study_is_euler_on_the_smooth_field():
    field = smooth_field()
    x = torch.randn(10, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    depths = (8, 16, 32, 64, 128, 256)
    by_depth = depth_study(field, x, depths)
    by_steps = refinement_study(field, x, method="euler", steps=depths)
    assert np.allclose(by_depth.err_sup, by_steps.err_sup, rtol=1e-9)
    assert abs(by_depth.order - 1) < 0.1
    assert by_depth.kind == "depth" and list(by_depth.levels) == list(depths)


# --- work-precision -----------------------------------------------------------------------------
def test_work_precision_slopes(x0, exact):
    wp = work_precision(linear_field, x0, (0.0, T), steps=(16, 32, 64, 128), adaptive_methods=("dopri5",),
                        tolerances=(1e-4, 1e-6, 1e-8), reference=exact)
    for method, p in (("euler", 1), ("heun", 2), ("midpoint", 2), ("rk4", 4)):
        assert abs(wp.slopes[method] + p) < 0.15, (method, wp.slopes[method])
    sel = np.array(wp.method) == "dopri5"
    assert np.all(np.diff(wp.nfev[sel]) > 0) and np.all(np.diff(wp.err_sup[sel]) < 0)
    assert len(wp.method) == 4 * 4 + 3


# --- bad input ----------------------------------------------------------------------------------
def test_levels_must_increase(x0):
    with pytest.raises(ValueError, match="steps must be strictly increasing"):
        refinement_study(linear_field, x0, (0.0, T), steps=(8, 4, 16))
    with pytest.raises(ValueError, match="depths must be strictly increasing"):
        depth_study(smooth_field(), x0, (16, 8, 32))


def test_three_levels_needed(x0):
    with pytest.raises(ValueError, match="at least 3 refinement levels"):
        refinement_study(linear_field, x0, (0.0, T), steps=(8, 16))
    with pytest.raises(ValueError, match="at least 3 levels"):
        fit_order([0.1, 0.05], [1e-2, 5e-3])


def test_inaccurate_reference_warns_and_drops_levels(x0):
    with pytest.warns(ReferenceAccuracyWarning, match=r"levels \[64\]"):
        study = refinement_study(linear_field, x0, (0.0, T), method="rk4", steps=(2, 4, 8, 16, 64),
                                 reference="DOP853", rtol=1e-7, atol=1e-7)
    assert list(study.resolved) == [True, True, True, True, False]
    assert study.fit_sup.n_points == 4


def test_reference_too_inaccurate_for_a_fit_is_refused(x0, exact):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ReferenceAccuracyWarning)
        with pytest.raises(ValueError, match="an order fit needs 3"):
            refinement_study(linear_field, x0, (0.0, T), method="rk4", steps=(8, 16, 32, 64),
                             reference=exact, reference_error=1e-5)


def test_other_bad_input(x0):
    with pytest.raises(ValueError, match="method must be one of"):
        refinement_study(linear_field, x0, (0.0, T), method="dopri5", steps=(1, 2, 4))
    with pytest.raises(ValueError, match="multiples of the field's 4 pieces"):
        refinement_study(smooth_field(), x0, steps=(4, 6, 8))
    with pytest.raises(ValueError, match="t_span is required"):
        refinement_study(linear_field, x0, steps=(1, 2, 4))
    with pytest.raises(ValueError, match="reference must have the shape"):
        refinement_study(linear_field, x0, (0.0, T), steps=(1, 2, 4), reference=x0[:3])
    with pytest.raises(TypeError, match="smooth field"):
        depth_study(linear_field, x0, (4, 8, 16))
    with pytest.raises(ValueError, match="eval"):  # BatchNorm in train mode: batch statistics in the ODE
        refinement_study(ResNet(3, 3, 1, 2, batchnorm=True, seed=0), x0, steps=(2, 4, 8))
    with pytest.raises(ValueError, match="the field's width 2"):  # before the reference solve
        depth_study(smooth_field(width=2), x0, (4, 8, 16))
    with pytest.raises(ValueError, match="err must be positive"):
        fit_order([0.1, 0.05, 0.02], [1e-2, 0.0, 1e-3])
