"""Tunnel detection (docs/theory.md §7): does the enclosed class's region escape to the boundary?

For Φ : R² → R and a decision level c, the inner class is predicted where Φ < c.  On a grid over a
window we label the connected components of the sublevel set {Φ < c} (4-connectivity,
scipy.ndimage.label) and take the component C of the grid point nearest the centre x₀:

- **tunnel** ⇔ C touches the window's boundary; **closed** otherwise (a network without critical
  points can only give a tunnel: a bounded C would hold an interior minimum of Φ);
- **area** = #C · Δx Δy;
- **width**: the narrowest cross-section of the tunnel.  With d(p) the Euclidean distance from
  cell p to the nearest cell outside C (scipy's distance_transform_edt; C continued past the
  window by edge replication so the window's edge is not a wall), r* = max over paths from x₀ to
  the boundary inside C of min_p d(p) (the bottleneck, found by bisection on the threshold).  At
  the cells with r* ≤ d < r* + Δ (the bottleneck cells) we measure chords of {Φ < c} through the
  cell in 90 directions, locating each crossing of Φ = c by linear interpolation along the chord,
  and report width = the shortest chord (sub-cell accurate for smooth Φ);
- **direction**: the unit vector from x₀ to the bottleneck point (where the narrowest chord was
  measured: the tunnel, not the wide region it may open into); the **exit point** is the cell of
  C ∩ {d ≥ r*} (connected to x₀) on the window's boundary nearest to the bottleneck;
- **points**: given labelled points, the misclassified ones ((Φ < c) ≠ (label = inner_label)) and
  those of them that lie in the tunnel component;
- **level set**: the curves Φ = c as polylines (contourpy, marching squares).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
from numpy.typing import ArrayLike
from scipy import ndimage

from solvers.validation import check_real
from analysis.io.schema import Array, Attr, Json, Ragged, Schema, register

VERDICTS = ("tunnel", "closed", "centre-outside")
_FOUR = ndimage.generate_binary_structure(2, 1)


@dataclass
class TunnelResult:
    """What :func:`tunnel` finds (grid of ny × nx points; values[i, j] = Φ(xs[j], ys[i])).

    Fields
    ------
    verdict : str
        ``"tunnel"`` (C touches the window's boundary), ``"closed"``, or ``"centre-outside"``
        (Φ(x₀) ≥ level: the centre is not even predicted as the inner class).
    tunnel : bool
        verdict == "tunnel".
    level : float
    window : tuple (xmin, xmax, ymin, ymax)
    centre : ndarray (2,)
    xs : ndarray (nx,), ys : ndarray (ny,)
        Grid coordinates.
    values : ndarray (ny, nx)
        Φ on the grid.
    mask : ndarray (ny, nx) bool
        The centre's component C of {Φ < level}.
    n_components : int
        Number of components of {Φ < level} in the window.
    area : float
        Area of C in input units².
    width : float
        Narrowest chord of the tunnel (input units); NaN unless a tunnel.
    bottleneck : ndarray (2,)
        The point where that chord was measured (NaN unless a tunnel).
    direction : ndarray (2,)
        Unit vector from the centre to the bottleneck (NaN unless a tunnel).
    angle : float
        atan2 of the direction, radians in (-π, π] (NaN unless a tunnel).
    exit_point : ndarray (2,)
        Where the tunnel leaves the window: the boundary cell of C nearest the bottleneck
        (NaN unless a tunnel).
    level_set : list of ndarray (k, 2)
        The curves Φ = level as polylines (x, y).
    misclassified : ndarray int
        Indices of the given points whose predicted class is wrong (empty without points).
    tunnel_points : ndarray int
        Indices of misclassified points inside C when there is a tunnel (the points the tunnel costs).
    """

    verdict: str
    tunnel: bool
    level: float
    window: tuple
    centre: np.ndarray
    xs: np.ndarray
    ys: np.ndarray
    values: np.ndarray
    mask: np.ndarray
    n_components: int
    area: float
    width: float
    bottleneck: np.ndarray
    direction: np.ndarray
    angle: float
    exit_point: np.ndarray
    level_set: list = field(default_factory=list)
    misclassified: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    tunnel_points: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    @property
    def cell(self) -> tuple[float, float]:
        """Grid spacing (Δx, Δy)."""
        return float(self.xs[1] - self.xs[0]), float(self.ys[1] - self.ys[0])

    def __repr__(self) -> str:
        return (f"TunnelResult(verdict={self.verdict!r}, area={self.area:.4g}, width={self.width:.4g}, "
                f"angle={self.angle:.4g}, n_tunnel_points={len(self.tunnel_points)}, "
                f"grid={len(self.ys)}x{len(self.xs)})")


# --- evaluation -------------------------------------------------------------------------------
def evaluate_scalar(fn: Callable[[torch.Tensor], torch.Tensor], points: ArrayLike, chunk: int = 1 << 16) -> np.ndarray:
    """Φ at points (N, 2) as a float64 array (N,); ``fn`` maps a (B, 2) float64 tensor to (B,) or
    (B, 1) (a model in eval mode, or any torch function).  No gradients are recorded."""
    pts = torch.as_tensor(np.asarray(points, dtype=np.float64))
    out = []
    with torch.no_grad():
        for i in range(0, len(pts), chunk):
            v = fn(pts[i:i + chunk])
            v = torch.as_tensor(v)
            if v.ndim == 2 and v.shape[1] == 1:
                v = v[:, 0]
            if v.shape != (len(pts[i:i + chunk]),):
                raise ValueError(f"fn must return one value per point, shape (B,) or (B, 1); got {tuple(v.shape)}")
            out.append(v.detach().to(torch.float64).cpu().numpy())
    return np.concatenate(out)


def _check_window(window) -> tuple[float, float, float, float]:
    w = np.asarray(window, dtype=np.float64).reshape(-1)
    if w.shape != (4,) or not np.all(np.isfinite(w)):
        raise ValueError(f"window must be finite (xmin, xmax, ymin, ymax) or ((xmin, xmax), (ymin, ymax)); "
                         f"got {window!r}")
    xmin, xmax, ymin, ymax = map(float, w)
    if not (xmin < xmax and ymin < ymax):
        raise ValueError(f"window must have xmin < xmax and ymin < ymax; got {window!r}")
    return xmin, xmax, ymin, ymax


def _check_resolution(resolution) -> tuple[int, int]:
    r = (resolution, resolution) if np.isscalar(resolution) else tuple(resolution)
    if len(r) != 2 or any(isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 3 for v in r):
        raise ValueError(f"resolution must be an int >= 3 or a pair (nx, ny) of such; got {resolution!r}")
    return int(r[0]), int(r[1])


def grid(window: ArrayLike, resolution: int | tuple[int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(xs (nx,), ys (ny,), points (ny nx, 2)) of the grid x_j = xmin + j Δx, y_i = ymin + i Δy,
    points in row-major order (row i = ys[i])."""
    xmin, xmax, ymin, ymax = _check_window(window)
    nx, ny = _check_resolution(resolution)
    xs, ys = np.linspace(xmin, xmax, nx), np.linspace(ymin, ymax, ny)
    X, Y = np.meshgrid(xs, ys)
    return xs, ys, np.stack([X.ravel(), Y.ravel()], axis=1)


def level_sets(values: np.ndarray, xs: np.ndarray, ys: np.ndarray, level: float) -> list[np.ndarray]:
    """The curves {Φ = level} of gridded values (ny, nx) as a list of (k, 2) polylines (x, y),
    by marching squares (contourpy); closed curves repeat their first point at the end."""
    import contourpy

    gen = contourpy.contour_generator(xs, ys, values, line_type=contourpy.LineType.Separate)
    return [np.asarray(line, dtype=np.float64) for line in gen.lines(float(level))]


# --- the tunnel -------------------------------------------------------------------------------
def _touches_edge(mask: np.ndarray) -> bool:
    return bool(mask[0].any() or mask[-1].any() or mask[:, 0].any() or mask[:, -1].any())


def _component_of(mask: np.ndarray, ij: tuple[int, int]) -> np.ndarray:
    lab, _ = ndimage.label(mask, structure=_FOUR)
    k = lab[ij]
    return lab == k if k else np.zeros_like(mask)


def _edge_cells(shape):
    e = np.zeros(shape, dtype=bool)
    e[0], e[-1], e[:, 0], e[:, -1] = True, True, True, True
    return e


def _bottleneck(comp: np.ndarray, dist: np.ndarray, ij) -> float:
    """r* = max over paths from ij to the edge inside comp of the least dist on the path."""
    vals = np.unique(dist[comp])
    vals = vals[vals <= dist[ij]]
    lo, hi = 0, len(vals) - 1  # vals[lo] always connects (it is the whole component)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if _touches_edge(_component_of(comp & (dist >= vals[mid]), ij)):
            lo = mid
        else:
            hi = mid - 1
    return float(vals[lo])


def _chords(fn, centres: np.ndarray, level: float, reach: float, n_dir: int = 90, n_s: int = 128) -> np.ndarray:
    """Shortest chord of {Φ < level} through each centre (C, 2): for directions θ_k = π k / n_dir
    the crossings of Φ = level along ±(cos θ, sin θ) within ``reach`` are located by linear
    interpolation between samples; a line with no crossing on one side counts as infinite."""
    th = np.pi * np.arange(n_dir) / n_dir
    u = np.stack([np.cos(th), np.sin(th)], 1)                      # (D, 2)
    s = reach * np.arange(n_s + 1) / n_s                            # (S,)
    rays = np.concatenate([u, -u])                                   # (2D, 2)
    pts = centres[:, None, None, :] + rays[None, :, None, :] * s[None, None, :, None]  # (C, 2D, S, 2)
    v = evaluate_scalar(fn, pts.reshape(-1, 2)).reshape(pts.shape[:3]) - level
    out = v >= 0
    first = np.where(out.any(-1), out.argmax(-1), -1)               # first sample outside
    k = np.clip(first, 1, n_s)
    v0 = np.take_along_axis(v, (k - 1)[..., None], -1)[..., 0]
    v1 = np.take_along_axis(v, k[..., None], -1)[..., 0]
    frac = np.where(v1 != v0, -v0 / np.where(v1 != v0, v1 - v0, 1.0), 0.0)
    dist = np.where(first > 0, s[k - 1] + np.clip(frac, 0, 1) * (s[1] - s[0]), np.inf)
    dist = np.where(first == 0, 0.0, dist)                           # centre itself not below level
    chord = dist[:, :n_dir] + dist[:, n_dir:]
    return chord.min(axis=1)


def tunnel(fn: Callable[[torch.Tensor], torch.Tensor], window: ArrayLike, centre: ArrayLike, level: float,
           resolution: int | tuple[int, int] = 201, *, points: ArrayLike | None = None, labels: ArrayLike | None = None,
           inner_label: int = 0, max_bottleneck_cells: int = 16) -> TunnelResult:
    """Label the components of {Φ < level} on a grid over ``window`` and report the centre's one
    (module docstring: verdict, area, width, direction, points).

    Parameters
    ----------
    fn : callable (B, 2) float64 tensor -> (B,) or (B, 1)
        Φ, e.g. a trained ResNet in eval mode (its probability, with level 0.5) or its logits
        (level 0).
    window : (xmin, xmax, ymin, ymax)
    centre : (2,) the centre x₀ of the enclosed class; must lie strictly inside the window.
    level : the decision level c; must lie strictly between min Φ and max Φ on the grid.
    resolution : grid points per axis (int, or (nx, ny)).
    points, labels : optional (N, 2) points and (N,) labels in {0, 1}; ``inner_label`` is the label
        of the enclosed class (predicted where Φ < level).
    max_bottleneck_cells : at most this many bottleneck cells are probed with chords (evenly chosen).

    Returns
    -------
    TunnelResult on the ny × nx grid.

    Raises
    ------
    ValueError for a malformed window, resolution, centre (outside the window), points or labels,
    for Φ not finite on the grid, or for a level outside (min Φ, max Φ) on the grid.
    """
    xmin, xmax, ymin, ymax = _check_window(window)
    nx, ny = _check_resolution(resolution)
    c = np.asarray(centre, dtype=np.float64).reshape(-1)
    if c.shape != (2,) or not np.all(np.isfinite(c)):
        raise ValueError(f"centre must be a finite point (x, y); got {centre!r}")
    if not (xmin < c[0] < xmax and ymin < c[1] < ymax):
        raise ValueError(f"centre must lie strictly inside the window {(xmin, xmax, ymin, ymax)}; got {tuple(c)}")
    level = check_real("level", level)
    if (points is None) != (labels is None):
        raise ValueError("points and labels must be given together")
    if points is not None:
        points = np.asarray(points, dtype=np.float64)
        labels = np.asarray(labels).reshape(-1)
        if points.ndim != 2 or points.shape[1] != 2 or len(points) != len(labels):
            raise ValueError(f"points must be (N, 2) and labels (N,); got {points.shape} and {labels.shape}")
        if not np.all((labels == 0) | (labels == 1)):
            raise ValueError("labels must be 0 or 1")
    if inner_label not in (0, 1):
        raise ValueError(f"inner_label must be 0 or 1; got {inner_label!r}")

    xs, ys, pts = grid((xmin, xmax, ymin, ymax), (nx, ny))
    values = evaluate_scalar(fn, pts).reshape(ny, nx)
    if not np.all(np.isfinite(values)):
        raise ValueError("fn is not finite everywhere on the window")
    vmin, vmax = float(values.min()), float(values.max())
    if not vmin < level < vmax:
        raise ValueError(f"level must lie strictly inside the range of Φ on the window, ({vmin:.6g}, {vmax:.6g}); "
                         f"got {level}")
    dx, dy = xs[1] - xs[0], ys[1] - ys[0]
    ij = (int(round((c[1] - ymin) / dy)), int(round((c[0] - xmin) / dx)))
    sub = values < level
    _, n_components = ndimage.label(sub, structure=_FOUR)
    comp = _component_of(sub, ij)
    nan2 = np.full(2, np.nan)
    width, bottleneck, direction, angle, exit_point = math.nan, nan2, nan2, math.nan, nan2
    if not sub[ij]:
        verdict = "centre-outside"
    elif _touches_edge(comp):
        verdict = "tunnel"
        pad = max(nx, ny)
        dist = ndimage.distance_transform_edt(np.pad(comp, pad, mode="edge"), sampling=(dy, dx))[pad:-pad, pad:-pad]
        r = _bottleneck(comp, dist, ij)
        conn = _component_of(comp & (dist >= r), ij)
        mouth = conn & _edge_cells(comp.shape)
        cand = np.argwhere(conn & (dist < r + max(dx, dy)))
        if len(cand) > max_bottleneck_cells:
            cand = cand[np.linspace(0, len(cand) - 1, max_bottleneck_cells).round().astype(int)]
        centres = np.stack([xs[cand[:, 1]], ys[cand[:, 0]]], 1)
        reach = 2 * r + 4 * max(dx, dy)
        chords = _chords(fn, centres, level, reach)
        k = int(np.argmin(chords))
        width, bottleneck = float(chords[k]), centres[k]
        if not np.isfinite(width):  # no crossing within reach: fall back to the grid estimate
            width = 2 * r
        mi = np.argwhere(mouth)
        mouth_xy = np.stack([xs[mi[:, 1]], ys[mi[:, 0]]], 1)
        exit_point = mouth_xy[np.argmin(np.linalg.norm(mouth_xy - bottleneck, axis=1))]
        v = bottleneck - c
        if np.linalg.norm(v) == 0:  # the centre itself is the bottleneck: aim at the exit
            v = exit_point - c
        direction = v / np.linalg.norm(v) if np.linalg.norm(v) > 0 else nan2
        angle = float(np.arctan2(direction[1], direction[0]))
    else:
        verdict = "closed"
    misclassified = tunnel_points = np.zeros(0, dtype=np.int64)
    if points is not None:
        below = evaluate_scalar(fn, points) < level
        misclassified = np.flatnonzero(below != (labels == inner_label))
        # a point below the level belongs to C when a corner of its grid cell does
        j0 = np.clip(np.floor((points[:, 0] - xmin) / dx).astype(np.int64), 0, nx - 2)
        i0 = np.clip(np.floor((points[:, 1] - ymin) / dy).astype(np.int64), 0, ny - 2)
        inside = (points[:, 0] >= xmin) & (points[:, 0] <= xmax) & (points[:, 1] >= ymin) & (points[:, 1] <= ymax)
        in_comp = inside & (comp[i0, j0] | comp[i0 + 1, j0] | comp[i0, j0 + 1] | comp[i0 + 1, j0 + 1])
        if verdict == "tunnel":
            tunnel_points = np.intersect1d(misclassified, np.flatnonzero(in_comp & below))
    return TunnelResult(verdict, verdict == "tunnel", level, (xmin, xmax, ymin, ymax), c, xs, ys, values, comp,
                        int(n_components), float(comp.sum() * dx * dy), width, bottleneck, direction, angle,
                        exit_point, level_sets(values, xs, ys, level), misclassified, tunnel_points)


# --- storage: the HDF5 schemas of this module's records, registered on import (docs/hdf5-format.md) ---
def _tunnel_schema() -> Schema:
    def build(v: dict):
        v["window"] = None if v["window"] is None else tuple(v["window"])
        return cls(**v)

    cls = TunnelResult
    return Schema("TunnelResult", cls, fields=(
        Attr("verdict", str), Attr("tunnel", bool), Attr("level", float), Json("window"),
        Array("centre", ("xy",), doc="centre x0 of the enclosed class"),
        Array("xs", ("x",), doc="grid abscissae", key="x", axis="X"),
        Array("ys", ("y",), doc="grid ordinates", key="y", axis="Y"),
        Array("values", ("y", "x"), doc="Phi on the grid"),
        Array("mask", ("y", "x"), doc="the centre's component of {Phi < level}"),
        Attr("n_components", int), Attr("area", float), Attr("width", float),
        Array("bottleneck", ("xy",), doc="where the narrowest chord of the tunnel was measured"),
        Array("direction", ("xy",), doc="unit vector from the centre to the bottleneck"), Attr("angle", float),
        Array("exit_point", ("xy",), doc="where the tunnel leaves the window"),
        Ragged("level_set", ("vertex", "xy"), "curve", doc="level-set polylines (x, y)"),
        Array("misclassified", ("misclassified_point",), doc="indices of the misclassified given points"),
        Array("tunnel_points", ("tunnel_point",), doc="indices of misclassified points inside the tunnel"),
    ), build=build, doc="tunnel test on a grid: verdict, width, area, direction, component mask, level sets",
        dtype_of="values")


register(_tunnel_schema())
