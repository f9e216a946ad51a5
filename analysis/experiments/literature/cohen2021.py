"""cohen2021 — Cohen, Cont, Rossier, Xu, *Scaling properties of deep residual networks* (ICML 2021).

Fully connected ResNets R^d → R^d, d = 10, trained on synthetic data:

    h_{k+1} = h_k + σ(A_k h_k + b_k),   k = 0..L-1,   σ = tanh or ReLU   (ε = δ = 1),

inputs x ~ U(-1, 1)^d and targets y = z_100 of the published iteration z_0 = x,
z_{j+1} = z_j + 100^{-1/2} tanh(sin(5πj/100) z_j + cos(5πj/100)), then x and y scaled to unit
norm.  Start: A_k ~ N(0, (s/d)²), b_k ~ N(0, (s/√d)²), s = 1e-4; Adam (lr 1e-3, batch 32, the
published run configuration's) on the mean squared error, with the published early stopping:
after each epoch, stop
once the epoch's mean batch loss is below 1e-3, or after 5 epochs in a row without a 1 %
improvement, or after the epoch budget.

The paper asks how the trained weights scale with the depth L.  Its hypotheses:

- (H1) L^β A_{⌊Lt⌋} → A(t), a continuous (smooth) function: then max_k |A_k| ~ L^{-β} and the
  increments of the rescaled path, L^β max_k |A_{k+1} - A_k|, vanish (like L^{-1} if A is C¹);
  the neural ODE is the case β = 1.
- (H2) the cumulative path W_t = Σ_{k<⌊Lt⌋} A_k converges to a rough limit (Brownian-like for a
  diffusive, SDE limit): finite quadratic variation, roughness exponent ½.

Per trained network this module measures (Frobenius norms, A (L, d, d)): max_k |A_k|, max_k
|A_{k+1} - A_k|, the quadratic variation of the weights' path Σ_k |A_{k+1} - A_k|² (the
published statistic), the exact p-variation (p = 1, 2, 3) of W_k = Σ_{j<k} A_j, and the
roughness exponent of W; exponents are fitted against L on the geometric grid of depths.
Seeds at one depth share a shape and train at once along a member axis (the project's batched
generalised-Euler kernel), each with its own data draw, initialisation, batch order and stop.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from odenet.activations import get_activation
from odenet.kernel import generalised_euler

from analysis.experiments.literature.estimators import brownian_path, p_variation, power_law_slope, roughness_exponent
from analysis.experiments.literature.records import ClaimRow, StudyResult, fmt_fit, slope_row

NAME = "cohen2021"
SOURCE = "Cohen, Cont, Rossier, Xu, ICML 2021"
D = 10
INIT_SCALE = 1e-4
LR, BATCH, TOL, PATIENCE, IMPROVEMENT = 1e-3, 32, 1e-3, 5, 0.99


def ode_data(n: int, members: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(x, y), each (members, n, d): the published synthetic task (module docstring), one
    independent draw of the inputs per member."""
    g = torch.Generator().manual_seed(seed)
    x = 2 * torch.rand(members, n, D, generator=g, dtype=torch.float64) - 1
    z = x.clone()
    steps = 100
    for j in range(steps):
        t = 5 * j * math.pi / steps
        z = z + torch.tanh(math.sin(t) * z + math.cos(t)) / math.sqrt(steps)
    return x / x.norm(dim=-1, keepdim=True), z / z.norm(dim=-1, keepdim=True)


def geometric_depths(low: int, high: int, base: float) -> list[int]:
    """The distinct ⌊base^n⌋ in [low, high] (the published grid: 3..1000, base 1.2)."""
    if not (isinstance(low, int) and isinstance(high, int) and 1 <= low <= high and base > 1):
        raise ValueError(f"need ints 1 <= low <= high and base > 1; got low={low!r}, high={high!r}, base={base!r}")
    n = int(math.log(high) / math.log(base)) + 1
    return sorted({math.floor(base ** k + 1e-9) for k in range(n + 1)} & set(range(low, high + 1)))


def train(L: int, x: torch.Tensor, y: torch.Tensor, activation: str, *, max_epochs: int, seed: int,
          batch: int = BATCH, lr: float = LR, tol: float = TOL) -> dict:
    """Train S = x.shape[0] members of depth L at once (module docstring) with per-member early
    stopping; returns A (S, L, d, d) and b (S, L, d) as each member stopped, its final epoch
    loss (S,), epochs (S,) and whether it reached ``tol`` (S,)."""
    S, n, _ = x.shape
    if n % batch:
        raise ValueError(f"the number of samples ({n}) must be a multiple of batch ({batch})")
    act = get_activation(activation)
    g = torch.Generator().manual_seed(seed)
    A = (torch.randn(S, L, D, D, generator=g, dtype=torch.float64) * (INIT_SCALE / D)).requires_grad_(True)
    b = (torch.randn(S, L, D, generator=g, dtype=torch.float64) * (INIT_SCALE / D ** 0.5)).requires_grad_(True)
    opt = torch.optim.Adam([A, b], lr=lr, foreach=True)
    A_end, b_end = A.detach().clone(), b.detach().clone()
    best = np.full(S, np.inf)
    bad = np.zeros(S, dtype=int)
    active = np.ones(S, dtype=bool)
    epochs, loss_end = np.full(S, max_epochs), np.full(S, np.nan)
    for epoch in range(1, max_epochs + 1):
        perm = torch.stack([torch.randperm(n, generator=g) for _ in range(S)])
        total = torch.zeros(S, dtype=torch.float64)
        for i in range(0, n, batch):
            idx = perm[:, i:i + batch]
            xb = torch.gather(x, 1, idx[..., None].expand(-1, -1, D))
            yb = torch.gather(y, 1, idx[..., None].expand(-1, -1, D))
            out = generalised_euler(A, b, act, xb, 1.0, 1.0).states
            loss = (out - yb).square().mean((1, 2))  # (S,): nn.MSELoss per member
            opt.zero_grad(set_to_none=True)
            loss.sum().backward()
            opt.step()
            total += loss.detach()
        mean = (total / (n // batch)).numpy()
        improved = mean < IMPROVEMENT * best
        best = np.where(improved, mean, best)
        bad = np.where(improved, 0, bad + 1)
        stop = active & ((mean < tol) | (bad >= PATIENCE) | (epoch == max_epochs))
        if stop.any():
            m = torch.from_numpy(stop)
            A_end[m], b_end[m] = A.detach()[m], b.detach()[m]
            epochs[stop], loss_end[stop] = epoch, mean[stop]
            active &= ~stop
        if not active.any():
            break
    return dict(A=A_end, b=b_end, loss=loss_end, epochs=epochs, converged=loss_end < tol)


def path_statistics(A: np.ndarray | torch.Tensor) -> dict[str, float]:
    """Statistics of one network's weights A (L, d, d) (module docstring): ``max_norm`` max_k
    |A_k|, ``max_increment`` max_k |A_{k+1} - A_k|, ``quadratic_variation`` Σ_k |A_{k+1} - A_k|²,
    ``pvar1..3`` the p-variation of W_k = Σ_{j<k} A_j (k = 0..L), ``roughness`` its roughness
    exponent (p = 2; nan below 16 layers)."""
    a = np.asarray(A, dtype=np.float64).reshape(len(A), -1)
    inc = np.linalg.norm(np.diff(a, axis=0), axis=1)
    W = np.concatenate([np.zeros((1, a.shape[1])), np.cumsum(a, axis=0)])
    out = dict(max_norm=float(np.linalg.norm(a, axis=1).max()), max_increment=float(inc.max()),
               quadratic_variation=float((inc ** 2).sum()))
    for p in (1, 2, 3):
        out[f"pvar{p}"] = p_variation(W, p)
    out["roughness"] = roughness_exponent(W, 2.0).exponent if len(a) >= 32 else math.nan
    return out


def estimator_check(seed: int, n: int = 1024, paths: int = 20) -> dict:
    """The path estimators on synthetic ground truth: a smooth path (roughness 1, 1-variation
    bounded in n) and ``paths`` Brownian paths in R^4 on [0, 1] (roughness ½, quadratic variation
    of each coordinate → 1, 1-variation ~ n^{1/2}); returns the estimates and the finest-partition
    sums S_2(m) of the smooth path and of one Brownian path for the figure."""
    rng = np.random.default_rng(seed)
    t = np.linspace(0.0, 1.0, n + 1)
    smooth = np.stack([np.sin(3 * t), np.cos(2 * t) + t ** 2], axis=1)
    sizes = [n // 8, n // 4, n // 2, n]
    v1_smooth = [p_variation(smooth[:: n // m], 1) for m in sizes]
    B = brownian_path(n, 4 * paths, rng=rng).reshape(n + 1, paths, 4)
    rough_b = np.array([roughness_exponent(B[:, i], 2.0).exponent for i in range(paths)])
    v1_b = np.array([[p_variation(B[:: n // m, i], 1) for m in sizes] for i in range(paths)])
    return dict(smooth_roughness=roughness_exponent(smooth, 2.0).exponent,
                smooth_v1_slope=power_law_slope(sizes, v1_smooth).order,
                brownian_roughness=rough_b, brownian_qv=(np.diff(B, axis=0) ** 2).sum(0).ravel(),
                brownian_v1_slope=power_law_slope(sizes, np.median(v1_b, 0)).order, sizes=np.array(sizes),
                smooth_sums=roughness_exponent(smooth, 2.0).sums, brownian_sums=roughness_exponent(B[:, 0], 2.0).sums,
                intervals=roughness_exponent(smooth, 2.0).intervals)


STATISTICS = ("max_norm", "max_increment", "quadratic_variation", "pvar1", "pvar2", "pvar3", "roughness")


def run(*, quick: bool = False, seeds: int | None = None, seed: int = 0) -> StudyResult:
    """tanh and ReLU at depths 8..64 (quick: base 2, 256 samples, 3 seeds, ≤ 60 epochs) or
    8..256 (base √2, 512 samples, 4 seeds, ≤ 200 epochs as published)."""
    S = seeds or (3 if quick else 4)
    depths = geometric_depths(8, 64, 2.0) if quick else geometric_depths(8, 256, 2 ** 0.5)
    n, max_epochs = (256, 60) if quick else (512, 200)
    x, y = ode_data(n, S, seed)
    data: dict = dict(L=np.array(depths))
    fits: dict = {}
    for act in ("tanh", "relu"):
        stats = {k: np.zeros((len(depths), S)) for k in STATISTICS}
        loss, epochs = np.zeros((len(depths), S)), np.zeros((len(depths), S))
        for i, L in enumerate(depths):
            r = train(L, x, y, act, max_epochs=max_epochs, seed=seed + 7919 * L)
            loss[i], epochs[i] = r["loss"], r["epochs"]
            for s, A in enumerate(r["A"]):
                for k, v in path_statistics(A).items():
                    stats[k][i, s] = v
            if i == len(depths) - 1:
                data[f"{act}_example_A"] = r["A"][0].numpy()
        med = {k: np.median(v, 1) for k, v in stats.items()}
        f = {k: power_law_slope(depths, med[k]) for k in ("max_norm", "max_increment", "quadratic_variation",
                                                           "pvar1", "pvar2", "pvar3")}
        # increments and quadratic variation of the rescaled path L^β A_k: the ratios to max_k |A_k|
        # (and its square) cancel L^β exactly, so the fit's interval needs no estimate of β
        f["relative_increment"] = power_law_slope(depths, np.median(stats["max_increment"] / stats["max_norm"], 1))
        f["relative_qv"] = power_law_slope(depths, np.median(stats["quadratic_variation"] / stats["max_norm"] ** 2, 1))
        fits[act] = f
        data.update({f"{act}_{k}": v for k, v in stats.items()})
        data[f"{act}_loss"], data[f"{act}_epochs"] = loss, epochs
        data.update({f"{act}_slope_{k}": np.array([v.order, v.ci_low, v.ci_high]) for k, v in f.items()})
    est = estimator_check(seed)
    data.update({f"estimator_{k}": v for k, v in est.items()})
    claims = _claims(fits, data, est)
    from analysis.plots.literature import cohen2021_figure

    return StudyResult(NAME, SOURCE, data, claims, figures={NAME: cohen2021_figure(data)},
                       scaled=(f"L ∈ {depths} (published 3..1000 on base 1.2), {S} seeds, {n} training samples "
                               f"(published 1024), batch {BATCH}, at most {max_epochs} epochs; δ = 1, A_k and b_k "
                               f"initialised at scale {INIT_SCALE:g}, Adam lr {LR:g}, published early stopping"),
                       config=dict(d=D, depths=depths, seeds=S, samples=n, batch=BATCH, lr=LR, tol=TOL,
                                   patience=PATIENCE, max_epochs=max_epochs, init_scale=INIT_SCALE))


def _beta(fit) -> str:
    return f"β = {-fit.order:.3g} [{-fit.ci_high:.3g}, {-fit.ci_low:.3g}]"


def _claims(fits: dict, data: dict, est: dict) -> list[ClaimRow]:
    rows = []
    for act in ("tanh", "relu"):
        f = fits[act]
        conv = data[f"{act}_loss"] < TOL
        ep = np.median(data[f"{act}_epochs"], 1)
        train_note = f"{int(conv.sum())}/{conv.size} trainings reached the loss {TOL:g}" + (
            "" if conv.all() else "; the others stopped on the published plateau rule (5 epochs without 1 % gain)") + (
            "; median epochs by L: " + ", ".join(f"{L}→{e:g}" for L, e in zip(data["L"], ep)))
        beta_hi = -f["max_norm"].ci_low
        ok = beta_hi < 0.9
        rows.append(ClaimRow(NAME, f"{act}: trained weights scale as max_k |A_k| ~ L^-β with β below the neural-ODE "
                             "value 1", SOURCE, "β < 1 (interval below 0.9)", _beta(f["max_norm"]),
                             "consistent" if ok else "contradicts",
                             train_note if ok else train_note + f"; β's interval reaches {beta_hi:.2f}: it does "
                             "not exclude a scaling near the neural ODE's 1/L"))
    t, r = fits["tanh"]["relative_increment"], fits["relu"]["relative_increment"]
    ok = t.ci_high < 0
    rows.append(ClaimRow(NAME, "tanh (smooth σ), H1: the rescaled weights L^β A_k tend to a continuous function of "
                         "k/L: their increments L^β max_k |A_{k+1} - A_k| vanish", SOURCE,
                         "slope of max|ΔA| / max|A| against L below 0 (C¹ limit: -1)", fmt_fit(t),
                         "consistent" if ok else "contradicts",
                         "" if ok else "the rescaled increments do not fall with L"))
    ok = r.ci_high >= -0.2
    rows.append(ClaimRow(NAME, "ReLU (non-smooth σ): the trained weights are not smooth in k: L^β max_k "
                         "|A_{k+1} - A_k| does not vanish", SOURCE,
                         "slope of max|ΔA| / max|A| against L ≥ -0.2 (interval meets it)", fmt_fit(r),
                         "consistent" if ok else "contradicts",
                         "random initial activation patterns (ReLU's kink at 0) persist as layer-to-layer noise"
                         if ok else "the rescaled increments fall with L, as for a smooth limit"))
    disjoint = t.ci_high < r.ci_low or r.ci_high < t.ci_low
    rows.append(ClaimRow(NAME, "the scaling regime depends on the smoothness of the activation", SOURCE,
                         "tanh's and ReLU's increment slopes differ (disjoint intervals)",
                         f"tanh {fmt_fit(t)}; ReLU {fmt_fit(r)}", "consistent" if disjoint else "contradicts"))
    # H2: i.i.d.-like layer noise of size L^{-1/2} gives W a finite non-zero quadratic variation, and
    # the weights' own Σ|ΔA|² (the published statistic) is then flat in L
    rows.append(slope_row(NAME, SOURCE, "ReLU, H2 (diffusive, an SDE limit): Σ_k |A_{k+1} - A_k|² stays finite "
                          "and non-zero as L grows (layer noise of size L^-1/2)",
                          fits["relu"]["quadratic_variation"], 0.0, 0.15))
    ft = fits["tanh"]
    beta = -ft["max_norm"].order
    ok = all(abs(ft[f"pvar{p}"].order - p * (1 - beta)) <= 0.15 * p for p in (1, 2, 3))
    rows.append(ClaimRow(NAME, "tanh, H1: W_k = Σ_{j<k} A_j is L^{1-β} times a smooth path, so its p-variation "
                         "grows as L^{p(1-β)}", SOURCE, "slopes p(1 - β) ± 0.15 p for p = 1, 2, 3",
                         "; ".join(f"p = {p}: {fmt_fit(ft[f'pvar{p}'])} vs {p * (1 - beta):.3g}" for p in (1, 2, 3)),
                         "consistent" if ok else "contradicts"))
    rb = np.asarray(est["brownian_roughness"])
    k = int((np.abs(rb - 0.5) <= 0.1).sum())
    ok_est = abs(est["smooth_roughness"] - 1) < 0.02 and abs(est["smooth_v1_slope"]) < 0.02 and k >= 0.9 * rb.size \
        and abs(est["brownian_v1_slope"] - 0.5) < 0.1
    from analysis.experiments.paper_claims import format_fraction

    rows.append(ClaimRow(NAME, "estimator check: the path statistics recover synthetic ground truth", "this study",
                         "smooth path: roughness 1, 1-variation flat in n; Brownian: roughness ½ (±0.1), "
                         "1-variation ~ n^½, quadratic variation 1",
                         f"smooth: {est['smooth_roughness']:.3f}, V_1 slope {est['smooth_v1_slope']:.3f}; Brownian "
                         f"roughness within ±0.1 of ½: {format_fraction(k, rb.size)}, V_1 slope "
                         f"{est['brownian_v1_slope']:.3f}, QV median {float(np.median(est['brownian_qv'])):.3f}",
                         "consistent" if ok_est else "contradicts"))
    return rows

