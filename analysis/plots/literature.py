"""Figures of the literature studies (analysis.experiments.literature).  matplotlib is imported inside each
function; every function takes the study's ``data`` dict (StudyResult.data) and returns the
Figure."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from analysis.plots import pyplot

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def _fig(ncols: int, width: float = 4.2, height: float = 3.6):
    fig, axes = pyplot().subplots(1, ncols, figsize=(width * ncols, height), constrained_layout=True)
    return fig, np.atleast_1d(axes)


def iresnet_figure(data: dict[str, Any]) -> Figure:
    """(a) worst |h^j - h*| against the iteration j per q with the slope log q; (b) iterations to
    1e-6 and the a-priori count against q; (c) worst log-det truncation error and its bound
    against the number of terms."""
    fig, (a, b, c) = _fig(3)
    q = np.asarray(data["q"])
    j = np.asarray(data["iteration"])
    cmap = __import__("matplotlib").colormaps["viridis"]
    for i, qi in enumerate(q):
        col = cmap(i / max(len(q) - 1, 1))
        e = np.asarray(data["error_worst"][i])
        a.semilogy(j, e, color=col, label=f"q = {qi:g}")
        a.semilogy(j, e[0] * qi ** j, ":", color=col)
    a.set(xlabel="iteration j", ylabel="max |h^j - h*|", title="fixed-point inversion (dotted: q^j)", ylim=(1e-16, None))
    a.legend(fontsize=7)
    it, bound = np.asarray(data["iterations"]), np.asarray(data["iteration_bound"])
    b.plot(q, np.median(it, 1), "o-", label="median iterations")
    b.fill_between(q, it.min(1), it.max(1), alpha=0.3, label="range over blocks")
    b.plot(q, bound.max(1), "k--", label="a-priori count (max)")
    b.set(xlabel="q = δK‖W‖/ε", ylabel="iterations to 1e-6", yscale="log", title="iterations against q")
    b.legend(fontsize=7)
    n = np.asarray(data["terms"])
    for i, qi in enumerate(q):
        col = cmap(i / max(len(q) - 1, 1))
        c.semilogy(n, np.maximum(data["logdet_error_worst"][i], 1e-17), color=col, label=f"q = {qi:g}")
        c.semilogy(n, data["logdet_bound"][i], "--", color=col)
    c.set(xlabel="terms n", ylabel="|series - slogdet|", title="power-series log-det (dashed: bound)",
          ylim=(1e-17, None))
    c.legend(fontsize=7)
    return fig


def sander_figure(data: dict[str, Any]) -> Figure:
    """(a) max increment of the trained weights against N (targets and median, N^-1 guide);
    (b) reverse reconstruction error against N for Euler and Heun (medians, N^-1 and N^-2 guides)."""
    fig, (a, b) = _fig(2)
    N, inc = np.asarray(data["N"]), np.asarray(data["max_increment"])
    a.loglog(N, inc, color="0.7", lw=0.8)
    med = np.median(inc, 1)
    a.loglog(N, med, "o-", color="C0", label="median over targets")
    a.loglog(N, med[0] * N[0] / N, "k--", label="N^-1")
    a.set(xlabel="N", ylabel="max_n |A_{n+1} - A_n|", title="trained linear ResNet increments")
    a.set_xticks(N, [str(n) for n in N])
    a.xaxis.set_minor_formatter(__import__("matplotlib").ticker.NullFormatter())
    a.legend(fontsize=8)
    lv = np.asarray(data["levels"])
    for key, col, p in (("error_euler", "C1", 1), ("error_heun", "C2", 2)):
        e = np.median(np.asarray(data[key]), 0)
        b.loglog(lv, e, "o-", color=col, label=key.split("_")[1])
        b.loglog(lv, e[0] * (lv[0] / lv) ** p, "--", color=col, lw=0.8, label=f"N^-{p}")
    b.set(xlabel="N", ylabel="‖y_0 - x_0‖ / ‖x_0‖", title="forward then reverse reconstruction")
    b.legend(fontsize=8)
    return fig


def marion_figure(data: dict[str, Any]) -> Figure:
    """(a) i.i.d. and (b) smooth weights: median |h_L - h_0|/|h_0| against L per β; (c) the
    slope of log r on log L over (H, β) for fGn weights with the critical β(H) marked."""
    fig, axes = _fig(3)
    L = np.asarray(data["L"])
    for ax, kind in zip(axes[:2], ("iid", "smooth")):
        for b, r, g in zip(data[f"{kind}_beta"], data[f"{kind}_ratio"], data[f"{kind}_grad_ratio"]):
            line, = ax.loglog(L, np.clip(r, 1e-12, 1e12), "o-", label=f"β = {b:g}: |h_L-h_0|/|h_0|")
            ax.loglog(L, np.clip(g, 1e-12, 1e12), "x:", color=line.get_color(), label=f"β = {b:g}: gradient ratio")
        ax.set(xlabel="L", ylabel="median over draws", title=f"{kind} weights")
        ax.legend(fontsize=6)
    c = axes[2]
    H, B, S = np.asarray(data["fgn_hurst"]), np.asarray(data["fgn_beta"]), np.clip(data["fgn_slope"], -2, 2)
    im = c.pcolormesh(B, H, S, cmap="coolwarm", vmin=-2, vmax=2, shading="nearest")
    fig.colorbar(im, ax=c, label="slope of log r on log L (clipped to ±2)")
    c.plot(data["fgn_critical_beta"], H, "ko-", label="critical β (slope 0)")
    c.plot(np.maximum(0.5, 2 * H - 1), H, "g--", label="max(½, 2H - 1)")
    c.set(xlabel="β", ylabel="Hurst index H", title="fGn weights")
    c.legend(fontsize=7)
    return fig


def morse_figure(data: dict[str, Any]) -> Figure:
    """One example Φ per architecture (contours, the critical points found) and the histogram of
    min |λ(∇²Φ)| / C at every point found, per architecture."""
    fig, axes = _fig(4, width=3.6)
    ax = np.asarray(data["grid_axis"])
    for a, fam in zip(axes[:3], ("narrow", "augmented", "bottleneck")):
        if f"example_{fam}_phi" in data:
            a.contourf(ax, ax, data[f"example_{fam}_phi"], 30, cmap="viridis")
            P = np.asarray(data[f"example_{fam}_points"])
            if P.size:
                a.plot(P[:, 0], P[:, 1], "r.", ms=4)
        a.set(title=f"{fam}: Φ and its critical points", xlabel="x₁", ylabel="x₂")
    h = axes[3]
    for fam in ("augmented", "bottleneck"):
        v = np.asarray(data[f"{fam}_min_eig_ratio"])
        if v.size:
            h.hist(np.log10(np.maximum(v, 1e-18)), bins=30, alpha=0.6, label=fam)
    h.axvline(-6, color="k", ls="--", label="degeneracy threshold")
    h.set(xlabel="log10 min |λ| / C", ylabel="points found", yscale="log", title="Hessians at the points found")
    h.legend(fontsize=7)
    return fig


def marion2024_figure(data: dict[str, Any]) -> Figure:
    """(a) increments and distances to the reference against L (medians, L^-1 guide); (b) the
    long run's loss; (c) its increments |V_{k+1} - V_k| and norms |V_k| against k/L."""
    fig, (a, b, c) = _fig(3)
    L = np.asarray(data["L"])
    for key, mk in (("increment_V", "o-"), ("increment_W", "s-"), ("distance_V", "o--"), ("distance_W", "s--")):
        v = np.median(np.asarray(data[key]), 1)
        a.loglog(L, v, mk, label=key.replace("_", " "))
    a.loglog(L, np.median(data["increment_V"], 1)[0] * L[0] / L, "k:", label="L^-1")
    a.set(xlabel="L", ylabel="max over k (median over seeds)", title="after 50 steps")
    a.legend(fontsize=7)
    loss = np.asarray(data["long_loss"])
    b.semilogy(loss, lw=0.8)
    b.set(xlabel="step", ylabel="loss", title="long training, L = 64")
    inc, nrm = np.asarray(data["long_increments_V"]), np.asarray(data["long_V_norm"])
    k = np.arange(nrm.shape[1]) / nrm.shape[1]
    c.plot(k, nrm.T, color="C0", lw=0.8)
    c.plot(k[:-1], 64 * inc.T, color="C1", lw=0.8)
    c.set(xlabel="k / L", ylabel="|V_k| (blue), L |V_{k+1} - V_k| (orange)", title="trained V, smooth in k")
    return fig


def anode_figure(data: dict[str, Any]) -> Figure:
    """(a) 1-D flip: MSE against the Adam step per seed, neural ODE and augmented, the bound 1;
    (b) annuli test accuracy and (c) forward nfev against the epoch per seed; (d) the
    forward-backward relative reconstruction error of every trained flow and the threshold."""
    fig, (a, b, c, d) = _fig(4, width=3.6)
    for tag, col in (("node", "C0"), ("anode", "C1")):
        for i, loss in enumerate(np.asarray(data[f"flip_loss_{tag}"])):
            a.semilogy(np.maximum(loss, 1e-12), color=col, lw=0.8, label=tag.upper() if i == 0 else None)
        ep = np.asarray(data["epoch"])
        for i, (acc, nf) in enumerate(zip(data[f"annuli_acc_{tag}"], data[f"annuli_nfev_{tag}"])):
            b.plot(ep, acc, "o-", color=col, ms=3, lw=0.8, label=tag.upper() if i == 0 else None)
            c.plot(ep, nf, "o-", color=col, ms=3, lw=0.8, label=tag.upper() if i == 0 else None)
    a.axhline(1.0, color="k", ls="--", lw=0.8, label="NODE bound MSE = 1")
    a.set(xlabel="Adam step", ylabel="MSE", title="1-D flip g(±1) = ∓1")
    b.set(xlabel="epoch", ylabel="test accuracy", title="annuli")
    c.set(xlabel="epoch", ylabel="nfev per forward pass", title="annuli, dopri5")
    e = np.asarray(data["recon_error"])
    flagged = np.asarray(data["recon_flagged"], dtype=bool)
    idx = np.arange(len(e))
    d.semilogy(idx[~flagged], np.maximum(e[~flagged], 1e-17), "o", color="C2", label="passed")
    d.semilogy(idx[flagged], np.maximum(e[flagged], 1e-17), "x", color="C3", label="flagged")
    d.axhline(float(data["recon_threshold"]), color="k", ls="--", lw=0.8, label="threshold")
    d.set(xlabel="trained flow", ylabel="relative error", title="forward-backward reconstruction")
    for ax in (a, b, c, d):
        ax.legend(fontsize=7)
    return fig


def cohen2021_figure(data: dict[str, Any]) -> Figure:
    """(a) tanh and (b) ReLU: medians over seeds of max_k |A_k|, max_k |A_{k+1} - A_k| and
    Σ_k |A_{k+1} - A_k|² against L with the fitted slopes; (c) the p-variation (p = 1, 2, 3) of
    W_k = Σ_{j<k} A_j against L; (d) one entry of L^β A_k against k/L at the deepest L; (e) the
    estimator check: finest-partition sums S_2(m) of a smooth and a Brownian path (slopes 1 - 2H)."""
    fig, axes = _fig(5, width=3.5)
    L = np.asarray(data["L"])
    for ax, act in zip(axes[:2], ("tanh", "relu")):
        for key, mk in (("max_norm", "o-"), ("max_increment", "s-"), ("quadratic_variation", "^-")):
            s = np.asarray(data[f"{act}_slope_{key}"])
            ax.loglog(L, np.median(np.asarray(data[f"{act}_{key}"]), 1), mk, ms=4,
                      label=f"{key.replace('_', ' ')}: slope {s[0]:.2f}")
        ax.set(xlabel="depth L", ylabel="median over seeds", title=f"{act}: trained weights A_k")
        ax.legend(fontsize=6)
    c = axes[2]
    for act, ls in (("tanh", "-"), ("relu", "--")):
        for p, col in zip((1, 2, 3), ("C0", "C1", "C2")):
            c.loglog(L, np.median(np.asarray(data[f"{act}_pvar{p}"]), 1), ls, color=col, marker="o", ms=3,
                     label=f"{act}, p = {p}")
    c.set(xlabel="depth L", ylabel="p-variation of W_k = Σ A_j", title="p-variation of the cumulative weights")
    c.legend(fontsize=6, ncol=2)
    for ax in axes[:3]:
        ax.set_xticks(L, [str(v) for v in L], fontsize=6)
        ax.xaxis.set_minor_formatter(__import__("matplotlib").ticker.NullFormatter())
    d = axes[3]
    for act, col in (("tanh", "C0"), ("relu", "C3")):
        A = np.asarray(data[f"{act}_example_A"])
        beta = -float(np.asarray(data[f"{act}_slope_max_norm"])[0])
        k = np.arange(len(A)) / len(A)
        d.plot(k, len(A) ** beta * A[:, 0, 1], ".-", color=col, ms=3, lw=0.7, label=f"{act}, L = {len(A)}")
    d.set(xlabel="k / L", ylabel="L^β A_k[0, 1]", title="one weight entry across layers")
    d.legend(fontsize=7)
    e = axes[4]
    m = np.asarray(data["estimator_intervals"])
    e.loglog(m, data["estimator_smooth_sums"], "o-", label="smooth path (H = 1: slope -1)")
    e.loglog(m, data["estimator_brownian_sums"], "s-", label="Brownian path (H = ½: slope 0)")
    e.set(xlabel="intervals m", ylabel="S_2(m) = Σ |ΔW|²", title="estimator check")
    e.legend(fontsize=7)
    return fig
