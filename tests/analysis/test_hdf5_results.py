"""Round trips of the analysis result types: critical points, certificates, inverses, Liouville
checks, crossings, training runs, tunnels and bounds — computed for real, written, read back bit for bit."""
import dataclasses
import math

import numpy as np
import pytest
import torch
import xarray as xr

from analysis import hdf5
from analysis.geometry.certificates import certify
from analysis.geometry.critical import find_critical_points
from analysis.geometry.inverse import invert
from analysis.geometry.tracing import crossings, liouville, trace
from odenet import ResNet

from hdf5_helpers import bit_equal

DTYPES = [torch.float32, torch.float64]


def assert_same_record(back, rec):
    assert type(back) is type(rec)
    for f in dataclasses.fields(rec):
        a, b = getattr(back, f.name), getattr(rec, f.name)
        if isinstance(b, torch.Tensor):
            assert bit_equal(a, b.detach()), f.name
        elif isinstance(b, np.ndarray):
            assert bit_equal(a, b), f.name
        elif isinstance(b, float) and math.isnan(b):
            assert math.isnan(a), f.name
        else:
            assert a == b and type(a) is type(b), (f.name, a, b)


def _round_trip(tmp_path, rec, name="r.h5"):
    return hdf5.load(hdf5.save(tmp_path / name, rec))


def _saddle(x):  # sin x cos y: extrema at (±π/2, 0), saddles at (0, ±π/2) in [-2, 2]²
    return torch.sin(x[..., 0]) * torch.cos(x[..., 1])


@pytest.mark.parametrize("dtype", DTYPES)
def test_critical_points_round_trip(tmp_path, dtype):
    cps = find_critical_points(_saddle, [[-2.0, 2.0], [-2.0, 2.0]], resolution=15, dtype=dtype,
                               accept_tol=1e-4 if dtype == torch.float32 else 1e-9)
    assert len(cps) == 4 and sorted(cps.kinds) == ["maximum", "minimum", "saddle", "saddle"]
    back = _round_trip(tmp_path, cps)
    assert_same_record(back, cps)
    assert_same_record(_round_trip(tmp_path, cps[0], "one.h5"), cps[0])
    with xr.open_dataset(tmp_path / "r.h5", engine="h5netcdf", group="criticalpoints") as ds:
        assert ds["points"].dims == ("point", "input") and ds["hessians"].dims == ("point", "input", "input_j")
        assert sorted(ds["kinds"].values.tolist()) == sorted(cps.kinds)
        assert ds["morse_index"].values.tolist() == cps.morse_index.tolist()


def test_no_critical_points_round_trip(tmp_path):
    cps = find_critical_points(lambda x: x[..., 0] + 2 * x[..., 1], [[-1.0, 1.0], [-1.0, 1.0]], resolution=5)
    assert len(cps) == 0
    assert_same_record(_round_trip(tmp_path, cps), cps)


@pytest.mark.parametrize("dtype", DTYPES)
def test_certificate_round_trip(tmp_path, dtype):
    net = ResNet(2, 2, 1, 4, eps=1.0, delta=0.3, seed=1, dtype=dtype)
    with torch.no_grad():
        net.field.weight[2] = -5 * torch.eye(2)  # delta K ||W|| = 1.5 > eps: this block may fold
    rep = certify(net, torch.randn(5, 2, dtype=dtype, generator=torch.Generator().manual_seed(0)))
    assert rep.folding_blocks == [2] and rep.orientation_sign is not None
    assert_same_record(_round_trip(tmp_path, rep), rep)
    bare = certify(net)
    assert bare.orientation_sign is None
    assert_same_record(_round_trip(tmp_path, bare, "bare.h5"), bare)


def test_inverse_liouville_and_crossings_round_trip(tmp_path):
    net = ResNet(2, 2, 1, 3, eps=1.0, delta=0.2, seed=3)
    x = torch.randn(6, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        inv = invert(net, net.blocks(net.embed(x)))
    assert_same_record(_round_trip(tmp_path, inv, "inv.h5"), inv)
    lv = liouville(net.ode(), x)
    assert_same_record(_round_trip(tmp_path, lv, "lv.h5"), lv)
    big = ResNet(1, 1, 1, 2, eps=1.0, delta=3.0, seed=0)
    with torch.no_grad():
        big.field.weight.fill_(-2.0)
    cr = crossings(trace(big, torch.linspace(-2, 2, 9, dtype=torch.float64)[:, None]))
    assert_same_record(_round_trip(tmp_path, cr, "cr.h5"), cr)


@pytest.mark.parametrize("dtype", DTYPES)
def test_training_run_round_trip(tmp_path, dtype):
    from odenet.training import train

    x = torch.linspace(-1, 1, 40, dtype=torch.float64)[:, None]
    net = ResNet(1, 1, 1, 2, eps=1.0, delta=1.0, seed=0)
    run = train(net, (x, x**2), val_split=0.25, epochs=3, batch_size=10, seed=4, progress=False)
    if dtype == torch.float32:  # training runs in float64; store a float32 model in the record too
        run = dataclasses.replace(run, model=ResNet(1, 1, 1, 2, seed=5, dtype=dtype).eval())
    back = _round_trip(tmp_path, run)
    assert type(back) is type(run)
    for f in ("train_loss", "val_loss", "batch_loss", "train_accuracy", "val_accuracy"):
        assert bit_equal(getattr(back, f), getattr(run, f)), f  # NaN entries (epoch 0, accuracies) too
    assert (back.best_epoch, back.seed, back.seeds_tried) == (run.best_epoch, run.seed, run.seeds_tried)
    assert back.config == run.config and back.metrics.keys() == run.metrics.keys()
    for k, v in run.metrics.items():
        assert back.metrics[k] == v or (math.isnan(v) and math.isnan(back.metrics[k]))
    x = torch.linspace(-1, 1, 11, dtype=dtype)[:, None]
    with torch.no_grad():
        assert bit_equal(back.model(x), run.model(x))
        assert bit_equal(hdf5.load_model(tmp_path / "r.h5")(x), run.model(x))  # found nested
    with xr.open_dataset(tmp_path / "r.h5", engine="h5netcdf", group="trainresult") as ds:
        assert ds["train_loss"].dims == ("epoch",) and ds["epoch"].values.tolist() == [0, 1, 2, 3]
        assert ds.attrs["seed"] == run.seed
        assert ds.attrs["dtype"] == str(dtype).removeprefix("torch.")


def _bowl(x):  # Φ = |x|² - 0.3 x₁ on the plane: a closed sublevel set around the origin
    return (x**2).sum(-1) - 0.3 * x[..., 0]


def _saddle_tunnel(x):  # Φ = x₀² - x₁²/2 + x₁/5: {Φ < c} runs out of the window along ±x₁
    return x[..., 0] ** 2 - 0.5 * x[..., 1] ** 2 + 0.2 * x[..., 1]


@pytest.mark.parametrize("fn, verdict", [(_bowl, "closed"), (_saddle_tunnel, "tunnel")])
def test_tunnel_result_round_trip(tmp_path, fn, verdict):
    from analysis.approximation.tunnel_effect import tunnel

    pts = torch.tensor([[0.0, 0.0], [0.0, 0.9], [0.9, 0.0], [0.1, -0.8]], dtype=torch.float64)
    res = tunnel(fn, (-1, 1, -1, 1), (0.0, 0.0), 0.1, resolution=41, points=pts.numpy(),
                 labels=np.array([0, 1, 1, 1]))
    assert res.verdict == verdict and len(res.level_set) >= 1
    back = _round_trip(tmp_path, res)
    assert type(back) is type(res)
    for f in dataclasses.fields(res):
        a, b = getattr(back, f.name), getattr(res, f.name)
        if f.name == "level_set":
            assert len(a) == len(b) and all(bit_equal(u, v) for u, v in zip(a, b))
        elif isinstance(b, np.ndarray):
            assert bit_equal(a, b), f.name
        elif isinstance(b, float) and math.isnan(b):
            assert math.isnan(a)
        else:
            assert a == b and type(a) is type(b), f.name
    with xr.open_dataset(tmp_path / "r.h5", engine="h5netcdf", group="tunnelresult") as ds:
        assert ds["mask"].dims == ("y", "x") and ds["mask"].dtype == bool
        np.testing.assert_array_equal(ds["x"].values, res.xs)  # the grid axes are the coordinates
        np.testing.assert_array_equal(ds["values"].sel(x=res.xs[3], y=res.ys[5]).values, res.values[5, 3])
        assert int(ds["level_set_count"].sum()) == ds.sizes["vertex"]
        assert ds.attrs["verdict"] == verdict


def test_bounds_round_trip(tmp_path):
    from analysis.approximation.bounds import model_bounds, monotone_fit

    x = np.linspace(-1, 1, 21)
    fit = monotone_fit(x, x**2)
    assert_same_record(_round_trip(tmp_path, fit, "m.h5"), fit)
    mb = model_bounds(ResNet(2, 2, 1, 3, eps=1.0, delta=0.3, seed=0))
    assert_same_record(_round_trip(tmp_path, mb, "b.h5"), mb)


def _as_float32(rec):
    """The record with every floating array (and list of arrays) cast to float32."""
    def cast(v):
        if isinstance(v, torch.Tensor) and v.is_floating_point():
            return v.detach().to(torch.float32)
        if isinstance(v, np.ndarray) and v.dtype.kind == "f":
            return v.astype(np.float32)
        if isinstance(v, list) and v and all(isinstance(u, np.ndarray) for u in v):
            return [cast(u) for u in v]
        return v

    return dataclasses.replace(rec, **{f.name: cast(getattr(rec, f.name)) for f in dataclasses.fields(rec)})


def test_float32_versions_of_every_record_round_trip(tmp_path):
    from analysis.approximation.bounds import monotone_fit
    from analysis.approximation.tunnel_effect import tunnel

    net = ResNet(2, 2, 1, 3, eps=1.0, delta=0.2, seed=3)
    x = torch.randn(6, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        recs = [invert(net, net.blocks(net.embed(x))), liouville(net.ode(), x),
                crossings(trace(net, x)), monotone_fit(np.linspace(-1, 1, 11), np.linspace(-1, 1, 11) ** 2),
                tunnel(_saddle_tunnel, (-1, 1, -1, 1), (0.0, 0.0), 0.1, resolution=21)]
    for i, rec in enumerate(recs):
        r32 = _as_float32(rec)
        assert any(getattr(r32, f.name).dtype in (torch.float32, np.float32) for f in dataclasses.fields(r32)
                   if isinstance(getattr(r32, f.name), (torch.Tensor, np.ndarray)))
        back = _round_trip(tmp_path, r32, f"f32_{i}.h5")
        for f in dataclasses.fields(r32):
            a, b = getattr(back, f.name), getattr(r32, f.name)
            if isinstance(b, (torch.Tensor, np.ndarray)):
                assert bit_equal(a, b), f.name  # same dtype (float32 after the cast), same bytes
            elif isinstance(b, list) and b and isinstance(b[0], np.ndarray):
                assert all(bit_equal(u, v) and u.dtype == np.float32 for u, v in zip(a, b)), f.name


@pytest.mark.parametrize("dtype", DTYPES)
def test_jacobian_map_round_trip(tmp_path, dtype):
    from analysis.geometry.maps import jacobian_map

    net = ResNet(2, 2, 1, 4, eps=1.0, delta=0.5, seed=1, dtype=dtype)
    jm = jacobian_map(net, resolution=(7, 5), start=1)
    back = _round_trip(tmp_path, jm)
    assert_same_record(back, jm)
    with xr.open_dataset(tmp_path / "r.h5", engine="h5netcdf", group="jacobianmap") as ds:
        assert ds["sigma_min"].dims == ("y", "x") and ds.sizes == {"x": 7, "y": 5, "sample": 35, "input": 2}
        np.testing.assert_array_equal(ds["x"].values, jm.x.detach().numpy())


def test_regime_run_round_trip(tmp_path):
    from analysis.approximation.regime import RegimeRun

    run = RegimeRun(dataset="circles", eps=0.0, delta=1.0, ratio=math.inf, depth=6, width=2, seed=3, epochs=300,
                    best_epoch=250, sup_error=0.93, mse=0.04, accuracy=0.97, sup_bound=math.nan,
                    isotonic_bound=math.nan, closeness=math.nan, closeness_kind="none", omega=2.5,
                    critical_norm=0.0, certified=False, certificate_verdict="blocks 0, 3 may fold",
                    critical_points=np.array([[0.1, -0.2], [0.3, 0.4]]), critical_kinds=["saddle", "minimum"],
                    tunnel_verdict="tunnel", tunnel_width=0.21, tunnel_points=4)
    assert_same_record(_round_trip(tmp_path, run), run)


def test_dataset_round_trip(tmp_path):
    from odenet import datasets

    data = datasets.circles(120, seed=4)
    back = _round_trip(tmp_path, data)
    assert_same_record(back, data)
    with xr.open_dataset(tmp_path / "r.h5", engine="h5netcdf", group="dataset") as ds:
        assert ds["x_train"].dims == ("train", "input") and ds.sizes["test"] == len(data.x_test)
        assert ds.attrs["seed"] == 4 and ds.attrs["name"] == "circles"


def test_ensemble_round_trip(tmp_path):
    from odenet.ensemble import train_ensemble

    x = torch.linspace(-1, 1, 30, dtype=torch.float64)[:, None]
    ens = train_ensemble(lambda s: ResNet(1, 1, 1, 2, seed=s), (x, x**2), seeds=[1, 2, 3], epochs=2,
                         val_split=0.2, progress=False)
    back = _round_trip(tmp_path, ens)
    assert type(back) is type(ens) and len(back.members) == 3
    for f in ("train_loss", "val_loss", "batch_loss", "train_accuracy", "val_accuracy", "best_epoch"):
        assert bit_equal(getattr(back, f), getattr(ens, f)), f
    assert back.seeds == ens.seeds and back.config == ens.config
    for a, b in zip(back.members, ens.members):
        assert bit_equal(a.train_loss, b.train_loss) and a.seed == b.seed
        with torch.no_grad():
            assert bit_equal(a.model(x), b.model(x))
    with pytest.raises(ValueError, match="3 models"):
        hdf5.load_model(tmp_path / "r.h5")  # three nested models: the caller must choose
    with torch.no_grad():
        assert bit_equal(hdf5.load_model(tmp_path / "r.h5", "ensembleresult/members/2/model")(x),
                         ens.members[2].model(x))
