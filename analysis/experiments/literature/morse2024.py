"""morse2024 — Kuehn & Kuntz, *Analysis of the geometric structure of neural networks and neural
ODEs via Morse functions* (arXiv 2405.09351): where feed-forward networks Φ : R² → R have critical
points, by the widths of their layers.  Random draws of three architectures (tanh, Gaussian
weights), searched on the box [-3, 3]² by :func:`analysis.geometry.critical.find_critical_points` (grid
seeds, damped Newton, acceptance relative to the gradient scale):

- **narrow** (widths 2 → 2 → 2 → 1, non-increasing, full-rank weights): ∇Φ = W₁ᵀ D₁ W₂ᵀ D₂ w with
  invertible W's and positive diagonal D's never vanishes — no critical points; Newton finds none
  and min |∇Φ| over the grid, relative to the gradient scale, stays positive;
- **augmented** (2 → 8 → 1, a layer wider than the input): critical points can exist and, for
  almost every weight, are non-degenerate (Morse: min |λ(∇²Φ)| above the degeneracy threshold);
- **bottleneck** (2 → 1 → 8 → 1): Φ depends on x only through a·x, so every critical point lies on
  a line of critical points, with a singular Hessian: degenerate (the search reports such
  non-isolated sets apart, as flat points; those where Φ curves across the line, an eigenvalue of
  ∇²Φ above 1e-6 times the curvature scale, are counted and classified here, while saturation
  plateaus, where tanh flattens gradient and Hessian alike, are not critical points).
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from analysis.experiments.literature.records import StudyResult, fraction_row

NAME = "morse2024"
SOURCE = "Kuehn & Kuntz, arXiv 2405.09351"
FAMILIES = ("narrow", "augmented", "bottleneck")


def random_network(family: str, g: torch.Generator) -> Callable[[torch.Tensor], torch.Tensor]:
    """A random Φ : (batch, 2) -> (batch,) of ``family`` (module docstring): weights N(0, 1.5²)
    into tanh layers, biases and output weights N(0, 1), drawn from ``g``.  Raises ValueError for
    a family not in :data:`FAMILIES`."""
    def R(*shape, sd=1.0):
        return sd * torch.randn(*shape, generator=g, dtype=torch.float64)

    if family == "narrow":
        W1, b1, W2, b2, w = R(2, 2, sd=1.5), R(2), R(2, 2, sd=1.5), R(2), R(2)
        return lambda x: torch.tanh(torch.tanh(x @ W1.T + b1) @ W2.T + b2) @ w
    if family == "augmented":
        W1, b1, w = R(8, 2, sd=1.5), R(8), R(8)
        return lambda x: torch.tanh(x @ W1.T + b1) @ w
    if family == "bottleneck":
        a, c, u, b, w = R(1, 2, sd=1.5), R(1), R(8, 1, sd=1.5), R(8), R(8)
        return lambda x: torch.tanh(torch.tanh(x @ a.T + c) @ u.T + b) @ w
    raise ValueError(f"family must be one of {FAMILIES}; got {family!r}")


def run(*, quick: bool = False, seeds: int | None = None, seed: int = 0) -> StudyResult:
    """Critical points of :func:`random_network` over ``seeds`` draws per family of
    :data:`FAMILIES` (default 20 quick, 100 full), classified by their Hessians: the StudyResult
    with its data, figure and claims rows."""
    from torch.func import grad, vmap

    from analysis.geometry.critical import classify, find_critical_points

    draws = seeds or (20 if quick else 100)
    g = torch.Generator().manual_seed(seed)
    box = torch.tensor([[-3.0, 3.0], [-3.0, 3.0]], dtype=torch.float64)
    axis = torch.linspace(-3, 3, 101, dtype=torch.float64)
    grid = torch.cartesian_prod(axis, axis)
    n_points = {f: np.zeros(draws, dtype=np.int64) for f in FAMILIES}
    n_flat = {f: np.zeros(draws, dtype=np.int64) for f in FAMILIES}     # points on lines of critical points
    plateau = {f: np.zeros(draws, dtype=np.int64) for f in FAMILIES}    # flat points that are no zeros
    degenerate = {f: np.zeros(draws, dtype=np.int64) for f in FAMILIES}   # degenerate points (incl. flat)
    min_eig: dict[str, list[float]] = {f: [] for f in FAMILIES}  # min |λ| / C at every point found (flat ones included)
    min_grad = np.zeros(draws)               # narrow: min |∇Φ| on the grid / gradient scale
    narrow_found = []                        # narrow: |∇Φ| / S at any point the search accepted
    examples = {}
    for fam in FAMILIES:
        for d in range(draws):
            phi = random_network(fam, g)
            cp = find_critical_points(phi, box)
            one = lambda x, phi=phi: phi(x[None])[0]  # noqa: E731
            # a non-isolated point lies on a line of critical points when Φ curves across the line
            # (an eigenvalue of ∇²Φ above the degeneracy threshold 1e-6 C); on a saturation plateau
            # gradient and Hessian both vanish to rounding: not a critical point
            flat = cp.flat_points
            assert flat is not None  # CriticalPoints.__post_init__ fills it
            if len(flat):
                lam = classify(one, flat, hessian_scale=cp.hessian_scale)["eigenvalues"]
                flat = flat[lam.abs().amax(1) > 1e-6 * cp.hessian_scale]
            plateau[fam][d] = cp.n_flat - len(flat)
            pts = torch.cat([cp.points, flat])
            cl = classify(one, pts, hessian_scale=cp.hessian_scale)
            n_points[fam][d], n_flat[fam][d] = len(cp), len(flat)
            degenerate[fam][d] = int(cl["degenerate"].sum())
            min_eig[fam] += (cl["eigenvalues"].abs().amin(1) / cp.hessian_scale).tolist()
            if fam == "narrow":
                gn = vmap(grad(one))(grid).norm(dim=1)
                min_grad[d] = float(gn.min()) / cp.gradient_scale
                if len(pts):
                    narrow_found += (vmap(grad(one))(pts).norm(dim=1) / cp.gradient_scale).tolist()
            if fam not in examples and (fam == "narrow" or len(pts)):
                examples[fam] = (phi(grid).reshape(101, 101).T.detach().numpy(), pts.numpy(),
                                 ["flat" if i >= len(cp) else k for i, k in enumerate(cp.kinds + [""] * cp.n_flat)])
    with_aug = int((n_points["augmented"] + n_flat["augmented"] > 0).sum())
    aug_nondeg = int(((n_points["augmented"] + n_flat["augmented"] > 0) & (degenerate["augmented"] == 0)).sum())
    with_bn = int((n_points["bottleneck"] + n_flat["bottleneck"] > 0).sum())
    bn_deg = int(((n_points["bottleneck"] + n_flat["bottleneck"] > 0)
                  & (degenerate["bottleneck"] == n_points["bottleneck"] + n_flat["bottleneck"])).sum())
    none_narrow = int((n_points["narrow"] + n_flat["narrow"] == 0).sum())
    claims = [
        fraction_row(NAME, SOURCE, "narrow networks (2→2→2→1): multi-start Newton finds no critical point",
                     none_narrow, draws, "all draws", none_narrow == draws,
                     f"min over draws of min |∇Φ| on a 101² grid / gradient scale = {min_grad.min():.3g} (> 0; "
                     f"small where tanh saturates); {int((plateau['narrow'] > 0).sum())} draws with saturation "
                     "plateaus (∇Φ and ∇²Φ vanish to rounding where tanh saturates; not critical points)"
                     + ("" if not narrow_found else
                        f"; the points accepted have |∇Φ|/S ≤ {max(narrow_found):.2g}, under the search's acceptance "
                        "threshold: a tanh unit saturates there (σ' > 0 but tiny), so ∇Φ ≠ 0 in exact arithmetic and "
                        "the theorem stands; float64 cannot tell such a point from a critical one")),
        fraction_row(NAME, SOURCE, "augmented networks (2→8→1): every critical point found is non-degenerate "
                     "(draws with critical points)", aug_nondeg, with_aug, "almost every draw",
                     with_aug > 0 and aug_nondeg == with_aug,
                     f"{with_aug}/{draws} draws have critical points in [-3, 3]², "
                     f"{int(n_points['augmented'].sum())} points"),
        fraction_row(NAME, SOURCE, "bottleneck networks (2→1→8→1): every critical point found is degenerate "
                     "(draws with critical points)", bn_deg, with_bn, "all such draws",
                     with_bn > 0 and bn_deg == with_bn,
                     f"{with_bn}/{draws} draws have critical points (lines: {int(n_flat['bottleneck'].sum())} "
                     "points reported as non-isolated)"),
    ]
    data = dict(draws=np.arange(draws), min_grad_narrow=min_grad,
                **{f"{f}_points": n_points[f] for f in FAMILIES}, **{f"{f}_flat": n_flat[f] for f in FAMILIES},
                **{f"{f}_degenerate": degenerate[f] for f in FAMILIES},
                **{f"{f}_plateau": plateau[f] for f in FAMILIES},
                **{f"{f}_min_eig_ratio": np.asarray(min_eig[f], dtype=np.float64) for f in FAMILIES},
                grid_axis=axis.numpy())
    for fam, (Z, P, kinds) in examples.items():
        data[f"example_{fam}_phi"], data[f"example_{fam}_points"] = Z, P.reshape(-1, 2)
    from analysis.plots.literature import morse_figure

    return StudyResult(NAME, SOURCE, data, claims, figures={NAME: morse_figure(data)},
                       scaled=f"{draws} draws per architecture (published 100 for the augmented case), "
                              "input dimension 2, box [-3, 3]²",
                       config=dict(draws=draws, box=[-3, 3], families=list(FAMILIES)))
