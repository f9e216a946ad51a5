"""Public entry points: save records to a new file, append them to an existing one, read them
back.

A file holds any number of *record groups* (a Solution, a Trace, a model, ...), each at a path
of the caller's choice (``"solution"``, ``"runs/3/trace"``).  Each record group carries the
provenance attributes of :func:`analysis.io.format.provenance`; reading returns the same
objects (bit for bit: arrays keep their dtype, tensors come back as tensors).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import h5py
import numpy as np

from analysis.io import models as _models  # noqa: F401  (registers the model reader/writer)
from analysis.io import records as _records  # noqa: F401  (registers the schemas)
from analysis.io.format import atomic_append, atomic_create, open_for_reading, provenance
from analysis.io.schema import GZIP_LEVEL, TYPE_ATTR, gzip_level, read_group, schema_for, type_name, write_group

if TYPE_CHECKING:
    import torch

    from odenet import ResNet

_DEFAULT_GROUP = {"ResNet": "model", "SampleGrid": "grid"}


def default_group(obj: Any) -> str:
    """The group name used when none is given: "model" for a ResNet, "grid" for a SampleGrid,
    else the type name in lower case ("solution", "trace", ...)."""
    name = type_name(obj)
    return _DEFAULT_GROUP.get(name, name.lower())


def _check_group_name(name: Any) -> str:
    if not isinstance(name, str):
        raise TypeError(f"group must be a str such as 'solution' or 'runs/0/trace'; got {name!r}")
    parts = name.strip("/").split("/")
    if not name.strip("/") or any(p in ("", ".", "..") for p in parts):
        raise ValueError(f"group must be a non-empty '/'-separated path without '.', '..' or empty parts; got {name!r}")
    return "/".join(parts)


def _items(obj: Any, group: str | None) -> dict[str, Any]:
    if isinstance(obj, dict):
        if group is not None:
            raise ValueError(f"group must be None when obj is a dict of groups; got group={group!r}")
        items = {_check_group_name(k): v for k, v in obj.items()}
        if not items:
            raise ValueError("obj is an empty dict: nothing to write")
    else:
        items = {_check_group_name(group if group is not None else default_group(obj)): obj}
    for g, v in items.items():
        type_name(v)  # TypeError for an unsupported type, before any file is touched
    _check_nesting(list(items), [])
    return items


def _provenance_of(obj: Any, seed: int | None, config: dict | None) -> dict:
    """seed, dtype, device and config of ``obj`` (explicit arguments win)."""
    import torch

    cfg = config
    if cfg is None:
        c = getattr(obj, "config", None)
        cfg = c if isinstance(c, dict) else None
    if seed is None:
        seed = (cfg or {}).get("seed", getattr(obj, "seed", None))
        seed = seed if isinstance(seed, int) and not isinstance(seed, bool) else None

    def dtype_device(v):
        if isinstance(v, torch.nn.Module):
            p = next(iter(v.parameters()), None)
            return (None, None) if p is None else (p.dtype, p.device)
        if isinstance(v, torch.Tensor):
            return v.dtype, v.device
        if isinstance(v, np.ndarray):
            return v.dtype, "cpu"
        return None, None

    if isinstance(obj, torch.nn.Module):
        dtype, device = dtype_device(obj)
    else:
        field = schema_for(obj).dtype_of
        if field is not None and dtype_device(getattr(obj, field, None))[0] is not None:
            dtype, device = dtype_device(getattr(obj, field))
        else:
            floats = [v for v in getattr(obj, "__dict__", {}).values()
                      if isinstance(v, torch.Tensor) and v.is_floating_point()]
            dtype, device = dtype_device(max(floats, key=lambda v: v.numel(), default=None))
    return provenance(seed=seed, dtype=dtype, device=device, config=cfg)


def _check_nesting(names: list[str], existing: list[str]) -> None:
    """A record may not sit inside another record (it would be hidden as a field of it)."""
    for a in names:
        for b in names + existing:
            if a != b and (b.startswith(a + "/") or a.startswith(b + "/")):
                inner, outer = (b, a) if b.startswith(a + "/") else (a, b)
                raise ValueError(f"group {inner!r} would be inside the record group {outer!r}; "
                                 f"use sibling groups such as 'runs/0', 'runs/1'")


def _write_items(f: h5py.File, items: dict[str, Any], seed, config, replace: bool) -> None:
    _check_nesting(list(items), [g for g in _records_in(f) if g not in items])
    for name, obj in items.items():
        if name in f:
            if not replace:
                raise ValueError(f"group {name!r} already exists in the file; pass replace=True to replace it")
            del f[name]
        g = f.create_group(name, track_order=True)
        write_group(g, obj)
        for k, v in _provenance_of(obj, seed, config).items():
            if k not in g.attrs:  # a record's own field of the same name (seed, config) wins
                g.attrs[k] = v


def save(path: str | os.PathLike, obj: Any, group: str | None = None, *, overwrite: bool = False,
         seed: int | None = None, config: dict | None = None, gzip: int | None = GZIP_LEVEL) -> Path:
    """Write ``obj`` (or a dict ``{group: obj}``) to a new file at ``path``, atomically.

    An existing ``path`` raises FileExistsError unless ``overwrite=True``.  ``seed`` and
    ``config`` are recorded as provenance (default: taken from the object, e.g.
    ``ResNet.config``).  ``gzip``: None (default) for no compression, or a deflate level 0..9
    (with shuffle) for the arrays of at least ``COMPRESS_BYTES`` (64 KiB).  Every dataset carries a
    checksum (fletcher32, or SHA-256 for scalars and strings).  Overwriting an existing file
    holds its writer's lock ``<path>.lock``, so an overwrite and an append never interleave.
    Returns the path.

    Atomic: the file is built beside ``path`` and appears under its name complete, or not at all
    (:mod:`analysis.io.atomic`).  Every argument is checked before any file is touched:
    TypeError for an object of an unregistered type, ValueError for a bad group name, a nested
    group or a ``gzip`` outside 0..9 or None; FileNotFoundError if the folder does not exist.
    """
    items = _items(obj, group)
    with gzip_level(gzip), atomic_create(path, overwrite=overwrite) as f:
        _write_items(f, items, seed, config, replace=False)
    return Path(path)


def append(path: str | os.PathLike, obj: Any, group: str | None = None, *, replace: bool = False,
           seed: int | None = None, config: dict | None = None, gzip: int | None = GZIP_LEVEL) -> Path:
    """Add ``obj`` (or a dict ``{group: obj}``) as new group(s) of the existing file ``path``.

    Written into a copy of the file that replaces the original only on success (see
    :func:`analysis.io.format.atomic_append`): a failure leaves ``path`` byte-identical.  An
    existing group raises ValueError unless ``replace=True`` (HDF5 does not reclaim the space of
    a replaced group; ``h5repack`` does).  ``gzip`` as in :func:`save`.  The whole
    read-copy-replace cycle holds the writer's lock ``<path>.lock``: concurrent appends (threads or
    processes) all land; readers do not wait.

    Raises FileNotFoundError for a missing ``path``, ValueError (naming it) for a file that is not
    an odenet file this version reads, TypeError / ValueError for the objects as :func:`save`.
    Returns the path.
    """
    items = _items(obj, group)
    with gzip_level(gzip), atomic_append(path) as f:
        _write_items(f, items, seed, config, replace=replace)
    return Path(path)


def _records_in(f: h5py.File) -> dict[str, str]:
    found: dict[str, str] = {}

    def visit(name, item):
        if isinstance(item, h5py.Group) and TYPE_ATTR in item.attrs:
            if not any(name.startswith(p + "/") for p in found):  # top-level records only
                t = item.attrs[TYPE_ATTR]
                found[name] = t.decode() if isinstance(t, bytes) else str(t)

    f.visititems(visit)
    return found


def list_records(path: str | os.PathLike) -> dict[str, str]:
    """``{group path: record type}`` of the records in the file (nested records excluded).  Reads
    without a lock; errors as :func:`load`."""
    with open_for_reading(path) as f:
        return _records_in(f)


def check_device(device: str | torch.device | None) -> torch.device | None:
    """``device`` as a ``torch.device`` after checking that tensors can be placed there; ValueError
    naming ``device`` otherwise (an unknown type such as "tpu:9", or a CUDA device that is not
    present).  None stays None (the CPU)."""
    if device is None:
        return None
    import torch

    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError) as exc:
        raise ValueError(f"device must be a torch device such as 'cpu' or 'cuda:0'; got {device!r} ({exc})") from None
    try:
        torch.empty(0, device=dev)
    except (RuntimeError, AssertionError, ValueError) as exc:
        raise ValueError(f"device {device!r} is not available on this machine: {exc}") from None
    return dev


def load(path: str | os.PathLike, group: str | None = None, *, device: str | torch.device | None = None) -> Any:
    """The record stored at ``group`` (default: the file's only record), rebuilt as the object
    that was written; tensors are placed on ``device`` (default CPU; checked before the file is
    opened).  Every dataset read is verified against its checksum (ValueError naming the file and
    the dataset on a mismatch), and the record group's ``format_version`` like the root's.

    Reads take no lock: a concurrent writer replaces the file by a rename, so the reader sees the
    old or the new file, whole.  Raises FileNotFoundError for a missing ``path``; ValueError
    naming the file for a foreign, newer-version or damaged file, a missing ``group``, several
    records and no ``group``, or a record type that is not registered and whose declaring module
    (the group's ``odenet_module``) is not a public module of solvers, odenet or analysis, cannot
    be imported or does not register it (:func:`analysis.io.schema.schema_named`)."""
    device = check_device(device)
    with open_for_reading(path) as f:
        if group is None:
            recs = _records_in(f)
            if len(recs) != 1:
                raise ValueError(f"{os.fspath(path)!r} holds {len(recs)} records {sorted(recs)}; pass group=")
            group = next(iter(recs))
        name = _check_group_name(group)
        if name not in f or not isinstance(f[name], h5py.Group):
            raise ValueError(f"{os.fspath(path)!r} has no group {group!r}; records: {sorted(_records_in(f))}")
        return read_group(f[name], device)


def save_model(path: str | os.PathLike, model: ResNet, group: str = "model", *, overwrite: bool = False) -> Path:
    """:func:`save` for a ResNet (its config, every parameter and buffer): atomic, and locked when
    overwriting, as :func:`save`.  TypeError unless ``model`` is an :class:`odenet.ResNet`."""
    from odenet import ResNet

    if not isinstance(model, ResNet):
        raise TypeError(f"model must be an odenet.ResNet; got {type(model).__name__}")
    return save(path, model, group, overwrite=overwrite)


def model_groups(path: str | os.PathLike) -> list[str]:
    """Paths of the groups holding a ResNet in the file, top-level or nested (a training run's)."""
    models: list[str] = []
    with open_for_reading(path) as f:
        f.visititems(lambda name, item: models.append(name) if isinstance(item, h5py.Group)
                     and item.attrs.get(TYPE_ATTR) == _models.MODEL_TYPE else None)
    return models


def load_model(path: str | os.PathLike, group: str | None = None, *,
               device: str | torch.device | None = None) -> ResNet:
    """The ResNet stored at ``group`` (default: the file's only model, also one nested in a
    record such as a training run's): outputs equal the saved model's bit for bit.  Errors as
    :func:`load`; ValueError also when the file holds no model or several and no ``group`` is
    given, or ``group`` holds another record type."""
    from odenet import ResNet

    device = check_device(device)
    if group is None:  # the file's only model, top-level or nested (a training run's model)
        models = model_groups(path)
        if len(models) != 1:
            raise ValueError(f"{os.fspath(path)!r} holds {len(models)} models {models}; pass group=")
        group = models[0]
    model = load(path, group, device=device)
    if not isinstance(model, ResNet):
        raise ValueError(f"{os.fspath(path)!r}: group {group!r} holds a {type(model).__name__}, not a ResNet")
    return model
