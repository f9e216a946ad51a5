"""A readable summary of a file: the tree of groups, each dataset's dtype, shape and dimension
names, and the key attributes (what ``odenet inspect FILE`` prints); and a check of the file
(:func:`check`): every dataset read and verified against its checksum, the temporary files of
interrupted writes listed (and removed on request).

The summary never fails on a damaged object: what cannot be read is shown as ``UNREADABLE`` with
HDF5's reason, and listed in :attr:`Inspection.damaged`.
"""
from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from analysis.io.atomic import exclusive_lock, temp_files_of
from analysis.io.format import open_for_reading
from analysis.io.schema import CHECKSUM_ATTR, MODULE_ATTR, TYPE_ATTR, read_verified

#: what reading a damaged object can raise (h5py's errors and those of the checks)
_READ_ERRORS = (OSError, RuntimeError, KeyError, ValueError, TypeError, AttributeError)

PROVENANCE_KEYS = ("format", "format_version", "odenet_version", "torch_version", "numpy_version",
                   "h5py_version", "hdf5_version", "created", "seed", "dtype", "device", "config")
_ROOT_SHOWN = ("format", "format_version", "odenet_version", "torch_version", "numpy_version", "h5py_version",
               "hdf5_version", "created")
_HIDDEN = {"DIMENSION_LIST", "REFERENCE_LIST", "CLASS", "NAME", "_Netcdf4Dimid", "coordinates",
           "odenet_kind", "long_name", "sample_dimension", "keys", "_Netcdf4Coordinates",
           "odenet_variables"}


def _fmt(v, limit: int | None = 72) -> str:
    """``v`` as text, cut to ``limit`` characters with "..." (None: never cut)."""
    if isinstance(v, bytes):
        v = v.decode()
    if isinstance(v, np.generic):
        v = v.item()
    s = v if isinstance(v, str) else repr(v)
    return s if limit is None or len(s) <= limit else s[: limit - 3] + "..."


def _basename(obj) -> str:
    """The last part of an HDF5 object's name ("?" for an anonymous object)."""
    name = obj.name
    return "?" if name is None else name.rsplit("/", 1)[-1]


def _dims(ds: h5py.Dataset) -> tuple[str, ...]:
    return tuple(_basename(dim[0]) if len(dim) else "?" for dim in ds.dims)


def _is_index_scale(ds: h5py.Dataset) -> bool:
    return str(ds.attrs.get("long_name", "")).startswith("index along") and ds.attrs.get("CLASS") == b"DIMENSION_SCALE"


def _storage(ds: h5py.Dataset) -> str:
    parts = []
    if ds.compression:
        parts.append(f"{ds.compression}({ds.compression_opts})" + ("+shuffle" if ds.shuffle else ""))
    if ds.fletcher32:
        parts.append("fletcher32")
    elif CHECKSUM_ATTR in ds.attrs:
        parts.append("sha256")
    if ds.compression and ds.chunks:
        parts.append(f"chunks={ds.chunks}")
    return ("  " + " ".join(parts)) if parts else "  no checksum"


def _group_lines(g: h5py.Group, indent: str, config: bool, damaged: list[str], full: bool = False) -> list[str]:
    lines = []
    cut = (lambda n: None) if full else (lambda n: n)  # noqa: E731  (full: no "..." anywhere)
    try:
        items = list(g.items())
    except _READ_ERRORS as exc:
        damaged.append(f"{g.name}: {exc}")
        return [f"{indent}UNREADABLE group: {exc}"]
    try:
        scales = [(k, v) for k, v in items if isinstance(v, h5py.Dataset) and v.is_scale]
        if scales:
            lines.append(indent + "dims: " + ", ".join(f"{k}={len(v)}" for k, v in scales))
        attrs = {k: v for k, v in g.attrs.items() if k not in PROVENANCE_KEYS and k not in _HIDDEN and k not in (TYPE_ATTR, MODULE_ATTR)}
        if attrs:
            lines.append(indent + "attrs: " + ", ".join(f"{k}={_fmt(v, cut(60))}" for k, v in attrs.items()))
        if "seed" in g.attrs or "created" in g.attrs:
            prov = ", ".join(f"{k}={_fmt(g.attrs[k], cut(72))}" for k in ("seed", "dtype", "device", "created")
                             if k in g.attrs)
            lines.append(indent + "provenance: " + prov)
        if "config" in g.attrs:  # in full for a model, abbreviated elsewhere (it repeats the model's)
            full_config = config and g.attrs.get(TYPE_ATTR) == "ResNet"
            lines.append(indent + "config: " + _fmt(g.attrs["config"], cut(400 if full_config else 60)))
    except _READ_ERRORS as exc:
        damaged.append(f"{g.name} (attributes): {exc}")
        lines.append(f"{indent}UNREADABLE attributes: {exc}")
    width = max((len(k) for k, v in items if isinstance(v, h5py.Dataset)), default=0)
    for k, v in items:
        if isinstance(v, h5py.Dataset):
            try:
                if _is_index_scale(v):
                    continue
                dims = _dims(v) if not v.is_scale else (k,)
                coord = " [coordinate]" if v.is_scale else ""
                lines.append(f"{indent}{k:<{width}}  {str(v.dtype):<8} {str(v.shape):<14} ({', '.join(dims)})"
                             f"{coord}{_storage(v)}")
            except _READ_ERRORS as exc:
                damaged.append(f"{v.name or k}: {exc}")
                lines.append(f"{indent}{k:<{width}}  UNREADABLE: {exc}")
    for k, v in items:
        if isinstance(v, h5py.Group):
            lines += _subgroup_lines(v, f"{indent}{k}/", indent + "  ", config, damaged, full)
    return lines


def _subgroup_lines(g: h5py.Group, head: str, indent: str, config: bool, damaged: list[str], full: bool
                    ) -> list[str]:
    """A group's heading (its record type, or "group") and its contents."""
    try:
        t = g.attrs.get(TYPE_ATTR, "group")
    except _READ_ERRORS:
        t = "group"
    return [f"{head}  {_fmt(t)}"] + _group_lines(g, indent, config, damaged, full)


def _summary(f: h5py.File, path: str | os.PathLike, config: bool, damaged: list[str], full: bool = False
             ) -> list[str]:
    lines = [f"{os.fspath(path)}"]
    try:
        items = list(f.items())
        lines.append("  " + ", ".join(f"{k}={_fmt(f.attrs[k])}" for k in _ROOT_SHOWN if k in f.attrs))
    except _READ_ERRORS as exc:
        damaged.append(f"/: {exc}")
        return lines + [f"UNREADABLE root group: {exc}"]
    for k, v in items:
        if isinstance(v, h5py.Group):
            lines += _subgroup_lines(v, f"/{k}", "    ", config, damaged, full)
        else:
            lines.append(f"/{k}  {getattr(v, 'dtype', '?')} {getattr(v, 'shape', '?')}")
    return lines


def inspect(path: str | os.PathLike, *, config: bool = True, full: bool = False) -> str:
    """The summary of the odenet file ``path`` as text (ValueError for a foreign file; damaged
    objects are shown as UNREADABLE, see :func:`check` for a verdict).  Long attribute values are
    cut with "..." unless ``full``; ``config``: a model's config in full.  Reads without a lock."""
    with open_for_reading(path) as f:
        return "\n".join(_summary(f, path, config, [], full))


def _json_value(v):
    """An HDF5 attribute value as JSON: text decoded, numpy scalars and arrays as numbers and
    lists, a JSON-string attribute (``config``, Json fields) parsed; object references (HDF5's
    dimension bookkeeping) as None."""
    if isinstance(v, bytes):
        v = v.decode()
    if isinstance(v, str):
        if v[:1] in "[{":
            try:
                return json.loads(v)
            except ValueError:
                return v
        return v
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, np.ndarray):
        return None if v.dtype.kind == "O" else v.tolist()
    return None if isinstance(v, (h5py.Reference, h5py.RegionReference)) else v


#: HDF5's own bookkeeping attributes of dimension scales, described by ``dims`` instead
_SCALE_BOOKKEEPING = {"DIMENSION_LIST", "REFERENCE_LIST", "CLASS", "NAME"}


def describe(path: str | os.PathLike) -> dict:
    """The whole tree of the odenet file ``path`` as JSON-ready dicts (what ``odenet inspect
    --json`` prints): ``{"file", "attrs", "groups": {path: {"type", "attrs"}}, "datasets": {path:
    {"shape", "dtype", "dims", "checksum", "compression", "attrs"}}}`` with every attribute in full
    (JSON-string attributes such as ``config`` parsed).  Values are described, not read; an object
    whose description cannot be read is ``{"error": reason}``."""
    def attrs_of(obj) -> dict:
        return {k: _json_value(v) for k, v in obj.attrs.items() if k not in _SCALE_BOOKKEEPING}

    groups: dict[str, dict] = {}
    datasets: dict[str, dict] = {}

    def visit(name, obj):
        try:
            if isinstance(obj, h5py.Group):
                t = obj.attrs.get(TYPE_ATTR)
                groups["/" + name] = {"type": _json_value(t) if t is not None else None, "attrs": attrs_of(obj)}
            elif isinstance(obj, h5py.Dataset):
                checksum = "fletcher32" if obj.fletcher32 else "sha256" if CHECKSUM_ATTR in obj.attrs else None
                dims = [_basename(obj)] if obj.is_scale else list(_dims(obj))
                datasets["/" + name] = {"shape": list(obj.shape), "dtype": str(obj.dtype), "dims": dims,
                                        "is_coordinate": bool(obj.is_scale), "checksum": checksum,
                                        "compression": obj.compression, "attrs": attrs_of(obj)}
        except _READ_ERRORS as exc:  # a damaged object is described as such (check() names it too)
            (groups if isinstance(obj, h5py.Group) else datasets)["/" + name] = {"error": str(exc)}

    with open_for_reading(path) as f:
        try:
            root = attrs_of(f)
        except _READ_ERRORS as exc:
            root = {"error": str(exc)}
        try:
            f.visititems(visit)
        except _READ_ERRORS as exc:
            groups["/"] = {"error": f"the tree cannot be walked further: {exc}"}
    return {"file": os.fspath(path), "attrs": root, "groups": groups, "datasets": datasets}


@dataclass
class Inspection:
    """What :func:`check` found.

    ``text``: the summary; ``damaged``: "dataset: reason" for every object that cannot be read or
    fails its checksum; ``unchecked``: datasets of a version-2 file without a checksum (written
    by another tool); ``temp_files``: temporary files of interrupted writes beside the file;
    ``writer_active``: a writer holds the file's lock (its temporary file is in use, not stale);
    ``removed``: the temporary files removed (``clean=True``)."""

    text: str
    damaged: list[str] = field(default_factory=list)
    unchecked: list[str] = field(default_factory=list)
    temp_files: list[Path] = field(default_factory=list)
    writer_active: bool = False
    removed: list[Path] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Every dataset was read and passed its checksum."""
        return not self.damaged


def _verify_all(f: h5py.File, damaged: list[str], unchecked: list[str], version: int) -> None:
    """Read every dataset of ``f`` (verifying fletcher32 and SHA-256 checksums)."""
    names: list[str] = []

    def visit(name, obj):
        if isinstance(obj, h5py.Dataset):
            names.append(name)

    try:
        f.visititems(visit)
    except _READ_ERRORS as exc:
        damaged.append(f"(the tree, after {len(names)} datasets): {exc}")
    for name in names:
        try:
            ds = f[name]
            read_verified(ds)
            if version >= 2 and not ds.fletcher32 and CHECKSUM_ATTR not in ds.attrs:
                unchecked.append("/" + name)
        except _READ_ERRORS as exc:
            damaged.append(f"/{name}: {exc}")


def check(path: str | os.PathLike, *, clean: bool = False, config: bool = True, full: bool = False) -> Inspection:
    """Summarise ``path``, read every dataset verifying its checksum, and list the temporary files
    ``.<name>.<random>.tmp`` that interrupted writes left beside it.  ``clean=True`` removes them,
    holding the file's writer's lock (so that the temporary file of a write in progress is never
    removed; if a writer holds the lock nothing is removed and ``writer_active`` is set).  Raises
    FileNotFoundError / ValueError (naming the path) only for a file that cannot be opened as an
    odenet file at all.  ``full``: the summary's long attribute values are not cut."""
    from analysis.io.format import check_format

    damaged: list[str] = []
    unchecked: list[str] = []
    with open_for_reading(path) as f:
        text = "\n".join(_summary(f, path, config, damaged, full))
        _verify_all(f, damaged, unchecked, check_format(f, path))
    damaged = list(dict.fromkeys(damaged))
    found = Inspection(text, damaged, unchecked, temp_files_of(path))
    if found.temp_files:
        try:
            with exclusive_lock(path, timeout=0):
                found.temp_files = temp_files_of(path)  # those of a writer that just finished are gone
                if clean:
                    for tmp in found.temp_files:
                        with contextlib.suppress(FileNotFoundError):
                            os.unlink(tmp)
                        found.removed.append(tmp)
        except TimeoutError:
            found.writer_active = True
    return found
