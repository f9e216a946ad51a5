"""The work behind ``odenet inspect`` and ``odenet trace`` (odenet/cli.py only parses arguments).

``odenet trace MODEL.h5 --grid x0:x1:nx,y0:y1:ny --out FILE`` loads the model, samples the grid
(x fastest, see :mod:`analysis.hdf5.grid`), traces the model over it and writes one file with
three groups: ``model`` (a copy, so the output stands alone), ``grid`` and ``trace``.
"""
from __future__ import annotations

import os
from pathlib import Path
import torch

from .grid import SampleGrid, parse_grid
from .inspect import inspect
from .io import load_model, save
from .xdmf import write_xdmf


def trace_model(model, points: torch.Tensor):
    """The :class:`analysis.tracing.Trace` of ``model`` at ``points`` (states h_0..h_L, layer and
    cumulative Jacobians, log|det|, singular values of the input-output Jacobian)."""
    from analysis.tracing import trace

    return trace(model, points)


def trace_to_file(model_path: str | os.PathLike, grid: str, out: str | os.PathLike, *, group: str | None = None,
                  overwrite: bool = False, xdmf: bool = False) -> tuple[Path, Path | None]:
    """Trace the model stored in ``model_path`` over ``grid`` ("x0:x1:nx[,y0:y1:ny]") and write
    ``out`` (groups model, grid, trace); with ``xdmf`` also the ParaView sidecar ``out``.xmf.
    Returns the paths written."""
    for target in [Path(out)] + ([Path(out).with_suffix(".xmf")] if xdmf else []):
        if target.exists() and not overwrite:
            raise FileExistsError(f"{os.fspath(target)!r} exists; pass --overwrite (overwrite=True) to replace it")
    model = load_model(model_path, group).eval()
    if xdmf and model.width < 2:
        raise ValueError(f"--xdmf draws trajectories in 2-D or 3-D; the model's width is {model.width}")
    dtype = next(model.parameters()).dtype
    g: SampleGrid = parse_grid(grid, dtype=dtype)
    if g.points.shape[1] != model.n_in:
        raise ValueError(f"grid {grid!r} has {g.points.shape[1]} axes but the model has n_in={model.n_in} inputs")
    record = trace_model(model, g.points)
    path = save(out, {"model": model, "grid": g, "trace": record}, overwrite=overwrite,
                seed=model.config.get("seed"), config=model.config)
    side = write_xdmf(path, "trace", overwrite=overwrite) if xdmf else None
    return path, side


def inspect_text(path: str | os.PathLike) -> str:
    """What ``odenet inspect`` prints."""
    return inspect(path)
