import numpy as np
import pytest
import torch

from solvers import ADAPTIVE_METHODS, solve
from tests.solvers.fields import Counting, PiecewiseLinear, oscillating_linear, oscillating_linear_flow

X0 = torch.tensor([[1.0, 0.5], [-0.3, 2.0], [0.7, -1.1]], dtype=torch.float64)
MATS = [np.array([[0.0, 1.0], [-1.0, 0.0]]) * s + np.eye(2) * c for s, c in ((1.0, 0.1), (-2.0, 0.0), (0.5, -0.3), (3.0, 0.2))]


@pytest.mark.parametrize("method", ADAPTIVE_METHODS)
def test_adaptive_methods_reach_the_closed_form(method):
    # low-order pairs (adaptive_heun, fehlberg2) need many steps at tight tolerances
    field = PiecewiseLinear(MATS, T=2.0)
    sol = solve(field, X0, method=method, rtol=1e-6, atol=1e-8)
    assert sol.success
    assert (sol.y[-1] - field.flow(X0)).abs().max() < 1e-4


def test_restarts_land_on_every_layer_boundary():
    field = PiecewiseLinear(MATS, T=2.0)
    sol = solve(field, X0, method="dopri5", rtol=1e-8, atol=1e-10)
    boundaries = [field.pieces.boundary(l) for l in range(5)]
    times = sol.t.tolist()
    assert all(b in times for b in boundaries)
    assert times == sorted(times) and len(set(times)) == len(times)
    # each recorded step lies inside the piece it is attributed to
    for k, piece in enumerate(sol.step_piece.tolist()):
        assert boundaries[piece] <= times[k] < times[k + 1] <= boundaries[piece + 1]
    assert sol.y.shape == (len(times), 3, 2)
    assert sol.n_accepted == len(times) - 1


def test_statistics_are_counted():
    field = Counting(PiecewiseLinear(MATS, T=2.0))
    sol = solve(field, X0, method="dopri5", rtol=1e-9, atol=1e-12)
    assert sol.nfev == field.calls > 0
    assert sol.n_steps == sol.n_accepted + sol.n_rejected


def test_rejections_are_counted_when_the_initial_step_is_too_large():
    sol = solve(oscillating_linear, X0, (0.0, 3.0), method="dopri5", rtol=1e-10, atol=1e-12, first_step=2.5)
    assert sol.n_rejected >= 1
    assert (sol.y[-1] - oscillating_linear_flow(X0, 3.0)).abs().max() < 1e-8


def test_dopri5_agrees_with_the_scipy_reference():
    field = PiecewiseLinear(MATS, T=2.0)
    ref = solve(field, X0, method="DOP853")
    sol = solve(field, X0, method="dopri5", rtol=1e-10, atol=1e-10)
    assert (ref.y[-1] - field.flow(X0)).abs().max() < 1e-10
    assert (sol.y[-1] - ref.y[-1]).abs().max() < 1e-8
    assert ref.n_rejected is None and ref.nfev > 0


def test_reference_is_float64_whatever_the_input():
    sol = solve(oscillating_linear, X0.float(), (0.0, 1.0), method="DOP853")
    assert sol.y.dtype == torch.float64


def test_adaptive_failure_is_reported_not_raised():
    blowup = lambda t, x: x * x * x
    sol = solve(blowup, torch.tensor([[2.0]], dtype=torch.float64), (0.0, 1.0), method="dopri5", max_steps=50)
    assert sol.status == -1 and not sol.success and sol.message


def test_reference_refuses_a_float32_model_before_any_work():
    from odenet import ResNet

    net = ResNet(2, 2, 1, depth=4, eps=1.0, delta=0.25, seed=0, dtype=torch.float32)
    with pytest.raises(ValueError, match=r"float64 model \(model.double\(\)\)"):
        solve(net.ode(), torch.randn(6, 2), method="DOP853")
    # a float64 copy of the same model works
    ref = solve(net.double().ode(), torch.randn(6, 2, dtype=torch.float64), method="DOP853")
    assert ref.success


def test_failed_reference_solve_keeps_its_last_state():
    blowup = lambda t, x: x * x
    sol = solve(blowup, torch.tensor([[2.0]], dtype=torch.float64), (0.0, 1.0), method="DOP853", record="end")
    assert sol.status == -1
    assert sol.y.shape == (2, 1, 1) and 0 < sol.t[-1] < 1 and sol.y[-1, 0, 0] > 2.0


def test_failed_adaptive_end_point_solve_keeps_the_last_boundary_state():
    # x' = x^2 on four pieces of [0, 1] from x0 = 1.5 blows up at t = 2/3, inside piece 2
    mats = [np.zeros((1, 1))] * 4
    field = PiecewiseLinear(mats, T=1.0)
    field.piece = lambda l: (lambda t, x: x * x)
    x0 = torch.tensor([[1.5]], dtype=torch.float64)
    sol = solve(field, x0, method="dopri5", record="end", max_steps=200)
    assert sol.status == -1 and "piece 2" in sol.message
    assert sol.t.tolist() == [0.0, 0.5]
    assert abs(float(sol.y[-1, 0, 0]) - 1.5 / (1 - 1.5 * 0.5)) < 1e-6  # x(t) = x0 / (1 - x0 t)


def _many_pieces(L=20):
    rng = np.random.default_rng(0)
    return PiecewiseLinear([rng.normal(size=(2, 2)) for _ in range(L)], T=2.0)


def test_carrying_the_step_across_boundaries_saves_the_initial_step_searches():
    field = _many_pieces()
    exact = field.flow(X0)
    carry = solve(field, X0, method="dopri5", rtol=1e-8, atol=1e-10)
    restart = solve(field, X0, method="dopri5", rtol=1e-8, atol=1e-10, boundaries="restart")
    assert carry.success and restart.success
    # a fresh initial-step search costs two evaluations per piece beyond the first
    assert carry.nfev <= restart.nfev - 2 * (20 - 1)
    assert (carry.y[-1] - exact).abs().max() < 1e-7 and (restart.y[-1] - exact).abs().max() < 1e-7
    assert all(field.pieces.boundary(l) in carry.t.tolist() for l in range(21))


def test_jump_t_path_crosses_the_boundaries_in_one_solve():
    field = _many_pieces()
    counted = Counting(field)
    sol = solve(counted, X0, method="dopri5", rtol=1e-8, atol=1e-10, boundaries="jump")
    assert sol.success and sol.nfev == counted.calls
    # torchdiffeq's jump_t path is far less accurate than rtol here (4e-6 at rtol 1e-8, against 4e-9
    # for the restarts): it advances its jump index only when it clips a step onto a jump, so after a
    # step that ends on a jump by itself it steps over the later jumps (here every one after t = 0.7)
    assert (sol.y[-1] - field.flow(X0)).abs().max() < 1e-4
    times = sol.t.tolist()
    assert all(field.pieces.boundary(l) in times for l in range(8))
    # each step is attributed to the piece of its start
    assert sol.step_piece.tolist() == [field.pieces.piece_of_time(t) for t in times[:-1]]
    with pytest.raises(ValueError, match="boundaries must be one of"):
        solve(field, X0, method="dopri5", boundaries="skip")
