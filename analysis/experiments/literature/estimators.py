"""Estimators shared by the literature studies: power-law slopes with intervals, p-variation and
the roughness exponent it implies, the Hurst index of a stationary series, and exact fractional
Gaussian noise to test them on.

- **slope** of log y = log C + s log x by least squares with a Student-t interval: the project's
  :func:`analysis.continuum.convergence.fit_order` (re-exported as :func:`power_law_slope`).
- **p-variation** of a path x_0..x_n (values in R^d or matrices, distances in the Euclidean /
  Frobenius norm)

      V_p(x) = sup over partitions 0 = k_0 < ... < k_r = n of Σ_j |x_{k_{j+1}} - x_{k_j}|^p,

  computed exactly by dynamic programming (O(n²)).
- **roughness exponent** from the p-variation sum on the finest partition of the path sub-sampled
  every s points, S_p(s) = Σ_i |x_{(i+1)s} - x_{is}|^p.  For a path with increments of size
  (s/n)^H on m = n/s intervals, S_p ~ m^{1 - pH}, so H = (1 - slope)/p with slope that of log S_p
  on log m: H = 1 for a smooth (C¹) path, ½ for Brownian motion, for every p.
- **Hurst index** of a stationary series ξ_k (fractional Gaussian noise) from the variogram of its
  partial sums X_k = Σ_{j<k} ξ_j: E|X_{k+s} - X_k|² ∝ s^{2H}, so H = slope/2.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

import numpy as np

from analysis.continuum.convergence import OrderFit, fit_order

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

__all__ = ["power_law_slope", "OrderFit", "p_variation", "RoughnessFit", "roughness_exponent", "hurst_index",
           "fgn_autocovariance", "fractional_gaussian_noise", "brownian_path"]


def power_law_slope(x: ArrayLike, y: ArrayLike, confidence: float = 0.95) -> OrderFit:
    """Slope s of log y = log C + s log x (least squares) with its Student-t ``confidence``
    interval (``order``, ``ci_low``, ``ci_high``) from positive ``x``, ``y`` (k,), k ≥ 3:
    :func:`analysis.continuum.convergence.fit_order` (which raises ValueError on other input)."""
    return fit_order(x, y, confidence)


def _as_path(name: str, path) -> np.ndarray:
    a = np.asarray(path, dtype=np.float64)
    if a.ndim == 0 or a.shape[0] < 2:
        raise ValueError(f"{name} must be an array (n+1, ...) of at least 2 points along its first axis; "
                         f"got shape {a.shape}")
    if not np.isfinite(a).all():
        raise ValueError(f"{name} must be finite")
    return a.reshape(a.shape[0], -1)


def _check_p(p) -> float:
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not (math.isfinite(p) and p >= 1):
        raise ValueError(f"p must be a finite number >= 1; got {p!r}")
    return float(p)


def p_variation(path: ArrayLike, p: float) -> float:
    """Exact p-variation V_p (module docstring) of ``path`` (n+1, ...) for p ≥ 1, by the dynamic
    programme V[j] = max_{i<j} V[i] + |x_j - x_i|^p (V[0] = 0, V_p = V[n]).  For p = 1 it is
    the total variation Σ|Δx| (the triangle inequality makes the finest partition optimal).
    Raises ValueError for fewer than 2 points, non-finite values or p < 1."""
    x = _as_path("path", path)
    p = _check_p(p)
    n = x.shape[0]
    best = np.zeros(n)
    for j in range(1, n):
        d = np.linalg.norm(x[j] - x[:j], axis=1) ** p
        best[j] = float(np.max(best[:j] + d))
    return float(best[-1])


@dataclass
class RoughnessFit:
    """Roughness exponent H = (1 - s)/p from the slope s (with interval) of log S_p(m) on log m
    (module docstring); ``intervals`` (k,) the interval counts m, ``sums`` (k,) S_p."""

    p: float
    exponent: float
    ci_low: float
    ci_high: float
    intervals: np.ndarray
    sums: np.ndarray
    fit: OrderFit


def roughness_exponent(path: ArrayLike, p: float = 2.0, strides: Sequence[int] | None = None,
                       confidence: float = 0.95) -> RoughnessFit:
    """H from the finest-partition p-variation sums of ``path`` (n+1, ...) sub-sampled every s
    points, s in ``strides`` (default 1, 2, 4, ... while at least 8 intervals remain).  Raises
    ValueError for a bad path or p (as :func:`p_variation`) or fewer than 3 distinct strides in [1, n]."""
    x = _as_path("path", path)
    p = _check_p(p)
    n = x.shape[0] - 1
    if strides is None:
        strides = [2 ** k for k in range(int(math.log2(max(n, 1))) + 1) if n // 2 ** k >= 8]
    strides = [int(s) for s in strides]
    if len(strides) < 3 or any(s < 1 or n // s < 1 for s in strides) or len(set(strides)) != len(strides):
        raise ValueError(f"strides must hold at least 3 distinct strides s with 1 <= s <= n = {n}; got {strides}")
    m = np.array([n // s for s in strides], dtype=np.float64)
    sums = np.array([float((np.linalg.norm(np.diff(x[: (n // s) * s + 1: s], axis=0), axis=1) ** p).sum())
                     for s in strides])
    fit = fit_order(m, sums, confidence)
    # H = (1 - s)/p is decreasing in the slope s: the interval's ends swap
    return RoughnessFit(p=p, exponent=(1 - fit.order) / p, ci_low=(1 - fit.ci_high) / p,
                        ci_high=(1 - fit.ci_low) / p, intervals=m, sums=sums, fit=fit)


def hurst_index(noise: ArrayLike, lags: Sequence[int] | None = None, confidence: float = 0.95
                ) -> tuple[float, float, float]:
    """(H, low, high): the Hurst index of the stationary series ``noise`` (n,) or (n, k) (k
    independent series along axis 1) from the variogram of its partial sums (module docstring),
    mean squared increments at ``lags`` (default 1, 2, 4, ... ≤ n/8), with the slope's interval
    halved.  Estimates H of fractional Gaussian noise for 0 < H < 1.  Raises ValueError for
    n < 32, non-finite values or fewer than 3 lags in [1, n)."""
    xi = np.asarray(noise, dtype=np.float64)
    if xi.ndim == 1:
        xi = xi[:, None]
    if xi.ndim != 2 or xi.shape[0] < 32 or not np.isfinite(xi).all():
        raise ValueError(f"noise must be a finite array (n,) or (n, k) with n >= 32; got shape {np.shape(noise)}")
    n = xi.shape[0]
    if lags is None:
        lags = [2 ** k for k in range(int(math.log2(n)) + 1) if 2 ** k <= n // 8]
    lags = [int(s) for s in lags]
    if len(lags) < 3 or any(not 1 <= s < n for s in lags):
        raise ValueError(f"lags must hold at least 3 lags in [1, n) with n = {n}; got {lags}")
    X = np.concatenate([np.zeros((1, xi.shape[1])), np.cumsum(xi, axis=0)])
    v = np.array([float(np.mean((X[s:] - X[:-s]) ** 2)) for s in lags])
    fit = fit_order(lags, v, confidence)
    return fit.order / 2, fit.ci_low / 2, fit.ci_high / 2


def fgn_autocovariance(hurst: float, n: int) -> np.ndarray:
    """γ(k) = ½(|k+1|^{2H} - 2|k|^{2H} + |k-1|^{2H}), k = 0..n-1: unit-variance fractional
    Gaussian noise (white noise at H = ½)."""
    if not 0 < hurst < 1:
        raise ValueError(f"hurst must lie in (0, 1); got {hurst!r}")
    k = np.arange(n, dtype=np.float64)
    return 0.5 * (np.abs(k + 1) ** (2 * hurst) - 2 * k ** (2 * hurst) + np.abs(k - 1) ** (2 * hurst))


def fractional_gaussian_noise(hurst: float, n: int, size: int = 1, *, rng: np.random.Generator) -> np.ndarray:
    """``size`` independent unit-variance fGn series of length n, shape (n, size), exactly (the
    Davies-Harte circulant embedding: the circulant of γ(0..n), γ(n-1..1) has non-negative
    eigenvalues λ for fGn, and Re FFT(√(λ/2N) (Z₁ + iZ₂)) has covariance γ, N = 2n)."""
    if not (isinstance(n, int) and n >= 2 and isinstance(size, int) and size >= 1):
        raise ValueError(f"n must be an int >= 2 and size an int >= 1; got n={n!r}, size={size!r}")
    g = fgn_autocovariance(hurst, n + 1)
    c = np.concatenate([g, g[-2:0:-1]])
    lam = np.fft.fft(c).real
    lam = np.clip(lam, 0.0, None)  # exact zeros can come out as -1e-17
    N = c.size
    z = rng.standard_normal((N, size)) + 1j * rng.standard_normal((N, size))
    return np.fft.fft(np.sqrt(lam / N)[:, None] * z, axis=0).real[:n]


def brownian_path(n: int, size: int = 1, *, rng: np.random.Generator) -> np.ndarray:
    """Brownian motion on [0, 1] at n+1 equispaced times: shape (n+1, size), B_0 = 0."""
    steps = rng.standard_normal((n, size)) / math.sqrt(n)
    return np.concatenate([np.zeros((1, size)), np.cumsum(steps, axis=0)])
