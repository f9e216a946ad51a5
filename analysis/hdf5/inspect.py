"""A readable summary of a file: the tree of groups, each dataset's dtype, shape and dimension
names, and the key attributes (what ``odenet inspect FILE`` prints)."""
from __future__ import annotations

import json
import os

import h5py
import numpy as np

from .format import open_for_reading
from .schema import TYPE_ATTR

PROVENANCE_KEYS = ("format", "format_version", "odenet_version", "torch_version", "numpy_version",
                   "h5py_version", "hdf5_version", "created", "seed", "dtype", "device", "config")
_ROOT_SHOWN = ("format", "format_version", "odenet_version", "torch_version", "numpy_version", "h5py_version",
               "hdf5_version", "created")
_HIDDEN = {"DIMENSION_LIST", "REFERENCE_LIST", "CLASS", "NAME", "_Netcdf4Dimid", "coordinates",
           "odenet_kind", "long_name", "sample_dimension", "keys", "_Netcdf4Coordinates"}


def _fmt(v, limit: int = 72) -> str:
    if isinstance(v, bytes):
        v = v.decode()
    if isinstance(v, np.generic):
        v = v.item()
    s = v if isinstance(v, str) else repr(v)
    return s if len(s) <= limit else s[: limit - 3] + "..."


def _dims(ds: h5py.Dataset) -> tuple[str, ...]:
    names = []
    for dim in ds.dims:
        names.append(dim[0].name.rsplit("/", 1)[-1] if len(dim) else "?")
    return tuple(names)


def _is_index_scale(ds: h5py.Dataset) -> bool:
    return str(ds.attrs.get("long_name", "")).startswith("index along") and ds.attrs.get("CLASS") == b"DIMENSION_SCALE"


def _storage(ds: h5py.Dataset) -> str:
    if ds.compression:
        extra = "+shuffle" if ds.shuffle else ""
        return f"  {ds.compression}({ds.compression_opts}){extra} chunks={ds.chunks}"
    return ""


def _group_lines(g: h5py.Group, indent: str, config: bool) -> list[str]:
    lines = []
    scales = [k for k, v in g.items() if isinstance(v, h5py.Dataset) and v.is_scale]
    if scales:
        lines.append(indent + "dims: " + ", ".join(f"{k}={len(g[k])}" for k in scales))
    attrs = {k: v for k, v in g.attrs.items() if k not in PROVENANCE_KEYS and k not in _HIDDEN and k != TYPE_ATTR}
    if attrs:
        lines.append(indent + "attrs: " + ", ".join(f"{k}={_fmt(v, 60)}" for k, v in attrs.items()))
    if "seed" in g.attrs or "created" in g.attrs:
        prov = ", ".join(f"{k}={_fmt(g.attrs[k])}" for k in ("seed", "dtype", "device", "created") if k in g.attrs)
        lines.append(indent + "provenance: " + prov)
    if "config" in g.attrs:  # in full for a model, abbreviated elsewhere (it repeats the model's)
        full = config and g.attrs.get(TYPE_ATTR) == "ResNet"
        lines.append(indent + "config: " + _fmt(g.attrs["config"], 400 if full else 60))
    width = max((len(k) for k, v in g.items() if isinstance(v, h5py.Dataset)), default=0)
    for k, v in g.items():
        if isinstance(v, h5py.Dataset):
            if _is_index_scale(v):
                continue
            dims = _dims(v) if not v.is_scale else (k,)
            coord = " [coordinate]" if v.is_scale else ""
            lines.append(f"{indent}{k:<{width}}  {str(v.dtype):<8} {str(v.shape):<14} ({', '.join(dims)})"
                         f"{coord}{_storage(v)}")
    for k, v in g.items():
        if isinstance(v, h5py.Group):
            t = v.attrs.get(TYPE_ATTR, "group")
            lines.append(f"{indent}{k}/  {_fmt(t)}")
            lines += _group_lines(v, indent + "  ", config)
    return lines


def inspect(path: str | os.PathLike, *, config: bool = True) -> str:
    """The summary of the odenet file ``path`` as text (ValueError for a foreign file)."""
    with open_for_reading(path) as f:
        lines = [f"{os.fspath(path)}"]
        lines.append("  " + ", ".join(f"{k}={_fmt(f.attrs[k])}" for k in _ROOT_SHOWN if k in f.attrs))
        for k, v in f.items():
            if isinstance(v, h5py.Group):
                lines.append(f"/{k}  {_fmt(v.attrs.get(TYPE_ATTR, 'group'))}")
                lines += _group_lines(v, "    ", config)
            else:
                lines.append(f"/{k}  {v.dtype} {v.shape}")
        return "\n".join(lines)


def config_of(group: h5py.Group) -> dict | None:
    """The JSON configuration recorded on a group, or None."""
    c = group.attrs.get("config")
    return None if c is None else json.loads(c)
