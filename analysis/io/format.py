"""The file format's identity, provenance, and the safe ways in and out of a file.

Every file carries on its root

    format = "odenet-hdf5",  format_version = FORMAT_VERSION (an integer)

and provenance (library versions, creation time).  Readers refuse anything else with a
ValueError naming the path.

Writes never leave a half-written file under the target name, and writers never lose each
other's work (:mod:`analysis.io.atomic`):

- **create** (:func:`atomic_create`): the file is built in a temporary file in the target's
  folder (``tempfile.mkstemp(dir=...)``), flushed and fsync'ed, then published under the target
  name in one step.  An existing target is refused unless ``overwrite=True``; overwriting an
  existing file holds its writer's lock, so that it never interleaves with an append.
- **append** (:func:`atomic_append`): under the writer's lock (``<target>.lock``), the existing
  file is copied to a temporary file in the same folder, the new group is written into the copy,
  the copy is fsync'ed and renamed over the original.  Until that rename the original is never
  opened for writing, so an exception (or a crash) midway leaves it byte-identical; the temporary
  file is removed on any exception.  The lock covers the whole read-copy-replace cycle: two
  concurrent appends both land, one after the other.

Versions: the root and every record group carry ``format_version``; a reader refuses a version
above :data:`FORMAT_VERSION` on either (:func:`check_version`).  Version 2 added checksums on every
dataset (:mod:`analysis.io.schema`); version 3 made every variable CF-complete (units,
long_name, CF-valid names).  Version 1 files (no checksums) and version 2 files (a model's
parameters named by their state-dict keys, ``field.weight``) are still read.
"""
from __future__ import annotations

import contextlib
import datetime
import json
import os
import shutil
from pathlib import Path
from typing import Any, Iterator

import h5py
import numpy as np

from analysis.io.atomic import atomic_path, exclusive_lock, fsync_file, publish, temp_beside

FORMAT_NAME = "odenet-hdf5"
#: Integer format version.  A reader refuses files (and record groups) with a larger version than
#: its own.  1: the first layout; 2: every dataset carries a checksum (fletcher32 or SHA-256);
#: 3: CF-complete variables (``units`` and ``long_name`` on every one, CF-valid names: a model's
#: ``field.weight`` is the variable ``field_weight`` with the attribute ``torch_name``).
FORMAT_VERSION = 3


def library_versions() -> dict[str, str]:
    """Versions of the libraries that wrote the file: odenet, torch, numpy, h5py, HDF5."""
    import torch

    import odenet

    return {"odenet_version": str(odenet.__version__), "torch_version": str(torch.__version__),
            "numpy_version": np.__version__, "h5py_version": h5py.__version__,
            "hdf5_version": h5py.version.hdf5_version}


def now_utc() -> str:
    """Creation time as ISO 8601 in UTC, e.g. ``2026-11-27T08:30:00.123456+00:00``."""
    return datetime.datetime.now(datetime.timezone.utc).isoformat()


def provenance(*, seed: int | None = None, dtype: str | None = None, device: str | None = None,
               config: dict | None = None) -> dict[str, Any]:
    """The provenance attributes of a run group: format name and version, library versions,
    creation time, and (when known) seed, dtype, device and the full configuration as JSON.

    Unknown values are written as the string ``"none"`` for seed (so that "no seed" is recorded,
    not silently missing) and omitted otherwise.
    """
    attrs: dict[str, Any] = {"format": FORMAT_NAME, "format_version": np.int64(FORMAT_VERSION)}
    attrs.update(library_versions())
    attrs["created"] = now_utc()
    attrs["seed"] = "none" if seed is None else np.int64(seed)
    if dtype is not None:
        attrs["dtype"] = str(dtype).removeprefix("torch.")
    if device is not None:
        attrs["device"] = str(device)
    if config is not None:
        attrs["config"] = json.dumps(config)
    return attrs


def write_root_attrs(f: h5py.File) -> None:
    """Stamp the root of a new file with the format identity and the library versions."""
    f.attrs["format"] = FORMAT_NAME
    f.attrs["format_version"] = np.int64(FORMAT_VERSION)
    for k, v in library_versions().items():
        f.attrs[k] = v
    f.attrs["created"] = now_utc()
    # netCDF readers (and xarray) look for this attribute to know the file follows netCDF-4
    f.attrs["Conventions"] = "CF-1.8 odenet-hdf5"


def check_format(f: h5py.File, path: str | os.PathLike) -> int:
    """The file's format version, after checking the root says it is an odenet file this reader
    understands.  Raises ValueError naming ``path`` otherwise."""
    name = f.attrs.get("format")
    if isinstance(name, bytes):
        name = name.decode()
    if name != FORMAT_NAME:
        raise ValueError(f"{os.fspath(path)!r} is an HDF5 file but not an odenet file: root attribute "
                         f"format={name!r}, expected {FORMAT_NAME!r}")
    return check_version(f.attrs.get("format_version"), f"{os.fspath(path)!r}")


def check_version(version: Any, where: str) -> int:
    """``version`` (a ``format_version`` attribute) as an int, after checking this reader reads it
    (1 <= version <= FORMAT_VERSION).  Raises ValueError starting with ``where`` (the file, and the
    group when it is a group's) otherwise."""
    try:
        if isinstance(version, (bool, np.bool_, float, np.floating)):
            raise TypeError
        version = int(version)
    except (TypeError, ValueError):
        raise ValueError(f"{where}: format_version={version!r} is not an integer") from None
    if version > FORMAT_VERSION:
        raise ValueError(f"{where} has format version {version}, newer than this odenet reads "
                         f"({FORMAT_VERSION}); upgrade odenet to read it")
    if version < 1:
        raise ValueError(f"{where}: format_version={version} is not a valid version (>= 1)")
    return version


def with_path(exc: OSError, path: str | os.PathLike) -> OSError:
    """``exc`` itself if it names a file or mentions ``path``; else an error of the same type whose
    message starts with ``path`` (h5py's OSErrors, e.g. a full disk, name no file)."""
    if exc.filename is not None or os.fspath(path) in str(exc):
        return exc
    try:
        return type(exc)(f"{os.fspath(path)!r}: {exc}")
    except TypeError:
        return OSError(f"{os.fspath(path)!r}: {exc}")


def _reraise_with_path(exc: OSError, path: str | os.PathLike):
    named = with_path(exc, path)
    if named is exc:
        raise exc
    raise named from exc


@contextlib.contextmanager
def open_for_reading(path: str | os.PathLike) -> Iterator[h5py.File]:
    """Open an odenet file read-only, with clear errors: FileNotFoundError for a missing path,
    PermissionError for an unreadable one, ValueError (naming the path) for a non-HDF5, truncated
    or damaged, foreign or newer-version file, and for h5py's errors on damaged data inside the
    ``with`` block.  Takes no lock: writers publish by rename, so this sees one whole version."""
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"no such file: {os.fspath(path)!r}")
    if not p.is_file():
        raise ValueError(f"{os.fspath(path)!r} is not a regular file")
    with open(p, "rb"):  # an unreadable file: PermissionError naming it (h5py's would not)
        pass
    try:
        signed = h5py.is_hdf5(p)
    except OSError as exc:
        _reraise_with_path(exc, path)
    if not signed:
        raise ValueError(f"{os.fspath(path)!r} is not an HDF5 file (no HDF5 signature)")
    try:
        f = h5py.File(p, "r")
    except OSError as exc:
        raise ValueError(f"{os.fspath(path)!r} cannot be opened as HDF5 (truncated or damaged?): {exc}") from exc
    try:
        try:
            check_format(f, path)
        except (OSError, RuntimeError, KeyError) as exc:  # the root's attributes are damaged
            raise ValueError(f"{os.fspath(path)!r}: the root attributes cannot be read (damaged?): {exc}") from exc
        try:
            yield f
        except (OSError, RuntimeError) as exc:  # h5py's errors on damaged data, without the path
            raise ValueError(f"{os.fspath(path)!r} could not be read (damaged?): {exc}") from exc
    finally:
        f.close()


@contextlib.contextmanager
def atomic_create(path: str | os.PathLike, *, overwrite: bool = False) -> Iterator[h5py.File]:
    """Yield a new HDF5 file (root attributes stamped) that appears under ``path`` only when the
    ``with`` block finishes without an exception: temp file in the same folder, flush, fsync,
    ``os.replace``.  An existing ``path`` raises FileExistsError unless ``overwrite=True``; when
    ``overwrite=True``, the writer's lock of ``path`` is held throughout
    (an append that started first finishes first, one that starts later appends to the new file)."""
    p = Path(path)
    if not isinstance(overwrite, bool):
        raise TypeError(f"overwrite must be a bool; got {overwrite!r}")
    if p.exists() and not overwrite:
        raise FileExistsError(f"{os.fspath(path)!r} exists; pass overwrite=True to replace it")
    if p.exists() and not p.is_file():
        raise ValueError(f"{os.fspath(path)!r} exists and is not a regular file")
    if not p.parent.is_dir():
        raise FileNotFoundError(f"folder {os.fspath(p.parent)!r} of {os.fspath(path)!r} does not exist")
    # replacing a file must not interleave with an append's read-copy-replace, also when the file
    # appears after the check above; without overwrite the publishing hard link refuses a file
    # that appeared, so no lock (and no <path>.lock sidecar) is needed
    lock = exclusive_lock(p) if overwrite else contextlib.nullcontext()
    try:
        with lock, atomic_path(p, overwrite=overwrite) as tmp:
            with h5py.File(tmp, "w", track_order=True) as f:
                write_root_attrs(f)
                yield f
                f.flush()
    except OSError as exc:
        _reraise_with_path(exc, path)


@contextlib.contextmanager
def atomic_append(path: str | os.PathLike, *, timeout: float = -1) -> Iterator[h5py.File]:
    """Yield a writable copy of the existing odenet file ``path``; on success the copy replaces
    the original (fsync, ``os.replace``), on any exception the copy is deleted and the original
    is untouched (it is only ever opened read-only here).  The writer's lock of ``path`` is held
    from before the read to after the rename (``timeout`` as in
    :func:`analysis.io.atomic.exclusive_lock`), so concurrent appends never lose one another.
    The root's ``format_version`` becomes :data:`FORMAT_VERSION` (the new groups are of it)."""
    p = Path(path)
    with open_for_reading(p):  # the clear errors for a missing, foreign or newer file, before locking
        pass
    with exclusive_lock(p, timeout=timeout):
        with open_for_reading(p):  # again: the file may have been replaced while we waited
            pass
        tmp = temp_beside(p)
        try:
            try:
                shutil.copyfile(p, tmp)
                shutil.copymode(p, tmp)
                with h5py.File(tmp, "r+") as f:
                    f.attrs["format_version"] = np.int64(FORMAT_VERSION)
                    yield f
                    f.flush()
                fsync_file(tmp)
                publish(tmp, p, overwrite=True)
            except OSError as exc:
                _reraise_with_path(exc, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
