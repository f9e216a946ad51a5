"""Datasets: sizes, balance, radii, determinism per seed, bad input."""
import math

import numpy as np
import pytest
import torch

from odenet.datasets import circles, make_dataset, square, xor


def test_circles_sizes_balance_and_radii():
    d = circles(2000, seed=3)
    assert (len(d.x_train), len(d.x_val), len(d.x_test)) == (1100, 300, 600)
    assert d.y.sum().item() == 1000  # exactly half in the annulus
    r = d.raw(d.x).norm(dim=1)
    y = d.y[:, 0]
    assert r[y == 0].max() <= 0.4 and r[y == 1].min() >= 0.5 and r[y == 1].max() <= 1.0
    # standardised with the training split's statistics
    assert torch.allclose(d.x_train.mean(0), torch.zeros(2, dtype=torch.float64), atol=1e-12)
    assert torch.allclose(d.x_train.std(0, unbiased=False), torch.ones(2, dtype=torch.float64), atol=1e-12)
    # the centre is the image of the raw origin
    assert torch.allclose(d.raw(d.centre[None])[0], torch.zeros(2, dtype=torch.float64), atol=1e-12)


def test_circles_radii_are_area_uniform():
    d = circles(40000, inner_radius=0.3, gap_radius=0.6, outer_radius=0.9, standardise=False,
                val_fraction=0.0, test_fraction=0.0, seed=1)
    r, y = d.x.norm(dim=1), d.y[:, 0]
    # P(r < r_in/√2 | disc) = 1/2 and P(r² < (r_gap² + R²)/2 | annulus) = 1/2 for area-uniform radii
    assert abs((r[y == 0] < 0.3 / math.sqrt(2)).double().mean().item() - 0.5) < 0.015
    assert abs((r[y == 1] ** 2 < (0.36 + 0.81) / 2).double().mean().item() - 0.5) < 0.015
    # angles uniform: mean of cos and sin near 0
    assert d.x[y == 0].mean(0).abs().max() < 0.01


def test_xor_and_square_labels():
    d = xor(seed=2)
    assert (len(d.x_train), len(d.x_val), len(d.x_test)) == (1400, 200, 400)
    x = d.x
    assert torch.equal(d.y[:, 0], (x[:, 1] ** 2 >= x[:, 0] ** 2).double())
    assert x.abs().max() <= 1.0
    assert abs(d.y.mean().item() - 0.5) < 0.05
    s = square(seed=0)
    assert len(s.x_train) == 300 and len(s.x_val) == 0
    assert torch.equal(s.y_train, s.x_train ** 2)
    assert s.x_train.min() >= -1 and s.x_train.max() <= 1


@pytest.mark.parametrize("make", [circles, xor, square])
def test_determinism_per_seed(make):
    a, b, c = make(seed=5), make(seed=5), make(seed=6)
    for part in ("x_train", "y_train", "x_val", "x_test"):
        assert torch.equal(getattr(a, part), getattr(b, part))
    assert not torch.equal(a.x_train, c.x_train)


def test_make_dataset_and_bad_input():
    assert make_dataset("circles", n=100, seed=0).params["n"] == 100
    with pytest.raises(ValueError, match="inner_radius"):
        circles(inner_radius=0.6, gap_radius=0.5)
    with pytest.raises(ValueError, match="gap_radius"):
        circles(gap_radius=1.2, outer_radius=1.0)
    with pytest.raises(ValueError, match="val_fraction"):
        circles(val_fraction=0.5, test_fraction=0.5)
    with pytest.raises(ValueError, match="low"):
        square(low=1.0, high=-1.0)
    with pytest.raises(ValueError, match="dataset"):
        make_dataset("moons")
    with pytest.raises(ValueError, match="seed must be a non-negative integer below 2\\*\\*63; got -1"):
        xor(seed=-1)
    with pytest.raises(TypeError, match="seed"):
        xor(seed=1.5)
    assert torch.equal(xor(seed=np.int64(3)).x_train, xor(seed=3).x_train)  # NumPy integers are seeds too
    with pytest.raises(ValueError, match="n must"):
        circles(n=0)
    # was NaN inputs: one training point has std 0; n=4 gives round(2.0)=2 test and 2 training points
    with pytest.raises(ValueError, match=r"n=3 is too small .*standardise=True.*1 train.*"
                                         r"the smallest n that gives these splits is 4"):
        circles(n=3, val_fraction=0.0, test_fraction=0.5)
