"""Swaps from the training side: a neural ODE, trained as a flow, evaluated as the ResNets of
depth L that discretise it.

For a :class:`odenet.NeuralODE` with a layer or smooth field and inputs x_1..x_N, the ResNet of
depth L is ``model.to_resnet(L)``: h_{l+1} = h_l + (T/L) σ(W(t_l) h_l + b(t_l)), t_l = l T / L,
the explicit Euler discretisation of the model's flow with step h = T / L.  Its output Φ_L is
compared with the output Φ of an accurate solve of the flow (``reference`` at ``rtol``/``atol``):

    e_L = ‖Φ_L(x) - Φ(x)‖   (sup and rms over the batch, :func:`analysis.continuum.convergence.error_norms`)

and the order p of e_L ≈ C h^p is fitted by least squares (:func:`analysis.continuum.convergence.fit_order`);
Euler gives p = 1 for fields Lipschitz in t.  For the piecewise-constant layer field of L' pieces,
L must be a multiple of L' (else the ResNet samples a different field).  The other direction,
ResNets trained at growing depth compared with their ODE, is :func:`analysis.solver_swap` /
:func:`analysis.swap_study`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

import numpy as np
import torch

import solvers
from solvers.validation import check_choice, check_positive, check_positive_int, check_state

from analysis.continuum.convergence import OrderFit, error_norms, fit_order

if TYPE_CHECKING:
    from odenet import NeuralODE

__all__ = ["DepthSwap", "depth_swap"]


@dataclass
class DepthSwap:
    """Outputs of the depth-L ResNets of a neural ODE against its flow, one entry per depth.

    ``depths`` (n,), ``h`` (n,) = T / L, ``err_sup``/``err_rms`` (n,) ‖Φ_L - Φ‖, ``resolved`` (n,)
    err_sup above 10 × the reference's error estimate (only those enter the fits), ``fit_sup`` /
    ``fit_rms`` :class:`OrderFit` of err against h, ``reference_error`` the estimate
    ‖Φ(rtol) - Φ(10 rtol)‖_sup.
    """

    depths: np.ndarray
    h: np.ndarray
    err_sup: np.ndarray
    err_rms: np.ndarray
    resolved: np.ndarray
    fit_sup: OrderFit
    fit_rms: OrderFit
    reference: str
    reference_error: float

    @property
    def order(self) -> float:
        """p of the sup-norm fit err_sup ≈ C h^p (``fit_sup.order``)."""
        return self.fit_sup.order


def default_depths(model: NeuralODE) -> tuple[int, ...]:
    """2, 4, ..., 1024 for a smooth field; for a layer field of L' pieces the multiples L' 2^k,
    k = 0, 1, ..., up to 1024 (at least three of them)."""
    if model.kind == "smooth":
        return tuple(2 ** k for k in range(1, 11))
    depths = [model.pieces]
    while depths[-1] * 2 <= max(1024, 4 * model.pieces):
        depths.append(depths[-1] * 2)
    return tuple(depths)


def depth_swap(model: NeuralODE, x: torch.Tensor, depths: Sequence[int] | None = None, *,
               reference: str = "dopri8", rtol: float = 1e-10, atol: float = 1e-10,
               confidence: float = 0.95) -> DepthSwap:
    """Evaluate ``model`` (a NeuralODE with a layer or smooth field) as the ResNets of the given
    ``depths`` (strictly increasing, at least 3; default :func:`default_depths`: 2, 4, ..., 1024,
    or for a layer field its multiples L' 2^k up to 1024) on x (N, n) and fit the order of
    ‖Φ_L(x) - Φ(x)‖ in h = T / L (module docstring)."""
    if not hasattr(model, "to_resnet"):
        raise TypeError(f"model must be an odenet.NeuralODE; got {type(model).__name__}")
    if getattr(model, "kind", None) not in ("layer", "smooth"):
        raise TypeError(f"depth_swap needs a layer or smooth field (a ResNet block σ(W h + b)); got field="
                        f"{getattr(model, 'kind', None)!r}")
    if depths is None:
        depths = default_depths(model)
    depths = [check_positive_int("depths", L) for L in depths]
    if len(depths) < 3 or any(b <= a for a, b in zip(depths, depths[1:])):
        raise ValueError(f"depths must be at least 3 strictly increasing integers; got {depths}")
    if model.kind == "layer" and any(L % model.pieces for L in depths):
        raise ValueError(f"depths must be multiples of the layer field's {model.pieces} pieces (else the ResNet "
                         f"samples another field); got {depths}")
    check_choice("reference", reference, solvers.ADAPTIVE_METHODS + solvers.REFERENCE_METHODS)
    rtol, atol = check_positive("rtol", rtol), check_positive("atol", atol)
    check_state("x", x)
    with torch.no_grad():
        z0 = model.embed(x)

        def flow(tol_scale):
            sol = solvers.solve(model.field, z0, method=reference, rtol=rtol * tol_scale, atol=atol * tol_scale,
                                record="end")
            if not sol.success:
                raise RuntimeError(f"reference solve failed: {sol.message}")
            return model.readout(sol.y[-1].to(z0.dtype))

        ref = flow(1.0)
        ref_err = error_norms(flow(10.0), ref)[0]
        errs = np.array([error_norms(model.to_resnet(L)(x), ref) for L in depths])
    h = np.array([model.T / L for L in depths])
    floor = 10 * max(ref_err, 100 * np.finfo(np.float64).eps * max(1.0, float(ref.abs().max())))
    resolved = errs[:, 0] > floor
    if resolved.sum() < 3:
        raise ValueError(f"only {int(resolved.sum())} depths have errors above the reference floor {floor:.2e} "
                         f"(err_sup={errs[:, 0].tolist()}); tighten rtol/atol or use smaller depths")
    return DepthSwap(depths=np.array(depths), h=h, err_sup=errs[:, 0], err_rms=errs[:, 1], resolved=resolved,
                     fit_sup=fit_order(h[resolved], errs[resolved, 0], confidence),
                     fit_rms=fit_order(h[resolved], errs[resolved, 1], confidence), reference=reference,
                     reference_error=float(ref_err) if math.isfinite(ref_err) else math.nan)
