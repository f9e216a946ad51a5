"""Initialisation scaling regimes of deep ResNets (Marion et al., ICLR 2024; JMLR 2025).

A ResNet h_{l+1} = h_l + δ_L σ(W_l h_l + b_l) at initialisation, depth L, with

- residual scaling δ_L = c / L ("1/L") or δ_L = c / √L ("1/sqrt(L)"),
- weights i.i.d. across layers (N(0, 1/m) entries) or smooth in depth (one Gaussian-process
  path W(t) sampled at t_l = l / L; see :mod:`analysis.continuum.depth_weights`), zero biases.

For odd σ (tanh) the residual h_L - h_0 behaves as

    smooth, 1/L        → the ODE flow:            |h_L - h_0| ~ L^0
    smooth, 1/sqrt(L)  → Σ δ_L σ(W(t_l) h) ≈ √L ∫: ~ L^{+1/2}   (explodes)
    iid,    1/L        → averaged field E σ(W h) = 0: ~ L^{-1/2} (collapses to identity)
    iid,    1/sqrt(L)  → a random walk, SDE-like:  ~ L^0

:func:`init_scaling_study` measures, for each pairing, the mean over independent draws of

    output_norm   = ((1/N) Σ_i |h_L(x_i)|²)^{1/2},   residual_norm = ((1/N) Σ_i |h_L(x_i) - h_0(x_i)|²)^{1/2}

against L and fits their exponents (slope of log norm on log L, :func:`analysis.continuum.convergence.fit_order`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

import solvers
from solvers.validation import check_choice, check_positive, check_positive_int

from analysis.continuum.convergence import fit_order
from analysis.continuum.depth_weights import iid_weights, load_weights, smooth_weights

__all__ = ["InitScaling", "init_scaling_study", "WEIGHT_KINDS", "SCALINGS", "residual_weight"]

WEIGHT_KINDS = ("iid", "smooth")
SCALINGS = ("1/L", "1/sqrt(L)")


def residual_weight(scaling: str, depth: int, scale: float = 1.0) -> float:
    """δ_L = scale / L for ``"1/L"``, scale / √L for ``"1/sqrt(L)"``."""
    check_choice("scaling", scaling, SCALINGS)
    return scale / depth if scaling == "1/L" else scale / math.sqrt(depth)


@dataclass
class InitScaling:
    """Norms at initialisation against depth for every (weights, scaling) pairing.

    ``weights`` (w,) and ``scalings`` (s,) name the pairings; ``depths`` (n,);
    ``output_norm``, ``residual_norm`` (w, s, n): means over ``n_samples`` draws (module
    docstring); ``output_exponent``, ``residual_exponent`` (w, s): fitted slopes against L,
    ``residual_ci_low``/``residual_ci_high`` (w, s) their 95% intervals.
    """

    weights: list
    scalings: list
    depths: np.ndarray
    output_norm: np.ndarray
    residual_norm: np.ndarray
    output_exponent: np.ndarray
    residual_exponent: np.ndarray
    residual_ci_low: np.ndarray
    residual_ci_high: np.ndarray
    width: int
    n_samples: int
    seed: int

    def exponent(self, weights: str, scaling: str) -> float:
        """The fitted residual exponent of one pairing."""
        return float(self.residual_exponent[self.weights.index(weights), self.scalings.index(scaling)])


def init_scaling_study(depths: Sequence[int] = (4, 16, 64, 256, 1024), *, width: int = 16,
                       weights: Sequence[str] = WEIGHT_KINDS, scalings: Sequence[str] = SCALINGS,
                       n_samples: int = 4, n_inputs: int = 64, scale: float = 1.0, lengthscale: float = 0.3,
                       activation: str = "tanh", seed: int = 0) -> InitScaling:
    """Output and residual norms of freshly initialised ResNets (ε = 1, δ_L from
    :func:`residual_weight`, time horizon 1) against depth, for each weight kind and scaling.

    Draw s uses seed + s for the weights (the same smooth path W(t) at every depth) and ``seed``
    for the inputs x_i ~ N(0, I_m).
    """
    from odenet import ResNet

    depths = [check_positive_int("depths", d) for d in depths]
    if len(depths) < 3 or any(b <= a for a, b in zip(depths, depths[1:])):
        raise ValueError(f"depths must be at least 3 strictly increasing depths; got {depths}")
    for w in weights:
        check_choice("weights", w, WEIGHT_KINDS)
    for name in scalings:
        check_choice("scalings", name, SCALINGS)
    width = check_positive_int("width", width)
    n_samples = check_positive_int("n_samples", n_samples)
    n_inputs = check_positive_int("n_inputs", n_inputs)
    scale = check_positive("scale", scale)
    x = torch.randn(n_inputs, width, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    shape = (len(weights), len(scalings), len(depths))
    out_norm, res_norm = np.zeros(shape), np.zeros(shape)
    with torch.no_grad():
        for i, kind in enumerate(weights):
            for j, scaling in enumerate(scalings):
                for k, L in enumerate(depths):
                    delta = residual_weight(scaling, L, scale)
                    net = ResNet(width, width, 1, L, eps=1.0, delta=delta, T=1.0, activation=activation)
                    for s in range(n_samples):
                        if kind == "iid":
                            W, b = iid_weights(L, width, seed=seed + s)
                        else:
                            W, b = smooth_weights(L, width, lengthscale=lengthscale, seed=seed + s)
                        load_weights(net, W, b)
                        y = solvers.solve(net.field, x, method="euler", eps=1.0, delta=delta, record="end").y[-1]
                        out_norm[i, j, k] += float(y.square().sum(1).mean().sqrt()) / n_samples
                        res_norm[i, j, k] += float((y - x).square().sum(1).mean().sqrt()) / n_samples
    fits_out = [[fit_order(depths, out_norm[i, j]) for j in range(shape[1])] for i in range(shape[0])]
    fits_res = [[fit_order(depths, res_norm[i, j]) for j in range(shape[1])] for i in range(shape[0])]
    grab = lambda fits, attr: np.array([[getattr(f, attr) for f in row] for row in fits])  # noqa: E731
    return InitScaling(weights=list(weights), scalings=list(scalings), depths=np.asarray(depths), output_norm=out_norm,
                       residual_norm=res_norm, output_exponent=grab(fits_out, "order"),
                       residual_exponent=grab(fits_res, "order"), residual_ci_low=grab(fits_res, "ci_low"),
                       residual_ci_high=grab(fits_res, "ci_high"), width=width, n_samples=n_samples, seed=seed)
