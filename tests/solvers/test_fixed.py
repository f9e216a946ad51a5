import math

import numpy as np
import pytest
import torch

from fractions import Fraction

from solvers import FIXED_METHODS, ExplicitRK, GeneralisedEuler, get_method, solve
from tests.solvers.fields import Counting, PiecewiseLinear, oscillating_linear, oscillating_linear_flow

X0 = torch.tensor([[1.0, 0.5], [-0.3, 2.0], [0.7, -1.1]], dtype=torch.float64)
T = 2.0


def observed_order(method, steps):
    exact = oscillating_linear_flow(X0, T)
    errors = [(solve(oscillating_linear, X0, (0.0, T), method=method, steps=n, record="end").y[-1] - exact).abs().max().item()
              for n in steps]
    hs = [T / n for n in steps]
    return np.polyfit(np.log(hs), np.log(errors), 1)[0], errors


@pytest.mark.parametrize("method, order, steps", [
    ("euler", 1, [64, 128, 256, 512, 1024]),
    ("heun", 2, [32, 64, 128, 256, 512]),
    ("midpoint", 2, [32, 64, 128, 256, 512]),
    ("ralston", 2, [32, 64, 128, 256, 512]),
    ("ssprk3", 3, [16, 32, 64, 128, 256]),
    ("rk4", 4, [8, 16, 32, 64, 128]),
])
def test_observed_order_on_a_non_autonomous_field(method, order, steps):
    slope, errors = observed_order(method, steps)
    assert abs(slope - order) <= 0.1, (slope, errors)
    assert FIXED_METHODS[method].order == order


@pytest.mark.parametrize("method", ["euler", "heun", "midpoint", "ralston", "ssprk3", "rk4"])
def test_nfev_is_exact(method):
    L = 7
    field = Counting(PiecewiseLinear([np.eye(2) * (0.1 * l) for l in range(L)], T=1.0))
    sol = solve(field, X0, method=method, steps=3 * L)
    stages = {"euler": 1, "heun": 2, "midpoint": 2, "ralston": 2, "ssprk3": 3, "rk4": 4}[method]
    assert FIXED_METHODS[method].stages == stages
    assert sol.nfev == field.calls == stages * 3 * L
    assert sol.n_steps == sol.n_accepted == 3 * L and sol.n_rejected == 0
    assert sol.success and sol.status == 0


def test_generalised_euler_matches_the_plain_recursion():
    L, eps, delta = 5, 0.7, 0.3
    mats = [np.array([[0.2 * l, -1.0], [0.5, -0.1 * l]]) for l in range(L)]
    field = PiecewiseLinear(mats, T=1.0)
    sol = solve(field, X0, method="euler", eps=eps, delta=delta)
    x = X0.numpy()
    for l, M in enumerate(mats):
        x = eps * x + delta * (x @ M.T)
        np.testing.assert_allclose(sol.y[l + 1].numpy(), x, rtol=1e-15, atol=1e-15)
    assert torch.equal(sol.t, torch.tensor([l / L for l in range(L)] + [1.0], dtype=torch.float64))
    assert sol.step_piece.tolist() == list(range(L))


def test_piecewise_field_is_never_straddled():
    # Exact on each piece: rk4 with many steps per piece converges to the product of exponentials,
    # which it could not do at order 4 if a step mixed two pieces.
    mats = [np.array([[0.0, 1.0], [-1.0, 0.0]]) * s for s in (1.0, -2.0, 0.5, 3.0)]
    field = PiecewiseLinear(mats, T=2.0)
    errs = [(solve(field, X0, method="rk4", steps=4 * m, record="end").y[-1] - field.flow(X0)).abs().max().item()
            for m in (4, 8, 16)]
    assert np.log2(errs[0] / errs[1]) > 3.8 and np.log2(errs[1] / errs[2]) > 3.8


def test_record_end_keeps_the_end_points_only():
    sol_all = solve(oscillating_linear, X0, (0.0, 1.0), method="rk4", steps=10)
    sol_end = solve(oscillating_linear, X0, (0.0, 1.0), method="rk4", steps=10, record="end")
    assert sol_all.y.shape == (11, 3, 2) and sol_end.y.shape == (2, 3, 2)
    assert torch.equal(sol_end.y[-1], sol_all.y[-1]) and torch.equal(sol_end.y[0], X0)
    assert sol_end.t.tolist() == [0.0, 1.0]


def test_non_finite_state_stops_with_a_message():
    # x' = x^2 blows up at t = 1/x0 = 0.5; Euler overflows to inf and then nan.
    blowup = lambda t, x: x * x
    x0 = torch.tensor([[2.0]], dtype=torch.float64)
    for record in ("all", "end"):
        sol = solve(blowup, x0, (0.0, 3.0), method="euler", steps=60, eps=1.0, delta=50.0, record=record)
        assert sol.status == -1 and not sol.success
        assert "non-finite state at step" in sol.message
        assert torch.isfinite(sol.y).all()
    # the step named is the first whose state overflows, computed independently
    x, k = np.float64(2.0), 0
    with np.errstate(over="ignore"):
        while np.isfinite(x):
            x, k = x + 50.0 * x * x, k + 1
    assert f"step {k} " in sol.message
    assert sol.n_steps == k - 1


def test_tableaux_satisfy_the_order_conditions():
    """Butcher's conditions up to each method's order, in exact rational arithmetic:
    Σb = 1; Σ b c = 1/2; Σ b c² = 1/3, Σ b A c = 1/6; order 4: Σ b c³ = 1/4, Σ b c A c = 1/8,
    Σ b A c² = 1/12, Σ b A A c = 1/24."""
    for m in FIXED_METHODS.values():
        if not isinstance(m, ExplicitRK):
            continue
        s = m.stages
        A = [[Fraction(m.a[i][j]) if j < i else Fraction(0) for j in range(s)] for i in range(s)]
        b, c = [Fraction(v) for v in m.b], [Fraction(v) for v in m.c]
        Ac = [sum(A[i][j] * c[j] for j in range(s)) for i in range(s)]
        conds = [(sum(b), 1), (sum(bi * ci for bi, ci in zip(b, c)), Fraction(1, 2))]
        if m.order >= 3:
            conds += [(sum(bi * ci ** 2 for bi, ci in zip(b, c)), Fraction(1, 3)),
                      (sum(bi * x for bi, x in zip(b, Ac)), Fraction(1, 6))]
        if m.order >= 4:
            Ac2 = [sum(A[i][j] * c[j] ** 2 for j in range(s)) for i in range(s)]
            AAc = [sum(A[i][j] * Ac[j] for j in range(s)) for i in range(s)]
            conds += [(sum(bi * ci ** 3 for bi, ci in zip(b, c)), Fraction(1, 4)),
                      (sum(bi * ci * x for bi, ci, x in zip(b, c, Ac)), Fraction(1, 8)),
                      (sum(bi * x for bi, x in zip(b, Ac2)), Fraction(1, 12)),
                      (sum(bi * x for bi, x in zip(b, AAc)), Fraction(1, 24))]
        assert all(got == want for got, want in conds), (m.name, conds)


def test_a_new_tableau_is_one_object_and_solve_takes_it():
    # Kutta's third-order method, not in the registry: order 3 observed on the closed form
    kutta3 = ExplicitRK("kutta3", 3, a=((), (Fraction(1, 2),), (-1, 2)), b=(Fraction(1, 6), Fraction(2, 3),
                        Fraction(1, 6)), c=(0, Fraction(1, 2), 1))
    exact = oscillating_linear_flow(X0, T)
    errs = [(solve(oscillating_linear, X0, (0.0, T), method=kutta3, steps=n, record="end").y[-1] - exact)
            .abs().max().item() for n in (16, 32, 64, 128)]
    slope = np.polyfit(np.log([T / n for n in (16, 32, 64, 128)]), np.log(errs), 1)[0]
    assert abs(slope - 3) <= 0.1, errs
    with pytest.raises(ValueError, match="c\\[1\\] must equal the sum of row 1"):
        ExplicitRK("bad", 2, a=((), (1,)), b=(0.5, 0.5), c=(0, 0.5))


def test_generalised_euler_object_equals_the_eps_delta_arguments():
    L, eps, delta = 5, 0.7, 0.3
    field = PiecewiseLinear([np.array([[0.2 * l, -1.0], [0.5, -0.1 * l]]) for l in range(L)], T=1.0)
    a = solve(field, X0, method=GeneralisedEuler(eps, delta))
    b = solve(field, X0, method="euler", eps=eps, delta=delta)
    assert torch.equal(a.y, b.y) and a.method == b.method == "euler"
    # delta=None is the grid step: plain Euler
    assert torch.equal(solve(field, X0, method=GeneralisedEuler()).y, solve(field, X0, method="euler").y)
    assert get_method("rk4") is FIXED_METHODS["rk4"] and get_method(a.method) is FIXED_METHODS["euler"]
    with pytest.raises(ValueError, match="eps and delta are set by the method object"):
        solve(field, X0, method=GeneralisedEuler(eps, delta), eps=0.5)
    with pytest.raises(ValueError, match="eps must be >= 0"):
        GeneralisedEuler(-1.0)
    with pytest.raises(ValueError, match="method must be one of"):
        get_method("leapfrog")


@pytest.mark.parametrize("method, eps", [("euler", 1.0), ("euler", 0.6), ("heun", 1.0), ("rk4", 1.0)])
def test_fixed_loop_runs_under_torch_func_transforms(method, eps):
    """Why the steps ask ``has_storage`` before writing into out= buffers (it was a private functorch
    call once): under vmap/jacfwd a wrapped tensor has no storage, out= has no batching rule and
    the finiteness check is data-dependent.  The step maps of a linear field are matrices in closed
    form: eps I + h A (generalised Euler with delta = h) and the Taylor polynomial of degree 2 or 4
    of hA (Heun, RK4), so the transformed solve's Jacobian is their product over the steps."""
    from torch.func import jacfwd, vmap

    from solvers import TimeGrid
    from solvers.fixed import euler_iteration, integrate_fixed

    L, per, T_ = 3, 4, 1.5
    mats = [np.array([[-0.3, 1.0], [-1.0, -0.2]]) * (l + 1) for l in range(L)]
    field = PiecewiseLinear(mats, T_)
    h = T_ / (L * per)
    grid = TimeGrid(0.0, T_, L * per, L)
    degree = {"euler": 1, "heun": 2, "rk4": 4}[method]

    def step_map(x):  # (batch, 2) -> its state at T, by the untransformed loop's code
        if method == "euler":
            return euler_iteration(field, x, eps, h, L * per)
        return integrate_fixed(get_method(method), [field.piece(l) for l in range(L)], grid, x, False)[0]

    P = np.eye(2)
    for M in mats:
        hA = h * M
        R = eps * np.eye(2) + hA if degree == 1 else sum(np.linalg.matrix_power(hA, j) / math.factorial(j)
                                                         for j in range(degree + 1))
        P = np.linalg.matrix_power(R, per) @ P
    P = torch.from_numpy(P)
    torch.testing.assert_close(step_map(X0), X0 @ P.T, rtol=1e-13, atol=1e-13)  # the tight loop
    one = lambda v: step_map(v[None])[0]  # noqa: E731
    torch.testing.assert_close(vmap(one)(X0), X0 @ P.T, rtol=1e-13, atol=1e-13)
    torch.testing.assert_close(vmap(jacfwd(one))(X0), P.expand(len(X0), 2, 2), rtol=1e-13, atol=1e-13)
