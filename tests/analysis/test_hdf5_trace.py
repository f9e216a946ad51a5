"""Traces in files: bit-for-bit round trip, xarray names, and `odenet trace` end to end."""
import xml.etree.ElementTree as ET

import numpy as np
import pytest
import torch
import xarray as xr

from analysis import hdf5
from analysis.geometry.tracing import Trace, trace
from odenet import ResNet
from odenet.cli import main

from hdf5_helpers import bit_equal

TRACE_ARRAYS = ("inputs", "t", "states", "layer_jacobians", "cumulative", "logabsdet", "sign", "jacobian",
                "outputs", "singular_values", "step_layer", "trace_integral")


def _x(n, d, dtype, seed=0):
    return torch.randn(n, d, dtype=dtype, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("kw", [dict(), dict(input_map="activated", n_in=3, output="sigmoid")])
def test_trace_round_trip_bit_for_bit(tmp_path, dtype, kw):
    n_in = kw.pop("n_in", 2)
    net = ResNet(n_in, 2, 1, 4, eps=1.0, delta=0.5, dtype=dtype, seed=3, **kw)
    tr = trace(net, _x(9, n_in, dtype), refine=2)
    back = hdf5.load(hdf5.save(tmp_path / "t.h5", tr))
    assert type(back) is Trace
    for f in TRACE_ARRAYS:
        a, b = getattr(back, f), getattr(tr, f)
        assert (a is None and b is None) or bit_equal(a, b.detach()), f
    assert (back.method, back.logdet_of, back.n_steps) == (tr.method, tr.logdet_of, 8)


def test_variational_trace_round_trip(tmp_path):
    net = ResNet.neural_ode(2, 2, 1, 3, T=1.0, seed=0)
    with torch.no_grad():
        tr = trace(net.ode(), net.embed(_x(4, 2, torch.float64)), method="dopri5")
    back = hdf5.load(hdf5.save(tmp_path / "v.h5", tr))
    assert back.layer_jacobians is None and bit_equal(back.trace_integral, tr.trace_integral)
    assert bit_equal(back.states, tr.states) and bit_equal(back.t, tr.t)


def test_xarray_opens_trace_with_names_and_coordinates(tmp_path):
    net = ResNet.neural_ode(2, 2, 1, depth=5, T=2.0, seed=4)
    tr = trace(net, _x(6, 2, torch.float64))
    p = hdf5.save(tmp_path / "t.h5", tr)
    with xr.open_dataset(p, engine="h5netcdf", group="trace") as ds:
        assert ds["states"].dims == ("step", "sample", "state")
        assert ds["cumulative"].dims == ("step", "sample", "state", "input")
        assert ds["layer_jacobians"].dims == ("interval", "sample", "state", "state_from")
        assert ds["logabsdet"].dims == ("step", "sample") and ds["singular_values"].dims == ("sample", "singular")
        assert not any(d.startswith("phony_dim") for d in ds.dims)
        assert "t" in ds["states"].coords and "t" in ds["logabsdet"].coords
        assert ds["t"].values.tolist() == [k * 2.0 / 5 if k < 5 else 2.0 for k in range(6)]
        np.testing.assert_array_equal(ds["logabsdet"].values, tr.logabsdet.detach().numpy())
        assert ds.attrs["logdet_of"] == "cumulative" and ds.attrs["dtype"] == "float64"


def test_odenet_trace_writes_model_grid_and_trace(tmp_path, capsys):
    net = ResNet(2, 2, 1, 5, eps=1.0, delta=0.4, seed=2, batchnorm=True, input_map="affine")
    net.train()
    with torch.no_grad():
        net(_x(50, 2, torch.float64) * 2)
    net.eval()
    model = hdf5.save_model(tmp_path / "model.h5", net)
    out = tmp_path / "trace.h5"
    assert main(["trace", str(model), "--grid=-1:1:5,-0.5:0.5:3", "--out", str(out), "--xdmf"]) == 0
    assert "wrote" in capsys.readouterr().out
    assert hdf5.list_records(out) == {"model": "ResNet", "grid": "SampleGrid", "trace": "Trace"}
    # the grid, built here independently: x fastest
    xs, ys = np.linspace(-1, 1, 5), np.linspace(-0.5, 0.5, 3)
    pts = torch.tensor([[x, y] for y in ys for x in xs], dtype=torch.float64)
    g = hdf5.load(out, "grid")
    assert bit_equal(g.points, pts) and bit_equal(g.x, xs) and bit_equal(g.y, ys)
    tr = hdf5.load(out, "trace")
    expected = trace(net, pts)
    for f in TRACE_ARRAYS:
        a, b = getattr(tr, f), getattr(expected, f)
        assert (a is None and b is None) or bit_equal(a, b.detach()), f
    with torch.no_grad():
        assert bit_equal(hdf5.load_model(out, "model")(pts), net(pts))
    root = ET.parse(tmp_path / "trace.xmf").getroot()
    item = root.find("Domain/Grid[@Name='trace.states']/Geometry/DataItem")  # one grid: the states
    assert item.get("Format") == "XML" and item.get("Dimensions") == f"{6 * 15} 2"
    np.testing.assert_array_equal(np.array(item.text.split(), float).reshape(6, 15, 2), tr.states.numpy())

    # odenet inspect on the output: a readable summary
    assert main(["inspect", str(out)]) == 0
    text = capsys.readouterr().out
    assert "/trace  Trace" in text and "states" in text and "(step, sample, state)" in text
    assert "/grid  SampleGrid" in text and "[coordinate]" in text and "seed=2" in text

    # a second run refuses to overwrite, unless asked
    assert main(["trace", str(model), "--grid=-1:1:5,-0.5:0.5:3", "--out", str(out)]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert main(["trace", str(model), "--grid=0:1:4,0:1:2", "--out", str(out), "--overwrite"]) == 0
    assert hdf5.load(out, "trace").states.shape == (6, 8, 2)


def test_odenet_trace_bad_input(tmp_path, capsys):
    model = hdf5.save_model(tmp_path / "m1.h5", ResNet(1, 1, 1, 2, seed=0))
    out = tmp_path / "o.h5"
    assert main(["trace", str(model), "--grid=0:1:3,0:1:3", "--out", str(out)]) == 2
    assert "n_in=1" in capsys.readouterr().err and not out.exists()
    assert main(["trace", str(model), "--grid=0:1", "--out", str(out)]) == 2
    assert main(["trace", str(model), "--grid=0:1:4", "--out", str(out)]) == 0
    assert hdf5.load(out, "trace").states.shape == (3, 4, 1)
