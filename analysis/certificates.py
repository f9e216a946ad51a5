"""Homeomorphism certificates for (ε, δ) ResNets (PAPER.md §3).

Block l, F_l(h) = ε h + δ σ(W_l h + b_l), is a bi-Lipschitz homeomorphism of R^m when

    δ K ‖W_l‖₂ < ε                       (K = sup σ', W_l with eval-mode BatchNorm folded in)

since |F_l(x) - F_l(y)| ≥ (ε - δ K ‖W_l‖₂) |x - y| and DF_l = ε (I + (δ/ε) diag(σ') W_l) is
invertible.  If every block is certified, the input map A has full row rank m with σ' > 0 where
it is activated, and the output weight w_out is non-zero, then ∇Φ = DA^T J^T w_out ≠ 0: Φ has no
critical points.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from odenet import ResNet

from .tracing import check_inputs, check_resnet_eval, trace

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
        if resnet.inp is None:
            rank = resnet.n_in
        else:
            rank = int(torch.linalg.matrix_rank(resnet.inp.weight))
        input_ok = rank == resnet.width and not (
            resnet.input_map == "activated" and resnet.activation.name not in _POSITIVE_DERIVATIVE)
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
