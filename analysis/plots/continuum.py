"""Figures of the continuum-limit diagnostics: log-log plots with reference slopes.

Every ``plot_*`` function takes the records of :mod:`analysis.continuum.convergence`,
:mod:`analysis.continuum.depth_regularity` or :mod:`analysis.continuum.init_scaling`, draws into
``ax`` (a new figure when None) and returns the Figure (``plot_work_precision`` draws what
``work_precision`` computed: a name means one thing); :func:`save` writes it.  matplotlib is
imported lazily with the Agg backend.

A reference slope p is the line C x^p through the first point of the data it accompanies, drawn
dashed in grey and labelled "slope p".
"""
from __future__ import annotations

import os
from typing import TYPE_CHECKING, Sequence

import numpy as np

from analysis.plots import pyplot

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from numpy.typing import ArrayLike

    from analysis.continuum.convergence import ConvergenceStudy, OrderFit, WorkPrecision
    from analysis.continuum.depth_regularity import DepthSeries, RegularityExponents
    from analysis.continuum.init_scaling import InitScaling



def _axes(ax, figsize=(5.2, 4.0)):
    if ax is not None:
        return ax.figure, ax
    fig, ax = pyplot().subplots(figsize=figsize, constrained_layout=True)
    return fig, ax


def reference_slopes(ax: Axes, x: ArrayLike, y: ArrayLike, slopes: Sequence[float], *, offset: float = 2.0) -> None:
    """Dashed lines y = C x^p for each p in ``slopes`` over the range of ``x``, through
    (x[0], offset · y[0]), labelled at x[-1].  ``x`` and ``y``: 1-D, ``x`` positive."""
    x = np.asarray(x, dtype=float)
    x0, y0 = x[0], offset * float(np.asarray(y, dtype=float)[0])
    xs = np.array([x[0], x[-1]])
    for i, p in enumerate(slopes):
        ax.plot(xs, y0 * (xs / x0) ** p, ls=(0, (4, 2 + i)), color="0.55", lw=1)
        ax.annotate(f"slope {p:g}", (xs[-1], y0 * (xs[-1] / x0) ** p), fontsize=7, color="0.4",
                    xytext=(3, 3), textcoords="offset points")


def _fit_label(fit) -> str:
    if fit is None:
        return ""
    return f", p = {fit.order:.2f} [{fit.ci_low:.2f}, {fit.ci_high:.2f}]"


def method_order(method: str, fit: OrderFit | None = None) -> float | None:
    """The order of convergence of the fixed-step ``method`` (euler 1, heun 2, midpoint 2, rk4 4:
    the reference slope its errors should follow); for another method the rounded fitted order of
    ``fit`` (None without one).  (A fitted order is not the method's: rk4's errors on a smooth
    field may fit 4.6 before round-off, which would draw a misleading "slope 5".)"""
    from solvers import FIXED_METHODS

    if method in FIXED_METHODS:
        return FIXED_METHODS[method].order
    return None if fit is None else round(fit.order)


def plot_convergence(studies: Sequence[ConvergenceStudy], *, norm: str = "sup", ax: Axes | None = None,
                     slopes: Sequence[float] | None = None, title: str | None = None) -> Figure:
    """Error (or, without a reference, the increment ‖y_h - y_{h/2}‖) against the step h for each
    :class:`~analysis.continuum.convergence.ConvergenceStudy`, with its fitted order in the legend and a
    reference slope next to it (``slopes[i]`` for study i; default the order of its method, e.g. 4
    for rk4, or its rounded fitted order for a method of unknown order).  ``norm``: "sup" or "rms";
    unresolved points (below the reference's accuracy) are drawn as crosses."""
    fig, ax = _axes(ax)
    studies = list(studies)
    for i, s in enumerate(studies):
        err = getattr(s, f"err_{norm}")
        fit = getattr(s, f"fit_{norm}")
        if np.isnan(err).all():
            h, err = s.h[:-1], getattr(s, f"increment_{norm}")
            label = f"{s.method} (Richardson){_fit_label(fit)}"
            resolved = np.ones(len(h), dtype=bool)
        else:
            h, label, resolved = s.h, f"{s.method}{_fit_label(fit)}", s.resolved
        line, = ax.loglog(h[resolved], err[resolved], "o-", color=f"C{i}", label=label, ms=4)
        if (~resolved).any():
            ax.loglog(h[~resolved], err[~resolved], "x", color=line.get_color(), ms=6)
    for i, s in enumerate(studies):  # each study's reference slope: given, the method's order, or the fit's
        p = slopes[i] if slopes is not None and i < len(slopes) else method_order(s.method, s.fit_sup)
        y = s.err_sup if not np.isnan(s.err_sup).all() else s.increment_sup
        if p is not None:
            reference_slopes(ax, s.h[: len(y)], y, (p,))
    xlabel = "layer step h = T / L" if studies and studies[0].kind == "depth" else "step h"
    ax.set(xlabel=xlabel, ylabel=f"{norm} error at T", title=title or "convergence to the flow")
    ax.invert_xaxis()
    ax.legend(fontsize=7)
    return fig


def plot_work_precision(wp: WorkPrecision, *, norm: str = "sup", ax: Axes | None = None,
                        title: str | None = None) -> Figure:
    """Error against the number of field evaluations, one line per method, with the fitted slope
    of log err on log nfev in the legend."""
    fig, ax = _axes(ax)
    methods = np.array(wp.method)
    err = getattr(wp, f"err_{norm}")
    for i, m in enumerate(dict.fromkeys(wp.method)):
        sel = methods == m
        slope = wp.slopes.get(m)
        label = m if slope is None else f"{m} (slope {slope:.2f})"
        ax.loglog(wp.nfev[sel], np.maximum(err[sel], 1e-17), "o-", color=f"C{i}", ms=4, label=label)
    ax.set(xlabel="field evaluations (nfev)", ylabel=f"{norm} error at T", title=title or "work-precision")
    ax.legend(fontsize=7)
    return fig


def plot_depth_series(series: Sequence[DepthSeries], *, norm: str = "rms", ax: Axes | None = None,
                      slopes: Sequence[float] = (-1.0, 0.0), labels: Sequence[str] | None = None,
                      title: str | None = None) -> Figure:
    """Distances against depth L (solver swap, reverse-Euler reconstruction, ...) for each
    :class:`~analysis.continuum.depth_regularity.DepthSeries`, with fitted exponents and reference slopes."""
    fig, ax = _axes(ax)
    series = list(series)
    for i, s in enumerate(series):
        v = getattr(s, f"value_{norm}")
        name = labels[i] if labels else s.quantity
        ax.loglog(s.depths, v, "o-", color=f"C{i}", ms=4, label=f"{name}{_fit_label(getattr(s, f'fit_{norm}'))}")
    if series and slopes:
        reference_slopes(ax, series[0].depths, getattr(series[0], f"value_{norm}"), slopes)
    ax.set(xlabel="depth L", ylabel=f"{norm} distance", title=title or "against depth")
    ax.legend(fontsize=7)
    return fig


def plot_regularity(exponents: RegularityExponents, *, ax: Axes | None = None, title: str | None = None) -> Figure:
    """Max norm, max increment and rms increment of the block weights against depth with their
    exponents (:class:`~analysis.continuum.depth_regularity.RegularityExponents`) and slopes 0, -1/2, -1."""
    fig, ax = _axes(ax)
    for i, (k, sign) in enumerate((("max_norm", "α"), ("max_increment", "β_max"), ("rms_increment", "β"))):
        fit = getattr(exponents, f"fit_{k}")
        ax.loglog(exponents.depths, getattr(exponents, k), "o-", color=f"C{i}", ms=4,
                  label=f"{k.replace('_', ' ')} ({sign} = {-fit.order:.2f})")
    reference_slopes(ax, exponents.depths, exponents.rms_increment, (0.0, -0.5, -1.0))
    ax.set(xlabel="depth L", ylabel=f"{exponents.norm} norm", title=title or "weight regularity across depth")
    ax.legend(fontsize=7)
    return fig


def plot_init_scaling(study: InitScaling, *, ax: Axes | None = None, title: str | None = None) -> Figure:
    """Residual norm |h_L - h_0| at initialisation against L for every (weights, scaling)
    pairing of an :class:`~analysis.continuum.init_scaling.InitScaling`, slopes -1/2, 0, 1/2."""
    fig, ax = _axes(ax)
    k = 0
    for i, w in enumerate(study.weights):
        for j, s in enumerate(study.scalings):
            ax.loglog(study.depths, study.residual_norm[i, j], "o-", color=f"C{k}", ms=4,
                      label=f"{w}, δ = {s} (exponent {study.residual_exponent[i, j]:.2f})")
            k += 1
    reference_slopes(ax, study.depths, study.residual_norm[0, 0], (-0.5, 0.0, 0.5), offset=1.0)
    ax.set(xlabel="depth L", ylabel="rms |h_L - h_0| at initialisation", title=title or "initialisation scaling")
    ax.legend(fontsize=7)
    return fig


def plot_convergence_summary(studies: Sequence[ConvergenceStudy],
                             work_precision_record: WorkPrecision | None = None) -> Figure:
    """One figure of a ``odenet converge`` run: the refinement studies (:func:`plot_convergence`) on
    the left when there are any, the work-precision data (:func:`plot_work_precision`) on the right
    when given; a single panel when only one of them is.  Returns the Figure."""
    ncols = (len(studies) > 0) + (work_precision_record is not None)
    if ncols == 0:
        raise ValueError("plot_convergence_summary needs studies or a work_precision_record; got neither")
    fig, axes = pyplot().subplots(1, ncols, figsize=(5.2 * ncols, 4.0), constrained_layout=True, squeeze=False)
    if studies:
        plot_convergence(studies, ax=axes[0, 0])
    if work_precision_record is not None:
        plot_work_precision(work_precision_record, ax=axes[0, -1])
    return fig


def save(fig: Figure, path: str | os.PathLike, *, dpi: int = 110) -> None:
    """Write ``fig`` to ``path`` (format from the suffix) and close it."""
    fig.savefig(path, dpi=dpi)
    pyplot().close(fig)
