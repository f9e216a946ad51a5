"""The work behind ``odenet inspect`` and ``odenet trace`` (odenet/cli.py only parses arguments).

``odenet trace MODEL.h5 --grid x0:x1:nx,y0:y1:ny --out FILE`` loads the model, samples the grid
(x fastest, see :mod:`analysis.io.grid`), traces the model over it and writes one file with
three groups: ``model`` (a copy, so the output stands alone), ``grid`` and ``trace``.
"""
from __future__ import annotations

import math
import os
from pathlib import Path

import torch

from solvers.validation import check_memory, check_output_path

from analysis.io.grid import SampleGrid, grid_shape, parse_grid
from analysis.io.inspect import inspect
from analysis.io.files import load_model, model_groups, save
from analysis.io.xdmf import write_xdmf


def trace_model(model, points: torch.Tensor):
    """The :class:`analysis.geometry.tracing.Trace` of ``model`` at ``points`` (states h_0..h_L, layer and
    cumulative Jacobians, log|det|, singular values of the input-output Jacobian)."""
    from analysis.geometry.tracing import trace

    return trace(model, points)


def trace_memory(model, points: int) -> int:
    """Estimated peak bytes of tracing ``model`` at ``points`` inputs (S = depth steps, width m,
    n inputs): per point the states (S+1) m and the cumulative Jacobians (S+1) m n, each built as a
    list and then stacked (twice), the layer Jacobians S m² (twice) and a slogdet workspace of the
    cumulative ones, plus the grid itself."""
    S, m, n = model.depth, model.width, model.n_in
    itemsize = next(model.parameters()).element_size()
    per_point = 2 * (S + 1) * m + 3 * (S + 1) * m * n + 2 * S * m * m
    return points * (per_point * itemsize + 6 * 8)


def trace_to_file(model_path: str | os.PathLike, grid: str, out: str | os.PathLike, *, group: str | None = None,
                  overwrite: bool = False, xdmf: bool = False) -> tuple[Path, Path | None]:
    """Trace the model stored in ``model_path`` over ``grid`` ("x0:x1:nx[,y0:y1:ny]") and write
    ``out`` (groups model, grid, trace); with ``xdmf`` also the ParaView sidecar ``out``.xmf.
    Returns the paths written.

    Checked before the model is traced: the output folder exists and ``out`` (and ``out``.xmf)
    does not unless ``overwrite`` (ValueError), the grid parses and matches the model's inputs,
    the file holds one model or ``group`` names one, and the estimated memory of the trace
    (:func:`trace_memory`) is available.  Errors name the command's flags (``--grid``,
    ``--group``, ``--out``), as this is the work of ``odenet trace``."""
    check_output_path("--out", out, overwrite=overwrite)
    if xdmf:
        check_output_path("--out (its .xmf sidecar)", Path(out).with_suffix(".xmf"), overwrite=overwrite)
    try:
        shape = grid_shape(grid)
    except ValueError as exc:
        raise ValueError(f"--grid: {exc}") from None
    models = model_groups(model_path)
    if group is None and len(models) != 1:
        raise ValueError(f"{os.fspath(model_path)!r} holds {len(models)} models {models}; choose one with --group")
    if group is not None and group.strip("/") not in models:
        raise ValueError(f"--group {group!r}: {os.fspath(model_path)!r} holds no model there; its models: {models}")
    model = load_model(model_path, group).eval()
    if xdmf and model.width < 2:
        raise ValueError(f"--xdmf draws trajectories in 2-D or 3-D; the model's width is {model.width}")
    if len(shape) != model.n_in:
        raise ValueError(f"--grid {grid!r} has {len(shape)} axes but the model has n_in={model.n_in} inputs")
    points = math.prod(shape)
    check_memory(trace_memory(model, points), f"tracing {points} grid points ({' x '.join(map(str, shape))}) "
                 f"through {model.depth} layers of width {model.width}")
    dtype = next(model.parameters()).dtype
    g: SampleGrid = parse_grid(grid, dtype=dtype)
    record = trace_model(model, g.points)
    path = save(out, {"model": model, "grid": g, "trace": record}, overwrite=overwrite,
                seed=model.config.get("seed"), config=model.config)
    side = write_xdmf(path, "trace", overwrite=overwrite) if xdmf else None
    return path, side


def inspect_text(path: str | os.PathLike) -> str:
    """What ``odenet inspect`` prints."""
    return inspect(path)
