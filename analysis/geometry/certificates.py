"""Homeomorphism certificates for (ε, δ) ResNets (docs/theory.md §3), and the structural proofs
that a network has no critical points (:func:`no_critical_point_proof`).

Block l, F_l(h) = ε h + δ σ(W_l h + b_l), is a bi-Lipschitz homeomorphism of R^m when

    δ K ‖W_l‖₂ < ε                       (K = sup σ', W_l with eval-mode BatchNorm folded in)

since |F_l(x) - F_l(y)| ≥ (ε - δ K ‖W_l‖₂) |x - y| and DF_l = ε (I + (δ/ε) diag(σ') W_l) is
invertible.  If every block is certified, the input map A has full row rank m with σ' > 0 where
it is activated, and the output weight w_out is non-zero, then ∇Φ = DA^T J^T w_out ≠ 0: Φ has no
critical points.

:func:`no_critical_point_proof` also recognises the narrow MLP (ε = 0) with full-rank square
block weights and σ' > 0 (docs/theory.md §4), and width-one chains whose layer derivatives
ε + δ w_l σ' never vanish (docs/theory.md §5).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from odenet import ResNet

from analysis.geometry.tracing import check_inputs, check_resnet_eval, trace
from analysis.io.schema import Array, Attr, Json, Schema, register

# activations whose derivative never vanishes (needed for an activated input map)
_POSITIVE_DERIVATIVE = ("tanh", "softplus", "identity")


@dataclass
class CertificateReport:
    """Result of :func:`certify`.

    Attributes
    ----------
    eps, delta, lipschitz_constant : float
        ε, δ and K = sup σ'.
    weight_norms : (L,)
        ‖W_l‖₂ of the BN-folded block weights.
    contraction : (L,)
        δ K ‖W_l‖₂, the Lipschitz bound of the residual branch.
    margin : (L,)
        ε - δ K ‖W_l‖₂ (> 0: block certified; also the co-Lipschitz constant of F_l).
    certified : (L,) bool
        margin > 0.
    folding_blocks : list[int]
        Blocks that may fold (margin ≤ 0).
    input_rank : int
        Rank of DA (n for the identity; rank of W_in otherwise); needs to equal m.
    input_ok : bool
        input_rank == width and, for an activated input, σ' > 0 everywhere.
    output_ok : bool
        Every row of w_out is non-zero.
    homeomorphism : bool
        Every block certified (the block map h_0 ↦ h_L is a homeomorphism of R^m).
    no_critical_points : bool
        homeomorphism and input_ok and output_ok: Φ has no critical point anywhere.
    verdict : str
        A sentence saying which of the above holds.
    orientation_sign : (L+1, batch) or None
        Sign of det along the traced layers of ``sample`` (cumulative Jacobian, or the block
        product when n != m); None without a sample.
    orientation_consistent : bool or None
        Every sample point keeps one sign of det through all layers.
    """

    eps: float
    delta: float
    lipschitz_constant: float
    weight_norms: torch.Tensor
    contraction: torch.Tensor
    margin: torch.Tensor
    certified: torch.Tensor
    folding_blocks: list
    input_rank: int
    input_ok: bool
    output_ok: bool
    homeomorphism: bool
    no_critical_points: bool
    verdict: str
    orientation_sign: torch.Tensor | None = None
    orientation_consistent: bool | None = None


def block_margins(resnet: ResNet) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(‖W_l‖₂, δ K ‖W_l‖₂, ε - δ K ‖W_l‖₂), each (L,), with eval-mode BatchNorm folded."""
    check_resnet_eval(resnet, "resnet")
    with torch.no_grad():
        W, _ = resnet.field.effective_weights()
        norms = torch.linalg.matrix_norm(W, ord=2)
        contraction = resnet.delta * resnet.activation.lipschitz * norms
        return norms, contraction, resnet.eps - contraction


def _full_row_rank_input(resnet: ResNet) -> tuple[bool, int]:
    """(DA has rank m everywhere, rank of W_in or n): the activated input map also needs σ' > 0."""
    rank = resnet.n_in if resnet.inp is None else int(torch.linalg.matrix_rank(resnet.inp.weight.detach()))
    ok = rank == resnet.width and not (
        resnet.input_map == "activated" and resnet.activation.name not in _POSITIVE_DERIVATIVE)
    return ok, rank


def certify(resnet: ResNet, sample: torch.Tensor | None = None) -> CertificateReport:
    """Certify that a ResNet is a homeomorphism without critical points (see module docstring).

    ``sample`` (batch, n), optional: inputs traced with :func:`analysis.trace` for an orientation
    check (sign of det J_k kept along every trajectory).
    """
    check_resnet_eval(resnet, "resnet")
    if sample is not None:
        check_inputs(resnet, sample, "sample")
    norms, contraction, margin = block_margins(resnet)
    certified = margin > 0
    folding = (~certified).nonzero()[:, 0].tolist()
    with torch.no_grad():
        input_ok, rank = _full_row_rank_input(resnet)
        output_ok = bool((resnet.out.weight.abs().amax(1) > 0).all())
    homeo = bool(certified.all())
    no_crit = homeo and input_ok and output_ok
    if no_crit:
        verdict = (f"homeomorphism without critical points: every block has δK‖W_l‖ < ε = {resnet.eps} "
                   f"(smallest margin {float(margin.min()):.3g}), input map of rank {rank} = width, w_out ≠ 0")
    elif homeo:
        why = []
        if not input_ok:
            why.append(f"input map of rank {rank} (width {resnet.width}) or with vanishing σ'")
        if not output_ok:
            why.append("a zero row of w_out")
        verdict = "the blocks form a homeomorphism, but Φ may have critical points: " + "; ".join(why)
    else:
        verdict = (f"not certified: blocks {folding} may fold (margins "
                   + ", ".join(f"{float(margin[l]):.3g}" for l in folding) + ")")
    sign, consistent = None, None
    if sample is not None:
        tr = trace(resnet, sample, layer_jacobians=False)
        sign = tr.sign
        consistent = bool(((sign == sign[:1]) & (sign != 0)).all())
    return CertificateReport(eps=resnet.eps, delta=resnet.delta, lipschitz_constant=resnet.activation.lipschitz,
                             weight_norms=norms, contraction=contraction, margin=margin, certified=certified,
                             folding_blocks=folding, input_rank=rank, input_ok=input_ok, output_ok=output_ok,
                             homeomorphism=homeo, no_critical_points=no_crit, verdict=verdict,
                             orientation_sign=sign, orientation_consistent=consistent)


def no_critical_point_proof(resnet: ResNet) -> str | None:
    """A sentence naming why the logit g = w_out^T h_L + b_out of ``resnet`` (hence also Φ = s ∘ g
    for a sigmoid output s) has no critical point anywhere in R^n, or None when the structure
    proves nothing (which does not mean there are critical points).

    With the input map A of full row rank m (σ' > 0 if it is activated) and every row of w_out
    non-zero, ∇g(x) = DA(x)^T DF_1^T ⋯ DF_L^T w_out vanishes only where some block Jacobian
    DF_l = ε I + δ diag(σ'(W_l h + b_l)) W_l is singular.  Three structures exclude that:

    1. certified (:func:`certify`): δ K ‖W_l‖₂ < ε for every l, so DF_l = ε(I + (δ/ε) diag(σ') W_l)
       with ‖(δ/ε) diag(σ') W_l‖₂ < 1;
    2. narrow MLP: ε = 0, σ' > 0 everywhere (tanh, softplus, identity; not relu, whose σ' = 0 on
       a half-line), every W_l of full rank m: DF_l = δ diag(σ') W_l is a product of invertibles;
    3. width one (m = 1), ε > 0: DF_l = ε + δ w_l σ'(w_l h + b_l) ≥ ε + δK min(w_l, 0) > 0 when
       w_l > -ε/(δK) (any positive weight, however large, and any σ with σ' ∈ [0, K]).

    Weights are the BatchNorm-folded ones; ranks are numerical (torch.linalg.matrix_rank with its
    default tolerance), so a nearly singular matrix proves nothing.  This is exact-arithmetic
    reasoning: in floating point σ'(z) = 1 - tanh²(z) underflows to 0 for |z| ≳ 19, where the
    computed gradient vanishes without any critical point (the "flat regions" of
    :func:`analysis.find_critical_points`).
    """
    check_resnet_eval(resnet, "resnet")
    with torch.no_grad():
        input_ok, rank = _full_row_rank_input(resnet)
        output_ok = bool((resnet.out.weight.abs().amax(1) > 0).all())
        if not (input_ok and output_ok):
            return None
        tail = f"input map of rank {rank} = width {resnet.width}, w_out ≠ 0"
        W = resnet.field.effective_weights()[0].detach()
        act, eps, delta, K = resnet.activation.name, resnet.eps, resnet.delta, resnet.activation.lipschitz
        _, contraction, margin = block_margins(resnet)
        if bool((margin > 0).all()):
            return (f"certified: δK‖W_l‖₂ < ε = {eps:g} in every block (largest δK‖W_l‖₂ = "
                    f"{float(contraction.max()):.3g}), so every DF_l is invertible; {tail}")
        if eps == 0 and act in _POSITIVE_DERIVATIVE:
            ranks = torch.linalg.matrix_rank(W)
            if bool((ranks == resnet.width).all()):
                smin = float(torch.linalg.matrix_norm(W, ord=-2).min())
                return (f"narrow MLP: ε = 0, σ' = {act}' > 0 everywhere and every W_l of full rank "
                        f"{resnet.width} (smallest singular value {smin:.3g}), so every "
                        f"DF_l = δ diag(σ') W_l is invertible; {tail}")
        if resnet.width == 1 and eps > 0:
            w = W[:, 0, 0]
            if bool((delta * K * w > -eps).all()):  # ε + δ w σ' ≥ ε + δK min(w, 0) > 0
                return (f"width one: every layer derivative ε + δ w_l σ'(w_l h + b_l) stays positive "
                        f"(ε = {eps:g}, δ = {delta:g}, w_l = {[round(float(v), 4) for v in w]}, σ = {act}); "
                        f"{tail}")
    return None


# --- storage: the HDF5 schemas of this module's records, registered on import (docs/hdf5-format.md) ---
def _certificate_schema() -> Schema:
    return Schema("CertificateReport", CertificateReport, fields=(
        Attr("eps", float), Attr("delta", float), Attr("lipschitz_constant", float),
        Array("weight_norms", ("layer",), doc="||W_l||_2"),
        Array("contraction", ("layer",), doc="delta K ||W_l||_2"),
        Array("margin", ("layer",), doc="eps - delta K ||W_l||_2"),
        Array("certified", ("layer",), doc="block l certified invertible (margin > 0)"),
        Json("folding_blocks"),
        Attr("input_rank", int), Attr("input_ok", bool), Attr("output_ok", bool),
        Attr("homeomorphism", bool), Attr("no_critical_points", bool), Attr("verdict", str),
        Array("orientation_sign", ("step", "sample"), doc="sign det along the layers"),
        Attr("orientation_consistent", bool),
    ), doc="homeomorphism certificate of a ResNet", dtype_of="margin")


register(_certificate_schema())
