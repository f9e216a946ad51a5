import math

import pytest
import torch

from solvers import TimeGrid


@pytest.mark.parametrize("T, L", [(1.0, 10), (0.1, 3), (2.0, 20), (7.3, 49), (1e-3, 1000)])
def test_nodes_are_computed_from_integers(T, L):
    grid = TimeGrid(0.0, T, L, L)
    assert grid.node(0) == 0.0 and grid.node(L) == T
    for k in range(L):
        assert grid.node(k) == k * T / L
    assert torch.equal(grid.nodes(), torch.tensor([k * T / L for k in range(L)] + [T], dtype=torch.float64))
    assert grid.h == T / L


@pytest.mark.parametrize("T, L", [(1.0, 10), (0.1, 3), (0.3, 7), (7.3, 49), (1e-3, 1000)])
def test_layer_of_a_boundary_is_exact(T, L):
    grid = TimeGrid(0.0, T, L, L)
    for l in range(L):
        b = grid.boundary(l)
        assert grid.piece_of_time(b) == l
        if l > 0:  # the float just below a boundary belongs to the previous layer
            assert grid.piece_of_time(math.nextafter(b, -math.inf)) == l - 1
        mid = 0.5 * (grid.boundary(l) + grid.boundary(l + 1))
        assert grid.piece_of_time(mid) == l
    assert grid.piece_of_time(T) == L - 1


def test_the_naive_formula_gets_boundaries_wrong():
    # Why the grid does not use int(t / h): with T = 1, L = 10 the boundary t_3 = 0.3 gives
    # 0.3 / 0.1 = 2.9999999999999996, whose int() is the wrong layer.
    grid = TimeGrid(0.0, 1.0, 10, 10)
    b = grid.boundary(3)
    assert int(b / grid.h) == 2
    assert grid.piece_of_time(b) == 3


def test_refined_steps_know_their_piece():
    grid = TimeGrid(0.0, 0.7, 7, 7).refine(5)
    assert grid.n == 35 and grid.steps_per_piece == 5
    assert [grid.piece_of_step(k) for k in range(35)] == [k // 5 for k in range(35)]
    # a refined grid's piece boundaries are its own nodes
    for l in range(8):
        assert grid.boundary(l) == grid.node(5 * l)


@pytest.mark.parametrize("kwargs, name", [
    (dict(t0=0.0, t1=0.0, n=3), "t1"),
    (dict(t0=0.0, t1=-1.0, n=3), "t1"),
    (dict(t0=0.0, t1=1.0, n=0), "n"),
    (dict(t0=0.0, t1=1.0, n=4, pieces=3), "n must be a multiple of pieces"),
    (dict(t0=0.0, t1=float("inf"), n=3), "t1"),
])
def test_bad_grids_are_refused(kwargs, name):
    with pytest.raises(ValueError, match=name):
        TimeGrid(**kwargs)


def test_time_outside_the_grid_is_refused():
    with pytest.raises(ValueError, match="t must lie in"):
        TimeGrid(0.0, 1.0, 4, 4).piece_of_time(1.5)


def _layered(L=4, T=2.0):
    from odenet import LayerField

    return LayerField(2, L, T)


def test_fixed_grid_defaults_to_one_step_per_piece_and_groups_steps_into_pieces():
    from solvers import fixed_grid

    field = _layered(4, 2.0)
    assert fixed_grid(field, None, None) == TimeGrid(0.0, 2.0, 4, 4)
    grid = fixed_grid(field, (0.0, 2.0), 12)
    assert grid == TimeGrid(0.0, 2.0, 12, 4) and grid.steps_per_piece == 3
    assert fixed_grid(lambda t, x: -x, (0.5, 1.5), 5) == TimeGrid(0.5, 1.5, 5, 1)


@pytest.mark.parametrize("t_span, steps, error, match", [
    ((0.0, 1.0), 4, ValueError, r"equal the piecewise field's span \(0.0, 2.0\)"),
    ((0.0, 2.0), 6, ValueError, "multiple of the field's 4 pieces; got steps=6"),
    ((0.0, 2.0), 0, ValueError, "steps"),
    ((0.0, 2.0), 4.0, TypeError, "steps"),
    ((2.0, 0.0), 4, ValueError, "t1 > t0"),
    ((0.0,), 4, ValueError, r"pair \(t0, t1\)"),
    (("0", 2.0), 4, TypeError, r"t_span\[0\]"),
])
def test_solve_and_trace_refuse_a_bad_span_or_steps_alike(t_span, steps, error, match):
    # one definition (solvers.fixed_grid): the solver and the tracer say the same thing
    from analysis import trace
    from solvers import fixed_grid, solve

    field, x = _layered(4, 2.0), torch.zeros(3, 2, dtype=torch.float64)
    for call in (lambda: fixed_grid(field, t_span, steps), lambda: solve(field, x, t_span, steps=steps),
                 lambda: trace(field, x, t_span=t_span, steps=steps)):
        with pytest.raises(error, match=match):
            call()


def test_a_plain_field_needs_t_span_and_steps():
    from solvers import field_span, fixed_grid

    with pytest.raises(ValueError, match="t_span is required"):
        field_span(lambda t, x: -x, None)
    with pytest.raises(ValueError, match="steps is required"):
        fixed_grid(lambda t, x: -x, (0.0, 1.0), None)
    assert field_span(lambda t, x: -x, [0, 3]) == (0.0, 3.0)
