"""Figures of the tunnel-effect reproduction and of the studies beyond it.

Every function takes plain arrays (numpy or torch) and returns the matplotlib Figure (callers
save and close it; tests inspect its artists).  Conventions, so that a figure reads on its own:
labelled axes (the inputs x₁, x₂ are standardised, dimensionless), a labelled colour bar wherever
colour encodes a value, a legend entry for every line style and marker, the decision level drawn
as the curves {Φ = level} that :func:`analysis.approximation.tunnel_effect.level_sets` computes
(the one contouring of the project) and named in the legend, the two classes as two
colour-blind-safe markers (Okabe–Ito blue circles, orange triangles), constrained layout so
titles fit.
matplotlib is imported lazily with the Agg backend, so nothing here needs a display.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np

from analysis.plots import pyplot

if TYPE_CHECKING:
    from matplotlib.figure import Figure
    from numpy.typing import ArrayLike

    from analysis.approximation.tunnel_effect import TunnelResult

CLASS_STYLE = ({"marker": "o", "color": "#0072B2", "label": "class 0 (inner)"},
               {"marker": "^", "color": "#E69F00", "label": "class 1 (outer)"})
DECISION_COLOUR = "k"
COMPONENT_COLOUR = "#009E73"


def _np(a: Any) -> np.ndarray:
    return a.detach().cpu().numpy() if hasattr(a, "detach") else np.asarray(a)


def _grid(xs: Any, ys: Any, values: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    xs, ys, values = _np(xs), _np(ys), _np(values)
    if xs.ndim == 2:  # meshgrids given: their first row / column
        xs, ys = xs[0], ys[:, 0]
    if values.shape != (len(ys), len(xs)):
        raise ValueError(f"values must have shape (len(ys), len(xs)) = {(len(ys), len(xs))}; got {values.shape}")
    return xs, ys, values


def _scatter_classes(ax, x, y, *, size: float = 10, alpha: float = 0.8):
    """The points x (N, 2) with labels y (N,) in {0, 1} as two marker styles (PathCollections)."""
    x, y = _np(x), _np(y).ravel()
    for label, style in enumerate(CLASS_STYLE):
        sel = y == label
        ax.scatter(x[sel, 0], x[sel, 1], s=size, marker=style["marker"], facecolor=style["color"],
                   edgecolor="k", linewidths=0.2, alpha=alpha, label=style["label"])


def _draw_level_sets(ax, xs, ys, values, level: float, *, gid: str, **style):
    """Draw the curves {Φ = level} that :func:`analysis.approximation.tunnel_effect.level_sets`
    computes, as one LineCollection with this ``gid``; returns it."""
    from matplotlib.collections import LineCollection

    from analysis.approximation.tunnel_effect import level_sets

    lines = LineCollection(level_sets(values, xs, ys, level), gid=gid, **style)
    ax.add_collection(lines)
    return lines


def _decision_contour(ax, xs, ys, values, level: float, lw: float = 2.0):
    """The curve {Φ = level} (a LineCollection with gid ``"decision level"``); returns a legend proxy."""
    from matplotlib.lines import Line2D

    _draw_level_sets(ax, xs, ys, values, level, gid="decision level", colors=DECISION_COLOUR, linewidths=lw)
    return Line2D([], [], color=DECISION_COLOUR, lw=lw, label=f"decision level Φ = {level:g}")


def _component(ax, xs, ys, mask):
    """Shade the centre's component of {Φ < level}; returns a legend proxy."""
    from matplotlib.patches import Patch

    ax.contourf(xs, ys, _np(mask).astype(float), levels=[0.5, 1.5], colors=[COMPONENT_COLOUR], alpha=0.3)
    return Patch(facecolor=COMPONENT_COLOUR, alpha=0.3, label="centre's component of {Φ < level}")


def _plane_axes(ax):
    ax.set(aspect="equal", xlabel="x₁ (standardised)", ylabel="x₂ (standardised)")


# --- 1D -------------------------------------------------------------------------------------
def one_d_panels(x_data: ArrayLike, y_data: ArrayLike, x_grid: ArrayLike, y_fit: ArrayLike,
                 layers: Sequence[Mapping[str, Any]], critical_x: ArrayLike, *, title: str) -> Figure:
    """The paper's three 1D panels: the fit with its critical points, the block parameters with the
    fold threshold -ε/δ, and each block's derivative F_l'(h_l(x)) with its zeros.

    ``x_data``, ``y_data``: the training pairs (N,); ``x_grid``, ``y_fit``: the fit Φ on a grid (G,).

    ``layers``: one dict per block with keys ``w``, ``b`` (the block's weight and bias),
    ``dF`` (F_l'(h_l(x)) along x_grid), ``zeros`` (the inputs x where F_l' vanishes) and
    optionally ``threshold``.  ``critical_x``: the critical points of Φ.
    """
    from matplotlib.lines import Line2D

    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(13, 4), layout="constrained")
    ax = axes[0]
    ax.plot(_np(x_data), _np(y_data), ".", ms=3, color="0.6", label="training data")
    ax.plot(_np(x_grid), _np(x_grid) ** 2, "--", color="0.3", lw=1, label="target x²")
    ax.plot(_np(x_grid), _np(y_fit), color="C0", lw=2, label="network Φ(x)")
    crit = _np(critical_x).ravel()
    for c in crit:
        ax.axvline(c, color="C3", lw=1, ls=":")
    if len(crit):
        ax.plot([], [], color="C3", lw=1, ls=":", label="critical point of Φ")
    ax.set(title="fit", xlabel="x", ylabel="y")
    ax.legend(fontsize=8)
    ax = axes[1]
    idx = np.arange(len(layers))
    ax.bar(idx - 0.18, [float(l["w"]) for l in layers], width=0.36, label="weight w_l")
    ax.bar(idx + 0.18, [float(l["b"]) for l in layers], width=0.36, label="bias b_l")
    if layers and "threshold" in layers[0]:
        ax.axhline(layers[0]["threshold"], color="C3", lw=1, ls="--", label="-ε/δ (fold threshold)")
    ax.axhline(0, color="0.5", lw=0.5)
    ax.set(title="block parameters", xlabel="block l", ylabel="value", xticks=idx)
    ax.legend(fontsize=8)
    ax = axes[2]
    for l, layer in enumerate(layers):
        ax.plot(_np(x_grid), _np(layer["dF"]), label=f"F_{l}'(h_{l}(x))")
        for z in _np(layer["zeros"]).ravel():
            ax.plot(z, 0.0, "x", color="C3", ms=8, mew=2)
    ax.axhline(0, color="0.5", lw=0.5)
    handles, labels = ax.get_legend_handles_labels()
    handles.append(Line2D([], [], ls="", marker="x", color="C3", ms=8, mew=2))
    labels.append("zero of F_l' (critical point)")
    ax.set(title="layer derivatives", xlabel="x", ylabel="F_l'(h_l(x))")
    ax.legend(handles, labels, fontsize=8)
    fig.suptitle(title, fontsize=10)
    return fig


def one_d_fits(x_grid: ArrayLike, fits: Sequence[ArrayLike], seeds: Sequence[int],
               has_critical_points: Sequence[bool], *, title: str) -> Figure:
    """Every seed's fit Φ(x) over the target x²: solid for networks with critical points, dashed
    for those without (monotone, so sup error ≥ 1/2).

    ``x_grid`` (G,); ``fits``, ``seeds``, ``has_critical_points``: one entry per seed, a fit (G,)."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 4), layout="constrained")
    x = _np(x_grid)
    ax.plot(x, x ** 2, color="k", lw=2, label="target x²")
    for k, (fit, s, crit) in enumerate(zip(fits, seeds, has_critical_points)):
        ax.plot(x, _np(fit), color="C3" if crit else "C0", ls="-" if crit else "--", lw=0.8, alpha=0.7)
    ax.plot([], [], color="C3", ls="-", lw=0.8, label="a seed with critical points")
    ax.plot([], [], color="C0", ls="--", lw=0.8, label="a seed without (monotone)")
    ax.set(title=title, xlabel="x", ylabel="Φ(x)")
    ax.legend(fontsize=8)
    return fig


# --- 2D -------------------------------------------------------------------------------------
def probability_map(xs: ArrayLike, ys: ArrayLike, prob: ArrayLike, x_data: ArrayLike, y_data: ArrayLike, *,
                    level: float = 0.5, component_mask: ArrayLike | None = None, title: str) -> Figure:
    """Filled Φ = P(class 1) over the plane (colour bar), the decision level, the centre's
    component of {Φ < level} (if given) and the labelled points.

    ``xs`` (nx,), ``ys`` (ny,) (or their meshgrids), ``prob`` and ``component_mask`` (ny, nx),
    ``x_data`` (N, 2), ``y_data`` (N,) in {0, 1}.  Raises ValueError if ``prob`` is not (ny, nx)."""
    plt = pyplot()
    xs, ys, prob = _grid(xs, ys, prob)
    fig, ax = plt.subplots(figsize=(5.6, 5), layout="constrained")
    cs = ax.contourf(xs, ys, prob, levels=np.linspace(0, 1, 21), cmap="RdBu_r", alpha=0.85)
    fig.colorbar(cs, ax=ax, label="Φ(x) = predicted P(class 1)")
    handles = [_decision_contour(ax, xs, ys, prob, level)]
    if component_mask is not None:
        handles.append(_component(ax, xs, ys, component_mask))
    _scatter_classes(ax, x_data, y_data)
    _plane_axes(ax)
    ax.set_title(title, fontsize=9)
    h, _ = ax.get_legend_handles_labels()
    ax.legend(handles=h + handles, fontsize=7, loc="upper right", framealpha=0.8)
    return fig


def plot_level_sets(xs: ArrayLike, ys: ArrayLike, values: ArrayLike, level: float, *,
                    component_mask: ArrayLike | None = None, x_data: ArrayLike | None = None,
                    y_data: ArrayLike | None = None, title: str, n_levels: int = 15) -> Figure:
    """Level sets of Φ on the grid (values (len(ys), len(xs))): the curves {Φ = c} of
    :func:`analysis.approximation.tunnel_effect.level_sets` at ``n_levels`` values c evenly spaced
    inside (min Φ, max Φ), coloured by c (colour bar), the decision level {Φ = ``level``} bold, the
    centre's component of {Φ < level} shaded and the data overlaid (``x_data`` (N, 2), ``y_data``
    (N,)).  Raises ValueError if ``values`` is not (len(ys), len(xs))."""
    from matplotlib import colors
    from matplotlib.cm import ScalarMappable

    plt = pyplot()
    xs, ys, values = _grid(xs, ys, values)
    fig, ax = plt.subplots(figsize=(5.6, 5), layout="constrained")
    lo, hi = float(values.min()), float(values.max())
    norm, cmap = colors.Normalize(lo, hi), plt.get_cmap("viridis")
    for c in np.linspace(lo, hi, n_levels + 2)[1:-1]:
        _draw_level_sets(ax, xs, ys, values, c, gid="level set", colors=[cmap(norm(c))], linewidths=0.8)
    ax.set(xlim=(xs[0], xs[-1]), ylim=(ys[0], ys[-1]))
    fig.colorbar(ScalarMappable(norm, cmap), ax=ax, label="Φ(x) (level of the contour lines)")
    handles = [_decision_contour(ax, xs, ys, values, level, lw=2.5)]
    if component_mask is not None:
        handles.append(_component(ax, xs, ys, component_mask))
    if x_data is not None:
        _scatter_classes(ax, x_data, y_data, size=6, alpha=0.5)
    _plane_axes(ax)
    ax.set_title(title, fontsize=9)
    h, _ = ax.get_legend_handles_labels()
    ax.legend(handles=h + handles, fontsize=7, loc="upper right", framealpha=0.8)
    return fig


def tunnel_level_sets(result: TunnelResult, x_data: ArrayLike | None = None, y_data: ArrayLike | None = None, *,
                      title: str) -> Figure:
    """:func:`plot_level_sets` of an analysis.approximation.tunnel_effect.TunnelResult (its grid, values,
    level and the centre's component), with its verdict and width in the title."""
    verdict = result.verdict + (f", width {result.width:.3f}" if result.tunnel else "")
    return plot_level_sets(result.xs, result.ys, result.values, result.level, component_mask=result.mask,
                      x_data=x_data, y_data=y_data, title=f"{title}\n{verdict}")


def decision_boundaries(xs: ArrayLike, ys: ArrayLike, values: Sequence[ArrayLike], level: float,
                        titles: Sequence[str], *, x_data: ArrayLike | None = None, y_data: ArrayLike | None = None,
                        highlight: int | None = None, title: str) -> Figure:
    """Small multiples: the decision boundary {Φ_k = level} of every member k (values: a list of
    (ny, nx) arrays), the inner-class region {Φ_k < level} shaded, the data faint; panel
    ``highlight`` (the representative) framed; ``titles``: one per member.  Raises ValueError if a
    member's values are not (ny, nx)."""
    from matplotlib.patches import Patch

    plt = pyplot()
    K = len(values)
    cols = min(K, 4)
    rows = -(-K // cols)
    # a fixed grid instead of constrained layout, which costs ~0.1 s per panel to solve: the panel
    # titles are short and the margins below leave room for the suptitle and the legend
    height = 2.6 * rows + 1.0
    fig, axes = plt.subplots(rows, cols, figsize=(2.6 * cols + 0.4, height), squeeze=False, sharex=True, sharey=True)
    fig.subplots_adjust(left=0.35 / (2.6 * cols + 0.4) + 0.04, right=0.98, top=1 - 0.55 / height,
                        bottom=0.75 / height, hspace=0.3, wspace=0.08)
    proxy = None
    for k, ax in enumerate(axes.ravel()):
        if k >= K:
            ax.set_axis_off()
            continue
        gx, gy, v = _grid(xs, ys, values[k])
        ax.contourf(gx, gy, (v < level).astype(float), levels=[0.5, 1.5], colors=[CLASS_STYLE[0]["color"]],
                    alpha=0.25)
        proxy = _decision_contour(ax, gx, gy, v, level, lw=1.5)
        if x_data is not None:
            _scatter_classes(ax, x_data, y_data, size=2, alpha=0.35)
        ax.set_aspect("equal")
        ax.set_title(titles[k], fontsize=8)
        if k == highlight:
            for side in ax.spines.values():
                side.set(color="C3", linewidth=2.5)
        if k % cols == 0:
            ax.set_ylabel("x₂")
        if k >= K - cols:
            ax.set_xlabel("x₁")
    handles = [proxy, Patch(facecolor=CLASS_STYLE[0]["color"], alpha=0.25, label=f"predicted class 0 (Φ < {level:g})")]
    if x_data is not None:
        h, _ = axes[0, 0].get_legend_handles_labels()
        handles += h
    fig.legend(handles=handles, loc="lower center", ncol=min(len(handles), 4), fontsize=8, frameon=False, markerscale=4)
    fig.suptitle(title, fontsize=10)
    return fig


def trajectories(states: ArrayLike, labels: ArrayLike, *, title: str) -> Figure:
    """Trajectories h_0 → h_L of sample points through the layers (first two state coordinates),
    coloured by class, start and end marked.  ``states`` (L+1, N, d ≥ 2): h_l of N points,
    ``labels`` (N,) (class 1 where > 0.5)."""
    from matplotlib.lines import Line2D

    from matplotlib.collections import LineCollection

    plt = pyplot()
    states, labels = _np(states), _np(labels).ravel()
    fig, ax = plt.subplots(figsize=(5.2, 4.6), layout="constrained")
    for label, style in enumerate(CLASS_STYLE):  # one collection per class: fast to draw
        sel = (labels > 0.5) == bool(label)
        paths = np.transpose(states[:, sel, :2], (1, 0, 2))
        ax.add_collection(LineCollection(list(paths), colors=style["color"], linewidths=0.6, alpha=0.6))
        ax.plot(paths[:, 0, 0], paths[:, 0, 1], "o", color=style["color"], ms=2)
        ax.plot(paths[:, -1, 0], paths[:, -1, 1], "s", color=style["color"], ms=2.5)
    ax.autoscale_view()
    handles = [Line2D([], [], color=CLASS_STYLE[0]["color"], label="class 0 trajectory"),
               Line2D([], [], color=CLASS_STYLE[1]["color"], label="class 1 trajectory"),
               Line2D([], [], ls="", marker="o", color="0.3", ms=3, label="h_0 (after the input map)"),
               Line2D([], [], ls="", marker="s", color="0.3", ms=3, label="h_L (before the output map)")]
    ax.legend(handles=handles, fontsize=7, loc="best", framealpha=0.8)
    ax.set(xlabel="h₁ (state coordinate 1)", ylabel="h₂ (state coordinate 2)")
    ax.set_title(title, fontsize=9)
    return fig


def singular_value_maps(xs: ArrayLike, ys: ArrayLike, maps: Sequence[ArrayLike], titles: Sequence[str], *,
                        marker: tuple[float, float] | None = None, suptitle: str) -> Figure:
    """A row of log₁₀ σ_min maps (one per partial network, one shared colour scale and labelled
    colour bar); ``marker`` (x, y) marks a point such as the injected critical point.  Each map is
    σ_min on the grid, (ny, nx) (floored at 1e-16 before the log); ValueError otherwise."""
    plt = pyplot()
    logs = [np.log10(np.maximum(_grid(xs, ys, m)[2], 1e-16)) for m in maps]
    vmin, vmax = min(float(l.min()) for l in logs), max(float(l.max()) for l in logs)
    gx, gy = _grid(xs, ys, maps[0])[:2]
    fig, axes = plt.subplots(1, len(maps), figsize=(3.0 * len(maps) + 1, 3.6), layout="constrained", squeeze=False)
    levels = np.linspace(vmin, vmax if vmax > vmin else vmin + 1, 21)
    cs = None
    for ax, l, t in zip(axes[0], logs, titles):
        cs = ax.contourf(gx, gy, l, levels=levels, cmap="viridis")
        if marker is not None:
            ax.plot(*marker, "x", color="C3", ms=8, mew=2, label="injected critical point x₀")
        ax.set(title=t, aspect="equal", xlabel="x₁ (standardised)")
    axes[0, 0].set_ylabel("x₂ (standardised)")
    fig.colorbar(cs, ax=axes[0].tolist(), label="log₁₀ σ_min of the Jacobian")
    if marker is not None:
        axes[0, 0].legend(fontsize=7, loc="upper right")
    fig.suptitle(suptitle, fontsize=10)
    return fig


def loss_curves(histories: Mapping[str, Mapping[str, Any]], *, title: str) -> Figure:
    """One panel per run: every seed's validation loss (thin grey), the representative seed's
    training (solid) and validation (dashed) loss and its selected epoch (dot).

    ``histories``: run name -> dict(train_loss (K, E+1), val_loss (K, E+1), best_epoch (K,),
    representative (index))."""
    from matplotlib.lines import Line2D

    plt = pyplot()
    n = len(histories)
    cols = min(n, 3)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.0 * rows + 0.7), layout="constrained", squeeze=False)
    for k, (ax, (name, h)) in enumerate(zip(axes.ravel(), histories.items())):
        train, val = np.atleast_2d(_np(h["train_loss"])), np.atleast_2d(_np(h["val_loss"]))
        best, rep = np.atleast_1d(_np(h["best_epoch"])), int(h.get("representative", 0))
        if np.isfinite(val).any():
            for v in val:
                ax.semilogy(v, color="0.75", lw=0.6)
            ax.semilogy(val[rep], color="C1", lw=1.2, ls="--")
            ax.plot(best[rep], val[rep][best[rep]], "o", color="C1", ms=5)
        ax.semilogy(train[rep], color="C0", lw=1.2)
        ax.set_title(name, fontsize=9)
        ax.set(xlabel="epoch", ylabel="loss")
    for ax in axes.ravel()[n:]:
        ax.set_axis_off()
    handles = [Line2D([], [], color="C0", lw=1.2, label="training loss (representative seed)"),
               Line2D([], [], color="C1", lw=1.2, ls="--", label="validation loss (representative seed)"),
               Line2D([], [], color="C1", ls="", marker="o", label="selected epoch"),
               Line2D([], [], color="0.75", lw=0.6, label="validation loss, every seed")]
    fig.legend(handles=handles, loc="outside lower center", ncol=4, fontsize=8)
    fig.suptitle(title, fontsize=10)
    return fig


# --- beyond the paper ---------------------------------------------------------------------------
def plot_phase_diagram(ratios: ArrayLike, omegas: ArrayLike, fraction: ArrayLike, *, K: float = 1.0) -> Figure:
    """Fraction of random networks with critical points over (δ/ε, ω), with the certificate line
    δ K ω = ε, i.e. ω = 1 / (K r).  ``ratios`` (R,), ``omegas`` (W,), ``fraction`` (R, W) in [0, 1]."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.4, 4.2), layout="constrained")
    r, w = np.meshgrid(_np(ratios), _np(omegas), indexing="ij")
    cs = ax.pcolormesh(r, w, _np(fraction), shading="nearest", cmap="magma", vmin=0, vmax=1)
    fig.colorbar(cs, ax=ax, label="fraction of networks with critical points")
    rr = np.geomspace(float(np.min(ratios)), float(np.max(ratios)), 100)
    ax.plot(rr, 1 / (K * rr), color="C2", lw=2, label="δKω = ε (certificate line)")
    ax.set(xscale="log", yscale="log", xlabel="channel ratio δ/ε", ylabel="weight norm ω = ‖W_l‖₂",
           ylim=(float(np.min(omegas)), float(np.max(omegas))), title="where critical points appear")
    ax.legend(fontsize=8, loc="lower left")
    return fig


def error_vs_ratio(ratios: ArrayLike, errors: ArrayLike, bound: float, *, ylabel: str, title: str) -> Figure:
    """Error against channel ratio δ/ε (``ratios``, ``errors``: (R,)) on a log x-axis, with the lower
    bound ``bound`` for networks without critical points as a horizontal line."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.4, 3.8), layout="constrained")
    ax.plot(_np(ratios), _np(errors), "o-", label="trained network")
    ax.axhline(bound, color="C3", ls="--", label=f"lower bound {bound:g} (no critical points)")
    ax.set(xscale="log", xlabel="channel ratio δ/ε", ylabel=ylabel, title=title)
    ax.legend(fontsize=8)
    return fig


def tunnel_vs_ratio(ratios: ArrayLike, misclassified: ArrayLike, widths: ArrayLike) -> Figure:
    """Misclassified fraction (left axis) and tunnel width (right axis, 0: no tunnel) against δ/ε
    (circles); all three arrays (R,)."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.4, 3.8), layout="constrained")
    ax.plot(_np(ratios), _np(misclassified), "o-", color="C0", label="misclassified (test)")
    ax.set(xscale="log", xlabel="channel ratio δ/ε", ylabel="misclassified fraction", title="circles, L = 10, ε = 1")
    ax2 = ax.twinx()
    ax2.plot(_np(ratios), _np(widths), "s--", color="C1", label="tunnel width (0: no tunnel)")
    ax2.set_ylabel("tunnel width (standardised units)")
    h1, l1 = ax.get_legend_handles_labels()
    h2, l2 = ax2.get_legend_handles_labels()
    ax.legend(h1 + h2, l1 + l2, fontsize=8, loc="best")
    return fig
