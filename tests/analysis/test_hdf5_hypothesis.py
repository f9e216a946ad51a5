"""Property test: records with random shapes, dtypes and attribute values round-trip exactly
through the generic schema writer and reader."""
import math
from dataclasses import dataclass

import numpy as np
import torch
from hypothesis import given
from hypothesis import strategies as st

from analysis import hdf5
from analysis.io.schema import Array, Attr, Json, Mapping, Ragged, Record, Schema, Strings, register

from hdf5_helpers import bit_equal


@dataclass
class _Inner:
    v: torch.Tensor


@dataclass
class _Random:
    traj: object          # (step, sample, state)
    per_sample: object    # (sample,)
    names: list           # (sample,) strings
    lines: object         # list of (vertex, xy) arrays or None
    count: int | None
    scale: float | None
    label: str | None
    flag: bool | None
    meta: object
    extras: dict
    inner: _Inner


register(Schema("_HypInner", _Inner, fields=(Array("v", ("k",)),)))
register(Schema("_HypRandom", _Random, fields=(
    Array("traj", ("step", "sample", "state")), Array("per_sample", ("sample",)), Strings("names", ("sample",)),
    Ragged("lines", ("vertex", "xy"), "line"),
    Attr("count", int), Attr("scale", float), Attr("label", str), Attr("flag", bool), Json("meta"),
    Mapping("extras"), Record("inner"),
)))

DTYPES = [np.float32, np.float64, np.int64, np.int32, np.uint8, np.bool_]
dims = st.integers(0, 5)


@st.composite
def arrays(draw, shape):
    dtype = draw(st.sampled_from(DTYPES))
    n = int(np.prod(shape))
    if dtype == np.bool_:
        data = np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)), dtype=bool)
    elif np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        data = np.array(draw(st.lists(st.integers(int(info.min), int(info.max)), min_size=n, max_size=n)), dtype=dtype)
    else:
        data = np.array(draw(st.lists(st.floats(width=32 if dtype == np.float32 else 64), min_size=n, max_size=n)),
                        dtype=dtype)
    data = data.reshape(shape)
    return torch.from_numpy(data) if draw(st.booleans()) and dtype not in (np.uint8,) else data


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**53, 2**53) | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=5), c, max_size=3), max_leaves=8)


@st.composite
def records(draw):
    S, B, D = draw(dims), draw(dims), draw(dims)
    n_lines = draw(st.integers(0, 3))
    lines = None
    if n_lines:
        ldtype = draw(st.sampled_from([np.float32, np.float64]))
        lines = []
        for _ in range(n_lines):
            k = draw(st.integers(0, 4))
            vals = draw(st.lists(st.floats(width=32 if ldtype == np.float32 else 64), min_size=2 * k, max_size=2 * k))
            lines.append(np.array(vals, dtype=ldtype).reshape(k, 2))
    extras_keys = draw(st.lists(st.text("abcxyz_", min_size=1, max_size=4), max_size=3, unique=True))
    extras = {}
    for k in extras_keys:
        extras[k] = draw(arrays((draw(dims), draw(dims)))) if draw(st.booleans()) else draw(json_values)
    return _Random(
        traj=draw(arrays((S, B, D))), per_sample=draw(arrays((B,))), lines=lines,
        names=draw(st.lists(st.text(max_size=6).filter(lambda s: "\x00" not in s), min_size=B, max_size=B)),
        count=draw(st.none() | st.integers(-2**63, 2**63 - 1)),
        scale=draw(st.none() | st.floats()),
        label=draw(st.none() | st.text(max_size=20).filter(lambda s: "\x00" not in s)),
        flag=draw(st.none() | st.booleans()), meta=draw(json_values), extras=extras,
        inner=_Inner(draw(arrays((draw(dims),)))))


def _same_json(a, b):
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(_same_json(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return isinstance(b, dict) and list(a) == list(b) and all(_same_json(a[k], b[k]) for k in a)
    return a == b and type(a) is type(b)


@given(rec=records())
def test_random_records_round_trip(tmp_path_factory, rec):
    path = tmp_path_factory.mktemp("hyp") / "r.h5"
    back = hdf5.load(hdf5.save(path, rec, "rec"))
    assert bit_equal(back.traj, rec.traj) and bit_equal(back.per_sample, rec.per_sample)
    assert bit_equal(back.inner.v, rec.inner.v) and back.names == rec.names
    if rec.lines is None:
        assert back.lines is None
    else:
        assert len(back.lines) == len(rec.lines) and all(bit_equal(a, b) for a, b in zip(back.lines, rec.lines))
    assert back.count == rec.count and back.label == rec.label and back.flag == rec.flag
    assert (back.scale is None and rec.scale is None) or _same_json(back.scale, rec.scale)
    assert _same_json(back.meta, rec.meta)
    assert list(back.extras) == list(rec.extras)
    for k, v in rec.extras.items():
        if isinstance(v, (np.ndarray, torch.Tensor)):
            assert bit_equal(back.extras[k], v)
        else:
            assert _same_json(back.extras[k], v)
