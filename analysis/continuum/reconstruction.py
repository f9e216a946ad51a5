"""Reconstruction check of a neural ODE: integrate forward, then backward, and see whether the
start comes back.

With z(0) = A(x) (the model's embedding), ẑ(T) the model's solve of z' = f(t, z) from 0 to T and
ẑ(0) the same solver's solve of the backward flow (s ↦ z(T - s): z' = -f(T - s, z), restarted at
the same piece boundaries) from ẑ(T), the relative reconstruction error is

    e = ‖Ẑ(0) - Z(0)‖_F / ‖Z(0)‖_F                  (over the batch; per point e_i = ‖ẑ_i(0) - z_i(0)‖₂ / ‖z_i(0)‖₂)

For an exact flow e = 0: φ_T is invertible with inverse φ_{-T}.  An accurate solve keeps e at the
level of the tolerance times the flow's conditioning; a model trained with an adaptive solver at a
loose tolerance can instead learn a map that only its discretisation realises (the steps cross
trajectories the flow cannot), and then e is O(1) — a known failure mode of adaptive neural ODEs
(Ott et al., 2021).  The check runs at the model's own (training) solver settings and flags e above
``threshold``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from solvers.validation import check_positive, check_state

if TYPE_CHECKING:
    from odenet import NeuralODE

__all__ = ["Reconstruction", "reconstruction_error"]


@dataclass
class Reconstruction:
    """Forward-then-backward integration of a batch (N points).

    ``error`` the batch relative error e; ``point_errors`` (N,) the e_i (NaN where z_i(0) = 0);
    ``threshold`` and ``flagged`` (e > threshold); ``method``, ``steps``, ``rtol``, ``atol`` the
    solver used (the model's); ``nfev_forward``, ``nfev_backward`` the field evaluations of the two
    solves.
    """

    error: float
    point_errors: np.ndarray
    threshold: float
    flagged: bool
    method: str
    steps: int | None
    rtol: float | None
    atol: float | None
    nfev_forward: int
    nfev_backward: int


def reconstruction_error(model: NeuralODE, x: torch.Tensor, *, threshold: float | None = None) -> Reconstruction:
    """Integrate ``model``'s flow forward from z(0) = embed(x) (x: (N, n)) and back again, with
    its own solver options, and report the relative error e of the module docstring.

    ``model`` is a :class:`odenet.NeuralODE` (a ResNet: use ``net.to_ode(method=...)``).  A flow is
    flagged when e > ``threshold``; the default is 100 · max(rtol, atol) for adaptive solvers (an
    accurate solve stays within a modest multiple of its tolerance).  Fixed-step solvers have no
    tolerance to scale by (their e is O(h^p)): give ``threshold`` for them.
    """
    if not (hasattr(model, "integrate") and hasattr(model, "embed") and hasattr(model, "method")):
        raise TypeError(f"model must be an odenet.NeuralODE (integrate, embed, method); got {type(model).__name__}; "
                        f"for a ResNet use net.to_ode(method='dopri5', ...)")
    check_state("x", x)
    fixed = model.steps is not None
    if threshold is None:
        if fixed:
            raise ValueError(f"threshold is required for a fixed-step model (method={model.method!r}, "
                             f"steps={model.steps}): its reconstruction error is O(h^p), with no tolerance "
                             f"to set a scale; got threshold=None")
        threshold = 100 * max(model.rtol, model.atol)
    threshold = check_positive("threshold", threshold)
    with torch.no_grad():
        z0 = model.embed(x)
        zT = model.integrate(z0)
        nf = model.nfev_eval
        back = model.integrate(zT, reverse=True)
        nb = model.nfev_eval
    diff = (back - z0).to(torch.float64)
    ref = z0.to(torch.float64)
    if not ref.norm() > 0:
        raise ValueError("x embeds to z(0) = 0 for every point: a relative error is undefined; give other inputs")
    error = float(diff.norm() / ref.norm())
    with np.errstate(divide="ignore", invalid="ignore"):
        points = (diff.norm(dim=1) / ref.norm(dim=1)).cpu().numpy()
    points[ref.norm(dim=1).cpu().numpy() == 0] = np.nan
    return Reconstruction(error=error, point_errors=points, threshold=threshold, flagged=bool(error > threshold),
                          method=model.method, steps=model.steps, rtol=None if fixed else model.rtol,
                          atol=None if fixed else model.atol, nfev_forward=nf, nfev_backward=nb)
