"""``odenet trace MODEL.h5 --grid x0:x1:nx[,y0:y1:ny] --out FILE``: load a saved model, sample the
grid (x fastest, see :mod:`analysis.io.grid`), trace the model over it
(:func:`analysis.geometry.tracing.trace`) and write one file with three groups: ``model`` (a copy,
so the output stands alone), ``grid`` and ``trace``; with ``--xdmf`` also the ParaView sidecar.
"""
from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Declare ``odenet trace`` and its options on the subcommand set ``sub``."""
    about = "trace a saved model over a grid of inputs and write an HDF5 file"
    p = sub.add_parser("trace", help=about, description=about)
    p.add_argument("model", help="HDF5 file holding the model (written by analysis.io.save_model)")
    p.add_argument("--grid", required=True, help="x0:x1:nx for n_in = 1, x0:x1:nx,y0:y1:ny for n_in = 2 "
                                                 "(write --grid=-1:1:50,... when x0 is negative)")
    p.add_argument("--out", required=True, help="output HDF5 file (groups model, grid, trace); its folder must exist")
    p.add_argument("--group", default=None, help="group of the model in MODEL (default: its only model)")
    p.add_argument("--xdmf", action="store_true", help="also write OUT.xmf so ParaView opens the trajectories")
    p.add_argument("--overwrite", action="store_true", help="replace OUT (and OUT.xmf) if it exists")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Trace and write; exit status 0, or 2 when a file cannot be read or written (bad options:
    ValueError, reported by :func:`odenet.cli.main` with status 2)."""
    try:
        path, side = trace_to_file(args.model, args.grid, args.out, group=args.group,
                                   overwrite=args.overwrite, xdmf=args.xdmf)
    except OSError as exc:
        print(f"odenet trace: error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {path}" + (f" and {side}" if side else "") + f" (see: odenet inspect {path})")
    return 0


def trace_to_file(model_path: str | os.PathLike, grid: str, out: str | os.PathLike, *, group: str | None = None,
                  overwrite: bool = False, xdmf: bool = False) -> tuple[Path, Path | None]:
    """Trace the model stored in ``model_path`` over ``grid`` ("x0:x1:nx[,y0:y1:ny]") and write
    ``out`` (groups model, grid, trace); with ``xdmf`` also the ParaView sidecar ``out``.xmf.
    Returns the paths written.

    Checked before the model is traced: the output folder exists and ``out`` (and ``out``.xmf)
    does not unless ``overwrite`` (ValueError), the grid parses and matches the model's inputs,
    the file holds one model or ``group`` names one, and the estimated memory of the trace
    (:func:`analysis.geometry.tracing.trace_memory`) is available.  Errors name the command's
    flags (``--grid``, ``--group``, ``--out``), as this is the work of ``odenet trace``."""
    from solvers.validation import check_memory, check_output_path

    from analysis.geometry.tracing import trace, trace_memory
    from analysis.io.files import load_model, model_groups, save
    from analysis.io.grid import SampleGrid, grid_shape, parse_grid
    from analysis.io.xdmf import write_xdmf

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
    record = trace(model, g.points)
    path = save(out, {"model": model, "grid": g, "trace": record}, overwrite=overwrite,
                seed=model.config.get("seed"), config=model.config)
    side = write_xdmf(path, "trace", overwrite=overwrite) if xdmf else None
    return path, side
