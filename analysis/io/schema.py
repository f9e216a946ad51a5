"""Declarative schemas: how a result record maps onto an HDF5 group, and one generic writer and
reader for all of them.

A :class:`Schema` lists a record's fields, each of one kind:

- :class:`Array`  a tensor or ndarray with named dimensions, e.g. ``Array("y", ("step", "sample",
  "state"))``; written as a chunked dataset with a checksum (chunked along ``step``; see
  *Checksums and compression* below);
- :class:`Strings` a list of str along one dimension (a netCDF string variable);
- :class:`Attr`   a scalar (int, float, str, bool) stored as a group attribute;
- :class:`Json`   any JSON value (dicts, lists) stored as a JSON string attribute;
- :class:`Mapping` a dict whose array values become datasets and other values JSON attributes
  of a subgroup;
- :class:`Ragged` a list of arrays of different lengths (polylines), stored as CF's contiguous
  ragged array: the concatenation plus a ``<name>_count`` variable;
- :class:`Record` a nested record, stored as a subgroup with its own schema;
- :class:`RecordList` a list of records, one subgroup ``0``, ``1``, ... each.

Every dimension becomes an HDF5 dimension scale in the group (netCDF-4's convention), so netCDF
readers and ``xarray.open_dataset(path, engine="h5netcdf", group=...)`` see the names.  A field
whose name equals its one dimension (``Array("x", ("x",))``) *is* that dimension's coordinate;
every other dimension gets the integer index 0..n-1 as its coordinate.  An array marked
``coord=True`` (``t`` along ``step``) is listed in the CF ``coordinates`` attribute of every
variable that uses its dimension, so xarray attaches it as a coordinate.

``None`` values are not written; a field missing on reading is ``None`` (an empty dict of a
:class:`Mapping` field is not written either and reads back as ``{}``).

Checksums and compression (format version 2): every dataset carries a checksum that is verified
whenever it is read, and a mismatch is a ValueError naming the file and the dataset.

- An array with at least one element is chunked and written with HDF5's **fletcher32** filter
  (a checksum per chunk, stored with the chunk; every HDF5 reader -- h5py, netCDF, MATLAB,
  Julia -- verifies it natively and fails the read on a mismatch).  Arrays of at most
  CHUNK_BYTES are one chunk.
- A 0-d (scalar) or empty array and a string variable cannot carry fletcher32 (HDF5 filters need
  chunks, and do not cover the heap where variable-length strings live); they carry the
  attribute ``odenet_sha256``: the hex SHA-256 of the array's C-order little-endian bytes, or of
  the strings' UTF-8 bytes each followed by a NUL byte.
- Compression is off by default (it costs ~10x the write time of the rest for float data that
  shrinks only to ~2/3).  With ``gzip=level`` (``save``/``append``) arrays of at least
  COMPRESS_BYTES are deflated (+ shuffle); smaller ones never are (compression cannot win there).
"""
from __future__ import annotations

import contextlib
import contextvars
import importlib
import hashlib
import json
import math
import re
import threading
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence

import h5py
import numpy as np
import torch

from solvers.validation import available_memory

from analysis.io.format import check_version

TYPE_ATTR = "odenet_type"          # on a group: the record type (schema name)
MODULE_ATTR = "odenet_module"      # on a group: the module that declares the record type
KIND_ATTR = "odenet_kind"          # on a dataset: "torch" or "numpy", what to rebuild
CHECKSUM_ATTR = "odenet_sha256"    # on a scalar, empty or string dataset: SHA-256 of its bytes
RENAMED_ATTR = "odenet_variables"  # on a mapping group: JSON {key: dataset name} where they differ
STEP_DIM = "step"                  # chunks run along this dimension
CHUNK_BYTES = 1 << 20              # at most about 1 MiB per chunk
COMPRESS_BYTES = 64 << 10          # smaller arrays are never compressed
GZIP_LEVEL = None                  # default: no compression (a deflate level 0..9 with shuffle if set)
_gzip: contextvars.ContextVar[int | None] = contextvars.ContextVar("odenet_hdf5_gzip", default=GZIP_LEVEL)


@contextlib.contextmanager
def gzip_level(level: int | None) -> Iterator[None]:
    """Within the block, datasets of at least COMPRESS_BYTES are written with gzip ``level``
    (0..9) + shuffle; ``None``: no compression.  Either way they are chunked, with fletcher32.
    ValueError for any other ``level``, raised on entering.  The level is a context variable:
    other threads and tasks keep theirs."""
    if level is not None and (isinstance(level, bool) or not isinstance(level, int) or not 0 <= level <= 9):
        raise ValueError(f"gzip must be an int in 0..9 or None (no compression); got {level!r}")
    token = _gzip.set(level)
    try:
        yield
    finally:
        _gzip.reset(token)


@dataclass(frozen=True)
class Array:
    """A tensor/ndarray field with named dimensions (``dims=()`` for a 0-d array).

    ``doc`` is written as the variable's CF ``long_name`` and ``units`` as its ``units`` ("1":
    dimensionless, as every quantity of a ResNet and its ODE is); ``axis`` ("X", "Y", "Z", "T")
    and ``standard_name`` are written where CF has one.  ``key``: the dataset name when it differs
    from the field name; ``Array("xs", ("x",), key="x")`` stores ``xs`` as the coordinate variable
    of dimension ``x``."""
    name: str
    dims: tuple[str, ...]
    coord: bool = False
    doc: str = ""
    key: str | None = None
    units: str = "1"
    axis: str | None = None
    standard_name: str | None = None

    def __post_init__(self):
        if self.axis not in (None, "X", "Y", "Z", "T"):
            raise ValueError(f"Array {self.name!r}: axis must be one of X, Y, Z, T (CF) or None; got {self.axis!r}")


@dataclass(frozen=True)
class Strings:
    """A list of str along one dimension, as a variable-length UTF-8 string variable (netCDF
    ``string``), e.g. the kinds of critical points."""
    name: str
    dims: tuple[str, ...]
    doc: str = ""
    units: str = "1"


@dataclass(frozen=True)
class Attr:
    """A scalar attribute of type ``int``, ``float``, ``str`` or ``bool``.  ``derived=True``:
    written for other tools (e.g. ``Solution.success``) but not passed back to the constructor."""
    name: str
    type: type
    derived: bool = False
    doc: str = ""


@dataclass(frozen=True)
class Json:
    """Any JSON-serialisable value (NaN and infinities allowed) as a string attribute."""
    name: str
    doc: str = ""


@dataclass(frozen=True)
class Mapping:
    """A dict with str keys: array values as datasets (dims ``<key>_0, <key>_1, ...``), the rest
    as JSON attributes, in a subgroup named after the field.  A key that is not a CF-valid name
    is stored under :func:`cf_name` of it (the group attribute ``odenet_variables`` maps keys to
    dataset names); each array's ``long_name`` is "``doc`` (or the field name): key"."""
    name: str
    doc: str = ""
    units: str = "1"


@dataclass(frozen=True)
class Ragged:
    """A list of arrays sharing trailing shape: ``dims = (element_dim, *trailing_dims)``; the list
    index runs along ``count_dim``.  Stored as CF's contiguous ragged array: ``name`` holds the
    concatenation, ``name_count`` the length of each piece."""
    name: str
    dims: tuple[str, ...]
    count_dim: str
    doc: str = ""
    units: str = "1"


@dataclass(frozen=True)
class Record:
    """A nested record (any registered type) stored in the subgroup ``name``."""
    name: str
    doc: str = ""


@dataclass(frozen=True)
class RecordList:
    """A list of records (e.g. the members of an ensemble), stored as the subgroup ``name`` with
    one record group per element, named ``0``, ``1``, ... (attribute ``length``)."""
    name: str
    doc: str = ""


Field = Array | Strings | Attr | Json | Mapping | Ragged | Record | RecordList


@dataclass(frozen=True)
class Schema:
    """How one result type is stored.

    ``name`` is written as the group attribute ``odenet_type``; ``cls`` is the record type;
    ``build(values)`` makes the record from the dict of field values (default ``cls(**values)``).
    """
    name: str
    cls: type
    fields: tuple
    build: Callable[[dict], Any] | None = None
    doc: str = ""
    #: the field whose dtype and device are recorded as provenance (default: the largest
    #: floating-point tensor)
    dtype_of: str | None = None

    def __post_init__(self):
        names = [getattr(f, "key", None) or f.name for f in self.fields]
        if len(set(names)) != len(names):
            raise ValueError(f"schema {self.name!r} has duplicate field names or keys: {names}")

    def make(self, values: dict) -> Any:
        """The record of the field values ``values`` (field name -> value, None for a missing
        field): ``build(values)``, or ``cls(**values)`` without ``build``."""
        return self.build(values) if self.build is not None else self.cls(**values)


# --- registry -----------------------------------------------------------------------------------
_BY_NAME: dict[str, Schema] = {}
#: guards _BY_NAME: a module imported in one thread registers while another thread looks types up
_REGISTRY_LOCK = threading.RLock()


def register(schema: Schema) -> Schema:
    """Make ``schema`` known to :func:`schema_for` and :func:`read_group` (by its name) and return
    it.  A record's module calls it at import, beside the record's dataclass::

        SEED_TABLE = register(Schema("SeedTable", SeedTable, fields=(...)))

    Registering a name again for the same class (same module and qualified name: a reloaded
    module) replaces the earlier schema; registering it for another class is a ValueError naming
    both, since files name record types by ``odenet_type`` alone.  TypeError if ``schema`` is not
    a :class:`Schema`.  Thread-safe."""
    if not isinstance(schema, Schema):
        raise TypeError(f"register expects a Schema; got {type(schema).__name__}")
    with _REGISTRY_LOCK:
        earlier = _BY_NAME.get(schema.name)
        if earlier is not None and _qualified(earlier.cls) != _qualified(schema.cls):
            raise ValueError(f"record type name {schema.name!r} is already registered for "
                             f"{_qualified(earlier.cls)}; cannot register it for {_qualified(schema.cls)}")
        _BY_NAME[schema.name] = schema
    return schema


def _qualified(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def registered() -> dict[str, Schema]:
    """All registered schemas by name (a copy)."""
    with _REGISTRY_LOCK:
        return dict(_BY_NAME)


def _find(obj: Any) -> Schema | None:
    schemas = registered().values()
    for klass in type(obj).__mro__:
        for s in schemas:
            if s.cls is klass:
                return s
    return None


def schema_for(obj: Any) -> Schema:
    """The schema of ``obj``'s type (or of its nearest registered base class).  TypeError naming
    the type and the registered names when there is none."""
    found = _find(obj)
    if found is None:
        raise TypeError(f"no HDF5 schema for objects of type {type(obj).__name__}; "
                        f"registered: {sorted(registered())}")
    return found


#: packages whose modules a file may name as the declarer of a record type (see schema_named)
TRUSTED_PACKAGES = ("solvers", "odenet", "analysis")
#: a module path a file may name: public identifiers only (no ``__main__``, no private module)
MODULE_PATH = re.compile(r"^[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z][A-Za-z0-9_]*)*$")


def schema_named(name: str, module: str | None = None) -> Schema:
    """The schema stored under ``name`` (a group's ``odenet_type``).

    A type not registered yet is looked up by importing ``module``, the declaring module the file
    names in ``odenet_module``: only a public module (dotted identifiers, none starting with ``_``,
    so never a ``__main__`` that would run a program) of :data:`TRUSTED_PACKAGES`, so that a
    file never makes us import arbitrary code.  Raises ValueError when ``module`` is not such a
    path, does not import or does not register ``name``.
    """
    if name not in registered() and module:
        if not MODULE_PATH.match(module) or module.split(".")[0] not in TRUSTED_PACKAGES:
            raise ValueError(f"record type {name!r} is declared in module {module!r}, which is not a public module "
                             f"of the packages a file may name ({', '.join(TRUSTED_PACKAGES)}); import it "
                             f"yourself first")
        try:
            importlib.import_module(module)
        except Exception as exc:
            raise ValueError(f"record type {name!r} is declared in module {module!r}, which failed to import: "
                             f"{type(exc).__name__}: {exc}") from exc
    schemas = registered()
    if name in schemas:
        return schemas[name]
    where = f" (its module {module!r} does not register it)" if module else ""
    raise ValueError(f"unknown record type {name!r} in file{where}; known: {sorted(schemas)}")


# --- CF names and attributes --------------------------------------------------------------------
#: a CF-valid variable name (CF 1.8 section 2.3): a letter, then letters, digits and underscores
CF_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


def cf_name(key: str) -> str:
    """``key`` as a CF-valid variable name: every character other than a letter, digit or ``_``
    becomes ``_``, and a name that does not start with a letter gets the prefix ``v_``
    (``"field.bn.0.weight"`` -> ``"field_bn_0_weight"``, ``"0"`` -> ``"v_0"``)."""
    name = re.sub(r"[^A-Za-z0-9_]", "_", key)
    return name if CF_NAME.match(name) else "v_" + name


def set_cf(ds: h5py.Dataset, long_name: str, units: str, *, axis: str | None = None,
           standard_name: str | None = None) -> None:
    """Write a variable's CF attributes: ``long_name`` (when not empty, so that a missing
    description shows as missing), ``units``, and ``axis`` / ``standard_name`` when given."""
    if long_name:
        ds.attrs["long_name"] = long_name
    ds.attrs["units"] = units
    if axis is not None:
        ds.attrs["axis"] = axis
    if standard_name is not None:
        ds.attrs["standard_name"] = standard_name


# --- arrays ---------------------------------------------------------------------------------------
def to_numpy(value: Any, what: str) -> tuple[np.ndarray, str]:
    """(ndarray on the CPU, "torch" | "numpy") for a tensor or array ``value``, same shape and
    dtype (a tensor is detached and copied to the CPU).  TypeError starting with ``what`` for
    another type, a bfloat16 or complex tensor, or an array that is not bool, int, uint or float."""
    if isinstance(value, torch.Tensor):
        if value.dtype == torch.bfloat16 or value.is_complex():
            raise TypeError(f"{what}: tensors of dtype {value.dtype} cannot be stored")
        return value.detach().cpu().numpy(), "torch"
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in "biuf":
            raise TypeError(f"{what}: arrays of dtype {value.dtype} cannot be stored (bool, int, uint, float only)")
        return value, "numpy"
    raise TypeError(f"{what} must be a torch.Tensor or numpy.ndarray; got {type(value).__name__}")


def from_numpy(arr: np.ndarray, kind: str, device: str | torch.device | None = None
               ) -> np.ndarray | torch.Tensor:
    """The inverse of :func:`to_numpy`: for ``kind == "torch"`` a tensor sharing ``arr``'s memory
    (C order; a copy if it was not), moved to ``device`` when given; else ``arr`` itself."""
    if kind == "torch":
        t = torch.from_numpy(np.asarray(arr, order="C"))  # (np.ascontiguousarray turns 0-d into 1-d)
        return t if device is None else t.to(device)
    return arr


def _chunks(shape: tuple[int, ...], itemsize: int, dims: tuple[str, ...]):
    """One chunk for an array of at most CHUNK_BYTES; else chunks along ``step`` (whole rows of the
    other axes, as many steps as fit in CHUNK_BYTES), or h5py's choice without ``step``."""
    if itemsize * math.prod(shape) <= CHUNK_BYTES:
        return tuple(shape)
    if STEP_DIM not in dims:
        return True  # let h5py choose
    axis = dims.index(STEP_DIM)
    row = itemsize * math.prod(s for i, s in enumerate(shape) if i != axis)
    chunks = list(shape)
    chunks[axis] = max(1, min(shape[axis], CHUNK_BYTES // max(row, 1)))
    return tuple(chunks)


def sha256_of(values: np.ndarray | list[str]) -> str:
    """Hex SHA-256 of a numeric array's C-order little-endian bytes, or of a list of strings' UTF-8
    bytes, each followed by a NUL byte (the ``odenet_sha256`` attribute)."""
    if isinstance(values, np.ndarray) and values.dtype.kind in "biuf":
        data = np.ascontiguousarray(values, dtype=values.dtype.newbyteorder("<")).tobytes()
    else:
        data = b"".join((v.decode() if isinstance(v, bytes) else str(v)).encode("utf-8") + b"\0"
                        for v in np.asarray(values, dtype=object).ravel())
    return hashlib.sha256(data).hexdigest()


def write_dataset(group: h5py.Group, name: str, arr: np.ndarray, kind: str | None, dims: tuple[str, ...]
                  ) -> h5py.Dataset:
    """Write the bool, int or float array ``arr`` as the dataset ``name`` of ``group`` with its
    checksum (module docstring): chunked with fletcher32 when it has elements, the attribute
    ``odenet_sha256`` when it is 0-d or empty; deflated only if a gzip level is set and it holds at
    least COMPRESS_BYTES.  ``kind`` ("torch" | "numpy" | None) is recorded for the reader."""
    is_bool = arr.dtype == np.bool_
    data = arr.astype(np.int8) if is_bool else arr  # netCDF has no bool: xarray's own int8 + dtype="bool"
    if data.ndim and data.size:
        level = _gzip.get()
        filters: dict[str, Any] = {"fletcher32": True}
        if level is not None and data.nbytes >= COMPRESS_BYTES:
            filters.update(compression="gzip", compression_opts=level, shuffle=True)
        ds = group.create_dataset(name, data=data, chunks=_chunks(data.shape, data.itemsize, dims), **filters)
    else:
        ds = group.create_dataset(name, data=data)
        ds.attrs[CHECKSUM_ATTR] = sha256_of(data)
    if kind is not None:
        ds.attrs[KIND_ATTR] = kind
    if is_bool:
        ds.attrs["dtype"] = "bool"
    return ds


def write_strings(group: h5py.Group, name: str, values: Sequence[str]) -> h5py.Dataset:
    """A 1-D variable-length UTF-8 string dataset (netCDF ``string``) with its ``odenet_sha256``."""
    ds = group.create_dataset(name, data=list(values), dtype=h5py.string_dtype("utf-8"), shape=(len(values),))
    ds.attrs[CHECKSUM_ATTR] = sha256_of(list(values))
    return ds


def available_bytes() -> int:
    """Memory available to a new host allocation (solvers' one estimate: Linux MemAvailable, else
    free pages)."""
    return available_memory()


def read_verified(ds: h5py.Dataset) -> np.ndarray:
    """The stored values of ``ds`` (numeric: an ndarray of the stored dtype; strings: an object
    array of bytes or str), after checking them: fletcher32 by HDF5 while reading, then the
    ``odenet_sha256`` attribute if present.  Raises ValueError naming the file and the dataset for
    a checksum mismatch, an unreadable dataset, or one whose declared size exceeds the available
    memory (checked before allocating)."""
    where = f"{ds.file.filename!r}: dataset {ds.name!r}"
    need, avail = ds.size * ds.dtype.itemsize, available_bytes()
    if need > avail:
        raise ValueError(f"{where} declares shape {ds.shape} of {ds.dtype} ({need / 2**30:.3g} GiB), more than "
                         f"the {avail / 2**30:.3g} GiB of memory available; the file is damaged or crafted")
    try:
        arr = ds[()]
    except (OSError, RuntimeError) as exc:
        what = "fails its fletcher32 checksum or cannot be read" if ds.fletcher32 else "cannot be read"
        raise ValueError(f"{where} {what} (the file is damaged): {exc}") from exc
    if not isinstance(arr, np.ndarray):
        arr = np.asarray(arr, dtype=ds.dtype if ds.dtype.kind in "biuf" else object)
    expected = ds.attrs.get(CHECKSUM_ATTR)
    if expected is not None:
        expected = expected.decode() if isinstance(expected, bytes) else str(expected)
        actual = sha256_of(arr if arr.dtype.kind in "biuf" else list(arr.ravel()))
        if actual != expected:
            raise ValueError(f"{where} fails its SHA-256 checksum (attribute {CHECKSUM_ATTR}={expected}, data "
                             f"{actual}): the file is damaged")
    return arr


def read_dataset(ds: h5py.Dataset, device: str | torch.device | None = None) -> np.ndarray | torch.Tensor:
    """The array stored by :func:`write_dataset`, verified (:func:`read_verified`): a tensor on
    ``device`` or an ndarray, as it was written, bools restored."""
    arr = read_verified(ds)
    if ds.attrs.get("dtype") == "bool":
        arr = arr.astype(np.bool_)
    return from_numpy(arr, ds.attrs.get(KIND_ATTR, "numpy"), device)


def read_strings(ds: h5py.Dataset) -> list[str]:
    """The list of str stored by :func:`write_strings`, verified."""
    return [v.decode() if isinstance(v, bytes) else str(v) for v in read_verified(ds)]


class Dims:
    """The dimensions of one group while it is written: their sizes, coordinate values and auxiliary
    coordinates.  Writers call :meth:`use` for every variable, append ``(dataset, dims)`` to
    ``attach``, and call :meth:`finish` once at the end."""

    def __init__(self, group: h5py.Group, where: str):
        self.group, self.where = group, where
        self.sizes: dict[str, int] = {}
        self.users: dict[str, str] = {}
        self.attach: list[tuple[h5py.Dataset, tuple[str, ...]]] = []
        self.aux: dict[str, list[str]] = {}  # dim -> names of auxiliary coordinates along it

    def use(self, field: str, dims: tuple[str, ...], shape: tuple[int, ...]) -> None:
        """Record that variable ``field`` has dimensions ``dims`` of lengths ``shape``.  ValueError
        naming the group and the field when ``len(dims) != len(shape)`` or a dimension already
        has another length."""
        if len(dims) != len(shape):
            raise ValueError(f"{self.where}.{field}: has shape {shape} but the schema names {len(dims)} "
                             f"dimensions {dims}")
        for d, n in zip(dims, shape):
            if d in self.sizes and self.sizes[d] != n:
                raise ValueError(f"{self.where}: dimension {d!r} has length {self.sizes[d]} in "
                                 f"{self.users[d]!r} but {n} in {field!r}")
            self.sizes.setdefault(d, n)
            self.users.setdefault(d, field)

    def finish(self) -> None:
        """Make every dimension a netCDF-4 dimension scale (writing the index 0..n-1 as its
        coordinate where the group has none), attach the scales to the variables in ``attach``,
        and list the auxiliary coordinates in their CF ``coordinates`` attribute.  ValueError when
        a member named like a dimension is not its 1-D coordinate."""
        g = self.group
        for d, n in self.sizes.items():
            if d not in g:  # no coordinate variable given: the index 0..n-1
                ds = write_dataset(g, d, np.arange(n, dtype=np.int64), None, (d,))
                set_cf(ds, f"index along {d}", "1")
            elif not isinstance(g[d], h5py.Dataset) or g[d].shape != (n,):
                raise ValueError(f"{self.where}: {d!r} is both a dimension of length {n} and a member "
                                 f"that is not its 1-D coordinate; rename one of them")
            g[d].make_scale(d)
        for ds, dims in self.attach:
            if ds.name.rsplit("/", 1)[-1] in self.sizes:  # a coordinate variable is its own scale
                continue
            for i, d in enumerate(dims):
                ds.dims[i].attach_scale(g[d])
            own = ds.name.rsplit("/", 1)[-1]
            coords = [c for d in dims for c in self.aux.get(d, []) if c != own]
            if coords:
                ds.attrs["coordinates"] = " ".join(dict.fromkeys(coords))


# --- writing --------------------------------------------------------------------------------------
def _check_attr(value: Any, field: Attr, where: str):
    t = field.type
    if t is bool:
        if not isinstance(value, (bool, np.bool_)):
            raise TypeError(f"{where}.{field.name} must be a bool; got {value!r}")
        return np.int8(bool(value))
    if t is int:
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
            raise TypeError(f"{where}.{field.name} must be an int; got {value!r}")
        return np.int64(value)
    if t is float:
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
            raise TypeError(f"{where}.{field.name} must be a float; got {value!r}")
        return np.float64(value)
    if t is str:
        if not isinstance(value, str):
            raise TypeError(f"{where}.{field.name} must be a str; got {value!r}")
        return value
    raise TypeError(f"{where}.{field.name}: unsupported attribute type {t!r}")


def _key(f) -> str:
    """The name of a field's dataset, group or attribute in the file."""
    return getattr(f, "key", None) or f.name


def write_group(group: h5py.Group, obj: Any, schema: Schema | None = None) -> None:
    """Write ``obj`` into the (empty) ``group`` following its schema (default: the registered one,
    :func:`schema_for`), stamping the group with ``odenet_type`` and (for a schema's record) ``odenet_module``,
    the module declaring the record's class, which a reader imports if needed.  ``None`` fields are skipped.
    TypeError for an unregistered type or a field value of the wrong type; ValueError for
    dimension lengths that disagree.  Writes into an open file: atomicity is the caller's
    (:func:`analysis.io.format.atomic_create`, :func:`~analysis.io.format.atomic_append`)."""
    for klass, (tname, writer) in _SPECIAL_WRITERS.items():
        if schema is None and isinstance(obj, klass):
            group.attrs[TYPE_ATTR] = tname
            writer(group, obj)
            return
    schema = schema or schema_for(obj)
    where = group.name
    group.attrs[TYPE_ATTR] = schema.name
    group.attrs[MODULE_ATTR] = schema.cls.__module__
    dims = Dims(group, where)
    # coordinate variables first, so that they exist before the other datasets attach to them
    ordered = sorted(schema.fields, key=lambda f: not (isinstance(f, Array) and f.dims == (_key(f),)))
    for f in ordered:
        value = getattr(obj, f.name)
        if value is None:
            continue
        if isinstance(f, Array):
            arr, kind = to_numpy(value, f"{where}.{f.name}")
            dims.use(_key(f), f.dims, arr.shape)
            ds = write_dataset(group, _key(f), arr, kind, f.dims)
            set_cf(ds, f.doc, f.units, axis=f.axis, standard_name=f.standard_name)
            dims.attach.append((ds, f.dims))
            if f.coord and len(f.dims) == 1 and f.dims != (_key(f),):
                dims.aux.setdefault(f.dims[0], []).append(_key(f))
        elif isinstance(f, Strings):
            if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
                raise TypeError(f"{where}.{f.name} must be a list of str; got {value!r}")
            dims.use(f.name, f.dims, (len(value),))
            ds = write_strings(group, f.name, value)
            set_cf(ds, f.doc, f.units)
            dims.attach.append((ds, f.dims))
        elif isinstance(f, Attr):
            group.attrs[f.name] = _check_attr(value, f, where)
        elif isinstance(f, Json):
            group.attrs[f.name] = json.dumps(value)
        elif isinstance(f, Mapping):
            if isinstance(value, dict) and not value:
                continue  # an empty dict is not written; it reads back as {}
            _write_mapping(group.create_group(f.name), value, f"{where}.{f.name}", f.doc or f.name, f.units)
        elif isinstance(f, Ragged):
            pieces = [to_numpy(v, f"{where}.{f.name}[{i}]") for i, v in enumerate(value)]
            if not pieces:  # only the (empty) count: the element shape is unknown
                dims.use(f.name + "_count", (f.count_dim,), (0,))
                cs = write_dataset(group, f.name + "_count", np.zeros(0, np.int64), "numpy", (f.count_dim,))
                set_cf(cs, _count_long_name(f), "1")
                dims.attach.append((cs, (f.count_dim,)))
                continue
            kinds = {k for _, k in pieces}
            trailing = {a.shape[1:] for a, _ in pieces}
            dtypes = {a.dtype for a, _ in pieces}
            if len(trailing) != 1 or len(dtypes) != 1 or len(kinds) != 1 or pieces[0][0].ndim != len(f.dims):
                raise ValueError(f"{where}.{f.name}: every element must have {len(f.dims)} dimensions, the same "
                                 f"trailing shape, dtype and type; got shapes {[a.shape for a, _ in pieces]}")
            cat = np.concatenate([a for a, _ in pieces])
            count = np.array([len(a) for a, _ in pieces], dtype=np.int64)
            dims.use(f.name, f.dims, cat.shape)
            dims.use(f.name + "_count", (f.count_dim,), count.shape)
            ds = write_dataset(group, f.name, cat, kinds.pop(), f.dims)
            set_cf(ds, f.doc, f.units)
            cs = write_dataset(group, f.name + "_count", count, "numpy", (f.count_dim,))
            set_cf(cs, _count_long_name(f), "1")
            cs.attrs["sample_dimension"] = f.dims[0]  # CF contiguous ragged array
            dims.attach += [(ds, f.dims), (cs, (f.count_dim,))]
        elif isinstance(f, Record):
            write_group(group.create_group(f.name), value)
        elif isinstance(f, RecordList):
            if not isinstance(value, (list, tuple)):
                raise TypeError(f"{where}.{f.name} must be a list of records; got {type(value).__name__}")
            sub = group.create_group(f.name, track_order=True)
            sub.attrs[TYPE_ATTR] = "list"
            sub.attrs["length"] = np.int64(len(value))
            for i, item in enumerate(value):
                write_group(sub.create_group(str(i)), item)
        else:  # pragma: no cover
            raise TypeError(f"unknown field kind {f!r}")
    dims.finish()


def _count_long_name(f: Ragged) -> str:
    return f"number of {f.dims[0]}s in each {f.count_dim} of {f.name}"


def _write_mapping(group: h5py.Group, value: dict, where: str, long_name: str = "", units: str = "1") -> None:
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise TypeError(f"{where} must be a dict with str keys; got {value!r}")
    group.attrs[TYPE_ATTR] = "mapping"
    group.attrs["keys"] = json.dumps(list(value))
    dims = Dims(group, where)
    renamed: dict[str, str] = {}  # key -> CF-valid dataset name, where they differ
    taken = set(value)
    for k, v in value.items():
        if "/" in k or k in ("keys", RENAMED_ATTR) or not k:
            raise ValueError(f"{where}: key {k!r} cannot be stored (no '/', not empty, not 'keys' or "
                             f"{RENAMED_ATTR!r})")
        if _is_array(v):
            arr, kind = to_numpy(v, f"{where}[{k!r}]")
            name = cf_name(k)
            while name != k and name in taken:  # another key already is that name
                name += "_"
            taken.add(name)
            if name != k:
                renamed[k] = name
            d = tuple(f"{name}_{i}" for i in range(arr.ndim))
            dims.use(name, d, arr.shape)
            ds = write_dataset(group, name, arr, kind, d)
            set_cf(ds, f"{long_name}: {k}", units)
            dims.attach.append((ds, d))
        else:
            group.attrs[k] = json.dumps(v)
    if renamed:
        group.attrs[RENAMED_ATTR] = json.dumps(renamed)
    dims.finish()


def _is_array(v: Any) -> bool:
    return isinstance(v, (np.ndarray, torch.Tensor))


# --- reading --------------------------------------------------------------------------------------
def _attr_value(raw, t: type):
    if isinstance(raw, bytes):
        raw = raw.decode()
    if t is bool:
        return bool(raw)
    if t is int:
        return int(raw)
    if t is float:
        return float(raw)
    return str(raw)


def read_group(group: h5py.Group, device: str | torch.device | None = None) -> Any:
    """Rebuild the record stored in ``group`` (the inverse of :func:`write_group`), after checking
    its ``format_version`` (when it has one, as every record group odenet writes) like the root's;
    tensors are placed on ``device``.  A record type not registered yet is found by importing the
    module the group names (:func:`schema_named`).  ValueError for a group without a record, an
    unknown record type, a newer format version or a dataset that fails its checksum."""
    if "format_version" in group.attrs:
        check_version(group.attrs["format_version"], f"{group.file.filename!r}: group {group.name!r}")
    name = _str_attr(group, TYPE_ATTR)
    if name is None:
        raise ValueError(f"group {group.name!r} holds no odenet record (no {TYPE_ATTR!r} attribute)")
    if name == "mapping":
        return _read_mapping(group, device)
    if name in _SPECIAL_READERS:
        return _SPECIAL_READERS[name](group, device)
    schema = schema_named(name, _str_attr(group, MODULE_ATTR))
    values: dict[str, Any] = {}
    for f in schema.fields:
        k = _key(f)
        if isinstance(f, Attr):
            if f.derived:
                continue
            values[f.name] = _attr_value(group.attrs[k], f.type) if k in group.attrs else None
        elif isinstance(f, Json):
            values[f.name] = json.loads(group.attrs[k]) if k in group.attrs else None
        elif isinstance(f, Ragged) and k not in group and k + "_count" in group:
            values[f.name] = []
        elif isinstance(f, Mapping) and k not in group:
            values[f.name] = {}
        elif k not in group:
            values[f.name] = None
        elif isinstance(f, Array):
            values[f.name] = read_dataset(group[k], device)
        elif isinstance(f, Strings):
            values[f.name] = read_strings(group[k])
        elif isinstance(f, Mapping):
            values[f.name] = _read_mapping(group[k], device)
        elif isinstance(f, Ragged):
            cat = read_dataset(group[k], device)
            count = read_verified(group[k + "_count"])
            bounds = np.concatenate([[0], np.cumsum(count)])
            values[f.name] = [cat[int(a):int(b)] for a, b in zip(bounds[:-1], bounds[1:])]
        elif isinstance(f, Record):
            values[f.name] = read_group(group[k], device)
        elif isinstance(f, RecordList):
            sub = group[k]
            values[f.name] = [read_group(sub[str(i)], device) for i in range(int(sub.attrs["length"]))]
    return schema.make(values)


def _str_attr(group: h5py.Group, attr: str) -> str | None:
    """The string attribute ``attr`` of ``group`` (None when absent); ValueError naming the group,
    the attribute and the value when it holds something else (a damaged or crafted file)."""
    value = group.attrs.get(attr)
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    if value is not None and not isinstance(value, str):
        raise ValueError(f"{group.file.filename!r}: group {group.name!r} has attribute {attr}={value!r}; "
                         f"a string was expected (the file is damaged)")
    return value


def _read_mapping(group: h5py.Group, device: str | torch.device | None = None) -> dict:
    out = {}
    renamed = json.loads(group.attrs.get(RENAMED_ATTR, "{}"))  # format version 3: CF-valid names
    for k in json.loads(group.attrs["keys"]):
        name = renamed.get(k, k)
        out[k] = read_dataset(group[name], device) if name in group else json.loads(group.attrs[k])
    return out


#: writers and readers for types that are not plain schemas (models)
_SPECIAL_WRITERS: dict[type, tuple[str, Callable]] = {}
_SPECIAL_READERS: dict[str, Callable] = {}


def register_special(cls: type, name: str, writer: Callable, reader: Callable) -> None:
    """Store objects of type ``cls`` with ``writer(group, obj)`` and read groups whose
    ``odenet_type`` is ``name`` with ``reader(group, device)``."""
    _SPECIAL_WRITERS[cls] = (name, writer)
    _SPECIAL_READERS[name] = reader


def type_name(obj: Any) -> str:
    """The ``odenet_type`` under which ``obj`` is stored."""
    for klass, (tname, _) in _SPECIAL_WRITERS.items():
        if isinstance(obj, klass):
            return tname
    return schema_for(obj).name
