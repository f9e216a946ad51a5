"""solve as scipy and torchdiffeq users expect: 1-D x0, t_eval, dense output, statistics, xarray."""
import math

import numpy as np
import pytest
import torch
from scipy.integrate import solve_ivp

import solvers

# x' = A x with A a rotation-plus-decay generator: x(t) = expm(A t) x0 in closed form
A = torch.tensor([[-0.1, 1.0], [-1.0, -0.1]], dtype=torch.float64)


def field(t, x):
    return x @ A.T


def exact(t, x0):
    t = torch.as_tensor(t, dtype=torch.float64)
    return torch.stack([torch.matrix_exp(A * ti) @ x0 for ti in t.reshape(-1)])


Y0 = torch.tensor([1.0, 0.5], dtype=torch.float64)
T_EVAL = [0.0, 0.3, 1.1, 2.5, 4.0]


@pytest.mark.parametrize("method", ["dopri5", "bosh3", "DOP853", "RK45"])
def test_t_eval_agrees_with_scipy_and_torchdiffeq(method):
    torchdiffeq = pytest.importorskip("torchdiffeq")
    rtol, atol = 1e-9, 1e-11
    ours = solvers.solve(field, Y0, (0.0, 4.0), method=method, rtol=rtol, atol=atol, t_eval=T_EVAL)
    ref = solve_ivp(lambda t, v: A.numpy() @ v, (0.0, 4.0), Y0.numpy(), method="DOP853", t_eval=T_EVAL,
                    rtol=1e-12, atol=1e-12)
    tde = torchdiffeq.odeint(lambda t, x: A @ x, Y0, torch.tensor(T_EVAL, dtype=torch.float64),
                             method="dopri5", rtol=rtol, atol=atol)
    assert ours.t.tolist() == T_EVAL and ours.y.shape == (len(T_EVAL), 2)
    truth = exact(T_EVAL, Y0)
    np.testing.assert_allclose(ref.y.T, truth.numpy(), atol=1e-10)
    # Hermite interpolation of a 1e-9 solution is within ~1e-6 on these steps; scipy's dense is 1e-9-ish
    tol = 1e-7 if method in ("DOP853", "RK45") else 2e-6
    assert (ours.y - truth).abs().max() < tol
    assert (ours.y.numpy() - ref.y.T).max() < tol
    assert (ours.y - tde).abs().max() < tol + 1e-7


def test_fixed_step_t_eval_hits_nodes_exactly():
    full = solvers.solve(field, Y0[None], (0.0, 2.0), method="rk4", steps=20)
    picked = solvers.solve(field, Y0[None], (0.0, 2.0), method="rk4", steps=20, t_eval=[0.0, 0.5, 1.3, 2.0])
    assert torch.equal(picked.y, full.y[[0, 5, 13, 20]])
    assert picked.t.tolist() == [0.0, 0.5, 1.3, 2.0]


def test_fixed_step_t_eval_off_node_is_refused_before_work():
    calls = []

    def counting(t, x):
        calls.append(t)
        return field(t, x)

    with pytest.raises(ValueError, match=r"t_eval time 0\.51 is not a node.*h=0\.1"):
        solvers.solve(counting, Y0, (0.0, 2.0), method="rk4", steps=20, t_eval=[0.5, 0.51])
    assert calls == []


@pytest.mark.parametrize("bad, match", [([1.0, 0.5], "sorted"), ([0.0, 5.0], "lie in t_span"),
                                        ([[0.0]], "1-D"), ([float("nan")], "finite")])
def test_bad_t_eval(bad, match):
    with pytest.raises(ValueError, match=match):
        solvers.solve(field, Y0, (0.0, 4.0), method="dopri5", t_eval=bad)


def test_t_eval_needs_record_all():
    with pytest.raises(ValueError, match="record='all'"):
        solvers.solve(field, Y0, (0.0, 4.0), method="dopri5", t_eval=[1.0], record="end")


@pytest.mark.parametrize("method, kw", [("euler", {"steps": 10}), ("rk4", {"steps": 10}), ("dopri5", {}),
                                        ("DOP853", {})])
def test_one_dimensional_x0_equals_batch_of_one(method, kw):
    one = solvers.solve(field, Y0, (0.0, 1.0), method=method, **kw)
    batch = solvers.solve(field, Y0[None], (0.0, 1.0), method=method, **kw)
    assert one.y.shape == (len(one.t), 2) and one.y[-1].shape == (2,)
    assert torch.equal(one.y, batch.y[:, 0]) and torch.equal(one.t, batch.t)


@pytest.mark.parametrize("method, kw, tol", [("rk4", {"steps": 40}, 0.0), ("dopri5", {"rtol": 1e-10, "atol": 1e-12}, 0.0),
                                             ("dopri8", {}, 0.0), ("DOP853", {}, 1e-11)])
def test_dense_output_off_grid_against_closed_form(method, kw, tol):
    out = solvers.solve(field, Y0, (0.0, 4.0), method=method, dense=True, **kw)
    t_off = torch.tensor([0.0123, 0.777, 1.5555, 3.14159, 3.999])
    got = out.sol(t_off)
    assert got.shape == (5, 2) and out.sol(0.777).shape == (2,)
    truth = exact(t_off, Y0)
    # Hermite bound: h^4/384 max|y''''| with |y''''| <= |A|^4 |y0| here, plus the solver's error
    h = (out.t[1:] - out.t[:-1]).max().item()
    # the solver's own error at the recorded states, which the interpolant carries along
    node_err = (out.y - exact(out.t, Y0)).norm(dim=-1).max().item()
    bound = h ** 4 / 384 * torch.linalg.matrix_norm(A, 2).item() ** 4 * Y0.norm().item() + 2 * node_err + tol
    err = (got - truth).norm(dim=-1).max().item()
    assert err < bound
    assert torch.allclose(out.sol(out.t), out.y, atol=1e-12)  # interpolates the record
    with pytest.raises(ValueError, match="must lie in"):
        out.sol(4.5)


def test_hermite_is_fourth_order():
    errs = []
    for steps in (10, 20, 40):
        out = solvers.solve(field, Y0, (0.0, 4.0), method="rk4", steps=steps, dense=True)
        t_mid = (out.t[:-1] + out.t[1:]) / 2
        errs.append((out.sol(t_mid) - exact(t_mid, Y0)).abs().max().item())
    rates = [math.log2(errs[i] / errs[i + 1]) for i in range(2)]
    assert all(3.6 < r < 4.5 for r in rates), rates


def test_statistics_under_scipy_and_diffrax_names():
    out = solvers.solve(field, Y0, (0.0, 4.0), method="dopri5")
    assert out.num_steps == out.n_steps == out.num_accepted_steps + out.num_rejected_steps
    assert out.num_accepted_steps == len(out.t) - 1 and out.success and out.status == 0
    assert out.njev == 0 and out.nlu == 0 and out.nfev > 0 and "successfully" in out.message
    stiff = solvers.solve(field, Y0, (0.0, 4.0), method="Radau", rtol=1e-8, atol=1e-10)
    ref = solve_ivp(lambda t, v: A.numpy() @ v, (0.0, 4.0), Y0.numpy(), method="Radau", rtol=1e-8, atol=1e-10)
    assert (stiff.nfev, stiff.njev, stiff.nlu) == (ref.nfev, ref.njev, ref.nlu) and stiff.nlu > 0


def test_to_xarray_dims_values_units():
    pytest.importorskip("xarray")
    out = solvers.solve(field, torch.stack([Y0, 2 * Y0]), (0.0, 1.0), method="rk4", steps=4)
    ds = out.to_xarray(time_units="s")
    assert ds["y"].dims == ("time", "batch", "state")
    np.testing.assert_array_equal(ds["y"].values, out.y.numpy())
    np.testing.assert_array_equal(ds["time"].values, out.t.numpy())
    assert ds["time"].attrs["units"] == "s" and ds["y"].attrs["units"] == "1"
    assert ds.attrs["nfev"] == out.nfev == 16
    one = solvers.solve(field, Y0, (0.0, 1.0), method="rk4", steps=4).to_xarray()
    assert one["y"].dims == ("time", "state")


def test_piecewise_field_interpolates_within_each_layer():
    # a ResNet's field jumps at layer boundaries: the interpolant must use each step's own piece
    from odenet import ResNet
    net = ResNet.neural_ode(n_in=2, width=2, n_out=1, depth=5, T=1.0, seed=1)
    x = torch.randn(4, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    t_off = [0.03, 0.21, 0.4, 0.41, 0.777, 0.99]
    ref = solvers.solve(net.ode(), x, method="DOP853", t_eval=t_off)
    for method in ("dopri5", "bosh3"):
        got = solvers.solve(net.ode(), x, method=method, rtol=1e-10, atol=1e-12, t_eval=t_off)
        assert got.y.shape == (6, 4, 2)
        with torch.no_grad():
            assert (got.y - ref.y).abs().max() < 1e-7, method


def test_piecewise_fixed_step_t_eval_defaults_to_one_step_per_layer():
    from odenet import ResNet
    net = ResNet.neural_ode(n_in=2, width=2, n_out=1, depth=4, T=2.0, seed=0)
    x = torch.randn(3, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        full = solvers.solve(net.ode(), x, method="rk4")
        picked = solvers.solve(net.ode(), x, method="rk4", t_eval=[0.5, 2.0])
    assert full.t.tolist() == [0.0, 0.5, 1.0, 1.5, 2.0] and torch.equal(picked.y, full.y[[1, 4]])
    with pytest.raises(ValueError, match="0.7 is not a node"):
        solvers.solve(net.ode(), x, method="rk4", t_eval=[0.7])
