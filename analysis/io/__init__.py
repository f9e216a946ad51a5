"""HDF5 export: self-describing, netCDF-4 compatible files that xarray, MATLAB, Julia and
ParaView open (the layout is documented in docs/hdf5-format.md).

    save(path, obj_or_dict, group=None, *, overwrite=False, seed=None, config=None, gzip=None)
    append(path, obj_or_dict, group=None, *, replace=False, seed=None, config=None, gzip=None)
    load(path, group=None, *, device=None)
    save_model / load_model, list_records, write_xdmf; analysis.io.inspect.inspect(path) (import the submodule)
"""
from analysis.io.format import FORMAT_NAME, FORMAT_VERSION, open_for_reading, provenance
from analysis.io.grid import SampleGrid, parse_grid
from analysis.io.files import append, default_group, list_records, load, load_model, save, save_model
from analysis.io.xdmf import write_xdmf
from analysis.io.schema import Array, Attr, Json, Mapping, Ragged, Record, RecordList, Schema, Strings, register, registered

__all__ = ["save", "append", "load", "save_model", "load_model", "list_records", "default_group", "write_xdmf",
           "FORMAT_NAME", "FORMAT_VERSION", "open_for_reading", "provenance", "SampleGrid", "parse_grid",
           "Schema", "Array", "Strings", "Attr", "Json", "Mapping", "Ragged", "Record", "RecordList", "register",
           "registered"]
