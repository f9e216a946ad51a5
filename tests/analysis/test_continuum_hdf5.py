"""Continuum-limit records written with analysis.io and read back (and by xarray)."""
import dataclasses

import numpy as np
import pytest
import torch
import xarray as xr

import analysis.io as H
from analysis.continuum.convergence import refinement_study, work_precision
from analysis.continuum.depth_regularity import (regularity_exponents, reverse_euler, reverse_euler_study, solver_swap,
                                       weight_regularity)
from analysis.continuum.depth_weights import iid_weights, load_weights, smooth_weights
from analysis.continuum.init_scaling import init_scaling_study
from odenet import ResNet


A = torch.tensor([[-0.5, 1.0], [-1.0, -0.3]], dtype=torch.float64)


def field(t, x):
    return x @ A.T


@pytest.fixture(scope="module")
def records():
    x0 = torch.randn(8, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    net = ResNet(2, 2, 1, 8, eps=1, delta=1 / 8, T=1, seed=0)
    family = [load_weights(ResNet(2, 2, 1, L, eps=1, delta=1 / L, T=1, seed=0), *smooth_weights(L, 2, seed=1))
              for L in (4, 8, 16)]
    return {
        "refine": refinement_study(field, x0, (0, 1.0), method="rk4", steps=(4, 8, 16, 32)),
        "richardson": refinement_study(field, x0, (0, 1.0), method="euler", steps=(4, 8, 16), reference=None),
        "wp": work_precision(field, x0, (0, 1.0), steps=(4, 8, 16), tolerances=(1e-4, 1e-6)),
        "swap": solver_swap(net, x0, (x0[:, 0] > 0).long()),
        "reverse": reverse_euler(net, x0),
        "regularity": weight_regularity(net),
        "exponents": regularity_exponents([iid_weights(L, 2, seed=L)[0] for L in (4, 8, 16)]),
        "reverse_study": reverse_euler_study(family, x0),
        "init": init_scaling_study((2, 4, 8), width=3, n_samples=1, n_inputs=4),
    }


def _same(a, b, where):
    if dataclasses.is_dataclass(a):
        assert type(a) is type(b), where
        for f in dataclasses.fields(a):
            _same(getattr(a, f.name), getattr(b, f.name), f"{where}.{f.name}")
    elif isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and np.array_equal(a, b, equal_nan=True), where
    elif isinstance(a, float) and np.isnan(a):
        assert np.isnan(b), where
    else:
        assert a == b, where


def test_round_trip(records, tmp_path):
    path = tmp_path / "continuum.h5"
    H.save(path, records)
    assert set(H.list_records(path)) == set(records)
    for name, rec in records.items():
        _same(rec, H.load(path, name), name)


def test_xarray_sees_named_dimensions(records, tmp_path):
    path = tmp_path / "c.h5"
    H.save(path, {"refine": records["refine"], "init": records["init"]})
    ds = xr.open_dataset(path, engine="h5netcdf", group="refine")
    assert ds["err_sup"].dims == ("levels",) and list(ds["levels"].values) == [4, 8, 16, 32]
    assert np.allclose(ds["h"].values, 1 / np.array([4, 8, 16, 32]))
    init = xr.open_dataset(path, engine="h5netcdf", group="init")
    assert init["residual_norm"].dims == ("weight_kind", "scaling", "depths")
    assert list(init["weights"].values) == ["iid", "smooth"]
