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
