"""Figures of the tunnel-effect paper and of the studies beyond it.

Every function takes plain arrays (numpy or torch) and returns a matplotlib Figure; callers save
it.  matplotlib is imported lazily with the Agg backend, so nothing here needs a display.
"""
from __future__ import annotations

import numpy as np


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _np(a):
    return a.detach().cpu().numpy() if hasattr(a, "detach") else np.asarray(a)


def one_d_panels(x_data, y_data, x_grid, y_fit, layers, critical_x, *, title: str):
    """The paper's three 1D panels.

    ``layers``: one dict per block with keys ``w``, ``b`` (the block's weight and bias),
    ``h`` (the block's inputs along x_grid) and ``dF`` (F_l'(h) along x_grid) and ``zeros``
    (the inputs x where F_l' vanishes).  ``critical_x``: the critical points of Φ.
    """
    plt = _plt()
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6), constrained_layout=True)
    ax = axes[0]
    ax.plot(_np(x_data), _np(y_data), ".", ms=3, color="0.6", label="data")
    ax.plot(_np(x_grid), _np(x_grid) ** 2, "--", color="0.3", lw=1, label="x²")
    ax.plot(_np(x_grid), _np(y_fit), color="C0", lw=2, label="network")
    for c in _np(critical_x).ravel():
        ax.axvline(c, color="C3", lw=1, ls=":")
    ax.set(title="fit", xlabel="x")
    ax.legend(fontsize=8)
    ax = axes[1]
    idx = np.arange(len(layers))
    ax.bar(idx - 0.18, [float(l["w"]) for l in layers], width=0.36, label="w_l")
    ax.bar(idx + 0.18, [float(l["b"]) for l in layers], width=0.36, label="b_l")
    if layers and "threshold" in layers[0]:
        ax.axhline(layers[0]["threshold"], color="C3", lw=1, ls="--", label="-ε/δ (fold threshold)")
    ax.axhline(0, color="0.5", lw=0.5)
    ax.set(title="block parameters", xlabel="block l", xticks=idx)
    ax.legend(fontsize=8)
    ax = axes[2]
    for l, layer in enumerate(layers):
        ax.plot(_np(x_grid), _np(layer["dF"]), label=f"F_{l}'(h_{l}(x))")
        for z in _np(layer["zeros"]).ravel():
            ax.plot(z, 0.0, "x", color="C3", ms=8, mew=2)
    ax.axhline(0, color="0.5", lw=0.5)
    ax.set(title="layer derivatives (× = critical point)", xlabel="x")
    ax.legend(fontsize=8)
    fig.suptitle(title)
    return fig


def probability_map(xx, yy, prob, x_test, y_test, *, title: str):
    """Filled predicted probability with the test points coloured by label."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(4.6, 4), constrained_layout=True)
    cs = ax.contourf(_np(xx), _np(yy), _np(prob), levels=np.linspace(0, 1, 21), cmap="RdBu_r", alpha=0.85)
    fig.colorbar(cs, ax=ax, label="P(class 1)")
    x_test, y_test = _np(x_test), _np(y_test).ravel()
    ax.scatter(x_test[:, 0], x_test[:, 1], c=y_test, cmap="bwr", s=6, edgecolors="k", linewidths=0.2)
    ax.set(title=title, aspect="equal", xlabel="x₁", ylabel="x₂")
    return fig


def level_sets(xx, yy, phi, level, component_mask, polylines, *, title: str, tunnel: bool | None):
    """Level sets of Φ with the decision level bold and the centre's sublevel component shaded."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(4.6, 4), constrained_layout=True)
    phi = _np(phi)
    ax.contour(_np(xx), _np(yy), phi, levels=15, colors="0.55", linewidths=0.6)
    if component_mask is not None:
        ax.contourf(_np(xx), _np(yy), _np(component_mask).astype(float), levels=[0.5, 1.5], colors=["C1"], alpha=0.35)
    for line in polylines or []:
        line = _np(line)
        ax.plot(line[:, 0], line[:, 1], color="C3", lw=2)
    verdict = "" if tunnel is None else (" — tunnel" if tunnel else " — no tunnel")
    ax.set(title=f"{title}{verdict}", aspect="equal", xlabel="x₁", ylabel="x₂")
    return fig


def trajectories(states, labels, *, title: str):
    """Trajectories of sample points through the layers (first two state coordinates)."""
    plt = _plt()
    states, labels = _np(states), _np(labels).ravel()
    fig, ax = plt.subplots(figsize=(4.6, 4), constrained_layout=True)
    for i in range(states.shape[1]):
        c = "C3" if labels[i] > 0.5 else "C0"
        ax.plot(states[:, i, 0], states[:, i, 1], color=c, lw=0.6, alpha=0.6)
        ax.plot(states[0, i, 0], states[0, i, 1], "o", color=c, ms=2)
        ax.plot(states[-1, i, 0], states[-1, i, 1], "s", color=c, ms=2.5)
    ax.set(title=title, xlabel="h₁", ylabel="h₂")
    return fig


def singular_value_maps(xx, yy, maps, titles, *, suptitle: str):
    """A row of log10 σ_min maps (one per partial network)."""
    plt = _plt()
    fig, axes = plt.subplots(1, len(maps), figsize=(3.2 * len(maps), 3.2), constrained_layout=True, squeeze=False)
    for ax, m, t in zip(axes[0], maps, titles):
        cs = ax.contourf(_np(xx), _np(yy), np.log10(np.maximum(_np(m), 1e-16)), levels=20, cmap="viridis")
        fig.colorbar(cs, ax=ax, shrink=0.8)
        ax.set(title=t, aspect="equal")
    fig.suptitle(suptitle)
    return fig


def loss_curves(histories: dict, *, title: str):
    """Training and validation loss per epoch for each named run; best epochs marked."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.5, 3.6), constrained_layout=True)
    for k, (name, h) in enumerate(histories.items()):
        ax.semilogy(_np(h["train_loss"]), color=f"C{k}", lw=1, label=f"{name} train")
        if len(_np(h["val_loss"])) and np.isfinite(_np(h["val_loss"])).any():
            ax.semilogy(_np(h["val_loss"]), color=f"C{k}", lw=1, ls="--")
            ax.plot(h["best_epoch"], _np(h["val_loss"])[h["best_epoch"]], "o", color=f"C{k}", ms=4)
    ax.set(title=title + " (dashed: validation, dot: selected epoch)", xlabel="epoch", ylabel="loss")
    ax.legend(fontsize=6, ncol=2)
    return fig


def phase_diagram(ratios, omegas, fraction, *, K: float = 1.0):
    """Fraction of random networks with critical points over (δ/ε, ω), with the certificate line
    δ K ω = ε, i.e. ω = 1 / (K r)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 4), constrained_layout=True)
    r, w = np.meshgrid(_np(ratios), _np(omegas), indexing="ij")
    cs = ax.pcolormesh(r, w, _np(fraction), shading="nearest", cmap="magma", vmin=0, vmax=1)
    fig.colorbar(cs, ax=ax, label="fraction with critical points")
    rr = np.geomspace(float(np.min(ratios)), float(np.max(ratios)), 100)
    ax.plot(rr, 1 / (K * rr), color="C2", lw=2, label="δKω = ε (certificate)")
    ax.set(xscale="log", yscale="log", xlabel="channel ratio δ/ε", ylabel="weight norm ω = ‖W_l‖₂",
           ylim=(float(np.min(omegas)), float(np.max(omegas))), title="where critical points appear")
    ax.legend(fontsize=8, loc="lower left")
    return fig


def error_vs_ratio(ratios, errors, bound, *, ylabel: str, title: str):
    """Error against channel ratio δ/ε with the lower bound for networks without critical points."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 3.6), constrained_layout=True)
    ax.plot(_np(ratios), _np(errors), "o-", label="trained network")
    ax.axhline(bound, color="C3", ls="--", label=f"lower bound {bound:g} (no critical points)")
    ax.set(xscale="log", xlabel="channel ratio δ/ε", ylabel=ylabel, title=title)
    ax.legend(fontsize=8)
    return fig


def tunnel_vs_ratio(ratios, misclassified, widths):
    """Misclassified fraction and tunnel width against δ/ε (circles)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 3.6), constrained_layout=True)
    ax.plot(_np(ratios), _np(misclassified), "o-", color="C0", label="misclassified (test)")
    ax.set(xscale="log", xlabel="channel ratio δ/ε", ylabel="misclassified fraction", title="circles")
    ax2 = ax.twinx()
    ax2.plot(_np(ratios), _np(widths), "s--", color="C1", label="tunnel width")
    ax2.set_ylabel("tunnel width (standardised units)")
    fig.legend(fontsize=8, loc="upper center")
    return fig
