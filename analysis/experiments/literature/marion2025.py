"""marion2025 — Marion, Fermanian, Biau, Vert, *Scaling ResNets in the large-depth regime*
(JMLR 2025): at initialisation, no training.

    h_{k+1} = h_k + L^{-β} V_k ReLU(W_k h_k),   k = 0..L-1,   h_0 ∈ R^d, |h_0| = 1,

with V_k, W_k entries of variance 1/d drawn three ways:

- **i.i.d.** across k: Σ_k L^{-β} V_k ReLU(W_k h) has standard deviation ~ L^{1/2-β}: β < ½
  explodes, β = ½ is non-trivial (a neural SDE), β > ½ tends to the identity;
- **smooth** in k: every entry a Gaussian-process path of the layer time k/L (squared-exponential
  kernel, :func:`analysis.continuum.depth_weights.smooth_weights`): the sum ~ L^{1-β}, critical β = 1 (the
  neural ODE);
- **fractional Gaussian noise** in k with Hurst index H (unit variance per layer,
  :func:`analysis.experiments.literature.estimators.fractional_gaussian_noise`): H = ½ is the i.i.d. case;
  correlated increments (H > ½) move the critical β towards 1 as H → 1.

Measured, per draw: r = |h_L - h_0| / |h_0| and the gradient ratio g = |∂(u·h_L)/∂h_0| / |u|
(u a random unit vector), against L.  A regime is read from the slope s of log median r on log L
(``explode`` s > 0.2, ``identity`` s < -0.2, ``non-trivial`` otherwise, and ``explode`` whenever
r > 1e3); the critical β(H) is where s(β) crosses 0 (linear interpolation in β).
"""
from __future__ import annotations

import math

from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
import torch

from analysis.experiments.literature.estimators import fractional_gaussian_noise, power_law_slope
from analysis.experiments.literature.records import ClaimRow, StudyResult

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

NAME = "marion2025"
SOURCE = "Marion, Fermanian, Biau, Vert, JMLR 2025"
SLOPE_TOL = 0.2


def propagate(V: torch.Tensor, W: torch.Tensor, beta: float, h0: torch.Tensor, u: torch.Tensor
              ) -> tuple[np.ndarray, np.ndarray]:
    """(r, g) per draw for weights V, W (draws, L, d, d), inputs h0 and directions u (draws, d):
    r = |h_L - h_0| / |h_0|, g = |∂(u·h_L)/∂h_0| / |u| (module docstring), each (draws,)."""
    L = V.shape[1]
    h0 = h0.clone().requires_grad_(True)
    h, s = h0, L ** (-beta)
    for k in range(L):
        z = torch.relu(torch.einsum("bij,bj->bi", W[:, k], h))
        h = h + s * torch.einsum("bij,bj->bi", V[:, k], z)
    (grad,) = torch.autograd.grad((u * h).sum(), h0)
    with torch.no_grad():
        r = (h - h0).norm(dim=1) / h0.norm(dim=1)
        g = grad.norm(dim=1) / u.norm(dim=1)
    return r.numpy(), g.numpy()


def _weights(kind: str, draws: int, L: int, d: int, rng: np.random.Generator, hurst: float = 0.5):
    """V, W (draws, L, d, d) of one family (module docstring), entries of variance 1/d."""
    if kind == "iid":
        x = rng.standard_normal((draws, L, 2, d, d))
    elif kind == "smooth":
        from analysis.continuum.depth_weights import smooth_weights

        x = np.stack([np.stack([smooth_weights(L, d, std=1.0, seed=int(rng.integers(2 ** 31)))[0].numpy()
                                for _ in range(2)], axis=1) for _ in range(draws)])
    elif kind == "fgn":
        x = fractional_gaussian_noise(hurst, L, draws * 2 * d * d, rng=rng)   # (L, draws 2 d d)
        x = x.T.reshape(draws, 2, d, d, L).transpose(0, 4, 1, 2, 3)
    else:
        raise ValueError(f"kind must be 'iid', 'smooth' or 'fgn'; got {kind!r}")
    vw = torch.from_numpy(np.ascontiguousarray(x)) / math.sqrt(d)
    return vw[:, :, 0], vw[:, :, 1]


def measure(kind: str, betas: Sequence[float] | np.ndarray, depths: Sequence[int] | np.ndarray, draws: int, d: int, rng: np.random.Generator,
            hurst: float = 0.5, chunk: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """Median over draws of r and g, arrays (len(betas), len(depths)); the same weights serve every
    β at a depth."""
    R = np.zeros((len(betas), len(depths), draws))
    G = np.zeros_like(R)
    for j, L in enumerate(depths):
        for c0 in range(0, draws, chunk):
            n = min(chunk, draws - c0)
            V, W = _weights(kind, n, int(L), d, rng, hurst)
            h0 = torch.from_numpy(rng.standard_normal((n, d)))
            h0 = h0 / h0.norm(dim=1, keepdim=True)
            u = torch.from_numpy(rng.standard_normal((n, d)))
            for i, b in enumerate(betas):
                R[i, j, c0:c0 + n], G[i, j, c0:c0 + n] = propagate(V, W, float(b), h0, u)
    return np.median(R, 2), np.median(G, 2)


def slope_of(depths: ArrayLike, values: ArrayLike) -> float:
    """Slope of log value on log L (+inf where a value is not finite: an explosion)."""
    v = np.asarray(values, dtype=np.float64)
    if not np.isfinite(v).all():
        return math.inf
    return power_law_slope(depths, np.maximum(v, 1e-300)).order


def regime(depths: ArrayLike, r: ArrayLike) -> str:
    """'explode', 'non-trivial' or 'identity' from the median ratios r against L (module docstring)."""
    if not np.isfinite(r).all() or np.nanmax(r) > 1e3:
        return "explode"
    s = slope_of(depths, r)
    return "explode" if s > SLOPE_TOL else "identity" if s < -SLOPE_TOL else "non-trivial"


def critical_beta(betas: ArrayLike, slopes: ArrayLike) -> float:
    """β where the slope s(β) of log r on log L first crosses 0 going up in β (linear
    interpolation; NaN if it does not cross)."""
    b, s = np.asarray(betas, dtype=float), np.clip(np.asarray(slopes, dtype=float), -10, 10)
    for i in range(len(b) - 1):
        if s[i] >= 0 > s[i + 1]:
            return float(b[i] + (b[i + 1] - b[i]) * s[i] / (s[i] - s[i + 1]))
    return math.nan


def run(*, quick: bool = False, seeds: int | None = None, seed: int = 0) -> StudyResult:
    """The regimes of i.i.d. and smooth weights and the (H, β) heatmap of fGn weights (module
    docstring), over ``seeds`` draws (default 8 quick, 20 full)."""
    draws = seeds or (8 if quick else 20)
    rng = np.random.default_rng(seed)
    d = 20 if quick else 40
    depths = np.array([10, 30, 100, 300] if quick else [10, 32, 100, 316, 1000])
    fam = {"iid": [0.25, 0.5, 1.0], "smooth": [0.5, 1.0, 2.0]}
    expected = {"iid": ["explode", "non-trivial", "identity"], "smooth": ["explode", "non-trivial", "identity"]}
    data: dict[str, Any] = {"L": depths}
    claims: list[ClaimRow] = []
    for kind, betas in fam.items():
        R, G = measure(kind, betas, depths, draws, d, rng)
        data[f"{kind}_beta"], data[f"{kind}_ratio"], data[f"{kind}_grad_ratio"] = np.array(betas), R, G
        for b, Rb, Gb, exp in zip(betas, R, G, expected[kind]):
            got = regime(depths, Rb)
            s = slope_of(depths, Rb)
            gs = slope_of(depths, Gb)
            claims.append(ClaimRow(NAME, f"{kind} weights, β = {b:g}: |h_L - h_0|/|h_0| against L is {exp}", SOURCE,
                                   exp, f"{got} (slope {s:.2f}; at L = {depths[-1]}: r = {Rb[-1]:.3g}; gradient ratio "
                                   f"slope {gs:.2f}, g = {Gb[-1]:.3g})", "consistent" if got == exp else "contradicts",
                                   "" if got == exp else f"median over {draws} draws; L ≤ {depths[-1]} may be short "
                                   "of the limit"))
    # fGn heatmap
    hursts = np.array([0.5, 0.7, 0.9] if quick else [0.3, 0.5, 0.6, 0.7, 0.8, 0.9])
    fgn_betas = np.array([0.3, 0.5, 0.7, 0.9, 1.1] if quick else [0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.1])
    d_f = 12 if quick else 16
    fdepths = depths
    slopes = np.zeros((len(hursts), len(fgn_betas)))
    heat = np.zeros((len(hursts), len(fgn_betas)))
    for i, H in enumerate(hursts):
        R, _ = measure("fgn", fgn_betas, fdepths, max(4, draws // 2), d_f, rng, hurst=float(H))
        slopes[i] = [slope_of(fdepths, r) for r in R]
        heat[i] = np.log10(np.maximum(R[:, -1], 1e-300))
    crit = np.array([critical_beta(fgn_betas, s) for s in slopes])
    data.update(fgn_hurst=hursts, fgn_beta=fgn_betas, fgn_slope=slopes, fgn_log10_ratio_at_max_L=heat,
                fgn_critical_beta=crit)
    i_half = int(np.argmin(np.abs(hursts - 0.5)))
    ok_half = abs(crit[i_half] - 0.5) <= 0.1
    ok_up = bool(np.isfinite(crit).all() and crit[-1] > crit[i_half] + 0.1 and crit.max() <= 1.1)
    claims.append(ClaimRow(NAME, "fGn weights: critical β at H = ½ is ½ (the i.i.d. case)", SOURCE, "0.5 ± 0.1",
                           f"{crit[i_half]:.3g}", "consistent" if ok_half else "contradicts"))
    claims.append(ClaimRow(NAME, "fGn weights: critical β rises from ½ towards 1 as H → 1", SOURCE,
                           f"β_c(H = {hursts[-1]:g}) > β_c(½) + 0.1, ≤ 1.1",
                           ", ".join(f"H {h:g}→{c:.2f}" for h, c in zip(hursts, crit)),
                           "consistent" if ok_up else "contradicts",
                           "V_k and W_k independent fGn: their product's correlations decay like k^{4H-4}, summable "
                           "for H < ¾, so a heuristic predicts β_c = max(½, 2H - 1) for this construction (finite L blurs its kink)"))
    from analysis.plots.literature import marion_figure

    return StudyResult(NAME, SOURCE, data, claims, figures={NAME: marion_figure(data)},
                       scaled=(f"width {d} (published 40), L ∈ {depths.tolist()}, {draws} draws (published 50); "
                               f"fGn heatmap width {d_f}, {max(4, draws // 2)} draws, H ∈ {hursts.tolist()}, "
                               f"β ∈ {fgn_betas.tolist()}"),
                       config=dict(width=d, depths=depths.tolist(), draws=draws, fgn_width=d_f))
