"""Convergence of discretisations towards a flow: observed orders, refinement and depth studies,
Richardson self-convergence and work-precision data.

Norms over a batch of inputs x_1..x_N (final states y_i in R^d, reference y*_i):

    sup:  ‖y - y*‖_sup = max_i max_j |y_ij - y*_ij|
    rms:  ‖y - y*‖_rms = ( (1/N) Σ_i |y_i - y*_i|_2² )^{1/2}

Observed order (:func:`fit_order`): ordinary least squares of log e_k = log C + p log h_k, with a
two-sided Student-t confidence interval p ± t_{(1+c)/2, n-2} · se(p).

Richardson self-convergence (no reference): with increments d_k = ‖y_{h_k} - y_{h_{k+1}}‖ on a
geometric sequence h_{k+1} = h_k / r, d_k ≈ C (1 - r^{-p}) h_k^p, so

    p_k = log(d_k / d_{k+1}) / log(h_k / h_{k+1})       (r = 2: log2(|y_h - y_{h/2}| / |y_{h/2} - y_{h/4}|))

and p is also fitted by least squares on (h_k, d_k).

Every integration goes through :func:`solvers.solve`.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field as dc_field
from typing import TYPE_CHECKING, Sequence

import numpy as np
import torch
from numpy.typing import ArrayLike
from scipy import stats

import solvers
from solvers.fields import Field
from solvers.validation import check_choice, check_positive, check_positive_int, check_state

if TYPE_CHECKING:
    from odenet import ResNet, SmoothField

__all__ = ["OrderFit", "ConvergenceStudy", "WorkPrecision", "ReferenceAccuracyWarning", "fit_order",
           "richardson_orders", "refinement_study", "depth_study", "work_precision", "error_norms"]


class ReferenceAccuracyWarning(UserWarning):
    """A reference solution is not accurate enough for some refinement levels."""


# --------------------------------------------------------------------------------------------
# records
@dataclass
class OrderFit:
    """Least-squares fit log e = log C + p log h.

    Attributes: ``order`` p, ``log_constant`` log C, ``stderr`` standard error of p,
    ``ci_low``/``ci_high`` the ``confidence`` interval of p (Student t with n - 2 degrees of
    freedom), ``n_points`` n, ``residual_std`` the standard deviation of the log residuals.
    """

    order: float
    log_constant: float
    stderr: float
    ci_low: float
    ci_high: float
    confidence: float
    n_points: int
    residual_std: float

    def contains(self, p: float) -> bool:
        """Whether p lies in the confidence interval."""
        return self.ci_low <= p <= self.ci_high


@dataclass
class ConvergenceStudy:
    """Errors of a family of discretisations against a reference (or each other).

    Arrays, one entry per level k (n levels, coarse to fine):

    - ``levels`` (n,) int: the refinement parameter (steps n_k, or depth L_k for a depth study);
    - ``h`` (n,) float: step size (t1 - t0) / steps;
    - ``nfev`` (n,) int: field evaluations of the solve at that level;
    - ``err_sup``, ``err_rms`` (n,) float: distance to the reference (NaN without one);
    - ``resolved`` (n,) bool: err above 10 × the reference's error estimate and the round-off
      floor (only resolved levels enter the fit);
    - ``increment_sup``, ``increment_rms`` (n - 1,): ‖y_{h_k} - y_{h_{k+1}}‖;
    - ``richardson`` (n - 2,): the Richardson orders p_k of the module docstring (sup norm).

    ``fit_sup``/``fit_rms`` are :class:`OrderFit` of err against h (with a reference) or of the
    increments against h[:-1] (without one; None when fewer than three increments).
    """

    kind: str  # "refinement" or "depth"
    method: str
    reference: str  # method name, "given" (a tensor) or "none" (Richardson)
    reference_error: float
    levels: np.ndarray
    h: np.ndarray
    nfev: np.ndarray
    err_sup: np.ndarray
    err_rms: np.ndarray
    resolved: np.ndarray
    increment_sup: np.ndarray
    increment_rms: np.ndarray
    richardson: np.ndarray
    fit_sup: OrderFit | None
    fit_rms: OrderFit | None
    attrs: dict = dc_field(default_factory=dict)

    @property
    def order(self) -> float:
        """The fitted order in the sup norm (NaN if there is no fit)."""
        return self.fit_sup.order if self.fit_sup is not None else math.nan


@dataclass
class WorkPrecision:
    """Error against cost for several methods on one field, one row per run (n runs):

    ``method`` (n,) list of str, ``setting`` (n,) float (steps for fixed-step methods, rtol for adaptive
    ones), ``nfev`` (n,) int, ``err_sup``/``err_rms`` (n,) float against the reference.
    ``slopes`` maps each method to the least-squares slope of log err_sup on log nfev (for a
    fixed-step method of order p, -p).
    """

    method: list
    setting: np.ndarray
    nfev: np.ndarray
    err_sup: np.ndarray
    err_rms: np.ndarray
    reference: str
    reference_error: float
    slopes: dict = dc_field(default_factory=dict)
    attrs: dict = dc_field(default_factory=dict)


# --------------------------------------------------------------------------------------------
# estimators
def error_norms(y: torch.Tensor, ref: torch.Tensor) -> tuple[float, float]:
    """(sup, rms) distance of a batch of states (batch, ...) to ``ref``:
    sup = max_ij |y_ij - y*_ij|, rms = ((1/N) Σ_i |y_i - y*_i|²)^{1/2}."""
    y = y.detach().to(torch.float64)
    diff = (y - ref.detach().to(device=y.device, dtype=torch.float64)).reshape(len(y), -1)
    return float(diff.abs().max()), float(diff.square().sum(1).mean().sqrt())


def fit_order(h: ArrayLike, err: ArrayLike, confidence: float = 0.95) -> OrderFit:
    """Observed order p by least squares of log err_k = log C + p log h_k.

    se(p) = s / sqrt(Σ (log h_k - mean)²) with s² = Σ r_k² / (n - 2); the interval is
    p ± t_{(1+confidence)/2, n-2} se(p).  Needs n ≥ 3 distinct positive h and positive finite
    errors.
    """
    h = np.asarray(h, dtype=np.float64).ravel()
    err = np.asarray(err, dtype=np.float64).ravel()
    if h.shape != err.shape:
        raise ValueError(f"h and err must have the same length; got {h.size} and {err.size}")
    if h.size < 3:
        raise ValueError(f"an order fit needs at least 3 levels; got {h.size} (h={h.tolist()})")
    if not (np.isfinite(h).all() and (h > 0).all()):
        raise ValueError(f"h must be positive and finite; got {h.tolist()}")
    if len(np.unique(h)) != h.size:
        raise ValueError(f"h must be distinct; got {h.tolist()}")
    if not (np.isfinite(err).all() and (err > 0).all()):
        raise ValueError(f"err must be positive and finite for a log-log fit; got {err.tolist()}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie in (0, 1); got {confidence!r}")
    x, y = np.log(h), np.log(err)
    n = x.size
    xm = x - x.mean()
    sxx = float(xm @ xm)
    p = float(xm @ (y - y.mean()) / sxx)
    c = float(y.mean() - p * x.mean())
    resid = y - (c + p * x)
    s = math.sqrt(float(resid @ resid) / (n - 2))
    se = s / math.sqrt(sxx)
    q = float(stats.t.ppf(0.5 + confidence / 2, n - 2))
    return OrderFit(order=p, log_constant=c, stderr=se, ci_low=p - q * se, ci_high=p + q * se,
                    confidence=confidence, n_points=n, residual_std=s)


def richardson_orders(h: ArrayLike, increments: ArrayLike) -> np.ndarray:
    """p_k = log(d_k / d_{k+1}) / log(h_k / h_{k+1}) for increments d_k = ‖y_{h_k} - y_{h_{k+1}}‖
    (valid on geometric sequences; r = 2 gives log2(|y_h - y_{h/2}| / |y_{h/2} - y_{h/4}|)).
    ``h`` has one more entry than ``increments``; returns len(increments) - 1 orders."""
    h = np.asarray(h, dtype=np.float64)
    d = np.asarray(increments, dtype=np.float64)
    if h.size != d.size + 1:
        raise ValueError(f"h must have one more entry than increments; got {h.size} and {d.size}")
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log(d[:-1] / d[1:]) / np.log(h[:-2] / h[1:-1])


# --------------------------------------------------------------------------------------------
# studies
def _check_levels(name: str, levels) -> list[int]:
    try:
        levels = [int(v) for v in levels]
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a sequence of integers; got {levels!r}") from None
    for v in levels:
        check_positive_int(name, v)
    if len(levels) < 3:
        raise ValueError(f"{name} must have at least 3 refinement levels for an order fit; got {levels}")
    if any(b <= a for a, b in zip(levels, levels[1:])):
        raise ValueError(f"{name} must be strictly increasing; got {levels}")
    return levels


def _as_field(field, x0):
    """A ResNet (eval mode where it has BatchNorm) becomes its associated ODE on the embedded inputs."""
    from odenet import ResNet

    from analysis.geometry.tracing import check_resnet_eval

    if isinstance(field, ResNet):
        check_resnet_eval(field, "field")
        return field.ode(), field.embed(x0).detach()
    return field, x0


def _span(field, t_span):
    if t_span is not None:
        return tuple(float(t) for t in t_span)
    if solvers.is_piecewise(field):
        return field.pieces.t0, field.pieces.t1
    raise ValueError("t_span is required for a field that is not piecewise; got t_span=None")


def _reference(field, x0, t_span, reference, rtol, atol, reference_error):
    """(final reference states, name, error estimate).

    A computed reference's error is estimated as ‖y(rtol, atol) - y(10 rtol, 10 atol)‖_sup,
    which overestimates the error of the tighter solve (conservative)."""
    if reference is None:
        return None, "none", math.nan
    if isinstance(reference, torch.Tensor):
        if reference.shape != x0.shape:
            raise ValueError(f"reference must have the shape of x0 {tuple(x0.shape)}; got {tuple(reference.shape)}")
        return reference.detach().to(torch.float64), "given", float(reference_error or 0.0)
    check_choice("reference", reference, solvers.ADAPTIVE_METHODS + solvers.REFERENCE_METHODS)
    if reference in solvers.REFERENCE_METHODS and x0.device.type != "cpu":
        # solvers' scipy references evaluate the field on CPU copies of the state
        raise ValueError(f"reference={reference!r} (scipy) integrates on the CPU but x0 is on {x0.device}; use a "
                         f"torchdiffeq reference such as reference='dopri8' (rtol=atol=1e-12) on this device")
    with torch.no_grad():
        sol = solvers.solve(field, x0, t_span, method=reference, rtol=rtol, atol=atol, record="end")
        if not sol.success:
            raise RuntimeError(f"reference solve failed: {sol.message}")
        if reference_error is None:
            loose = solvers.solve(field, x0, t_span, method=reference, rtol=10 * rtol, atol=10 * atol, record="end")
            reference_error = error_norms(loose.y[-1], sol.y[-1])[0]
    return sol.y[-1].to(torch.float64), reference, float(reference_error)


def _assemble(kind, method, levels, h, nfev, finals, ref, ref_name, ref_err, confidence, attrs):
    n = len(levels)
    inc = np.array([error_norms(finals[k], finals[k + 1]) for k in range(n - 1)])
    inc_sup, inc_rms = inc[:, 0], inc[:, 1]
    h = np.asarray(h, dtype=np.float64)
    rich = richardson_orders(h, inc_sup)
    if ref is not None:
        errs = np.array([error_norms(y, ref) for y in finals])
        err_sup, err_rms = errs[:, 0], errs[:, 1]
        roundoff = 100 * np.finfo(np.float64).eps * max(1.0, float(ref.abs().max()))
        floor = 10 * max(ref_err if math.isfinite(ref_err) else 0.0, roundoff)
        resolved = err_sup > floor
        if not resolved.all():
            bad = [levels[k] for k in range(n) if not resolved[k]]
            warnings.warn(f"levels {bad} have errors below 10 x the reference accuracy / round-off floor "
                          f"({floor:.2e}); they are left out of the order fit (tighten the reference's "
                          f"rtol/atol or use coarser levels)", ReferenceAccuracyWarning, stacklevel=3)
        if resolved.sum() < 3:
            raise ValueError(f"only {int(resolved.sum())} of the levels {levels} have errors above the reference "
                             f"accuracy floor {floor:.2e} (err_sup={err_sup.tolist()}); an order fit needs 3: "
                             f"use a more accurate reference or coarser levels")
        fit_sup = fit_order(h[resolved], err_sup[resolved], confidence)
        fit_rms = fit_order(h[resolved], err_rms[resolved], confidence)
    else:
        err_sup = err_rms = np.full(n, np.nan)
        resolved = np.ones(n, dtype=bool)
        fit_sup = fit_order(h[:-1], inc_sup, confidence) if n - 1 >= 3 else None
        fit_rms = fit_order(h[:-1], inc_rms, confidence) if n - 1 >= 3 else None
    return ConvergenceStudy(kind=kind, method=method, reference=ref_name, reference_error=ref_err,
                            levels=np.asarray(levels, dtype=np.int64), h=h, nfev=np.asarray(nfev, dtype=np.int64),
                            err_sup=err_sup, err_rms=err_rms, resolved=resolved, increment_sup=inc_sup,
                            increment_rms=inc_rms, richardson=rich, fit_sup=fit_sup, fit_rms=fit_rms,
                            attrs=dict(attrs))


def refinement_study(field: Field | ResNet, x0: torch.Tensor, t_span: tuple[float, float] | None = None, *,
                     method: str = "euler", steps: Sequence[int] = (1, 2, 4, 8, 16),
                     reference: str | torch.Tensor | None = "DOP853", rtol: float = 1e-12, atol: float = 1e-12,
                     reference_error: float | None = None, confidence: float = 0.95) -> ConvergenceStudy:
    """Distance of the fixed-step solutions y_{h_k}(t1) to the flow as the step is refined.

    ``field`` is a vector field f(t, x) or a :class:`odenet.ResNet` (its associated ODE on
    h_0 = embed(x0)); ``steps`` the strictly increasing step counts n_k (multiples of the number
    of pieces of a piecewise field; for a ResNet of depth L, n_k = L m_k with m_k sub-steps per
    layer, and n_k = L with method="euler" is the ResNet itself).  h_k = (t1 - t0) / n_k.

    ``reference``: a method name (adaptive float64 solve at ``rtol``/``atol``, its error estimated
    from a 10x looser solve unless ``reference_error`` is given), a tensor of exact final states
    (e.g. a closed form), or None for Richardson self-convergence.  Levels whose error is below
    10 x max(reference error, round-off) are flagged unresolved, left out of the fit and
    reported by a :class:`ReferenceAccuracyWarning`; fewer than 3 resolved levels is a
    ValueError.  The order p fits e_k = C h_k^p (see :func:`fit_order`).
    """
    check_choice("method", method, tuple(solvers.FIXED_METHODS))
    steps = _check_levels("steps", steps)
    check_positive("rtol", rtol)
    check_positive("atol", atol)
    check_state("x0", x0)
    ode, x0 = _as_field(field, x0)  # a ResNet becomes its associated ODE
    t0, t1 = _span(ode, t_span)
    if solvers.is_piecewise(ode) and any(n % ode.pieces.pieces for n in steps):
        raise ValueError(f"steps must be multiples of the field's {ode.pieces.pieces} pieces; got {list(steps)}")
    ref, ref_name, ref_err = _reference(ode, x0, (t0, t1), reference, rtol, atol, reference_error)
    finals, nfev = [], []
    with torch.no_grad():
        for n in steps:
            sol = solvers.solve(ode, x0, (t0, t1), method=method, steps=n, record="end")
            if not sol.success:
                raise RuntimeError(f"{method} with {n} steps failed: {sol.message}")
            finals.append(sol.y[-1])
            nfev.append(sol.nfev)
    h = [(t1 - t0) / n for n in steps]
    return _assemble("refinement", method, steps, h, nfev, finals, ref, ref_name, ref_err, confidence,
                     dict(t0=t0, t1=t1, rtol=rtol, atol=atol, batch=len(x0)))


def depth_study(field: SmoothField, x0: torch.Tensor, depths: Sequence[int] = (4, 8, 16, 32, 64), *,
                reference: str | None = "DOP853", rtol: float = 1e-12, atol: float = 1e-12,
                reference_error: float | None = None, confidence: float = 0.95) -> ConvergenceStudy:
    """Distance between depth-L ResNets and the flow of the smooth field their weights sample.

    ``field`` has ``sample(L) -> (W (L, m, m), b (L, m))``, ``pieces`` and ``activation`` (an
    :class:`odenet.SmoothField`).  For each L the ResNet h_{l+1} = h_l + (T/L) σ(W(t_l) h_l + b(t_l)),
    t_l = l T / L (ε = 1, δ = h = T/L), is run by :func:`solvers.solve` on its own LayerField and
    compared with the flow x' = σ(W(t) x + b(t)) at T; the order fits e_L = C (T/L)^p.
    """
    from odenet import ResNet

    depths = _check_levels("depths", depths)
    if not (hasattr(field, "sample") and solvers.is_piecewise(field) and hasattr(field, "activation")):
        raise TypeError(f"field must be a smooth field with sample(depth), pieces and activation "
                        f"(odenet.SmoothField); got {type(field).__name__}")
    check_state("x0", x0)
    T = field.pieces.t1
    width = x0.shape[1]
    field_width = field.sample(depths[0])[0].shape[1]
    if field_width != width:  # before the reference solve, which would fail inside a matmul
        raise ValueError(f"x0 must have the field's width {field_width}; got shape {tuple(x0.shape)}")
    ref, ref_name, ref_err = _reference(field, x0, (0.0, T), reference, rtol, atol, reference_error)
    finals, nfev = [], []
    with torch.no_grad():
        for L in depths:
            W, b = field.sample(L)
            net = ResNet.neural_ode(width, width, 1, depth=L, T=T, activation=field.activation.name,
                                    dtype=x0.dtype, device=x0.device)
            net.field.weight.copy_(W)
            net.field.bias.copy_(b)
            sol = solvers.solve(net.field, x0, method="euler", record="end")
            finals.append(sol.y[-1])
            nfev.append(sol.nfev)
    h = [T / L for L in depths]
    return _assemble("depth", "euler", depths, h, nfev, finals, ref, ref_name, ref_err, confidence,
                     dict(t0=0.0, t1=T, rtol=rtol, atol=atol, batch=len(x0)))


def work_precision(field: Field | ResNet, x0: torch.Tensor, t_span: tuple[float, float] | None = None, *,
                   fixed_methods: Sequence[str] = ("euler", "heun", "midpoint", "rk4"),
                   steps: Sequence[int] = (4, 8, 16, 32, 64),
                   adaptive_methods: Sequence[str] = ("dopri5", "dopri8", "bosh3"),
                   tolerances: Sequence[float] = (1e-3, 1e-5, 1e-7, 1e-9),
                   reference: str | torch.Tensor = "DOP853", rtol: float = 1e-12, atol: float = 1e-12,
                   reference_error: float | None = None) -> WorkPrecision:
    """Error at t1 against the number of field evaluations, for fixed-step methods at each of
    ``steps`` and adaptive methods at rtol = atol = each of ``tolerances``.

    Records (method, setting, nfev, err_sup, err_rms) per run; ``slopes[method]`` is the
    least-squares slope of log err_sup on log nfev (≈ -p for a fixed-step method of order p).
    ``field`` may be an :class:`odenet.ResNet` (its associated ODE).
    """
    for m in fixed_methods:
        check_choice("fixed_methods", m, tuple(solvers.FIXED_METHODS))
    for m in adaptive_methods:
        check_choice("adaptive_methods", m, solvers.ADAPTIVE_METHODS + solvers.REFERENCE_METHODS)
    if fixed_methods:
        steps = _check_levels("steps", steps)
    tolerances = [check_positive("tolerances", t) for t in tolerances]
    check_state("x0", x0)
    field, x0 = _as_field(field, x0)
    t0, t1 = _span(field, t_span)
    if reference is None:
        raise ValueError("work_precision needs a reference (a method name or a tensor); got None")
    ref, ref_name, ref_err = _reference(field, x0, (t0, t1), reference, rtol, atol, reference_error)
    rows = []
    with torch.no_grad():
        for m in fixed_methods:
            for n in steps:
                sol = solvers.solve(field, x0, (t0, t1), method=m, steps=n, record="end")
                rows.append((m, float(n), sol.nfev, *error_norms(sol.y[-1], ref)))
        for m in adaptive_methods:
            for tol in tolerances:
                sol = solvers.solve(field, x0, (t0, t1), method=m, rtol=tol, atol=tol, record="end")
                if not sol.success:
                    raise RuntimeError(f"{m} at rtol={tol} failed: {sol.message}")
                rows.append((m, tol, sol.nfev, *error_norms(sol.y[-1], ref)))
    method = [r[0] for r in rows]
    names = np.array(method)
    nfev = np.array([r[2] for r in rows], dtype=np.int64)
    err_sup = np.array([r[3] for r in rows])
    slopes = {}
    for m in dict.fromkeys(method):
        sel = (names == m) & (err_sup > 0)
        if sel.sum() >= 2 and len(np.unique(nfev[sel])) >= 2:
            slopes[m] = float(np.polyfit(np.log(nfev[sel]), np.log(err_sup[sel]), 1)[0])
    return WorkPrecision(method=method, setting=np.array([r[1] for r in rows]), nfev=nfev, err_sup=err_sup,
                         err_rms=np.array([r[4] for r in rows]), reference=ref_name, reference_error=ref_err,
                         slopes=slopes, attrs=dict(t0=t0, t1=t1, batch=len(x0)))
