"""Inverses of certified ResNet blocks by fixed-point iteration (docs/theory.md §3).

For F_l(h) = ε h + δ σ(W_l h + b_l) with q_l = δ K ‖W_l‖₂ / ε < 1, the preimage of y is the fixed
point of the contraction

    h ↦ T(h) = (y - δ σ(W_l h + b_l)) / ε,      h^0 = y / ε,

and |h^* - h^{j+1}|_2 ≤ q_l / (1 - q_l) |h^{j+1} - h^j|_2 per point (a posteriori bound used to stop;
Euclidean, the norm of ‖W_l‖₂, and ≥ the max-norm error).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from odenet import ResNet
from odenet.kernel import generalised_euler
from solvers.validation import check_positive, check_positive_int, check_state

from analysis.geometry.certificates import block_margins
from analysis.geometry.tracing import check_resnet_eval
from analysis.io.schema import Array, Schema, register


@dataclass
class Inverse:
    """Result of :func:`invert`.

    Attributes
    ----------
    h : (batch, m)
        The recovered state h_start with F_{stop-1} ∘ ⋯ ∘ F_start (h) = y.
    x : (batch, n) or None
        The recovered input with A(x) = h (identity map, or a square invertible affine/activated
        input map) when ``start == 0`` and ``through_input``; else None.
    residual : (batch,)
        max-norm |F_{stop-1} ∘ ⋯ ∘ F_start(h) - y|, recomputed forward.
    block_residuals : (stop - start,)
        max over the batch of the a-posteriori bound on |h^* - h|_2 when each block stopped.
    iterations : (stop - start,) int64
        Fixed-point iterations used per block.
    """

    h: torch.Tensor
    x: torch.Tensor | None
    residual: torch.Tensor
    block_residuals: torch.Tensor
    iterations: torch.Tensor


def invert(resnet: ResNet, y: torch.Tensor, *, start: int = 0, stop: int | None = None, tol: float = 1e-13,
           max_iter: int = 10_000, through_input: bool = True) -> Inverse:
    """Invert blocks start..stop-1 of ``resnet`` at hidden states ``y`` (batch, m) = h_stop.

    Each block is inverted by the fixed-point iteration of the module docstring until the
    a-posteriori error bound is ≤ ``tol`` (absolute, Euclidean per point, so also in max-norm).
    An uncertified block (δ K ‖W_l‖₂ ≥ ε) raises ValueError naming the block and its margin,
    before any work.  With ``start == 0`` and ``through_input`` the input map is undone too where
    it is invertible:
    identity; affine with square invertible W_in (x = W_in^{-1}(h - b_in)); activated tanh
    (x = W_in^{-1}(atanh h - b_in), needs |h| < 1).
    """
    check_resnet_eval(resnet, "resnet")
    check_state("y", y)
    L, m = resnet.depth, resnet.width
    if y.shape[1] != m:
        raise ValueError(f"y must have shape (batch, {m}) (hidden states h_stop); got {tuple(y.shape)}")
    if y.dtype != resnet.field.weight.dtype:
        raise ValueError(f"y must have the model's dtype {resnet.field.weight.dtype}; got {y.dtype}")
    stop = L if stop is None else stop
    if not (isinstance(start, int) and isinstance(stop, int) and 0 <= start <= stop <= L):
        raise ValueError(f"start, stop must satisfy 0 <= start <= stop <= {L}; got start={start!r}, stop={stop!r}")
    tol = check_positive("tol", tol)
    check_positive_int("max_iter", max_iter)
    _, contraction, margin = block_margins(resnet)
    for l in range(start, stop):
        if not margin[l] > 0:
            raise ValueError(f"block {l} is not certified invertible: δK‖W_{l}‖₂ = {float(contraction[l]):.6g} "
                             f">= ε = {resnet.eps} (margin {float(margin[l]):.6g}); no fixed-point inverse")
    x_map_ok = start == 0 and through_input and (
        resnet.inp is None or (resnet.n_in == m and (resnet.input_map == "affine" or resnet.activation.name == "tanh")))
    if x_map_ok and resnet.inp is not None:
        with torch.no_grad():
            cond = float(torch.linalg.cond(resnet.inp.weight))
        if not cond < 1 / torch.finfo(resnet.inp.weight.dtype).eps:
            raise ValueError(f"the input map's W_in is singular (condition number {cond:.3g}): x cannot be "
                             f"recovered; pass through_input=False to invert the blocks only")
    eps, delta, act = resnet.eps, resnet.delta, resnet.activation
    with torch.no_grad():
        W, b = resnet.field.effective_weights()
        h = y
        bounds, iters = [], []
        for l in reversed(range(start, stop)):
            q = float(contraction[l]) / eps
            hj = h / eps
            bound, j = float("inf"), 0
            while j < max_iter:
                hn = (h - delta * act.fn(torch.addmm(b[l], hj, W[l].T))) / eps
                j += 1
                # q contracts the Euclidean norm, so the bound is on |h* - h^{j+1}|_2 per point (which
                # also bounds the max-norm error); a max-norm increment would miss a factor up to √m
                bound = q / (1 - q) * float((hn - hj).norm(dim=1).max())
                hj = hn
                if bound <= tol:
                    break
            if bound > tol:
                raise RuntimeError(f"block {l}: fixed-point iteration did not reach tol={tol} in {max_iter} "
                                   f"iterations (bound {bound:.3g}, contraction {q:.6g})")
            h = hj
            bounds.append(bound)
            iters.append(j)
        # forward again through the one kernel, for the honest residual
        hs = generalised_euler(W, b, act, h, eps, delta, start=start, stop=stop).states
        residual = (hs - y).abs().amax(1)
        x = None
        if x_map_ok:
            if resnet.inp is None:
                x = h
            else:
                z = h
                if resnet.input_map == "activated":
                    if not bool((h.abs() < 1).all()):
                        raise ValueError("the recovered h_0 leaves (-1, 1)^m: not in the range of the tanh input map")
                    z = torch.atanh(h)
                x = torch.linalg.solve(resnet.inp.weight, (z - resnet.inp.bias).T).T
    return Inverse(h=h, x=x, residual=residual, block_residuals=torch.tensor(bounds[::-1], dtype=torch.float64),
                   iterations=torch.tensor(iters[::-1], dtype=torch.int64))


# --- storage: the HDF5 schemas of this module's records, registered on import (docs/hdf5-format.md) ---
def _inverse_schema() -> Schema:
    return Schema("Inverse", Inverse, fields=(
        Array("h", ("sample", "state"), doc="recovered state h_start"),
        Array("x", ("sample", "input"), doc="recovered input x with A(x) = h"),
        Array("residual", ("sample",), doc="max-norm forward residual of the recovered state"),
        Array("block_residuals", ("block",), doc="a-posteriori bound on |h* - h|_2 per block, max over the batch"),
        Array("iterations", ("block",), doc="fixed-point iterations per block"),
    ), doc="inverse of the block map", dtype_of="h")


register(_inverse_schema())
