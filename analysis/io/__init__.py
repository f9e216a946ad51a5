"""Storage: self-describing HDF5 files (netCDF-4 compatible; xarray, MATLAB, Julia and ParaView
open them), their XDMF sidecars, and the one atomic-write and lock helper.  The layout is
specified in docs/hdf5-format.md.

    save(path, obj_or_dict, group=None, *, overwrite=False, seed=None, config=None, gzip=None)
    append(path, obj_or_dict, group=None, *, replace=False, seed=None, config=None, gzip=None)
    load(path, group=None, *, device=None)
    save_model / load_model, list_records, write_xdmf; analysis.io.inspect.inspect(path) and
    check(path) (import the submodule)

**A floor of its own.**  This package imports from ``solvers`` and ``odenet`` only (the floors
below it), never from analysis.geometry, approximation, continuum, plots or experiments, which
sit above it (tests/test_layers.py checks the imports).  It stores the types of those two floors
itself: ``solvers.Solution``, odenet's ``TrainResult``, ``EnsembleResult`` and ``Dataset``, and
:class:`SampleGrid` (:mod:`analysis.io.records`); an ``odenet.ResNet`` is written by its own
writer and reader (:mod:`analysis.io.models`).

**Records register their schemas beside their dataclasses.**  A module above that defines a
record type declares how it is stored next to the dataclass, and registers it when the module
is imported::

    @dataclass
    class MyResult:
        values: torch.Tensor        # (step, sample)
        method: str

    register(Schema("MyResult", MyResult, fields=(Array("values", ("step", "sample")), Attr("method", str))))

``import analysis`` imports every such module.  :func:`save` writes a record with the schema
registered for its class (TypeError if none is).  A name belongs to one class: registering it
for another is a ValueError (files name record types by name alone).  The registry is
thread-safe.

**odenet_module.**  Every record group carries ``odenet_type`` (the schema's name) and
``odenet_module`` (the module that declares the record's class).  Loading a group whose type is
not registered yet imports that module by its name, only a public module (no ``__main__``, no
``_private`` part) of the packages ``solvers``, ``odenet`` and ``analysis`` (a file never makes
the reader import other code or run a program), and raises
ValueError naming the type and the module if the import fails or does not register the type.
No table of module names, no swallowed ImportError.

**Atomic writes, locked read-modify-writes.**  Every file appears under its name complete or not
at all (:mod:`analysis.io.atomic`: a temporary file beside it, fsync, rename).  :func:`append`,
and :func:`save` with ``overwrite=True``, hold the writer's lock ``<path>.lock`` for the whole
read-copy-replace cycle, so concurrent writers never lose each other's records; readers take no
lock and see the old file or the new one, whole.

**The alias.**  ``analysis.hdf5`` (the name since 0.1) is this package: ``import analysis``
makes ``analysis.hdf5`` and ``analysis.hdf5.<module>`` the very module objects of
``analysis.io`` and ``analysis.io.<module>``, so both names share one registry of schemas.
"""
from analysis.io.format import FORMAT_NAME, FORMAT_VERSION, open_for_reading, provenance
from analysis.io.grid import SampleGrid, parse_grid
from analysis.io.files import append, default_group, list_records, load, load_model, save, save_model
from analysis.io.xdmf import write_xdmf
from analysis.io.schema import Array, Attr, Json, Mapping, Ragged, Record, RecordList, Schema, Strings, register, registered

__all__ = [
    # files: write, append, read
    "save", "append", "load", "save_model", "load_model", "list_records", "default_group", "write_xdmf",
    "open_for_reading", "provenance", "FORMAT_NAME", "FORMAT_VERSION",
    # a grid of input points (odenet trace --grid)
    "SampleGrid", "parse_grid",
    # declaring a record type's storage
    "Schema", "Array", "Strings", "Attr", "Json", "Mapping", "Ragged", "Record", "RecordList", "register",
    "registered",
]


def __getattr__(name: str):
    """``from analysis.hdf5 import io`` (odenet 0.1): ``io`` was this package's file module, now
    :mod:`analysis.io.files`; the from-import looks it up as an attribute of this package."""
    if name == "io":
        from analysis.io import files  # the module analysis.hdf5.io names (silently, as all of analysis.hdf5)
        return files
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
