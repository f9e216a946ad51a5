"""XDMF sidecar: lets ParaView and VTK (vtkXdmf3Reader), VisIt and meshio open the trajectories
of an odenet file as polylines.

For every dataset with dimensions (step, sample, state) in a group, one XDMF grid: the points
are the states, node p = k·S + s being sample s at step k (the dataset's row-major order), and the
topology is S polylines of n+1 nodes, polyline s = (s, S + s, ..., n S + s).  States of dimension
2 and 3 are drawn as they are (XY, XYZ); for more, the first three components are taken.  A cell
attribute ``sample`` numbers the lines, a node attribute ``step`` numbers the layers (colour by
it to see the flow through depth).

Everything is written inline (``Format="XML"``, coordinates printed with 17 significant digits,
so float64 values read back exactly): meshio reads an HDF5 reference as the whole dataset,
ignoring the XDMF ``Dimensions`` and hyperslabs, and would see (n+1, S, d) points instead of
(n+1)·S; inline points are read alike by every reader.  The sidecar therefore stands alone (about
25 bytes per coordinate).  A file with one trajectory dataset is one Uniform grid (meshio reads
only a Domain of one grid); several are a Spatial collection of grids (VTK and ParaView).
"""
from __future__ import annotations

import os
from pathlib import Path
from xml.sax.saxutils import quoteattr

import h5py
import numpy as np

from analysis.io.atomic import atomic_write_text
from analysis.io.format import open_for_reading
from analysis.io.schema import read_verified

TRAJECTORY_DIMS = ("step", "sample", "state")


def trajectory_datasets(f: h5py.File, group: str | None = None) -> list[str]:
    """Paths of the datasets with dimensions (step, sample, state) under ``group`` (default: all)."""
    root = f if group is None else f[group]
    found = []

    def visit(name, item):
        if isinstance(item, h5py.Dataset) and item.ndim == 3:
            dims = tuple((d[0].name or "").rsplit("/", 1)[-1] if len(d) else "" for d in item.dims)
            if dims == TRAJECTORY_DIMS:
                found.append(item.name)

    root.visititems(visit)
    return found


def _number_type(dtype: np.dtype) -> tuple[str, int, str]:
    """(XDMF NumberType, Precision, printf format that round-trips the value exactly)."""
    if dtype.kind == "f":
        return "Float", dtype.itemsize, "%.17g" if dtype.itemsize == 8 else "%.9g"
    raise ValueError(f"trajectory dtype must be floating point; got {dtype}")


def _grid_xml(path: str, states: np.ndarray) -> str:
    """One Uniform grid: S polylines through the n+1 states of ``states`` (n+1, S, d)."""
    n1, S, d = states.shape
    if d < 2:
        raise ValueError(f"{path}: a state of dimension {d} cannot be drawn as a polyline in space (need 2 or more)")
    nt, prec, fmt = _number_type(states.dtype)
    k = min(d, 3)  # XY or XYZ; the first three components of wider states
    points = states[:, :, :k].reshape(n1 * S, k)  # node p = k S + s is sample s at step k
    coords = "\n".join(" ".join(fmt % v for v in row) for row in points)
    geometry = (f'<Geometry GeometryType="{"XY" if k == 2 else "XYZ"}">'
                f'<DataItem Dimensions="{n1 * S} {k}" NumberType="{nt}" Precision="{prec}" Format="XML">\n'
                f"{coords}\n</DataItem></Geometry>")
    conn = (np.arange(S)[:, None] + S * np.arange(n1)[None, :])  # polyline s: nodes k S + s
    conn_txt = "\n".join(" ".join(map(str, row)) for row in conn)
    name = quoteattr(path.strip("/").replace("/", "."))
    samples = " ".join(map(str, range(S)))
    steps = "\n".join(" ".join([str(k)] * S) for k in range(n1))  # node k S + s is at step k
    return (f'<Grid Name={name} GridType="Uniform">\n'
            f'<Topology TopologyType="Polyline" NodesPerElement="{n1}" NumberOfElements="{S}">\n'
            f'<DataItem Dimensions="{S} {n1}" NumberType="Int" Format="XML">\n{conn_txt}\n</DataItem>\n</Topology>\n'
            f"{geometry}\n"
            f'<Attribute Name="sample" AttributeType="Scalar" Center="Cell">'
            f'<DataItem Dimensions="{S}" NumberType="Int" Format="XML">{samples}</DataItem></Attribute>\n'
            f'<Attribute Name="step" AttributeType="Scalar" Center="Node">'
            f'<DataItem Dimensions="{n1 * S}" NumberType="Int" Format="XML">\n{steps}\n</DataItem></Attribute>\n'
            f"</Grid>")


def write_xdmf(h5_path: str | os.PathLike, group: str | None = None, xdmf_path: str | os.PathLike | None = None,
               *, overwrite: bool = False) -> Path:
    """Write the XDMF sidecar of the trajectories in ``group`` of the odenet file ``h5_path``
    (default: all of them) to ``xdmf_path`` (default: beside it, suffix ``.xmf``), with the points
    inline (module docstring; each dataset is read and checksum-verified); returns its path.
    Atomic (:func:`analysis.io.atomic.atomic_write_text`), without a lock: the sidecar is written
    whole, never read-modified.  FileExistsError for an existing sidecar unless
    ``overwrite=True``; ValueError for a missing ``group``, no (step, sample, state) dataset, or a
    state of dimension 1; errors of reading as :func:`analysis.io.format.open_for_reading`."""
    h5_path = Path(h5_path)
    out = h5_path.with_suffix(".xmf") if xdmf_path is None else Path(xdmf_path)
    if out.exists() and not overwrite:
        raise FileExistsError(f"{os.fspath(out)!r} exists; pass overwrite=True to replace it")
    with open_for_reading(h5_path) as f:
        if group is not None and (group not in f or not isinstance(f[group], h5py.Group)):
            raise ValueError(f"{os.fspath(h5_path)!r} has no group {group!r}")
        paths = trajectory_datasets(f, group)
        if not paths:
            raise ValueError(f"{os.fspath(h5_path)!r}: no dataset with dimensions {TRAJECTORY_DIMS} "
                             f"under {group or '/'!r}")
        grids = [_grid_xml(p, read_verified(f[p])) for p in paths]
    body = grids[0] if len(grids) == 1 else (  # meshio reads a Domain of one grid only
        '<Grid Name="trajectories" GridType="Collection" CollectionType="Spatial">\n' + "\n".join(grids) + "\n</Grid>")
    xml = ('<?xml version="1.0" ?>\n<!DOCTYPE Xdmf SYSTEM "Xdmf.dtd" []>\n<Xdmf Version="3.0">\n<Domain>\n'
           + body + "\n</Domain>\n</Xdmf>\n")
    atomic_write_text(out, xml, overwrite=overwrite)
    return out
