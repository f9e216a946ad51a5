"""Lower bounds on the approximation error of networks without critical points, and closeness
bounds between a ResNet and its ODE or MLP limit (docs/theory.md §6 and §8;
derived there, not the paper's constants).

- :func:`sup_lower_bound`: a target Ψ with a strict interior minimum of depth d on a ball B forces
  ‖Φ - Ψ‖_∞ ≥ d/2 on any Φ without critical points in B.
- :func:`monotone_fit` / :func:`isotonic_bound`: in 1D a network without critical points is
  strictly monotone, so its mean-squared error is at least the best monotone (isotonic) fit's.
- :func:`euler_ode_bound`, :func:`resnet_mlp_bound`: how far a skip-dominant ResNet is from its
  flow, a residual-dominant one from its MLP; :func:`regime_lower_bound` combines them with d/2.
- :func:`critical_weight_norm`: ε/(δK), the block weight norm below which no block folds.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

import numpy as np
import torch
from numpy.typing import ArrayLike
from scipy.optimize import isotonic_regression

from solvers.validation import check_nonnegative, check_positive, check_positive_int, check_real
from analysis.io.schema import Array, Attr, Schema, register

if TYPE_CHECKING:
    from odenet import ResNet


# --- sup norm ---------------------------------------------------------------------------------
def extremum_depth(target: Callable[[torch.Tensor], torch.Tensor], *, centre: ArrayLike, radius: float,
                   kind: str = "min", n_boundary: int = 4096) -> float:
    """The depth of an extremum of the target (not a network depth):
    d = min_{∂B} Ψ - Ψ(x*) for a minimum (``kind="min"``), or Ψ(x*) - max_{∂B} Ψ for a maximum,
    on the ball B of ``radius`` about x* = ``centre`` (n,).

    ∂B is the two points x* ± radius in 1D, ``n_boundary`` equally spaced points of the circle in
    2D, and ``n_boundary`` random directions (fixed seed 0) on the sphere in higher dimension (then d
    over-estimates the true depth slightly, exact as n_boundary grows).
    ``target`` maps a (N, n) float64 tensor to (N,) or (N, 1).  d > 0 for a strict extremum.

    Raises ValueError for radius <= 0, n_boundary < 1 or kind not in {"min", "max"}.
    """
    c = torch.as_tensor(np.asarray(centre, dtype=np.float64)).reshape(-1)
    radius = check_positive("radius", radius)
    n_boundary = check_positive_int("n_boundary", n_boundary)
    if kind not in ("min", "max"):
        raise ValueError(f"kind must be 'min' or 'max'; got {kind!r}")
    n = c.numel()
    if n == 1:
        u = torch.tensor([[-1.0], [1.0]], dtype=torch.float64)
    elif n == 2:
        th = 2 * math.pi * torch.arange(n_boundary, dtype=torch.float64) / n_boundary
        u = torch.stack([th.cos(), th.sin()], 1)
    else:
        g = torch.Generator().manual_seed(0)
        u = torch.randn(n_boundary, n, generator=g, dtype=torch.float64)
        u = u / u.norm(dim=1, keepdim=True)
    with torch.no_grad():
        vb = torch.as_tensor(target(c + radius * u)).reshape(-1).to(torch.float64)
        v0 = float(torch.as_tensor(target(c[None])).reshape(-1)[0])
    return float(vb.min()) - v0 if kind == "min" else v0 - float(vb.max())


def sup_lower_bound(extremum_depth: float) -> float:
    """d/2: the least sup-norm error ‖Φ - Ψ‖_{C⁰} of any C¹ map Φ without critical points in a
    closed ball B where Ψ has a strict interior extremum of depth d = ``extremum_depth``
    = min_{∂B} Ψ - Ψ(x*) > 0 (for x² on [-1, 1]: d = 1, bound 1/2).

    Raises ValueError unless d > 0.
    """
    d = check_real("extremum_depth", extremum_depth)
    if not d > 0:
        raise ValueError(f"extremum_depth must be > 0 (a strict interior extremum); got {extremum_depth}")
    return d / 2


def target_sup_bound(target: Callable[[torch.Tensor], torch.Tensor], *, centre: ArrayLike, radius: float,
                     kind: str = "min", n_boundary: int = 4096) -> float:
    """d/2 with d = :func:`extremum_depth` (Ψ, x* = ``centre``, r = ``radius``): the sup-norm lower
    bound for Ψ on that ball (arguments as :func:`extremum_depth`)."""
    return sup_lower_bound(extremum_depth(target, centre=centre, radius=radius, kind=kind, n_boundary=n_boundary))


# --- 1D: monotone fits --------------------------------------------------------------------------
@dataclass
class MonotoneFit:
    """The best monotone L² fit of samples (x_i, y_i) (sorted by x).

    Fields
    ------
    x : ndarray (N,)      sorted inputs.
    y : ndarray (N,)      targets in that order.
    fit : ndarray (N,)    the fitted monotone values ŷ.
    increasing : bool     direction of the better fit.
    mse : float           (1/N) Σ w_i (y_i - ŷ_i)² / mean(w) of the better fit.
    mse_increasing, mse_decreasing : float   both directions.
    """

    x: np.ndarray
    y: np.ndarray
    fit: np.ndarray
    increasing: bool
    mse: float
    mse_increasing: float
    mse_decreasing: float


def monotone_fit(x: ArrayLike, y: ArrayLike, weights: ArrayLike | None = None) -> MonotoneFit:
    """The best monotone fit of y(x) in weighted L² (scipy.optimize.isotonic_regression), in both
    directions; the better one is kept.

        mse = min_{ŷ monotone} Σ w_i (y_i - ŷ_i)² / Σ w_i

    ``x``, ``y`` and ``weights`` (default all ones) are (N,) (flattened).  Raises ValueError for
    empty or unequal lengths, or weights that are not positive.
    """
    x = np.asarray(x, dtype=np.float64).reshape(-1)
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    if x.shape != y.shape or x.size == 0:
        raise ValueError(f"x and y must be non-empty and of one length; got {x.shape} and {y.shape}")
    w = np.ones_like(x) if weights is None else np.asarray(weights, dtype=np.float64).reshape(-1)
    if w.shape != x.shape or np.any(w <= 0):
        raise ValueError("weights must be positive, one per sample")
    order = np.argsort(x, kind="stable")
    xs, ys, ws = x[order], y[order], w[order]
    fits = {inc: np.asarray(isotonic_regression(ys, weights=ws, increasing=inc).x) for inc in (True, False)}
    mse = {inc: float(np.sum(ws * (ys - f) ** 2) / np.sum(ws)) for inc, f in fits.items()}
    inc = mse[True] <= mse[False]
    return MonotoneFit(xs, ys, fits[inc], bool(inc), mse[inc], mse[True], mse[False])


def isotonic_bound(x: ArrayLike, y: ArrayLike, weights: ArrayLike | None = None) -> float:
    """The least mean-squared error of a monotone function on the samples (x_i, y_i): a lower bound
    on the MSE of every 1D network without critical points (it is strictly monotone).  For x² on
    [-1, 1] under the uniform measure it tends to 9/160 (fit 1/4 on [-1, 1/2], x² beyond)."""
    return monotone_fit(x, y, weights).mse


# --- closeness bounds ---------------------------------------------------------------------------
def critical_weight_norm(*, eps: float, delta: float, lipschitz: float = 1.0) -> float:
    """ε/(δK): a block F(h) = ε h + δ σ(W h + b) with ‖W‖₂ < ε/(δK) has no critical point (its
    Jacobian ε I + δ diag(σ') W is invertible); W = -(ε/δ) I attains a critical point for tanh.
    K = ``lipschitz`` = sup σ'.  Raises ValueError for ε < 0, δ <= 0 or K <= 0."""
    eps = check_nonnegative("eps", eps)
    delta = check_positive("delta", delta)
    lipschitz = check_positive("lipschitz", lipschitz)
    return eps / (delta * lipschitz)


def _network_constants(delta: float, depth: int, lipschitz: float, omega: float, sup_sigma: float,
                       width: int) -> tuple[float, int, float, float, float, int]:
    """The constants both closeness bounds share, checked: δ > 0, L ≥ 1, K, ω, S ≥ 0, m ≥ 1."""
    return (check_positive("delta", delta), check_positive_int("depth", depth),
            check_nonnegative("lipschitz", lipschitz), check_nonnegative("omega", omega),
            check_nonnegative("sup_sigma", sup_sigma), check_positive_int("width", width))


def euler_ode_bound(*, delta: float, depth: int, lipschitz: float, omega: float, sup_sigma: float = 1.0,
                    width: int = 1) -> float:
    """Skip-dominant (ε = 1, δ = T/L) distance of the ResNet's block map to the ODE flow:

        |h_L(x) - φ_T(h_0(x))| ≤ (M δ / 2) ((1 + δ K ω)^L - 1),   M = S √m,

    with L = ``depth`` (the network's number of blocks), K = ``lipschitz`` = sup σ',
    ω = ``omega`` ≥ max ‖W_l‖₂, S = ``sup_sigma`` ≥ sup |σ|, m = ``width``
    (and ≤ (M δ/2)(e^{K ω T} - 1)).  Raises ValueError for δ <= 0, L or m < 1, or a negative
    constant."""
    delta, depth, K, omega, S, width = _network_constants(delta, depth, lipschitz, omega, sup_sigma, width)
    M = S * math.sqrt(width)
    return M * delta / 2 * math.expm1(depth * math.log1p(delta * K * omega))


def resnet_mlp_bound(*, eps: float, delta: float, depth: int, lipschitz: float, omega: float, h0_norm: float,
                     out_norm: float, sup_sigma: float = 1.0, width: int = 1) -> float:
    """Residual-dominant (ε < 1) distance of the ResNet to the MLP with the same weights (ε → 0):

        sup |Φ_ResNet - Φ_MLP| ≤ ‖w_out‖ ε H Σ_{j<L} (δ K ω)^j,   H = max(|h_0|, δ S √m / (1 - ε)),

    with L = ``depth`` (the network's number of blocks), K = ``lipschitz`` = sup σ',
    ω = ``omega`` ≥ max ‖W_l‖₂, S = ``sup_sigma`` ≥ sup |σ|, m = ``width``,
    |h_0| = ``h0_norm`` ≥ sup |h_0(x)| over the inputs considered, ‖w_out‖ = ``out_norm``.
    Raises ValueError for ε outside [0, 1), δ <= 0, L or m < 1, or a negative constant."""
    eps = check_nonnegative("eps", eps)
    if not eps < 1:
        raise ValueError(f"eps must be < 1 for the ResNet-MLP bound; got {eps}")
    delta, depth, K, omega, S, width = _network_constants(delta, depth, lipschitz, omega, sup_sigma, width)
    h0 = check_nonnegative("h0_norm", h0_norm)
    wo = check_nonnegative("out_norm", out_norm)
    H = max(h0, delta * S * math.sqrt(width) / (1 - eps))
    q = delta * K * omega
    geometric = depth if q == 1 else (q ** depth - 1) / (q - 1)
    return wo * eps * H * geometric


def regime_lower_bound(*, extremum_depth: float, closeness: float) -> float:
    """max(0, d/2 - κ): the least sup-norm error to a target with a strict interior extremum of
    depth d = ``extremum_depth`` of a network within κ = ``closeness`` (sup norm) of a map without
    critical points.  Raises ValueError unless d > 0 and κ >= 0."""
    return max(0.0, sup_lower_bound(extremum_depth) - check_nonnegative("closeness", closeness))


@dataclass
class ModelBounds:
    """Bounds evaluated for one trained ResNet (see :func:`model_bounds`).

    Fields
    ------
    omega : float              max_l ‖W_l‖₂ (BN folded).
    critical_norm : float      ε/(δK) (0 for ε = 0).
    closeness : float          a bound on the output distance sup |Φ_ResNet - Φ_limit| (before an output
                               sigmoid, which is 1/4-Lipschitz, so the bound holds after it too):
                               ‖w_out‖₂ × euler_ode_bound for ε = 1 (Φ_limit the time-T flow),
                               resnet_mlp_bound for ε < 1 (Φ_limit the MLP), NaN otherwise (ε > 1).
    closeness_kind : str       "ode", "mlp" or "none".
    """

    omega: float
    critical_norm: float
    closeness: float
    closeness_kind: str


def model_bounds(resnet: ResNet, x: torch.Tensor | None = None) -> ModelBounds:
    """ω = max ‖W_l‖₂, ε/(δK), and the closeness bound of the model's regime on the output,
    comparable with d/2 (:func:`regime_lower_bound`): ‖w_out‖₂ (M δ/2)((1 + δKω)^L - 1) for ε = 1,
    :func:`resnet_mlp_bound` for ε < 1 (``x``: inputs over which |h_0| and hence H are taken,
    needed for ε < 1)."""
    W, _ = resnet.field.effective_weights()
    omega = float(torch.linalg.matrix_norm(W.detach(), ord=2).max())
    K = resnet.activation.lipschitz
    crit = critical_weight_norm(eps=resnet.eps, delta=resnet.delta, lipschitz=K)
    S = 1.0 if resnet.activation.name == "tanh" else math.inf
    wo = float(torch.linalg.matrix_norm(resnet.out.weight.detach(), ord=2))
    if resnet.eps == 1:
        # euler_ode_bound is on the hidden state h_L; the readout multiplies it by at most ‖w_out‖₂
        close = wo * euler_ode_bound(delta=resnet.delta, depth=resnet.depth, lipschitz=K, omega=omega, sup_sigma=S,
                                     width=resnet.width)
        kind = "ode"
    elif resnet.eps < 1 and x is not None:
        with torch.no_grad():
            h0 = float(resnet.embed(x).norm(dim=1).max())
        close = resnet_mlp_bound(eps=resnet.eps, delta=resnet.delta, depth=resnet.depth, lipschitz=K, omega=omega,
                                 h0_norm=h0, out_norm=wo, sup_sigma=S, width=resnet.width)
        kind = "mlp"
    else:
        close, kind = math.nan, "none"
    return ModelBounds(omega, crit, close, kind)


# --- storage: the HDF5 schemas of this module's records, registered on import (docs/hdf5-format.md) ---
def _monotone_fit_schema() -> Schema:
    return Schema("MonotoneFit", MonotoneFit, fields=(
        Array("x", ("sample",), doc="sorted inputs"), Array("y", ("sample",), doc="targets in that order"),
        Array("fit", ("sample",), doc="best monotone L2 fit"),
        Attr("increasing", bool), Attr("mse", float), Attr("mse_increasing", float), Attr("mse_decreasing", float),
    ), doc="best monotone L2 fit (isotonic regression): the L2 lower bound in 1D", dtype_of="fit")


def _model_bounds_schema() -> Schema:
    return Schema("ModelBounds", ModelBounds, fields=(
        Attr("omega", float), Attr("critical_norm", float), Attr("closeness", float), Attr("closeness_kind", str),
    ), doc="weight norms and closeness bounds of one ResNet")


register(_monotone_fit_schema())
register(_model_bounds_schema())
