"""CF completeness of the files analysis.io writes (format version 3).

A file holding every registered record type (filled with small synthetic values, written by the
generic writer with the record's own schema) and a model is walked variable by variable, checking
the rules a CF checker applies to names, units and long names (cfchecker itself needs cf_units
and udunits2, which are not dependencies of odenet):

- a variable name is a letter followed by letters, digits and underscores (CF 1.8 section 2.3);
- every variable has ``units`` that UDUNITS parses (here: one of a small list of units known to
  parse; "1" is dimensionless) and a non-empty ``long_name``;
- ``axis`` is one of X, Y, Z, T and ``standard_name`` one of CF's table where present.
"""
import re
import types

import h5py
import numpy as np
import pytest
import torch

from analysis import hdf5
from analysis.io.schema import (Array, Attr, Json, Mapping, Ragged, Record, RecordList, Strings, cf_name,
                                  write_group)
from odenet import ResNet

CF_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
#: units that UDUNITS-2 parses (a small list; every odenet quantity is dimensionless, "1")
PARSEABLE_UNITS = {"1", "s", "m", "kg", "K", "rad", "degree", "percent"}
#: the CF standard names odenet may use (from CF's standard name table)
CF_STANDARD_NAMES = {"time", "projection_x_coordinate", "projection_y_coordinate"}
SIZE = 2  # every dimension of the synthetic records


def _project_schemas() -> dict:
    """The registered schemas of odenet's own record types (other tests register private ones)."""
    own = ("odenet", "solvers", "analysis")
    return {n: s for n, s in hdf5.registered().items() if s.cls.__module__.split(".")[0] in own}


def _fake(schema):
    """A namespace with a value of every field of ``schema`` (all dimensions of length SIZE)."""
    values = {}
    for f in schema.fields:
        if isinstance(f, Array):
            values[f.name] = np.arange(SIZE ** len(f.dims), dtype=np.float64).reshape((SIZE,) * len(f.dims))
        elif isinstance(f, Strings):
            values[f.name] = ["a"] * SIZE
        elif isinstance(f, Attr):
            values[f.name] = {int: 1, float: 1.0, str: "a", bool: True}[f.type]
        elif isinstance(f, Json):
            values[f.name] = {"a": 1}
        elif isinstance(f, Mapping):
            values[f.name] = {"a.b": np.zeros(SIZE), "0": np.ones(SIZE), "c": 1}
        elif isinstance(f, Ragged):
            values[f.name] = [np.zeros((SIZE,) * len(f.dims))] * SIZE
        elif isinstance(f, Record):
            values[f.name] = ResNet(2, 2, 1, 2, seed=0, batchnorm=True, input_map="affine")
        elif isinstance(f, RecordList):
            values[f.name] = [ResNet(2, 2, 1, 1, seed=0)]
        else:  # pragma: no cover
            raise AssertionError(f"unknown field kind {f!r}")
    return types.SimpleNamespace(**values)


@pytest.fixture(scope="module")
def every_record(tmp_path_factory):
    schemas = _project_schemas()
    assert len(schemas) >= 30  # the schemas of every module are registered (providers ran)
    path = tmp_path_factory.mktemp("cf") / "all.h5"
    with h5py.File(path, "w") as f:
        for name, schema in schemas.items():
            write_group(f.create_group(name), _fake(schema), schema)
        write_group(f.create_group("model"), ResNet(2, 3, 1, 2, seed=0, batchnorm=True, input_map="affine"))
    # the record types that hold variables (some, such as OrderFit, are attributes only)
    return path, sorted(n for n, s in schemas.items() if any(isinstance(f, (Array, Strings, Ragged, Mapping, Record))
                                                             for f in s.fields))


def _variables(path):
    found = {}

    def visit(name, obj):  # (returns None: a value would stop the walk)
        if isinstance(obj, h5py.Dataset):
            found[name] = dict(obj.attrs)

    with h5py.File(path, "r") as f:
        f.visititems(visit)
    return found


def _text(v):
    return v.decode() if isinstance(v, bytes) else v


def test_every_variable_of_every_record_type_is_cf_complete(every_record):
    path, names = every_record
    variables = _variables(path)
    groups = {v.split("/", 1)[0] for v in variables}
    assert set(names) <= groups
    errors = []
    for var, attrs in variables.items():
        base = var.rsplit("/", 1)[-1]
        if not CF_NAME.match(base):
            errors.append(f"{var}: invalid CF name")
        if _text(attrs.get("units")) not in PARSEABLE_UNITS:
            errors.append(f"{var}: units {attrs.get('units')!r}")
        if not isinstance(_text(attrs.get("long_name")), str) or not _text(attrs.get("long_name")).strip():
            errors.append(f"{var}: no long_name")
        if "axis" in attrs and _text(attrs["axis"]) not in {"X", "Y", "Z", "T"}:
            errors.append(f"{var}: axis {attrs['axis']!r}")
        if "standard_name" in attrs and _text(attrs["standard_name"]) not in CF_STANDARD_NAMES:
            errors.append(f"{var}: standard_name {attrs['standard_name']!r}")
    assert errors == [], "\n".join(errors)
    assert len(variables) > 300  # the walk really saw the records' variables


def test_the_check_finds_what_it_should(tmp_path):
    # the rules above fail on a variable without units, without long_name, or with a torch name
    p = tmp_path / "bad.h5"
    with h5py.File(p, "w") as f:
        f["field.weight"] = np.zeros(2)
        f["ok"] = np.zeros(2)
        f["ok"].attrs["units"] = "1"
    v = _variables(p)
    assert not CF_NAME.match("field.weight") and "units" not in v["field.weight"]
    assert "long_name" not in v["ok"]


def test_model_parameters_keep_their_torch_name_and_read_back(tmp_path):
    net = ResNet(2, 3, 1, 2, seed=1, batchnorm=True, input_map="affine")
    p = hdf5.save(tmp_path / "m.h5", net)
    with h5py.File(p, "r") as f:
        g = f["model"]
        by_torch = {_text(ds.attrs["torch_name"]): k for k, ds in g.items() if "torch_name" in ds.attrs}
    assert by_torch == {k: k.replace(".", "_") for k in net.state_dict()}
    back = hdf5.load_model(p)
    for k, v in net.state_dict().items():
        assert torch.equal(back.state_dict()[k], v), k


def test_mapping_keys_that_are_not_cf_names_are_stored_under_cf_names(tmp_path):
    from hdf5_helpers import Tagged

    rec = Tagged({"a.b": torch.arange(3.0), "0": np.ones(2), "a_b": np.zeros(1), "note": "kept"})
    p = hdf5.save(tmp_path / "s.h5", rec, "tagged")
    with h5py.File(p, "r") as f:
        names = set(f["tagged/extras"])
        assert {"a_b", "a_b_", "v_0"} <= names and "a.b" not in names and "0" not in names
    back = hdf5.load(p).extras
    assert torch.equal(back["a.b"], torch.arange(3.0)) and np.array_equal(back["0"], np.ones(2))
    assert np.array_equal(back["a_b"], np.zeros(1)) and back["note"] == "kept"


@pytest.mark.parametrize("key, name", [("field.weight", "field_weight"), ("field.bn.0.weight", "field_bn_0_weight"),
                                       ("0", "v_0"), ("_x", "v__x"), ("é", "v__"), ("ok", "ok")])
def test_cf_name(key, name):
    assert cf_name(key) == name and CF_NAME.match(cf_name(key))


def test_grid_axes_carry_cf_axis(tmp_path):
    from analysis.io.grid import parse_grid

    p = hdf5.save(tmp_path / "g.h5", parse_grid("0:1:3,0:1:2"))
    with h5py.File(p, "r") as f:
        assert _text(f["grid/x"].attrs["axis"]) == "X" and _text(f["grid/y"].attrs["axis"]) == "Y"
        assert _text(f["grid/points"].attrs["units"]) == "1"


def test_the_format_page_lists_every_variable_with_its_units_and_long_name():
    from pathlib import Path

    page = (Path(__file__).resolve().parents[2] / "docs" / "hdf5-format.md").read_text()
    missing = []
    for name, schema in _project_schemas().items():
        for f in schema.fields:
            if isinstance(f, (Array, Strings, Ragged)):
                key = getattr(f, "key", None) or f.name
                row = f"| {name} | {key} | ({', '.join(f.dims)}) | {f.units} | {f.doc.replace('|', chr(92) + '|')}"
                if row not in page:
                    missing.append(row)
    assert missing == []


def test_a_schema_axis_outside_cf_is_refused():
    with pytest.raises(ValueError, match="axis must be one of X, Y, Z, T"):
        Array("x", ("x",), doc="x", axis="x")
