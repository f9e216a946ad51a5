"""Round trips, bit for bit, of every stored type: Solution, Trace, SampleGrid, ResNet models."""
import json

import pytest
import torch

import solvers
from analysis import hdf5
from analysis.io.grid import parse_grid
from odenet import ResNet

from hdf5_helpers import Tagged, bit_equal

DTYPES = [torch.float32, torch.float64]


def _net(dtype, **kw):
    return ResNet(2, 2, 1, 5, eps=1.0, delta=0.3, dtype=dtype, seed=7, **kw)


def _x(n, d, dtype, seed=0):
    return torch.randn(n, d, dtype=dtype, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("dtype", DTYPES)
def test_solution_round_trip_bit_for_bit(tmp_path, dtype):
    net = _net(dtype)
    sol = net.solve(_x(7, 2, dtype))
    path = hdf5.save(tmp_path / "s.h5", sol)
    back = hdf5.load(path)
    assert isinstance(back, solvers.Solution)
    for name in ("t", "y", "step_piece"):
        assert bit_equal(getattr(back, name), getattr(sol, name)), name
    for name in ("nfev", "njev", "n_steps", "n_accepted", "n_rejected", "status", "message", "method"):
        assert getattr(back, name) == getattr(sol, name) and type(getattr(back, name)) is type(getattr(sol, name))
    assert back.y.dtype == dtype and back.t.dtype == torch.float64


def test_solution_with_none_fields_and_failure(tmp_path):
    # scipy-style n_rejected=None, record="end" has no step_piece; a failed solve keeps its status
    sol = solvers.Solution(t=torch.tensor([0.0, 1.0], dtype=torch.float64), y=torch.full((2, 3, 2), float("nan")),
                           nfev=10, n_steps=4, n_accepted=4, n_rejected=None, status=-1,
                           message="non-finite state at step 3", method="DOP853")
    back = hdf5.load(hdf5.save(tmp_path / "f.h5", sol))
    assert back.n_rejected is None and back.step_piece is None and back.status == -1 and not back.success
    assert bit_equal(back.y, sol.y)  # NaN payloads survive gzip+shuffle


@pytest.mark.parametrize("dtype", DTYPES)
def test_mapping_round_trip_bit_for_bit(tmp_path, dtype):
    rec = Tagged({"note": "hello", "tol": [1e-3, float("inf")], "err": torch.arange(3, dtype=dtype) / 3})
    back = hdf5.load(hdf5.save(tmp_path / "m.h5", rec, "tagged"))
    assert isinstance(back, Tagged) and list(back.extras) == ["note", "tol", "err"]
    assert back.extras["note"] == "hello" and back.extras["tol"] == [1e-3, float("inf")]
    assert bit_equal(back.extras["err"], rec.extras["err"])
    assert hdf5.load(hdf5.save(tmp_path / "e.h5", Tagged({}), "tagged")).extras == {}


def test_sample_grid_round_trip(tmp_path):
    g = parse_grid("-1:1:5,-2:0.5:4")
    back = hdf5.load(hdf5.save(tmp_path / "g.h5", g))
    assert bit_equal(back.x, g.x) and bit_equal(back.y, g.y) and bit_equal(back.points, g.points)
    g1 = parse_grid("0:1:3")
    back1 = hdf5.load(hdf5.save(tmp_path / "g1.h5", g1))
    assert back1.y is None and bit_equal(back1.points, g1.points)


def test_parse_grid_order_and_errors():
    g = parse_grid("0:3:4,10:11:2")
    # x fastest: sample s = j nx + i is (x_i, y_j)
    assert g.points[5].tolist() == [1.0, 11.0] and g.shape == (2, 4)
    for bad in ("0:1", "a:1:3", "1:0:3", "0:1:1", "0:1:3,0:1:3,0:1:3", "0:inf:3"):
        with pytest.raises(ValueError, match="grid"):
            parse_grid(bad)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kw", [
    dict(),
    dict(input_map="affine", batchnorm=True),
    dict(input_map="activated", batchnorm=True, output="sigmoid", activation="softplus"),
])
def test_model_rebuilt_gives_identical_outputs(tmp_path, dtype, kw):
    net = ResNet(2, 3 if kw else 2, 2, 4, eps=0.9, delta=0.4, dtype=dtype, seed=11, **kw)
    if net.batchnorm:  # move the running statistics away from their initial values
        net.train()
        with torch.no_grad():
            net(_x(64, 2, dtype, seed=5) * 3 + 1)
        net.eval()
    path = hdf5.save_model(tmp_path / "m.h5", net)
    back = hdf5.load_model(path)
    assert type(back) is ResNet and back.config == net.config and back.training == net.training
    sd, sd2 = net.state_dict(), back.state_dict()
    assert sd.keys() == sd2.keys() and all(bit_equal(sd[k], sd2[k]) for k in sd)
    x = _x(200, 2, dtype, seed=9)
    with torch.no_grad():
        assert bit_equal(back(x), net(x))
        assert bit_equal(back.states(x), net.states(x))


def test_model_training_mode_is_kept(tmp_path):
    net = ResNet(2, 2, 1, 2, batchnorm=True, seed=1).train()
    back = hdf5.load_model(hdf5.save_model(tmp_path / "m.h5", net))
    assert back.training
    x = _x(32, 2, torch.float64)
    with torch.no_grad():  # train-mode BN normalises by the batch: same numbers if the mode is kept
        assert bit_equal(back(x), net(x))


def test_model_differs_from_a_fresh_model_of_the_same_seed(tmp_path):
    # the loader must load the stored weights, not just rebuild from config['seed']
    net = _net(torch.float64)
    with torch.no_grad():
        net.field.weight.mul_(-3.0)
    back = hdf5.load_model(hdf5.save_model(tmp_path / "m.h5", net))
    fresh = ResNet.from_config(net.config)
    x = _x(10, 2, torch.float64)
    with torch.no_grad():
        assert bit_equal(back(x), net(x)) and not torch.equal(fresh(x), net(x))


def test_provenance_on_root_and_groups(tmp_path):
    import h5py

    net = ResNet(2, 2, 1, 3, seed=123, dtype=torch.float32)
    path = hdf5.save(tmp_path / "p.h5", {"model": net, "runs/0/solution": net.solve(_x(3, 2, torch.float32))},
                     seed=None)
    with h5py.File(path, "r") as f:
        assert f.attrs["format"] == hdf5.FORMAT_NAME and f.attrs["format_version"] == hdf5.FORMAT_VERSION
        for key in ("odenet_version", "torch_version", "numpy_version", "h5py_version", "created"):
            assert key in f.attrs
        for g in ("model", "runs/0/solution"):
            a = f[g].attrs
            assert a["dtype"] == "float32" and a["device"] == "cpu" and a["format"] == "odenet-hdf5"
            assert a["torch_version"] == str(torch.__version__) and a["h5py_version"] == h5py.__version__
        assert f["model"].attrs["seed"] == 123
        assert json.loads(f["model"].attrs["config"]) == net.config
        assert f["runs/0/solution"].attrs["seed"] == "none"  # recorded as unknown, not missing
    path2 = hdf5.save(tmp_path / "q.h5", net.solve(_x(3, 2, torch.float32)), seed=42, config={"lr": 0.01})
    with h5py.File(path2, "r") as f:
        assert f["solution"].attrs["seed"] == 42 and json.loads(f["solution"].attrs["config"]) == {"lr": 0.01}
    assert hdf5.list_records(path) == {"model": "ResNet", "runs/0/solution": "Solution"}


def test_load_errors(tmp_path):
    net = _net(torch.float64)
    path = hdf5.save(tmp_path / "two.h5", {"model": net, "sol": net.solve(_x(2, 2, torch.float64))})
    with pytest.raises(ValueError, match="2 records"):
        hdf5.load(path)
    with pytest.raises(ValueError, match="no group 'nope'"):
        hdf5.load(path, "nope")
    with pytest.raises(ValueError, match="not a ResNet"):
        hdf5.load_model(path, "sol")
    with pytest.raises(TypeError, match="no HDF5 schema"):
        hdf5.save(tmp_path / "x.h5", object())
    with pytest.raises(ValueError, match="group"):
        hdf5.save(tmp_path / "x.h5", net, "a/../b")
    assert not (tmp_path / "x.h5").exists()


def test_device_argument(tmp_path):
    sol = _net(torch.float64).solve(_x(2, 2, torch.float64))
    back = hdf5.load(hdf5.save(tmp_path / "d.h5", sol), device="cpu")
    assert back.y.device.type == "cpu"


def test_every_schema_covers_every_field_of_its_record():
    # a field added to a result type without its schema would be silently dropped from files
    import dataclasses

    from analysis.io.schema import Attr

    schemas = hdf5.registered()
    assert {"Solution", "Trace", "CriticalPoints", "TunnelResult", "TrainResult", "MonotoneFit"} <= set(schemas)
    for name, s in schemas.items():
        init = {f.name for f in dataclasses.fields(s.cls) if f.init}
        stored = {f.name for f in s.fields if not (isinstance(f, Attr) and f.derived)}
        assert init == stored, (name, init ^ stored)
        for f in s.fields:
            if isinstance(f, Attr) and f.derived:
                assert hasattr(s.cls, f.name), (name, f.name)


def test_nested_group_names_are_refused(tmp_path):
    net = _net(torch.float64)
    sol = net.solve(_x(2, 2, torch.float64))
    with pytest.raises(ValueError, match="inside"):
        hdf5.save(tmp_path / "n.h5", {"run": sol, "run/inner": sol})
    p = hdf5.save(tmp_path / "n.h5", {"run": sol})
    with pytest.raises(ValueError, match="inside"):
        hdf5.append(p, sol, "run/inner")
    hdf5.append(p, sol, "runs/inner")  # a sibling whose name merely starts alike is fine
    assert hdf5.list_records(p) == {"run": "Solution", "runs/inner": "Solution"}


def test_files_with_the_removed_extras_group_still_load(tmp_path):
    # Solution and Trace once had an `extras` mapping (always empty after a solve): files written
    # then carry an `extras` subgroup; the reader reads the fields of the schema and ignores it.
    import h5py

    sol = _net(torch.float64).solve(_x(4, 2, torch.float64))
    path = hdf5.save(tmp_path / "old.h5", sol)
    with h5py.File(path, "r+") as f:
        g = f["solution"].create_group("extras")
        g.attrs["odenet_type"] = "mapping"
        g.attrs["keys"] = json.dumps(["note", "err"])
        g.attrs["note"] = json.dumps("written before extras was removed")
        g.create_dataset("err", data=[1.0, 2.0], fletcher32=True)
        assert {"njev", "nfev"} <= set(f["solution"].attrs)
    back = hdf5.load(path)
    assert isinstance(back, solvers.Solution) and not hasattr(back, "extras")
    assert bit_equal(back.y, sol.y) and bit_equal(back.t, sol.t) and back.nfev == sol.nfev
