"""A rectangular grid of input points, as ``odenet trace --grid x0:x1:nx,y0:y1:ny`` samples.

Axis values x_i = x0 + i (x1 - x0)/(nx - 1), i = 0..nx-1 (``numpy.linspace``), and likewise y.
The points are ordered with x fastest: sample s = j nx + i is (x_i, y_j), so that
``values.reshape(ny, nx)`` is an image with rows along y.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass
class SampleGrid:
    """Axis values ``x`` (nx,) and ``y`` (ny,) (None for a 1-D grid) and the points, shape
    (nx ny, 2) or (nx, 1), x fastest."""

    x: np.ndarray
    y: np.ndarray | None
    points: torch.Tensor

    @property
    def shape(self) -> tuple[int, ...]:
        """(ny, nx) for a 2-D grid, (nx,) for a 1-D one: the image shape of per-point values."""
        return (len(self.x),) if self.y is None else (len(self.y), len(self.x))


def _axis_spec(spec: str, which: str) -> tuple[float, float, int]:
    parts = spec.split(":")
    if len(parts) != 3:
        raise ValueError(f"grid axis {which} must be 'start:stop:num'; got {spec!r}")
    try:
        a, b, n = float(parts[0]), float(parts[1]), int(parts[2])
    except ValueError:
        raise ValueError(f"grid axis {which} must be 'start:stop:num' with numbers; got {spec!r}") from None
    if not (np.isfinite(a) and np.isfinite(b)) or n < 2 or not b > a:
        raise ValueError(f"grid axis {which} needs finite start < stop and num >= 2; got {spec!r}")
    return a, b, n


def _axis_specs(spec: str) -> list[tuple[float, float, int]]:
    if not isinstance(spec, str):
        raise TypeError(f"grid must be a string 'x0:x1:nx[,y0:y1:ny]'; got {spec!r}")
    axes = spec.split(",")
    if len(axes) not in (1, 2):
        raise ValueError(f"grid must have one or two axes 'x0:x1:nx[,y0:y1:ny]'; got {spec!r}")
    return [_axis_spec(a, which) for a, which in zip(axes, "xy")]


def grid_shape(spec: str) -> tuple[int, ...]:
    """(nx,) or (nx, ny) of ``spec``, checked as :func:`parse_grid` checks it, without allocating
    the points (so that a size limit can be applied first)."""
    return tuple(n for _, _, n in _axis_specs(spec))


def parse_grid(spec: str, dtype: torch.dtype = torch.float64) -> SampleGrid:
    """The grid of ``spec = "x0:x1:nx"`` (1-D) or ``"x0:x1:nx,y0:y1:ny"`` (2-D), its points of
    ``dtype``: (nx, 1) or (nx ny, 2), x fastest.  TypeError for a non-str ``spec``; ValueError
    naming the axis unless each is finite ``start < stop`` with ``num >= 2``."""
    axes = [np.linspace(a, b, n) for a, b, n in _axis_specs(spec)]
    x = axes[0]
    if len(axes) == 1:
        return SampleGrid(x, None, torch.as_tensor(x, dtype=dtype).reshape(-1, 1))
    y = axes[1]
    X, Y = np.meshgrid(x, y)  # (ny, nx), x fastest when flattened
    pts = np.stack([X.ravel(), Y.ravel()], axis=1)
    return SampleGrid(x, y, torch.as_tensor(pts, dtype=dtype))
