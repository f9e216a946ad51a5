"""Width-one layers in closed form (docs/theory.md §5).

F(h) = ε h + δ tanh(w h + b), ε, δ > 0, ρ = δ |w| / ε:

- F'(h) = ε + δ w sech²(w h + b) vanishes iff w < -ε/δ (ρ > 1); ρ = 1 is a degenerate inflection;
- at h± = (±arccosh(√ρ) - b) / w  (for w < 0, h+ < h-: local maximum at h+, minimum at h-);
- fold height ΔF = F(h+) - F(h-) = 2δ (√(1 - 1/ρ) - arccosh(√ρ) / ρ) ∈ (0, 2δ).

A chain of width-one layers has a critical point at x iff some layer's derivative vanishes at
that layer's input h_l(x): :func:`width_one_layers` reports, per layer, the zeros of F_l' that
lie in the range of h_l over sample inputs, and (for 1D inputs) where h_l(x) meets them.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from odenet import ResNet

from analysis.geometry.tracing import check_inputs, check_resnet_eval


@dataclass
class LayerFold:
    """Closed-form critical points of F(h) = ε h + δ tanh(w h + b) (tensors broadcast over w, b).

    ``rho`` = δ|w|/ε; ``exists`` = (w < -ε/δ); ``h_plus``, ``h_minus`` = (±arccosh√ρ - b)/w
    (nan where no critical point; h_plus is the local maximum); ``fold_height`` = F(h+) - F(h-)
    (0 where none).
    """

    rho: torch.Tensor
    exists: torch.Tensor
    h_plus: torch.Tensor
    h_minus: torch.Tensor
    fold_height: torch.Tensor


def layer_fold(eps: float | torch.Tensor, delta: float | torch.Tensor, w: float | torch.Tensor,
               b: float | torch.Tensor) -> LayerFold:
    """The closed forms of the module docstring for ε ≥ 0, δ > 0 (ε = 0: F' = δ w sech² never
    vanishes for w ≠ 0, so no critical point).  The four arguments broadcast to one shape, which
    every field of the returned :class:`LayerFold` has (float64).  Raises ValueError for ε < 0,
    δ <= 0 or non-finite values."""
    eps, delta, w, b = (torch.as_tensor(v, dtype=torch.float64) for v in (eps, delta, w, b))
    if (eps < 0).any() or not (delta > 0).all():
        raise ValueError(f"need eps >= 0 and delta > 0; got eps={eps.tolist()}, delta={delta.tolist()}")
    if not all(torch.isfinite(v).all() for v in (eps, delta, w, b)):
        raise ValueError("eps, delta, w, b must be finite")
    rho = delta * w.abs() / eps
    exists = (w < -eps / delta) & (eps > 0)
    safe_rho = torch.where(exists, rho, 2.0)
    a = torch.acosh(torch.sqrt(safe_rho))
    ws = torch.where(exists, w, -1.0)
    nan = torch.tensor(float("nan"), dtype=torch.float64)
    h_plus = torch.where(exists, (a - b) / ws, nan)
    h_minus = torch.where(exists, (-a - b) / ws, nan)
    height = torch.where(exists, 2 * delta * (torch.sqrt(1 - 1 / safe_rho) - a / safe_rho), 0.0)
    return LayerFold(rho=rho, exists=exists, h_plus=h_plus, h_minus=h_minus, fold_height=height)


@dataclass
class WidthOneLayer:
    """Layer ``layer`` of a width-one ResNet: its ``w``, ``b`` (BN folded), the closed-form
    ``fold`` (:class:`LayerFold`), ``input_range`` (lo, hi) of h_l over the sample, the zeros of
    F_l' inside it (``zeros_in_range``, a 1-D tensor), and for 1D inputs the sample-interpolated
    inputs x with h_l(x) equal to one of those zeros (``critical_inputs``; critical points of Φ)."""

    layer: int
    w: float
    b: float
    fold: LayerFold
    input_range: tuple
    zeros_in_range: torch.Tensor
    critical_inputs: torch.Tensor | None


def width_one_layers(resnet: ResNet, x: torch.Tensor) -> list[WidthOneLayer]:
    """Per-layer closed-form analysis of a width-one tanh ResNet over sample inputs ``x`` (batch, n)
    (for n = 1, linear interpolation between neighbouring sorted sample points locates
    h_l(x) = h±)."""
    check_resnet_eval(resnet, "resnet")
    check_inputs(resnet, x)
    if resnet.width != 1:
        raise ValueError(f"width_one_layers needs width 1; got width={resnet.width}")
    if resnet.activation.name != "tanh":
        raise ValueError(f"the closed forms are for tanh; got activation={resnet.activation.name!r}")
    with torch.no_grad():
        W, bias = resnet.field.effective_weights()
        H = resnet.states(x)[:, :, 0]  # (L+1, batch)
        order = torch.argsort(x[:, 0]) if x.shape[1] == 1 else None
        out = []
        for l in range(resnet.depth):
            fold = layer_fold(resnet.eps, resnet.delta, W[l, 0, 0], bias[l, 0])
            lo, hi = float(H[l].min()), float(H[l].max())
            zeros = torch.stack([fold.h_plus, fold.h_minus]) if bool(fold.exists) else torch.zeros(0, dtype=torch.float64)
            zeros = zeros[(zeros >= lo) & (zeros <= hi)]
            crit = None
            if order is not None:
                xs, hs = x[order, 0], H[l, order]
                found = []
                for z in zeros:
                    r = hs - z
                    idx = ((r[:-1] * r[1:]) <= 0).nonzero()[:, 0]
                    t = r[idx] / (r[idx] - r[idx + 1]).where(r[idx] != r[idx + 1], torch.ones_like(r[idx]))
                    found.append(xs[idx] + t * (xs[idx + 1] - xs[idx]))
                crit = torch.cat(found) if found else torch.zeros(0, dtype=x.dtype)
            out.append(WidthOneLayer(layer=l, w=float(W[l, 0, 0]), b=float(bias[l, 0]), fold=fold,
                                     input_range=(lo, hi), zeros_in_range=zeros, critical_inputs=crit))
    return out
