"""The paper's data sets (docs/theory.md §11), seeded and deterministic, with train/validation/test splits.

- :func:`square`:  y = x² for x uniform on [low, high] (default 300 points on [-1, 1]).
- :func:`circles`: class 0 uniform in the disc r ≤ r_in, class 1 uniform in the annulus
  r_gap ≤ r ≤ r_out (area-uniform radii), standardised.
- :func:`xor`:     x uniform on [-a, a]², label 1 iff x₂² ≥ x₁² (the saddle set).

All draws use one ``torch.Generator`` seeded with ``seed`` (float64, on the CPU), so a seed gives
the same points on every machine and different seeds give different points.  The split is a
seeded permutation: the first ``n_train`` points train, the next ``n_val`` validate, the last
``n_test`` test (``n_test = round(test_fraction n)``, ``n_val = round(val_fraction n)``).
Validation data are for model selection; the test split is never looked at by training.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

import torch

from solvers.validation import (check_memory, check_nonnegative, check_positive, check_positive_int, check_real,
                               check_seed)

# bytes per point of the largest data set (circles): x, y, radii, angles and the permuted copies
_BYTES_PER_POINT = 16 * 8


def data_memory(n: int) -> int:
    """Estimated bytes to build a data set of ``n`` points (any of :data:`DATASETS`; the largest,
    circles, holds 16 float64 numbers per point while it is drawn, standardised and split)."""
    return n * _BYTES_PER_POINT


@dataclass
class Split:
    """Inputs and targets of the three splits, the one data layout training reads.

    x_train, x_val, x_test : Tensor (n_split, n_in); y_train, y_val, y_test : Tensor (n_split, n_out).
    The validation and test splits may be empty (n_split = 0).
    """

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor

    @property
    def n_in(self) -> int:
        """Input dimension n_in."""
        return self.x_train.shape[1]

    @property
    def x(self) -> torch.Tensor:
        """All inputs, train ‖ val ‖ test: shape (n, n_in)."""
        return torch.cat([self.x_train, self.x_val, self.x_test])

    @property
    def y(self) -> torch.Tensor:
        """All targets, train ‖ val ‖ test: shape (n, n_out)."""
        return torch.cat([self.y_train, self.y_val, self.y_test])


@dataclass(repr=False, kw_only=True)
class Dataset(Split):
    """A labelled data set: its splits (:class:`Split`) and how it was drawn.

    Fields
    ------
    x_train, y_train, x_val, y_val, x_test, y_test : Tensor
        The splits (:class:`Split`): inputs (n_split, n_in) float64, standardised where the data
        set says so; targets (n_split, 1) float64, regression values (square) or class labels
        0./1. (circles, xor).
    name : str
        ``"square"``, ``"circles"`` or ``"xor"``.
    seed : int
        The seed that drew everything.
    params : dict
        The generating parameters (sizes, radii, fractions, standardisation).
    mean, std : Tensor (n_in,)
        Standardisation x_std = (x_raw - mean) / std (mean 0, std 1 when not standardised; None,
        as in files that lack them, reads as mean 0, std 1).
    centre : Tensor (n_in,)
        The centre of the enclosed class in the data's coordinates (circles: the image of the
        origin, -mean/std), or of the input domain.
    """

    name: str
    seed: int
    params: dict = field(default_factory=dict)
    mean: torch.Tensor | None = None
    std: torch.Tensor | None = None
    centre: torch.Tensor | None = None

    def _scaling(self) -> tuple[torch.Tensor | float, torch.Tensor | float]:
        return (0.0 if self.mean is None else self.mean), (1.0 if self.std is None else self.std)

    def standardise(self, x_raw: torch.Tensor) -> torch.Tensor:
        """(x_raw - mean) / std: raw coordinates into the data's coordinates, shape kept (…, n_in)."""
        mean, std = self._scaling()
        return (torch.as_tensor(x_raw, dtype=torch.float64) - mean) / std

    def raw(self, x: torch.Tensor) -> torch.Tensor:
        """x std + mean: the data's coordinates back to raw coordinates, shape kept (…, n_in)."""
        mean, std = self._scaling()
        return torch.as_tensor(x, dtype=torch.float64) * std + mean

    def __repr__(self) -> str:
        return (f"Dataset({self.name!r}, train={len(self.x_train)}, val={len(self.x_val)}, "
                f"test={len(self.x_test)}, seed={self.seed}, params={self.params})")


def _check_fractions(val_fraction: float, test_fraction: float) -> tuple[float, float]:
    val_fraction = check_nonnegative("val_fraction", val_fraction)
    test_fraction = check_nonnegative("test_fraction", test_fraction)
    if val_fraction + test_fraction >= 1:
        raise ValueError(f"val_fraction + test_fraction must be < 1 (some data must train); got "
                         f"val_fraction={val_fraction}, test_fraction={test_fraction}")
    return val_fraction, test_fraction


def _split_sizes(n: int, val_fraction: float, test_fraction: float) -> tuple[int, int, int]:
    """(n_train, n_val, n_test) with n_test = round(test_fraction n), n_val = round(val_fraction n)."""
    n_test, n_val = round(test_fraction * n), round(val_fraction * n)
    return n - n_val - n_test, n_val, n_test


def _split_ok(n: int, val_fraction: float, test_fraction: float, min_train: int) -> bool:
    n_train, n_val, n_test = _split_sizes(n, val_fraction, test_fraction)
    return n_train >= min_train and (n_val >= 1 or val_fraction == 0) and (n_test >= 1 or test_fraction == 0)


def check_split_size(n: int, val_fraction: float, test_fraction: float, standardise: bool = False) -> None:
    """Refuse an n that leaves a requested split empty: a positive fraction must give at least one
    point, and training needs one point (two when standardising: one point has std 0).  The error
    names the minimum n for these fractions."""
    min_train = 2 if standardise else 1
    if _split_ok(n, val_fraction, test_fraction, min_train):
        return
    # round(f n) >= 1 needs f n > 1/2 (round half to even), so the smallest n is at least lo; and
    # n_train >= n (1 - val - test) - 1 makes n >= (min_train + 1) / (1 - val - test) enough for training
    lo = max([n + 1, min_train] + [math.floor(0.5 / f) + 1 for f in (val_fraction, test_fraction) if f > 0])
    enough = max(lo, math.ceil((min_train + 1) / (1 - val_fraction - test_fraction)))
    m = next((c for c in range(lo, min(enough, lo + 100_000)) if _split_ok(c, val_fraction, test_fraction, min_train)),
             enough)
    n_train, n_val, n_test = _split_sizes(n, val_fraction, test_fraction)
    raise ValueError(f"n={n} is too small for val_fraction={val_fraction}, test_fraction={test_fraction}"
                     f"{', standardise=True' if standardise else ''}: the split would be {n_train} train / {n_val} "
                     f"val / {n_test} test points (need >= {min_train} train and >= 1 in every split with a "
                     f"positive fraction); the smallest n that gives these splits is {m}")


def _check_size(n: int, val_fraction: float, test_fraction: float, standardise: bool = False) -> None:
    check_split_size(n, val_fraction, test_fraction, standardise)
    check_memory(data_memory(n), f"a data set of n={n} points")


def _split(name, x, y, seed, gen, val_fraction, test_fraction, params, standardise=False, centre=None):
    n = len(x)
    n_train, n_val, n_test = _split_sizes(n, val_fraction, test_fraction)
    perm = torch.randperm(n, generator=gen)
    x, y = x[perm], y[perm]
    tr, va = slice(0, n_train), slice(n_train, n_train + n_val)
    te = slice(n_train + n_val, n)
    d = x.shape[1]
    mean, std = torch.zeros(d, dtype=x.dtype), torch.ones(d, dtype=x.dtype)
    if standardise:
        # statistics of the training split only: validation and test data stay unseen
        mean, std = x[tr].mean(0), x[tr].std(0, unbiased=False)
        x = (x - mean) / std
    if centre is None:
        centre = torch.zeros(d, dtype=x.dtype)
    centre = (centre - mean) / std
    params = dict(params, n=n, val_fraction=val_fraction, test_fraction=test_fraction, standardise=standardise)
    return Dataset(x[tr], y[tr], x[va], y[va], x[te], y[te], name=name, seed=seed, params=params, mean=mean, std=std,
                   centre=centre)


def square(n: int = 300, *, low: float = -1.0, high: float = 1.0, val_fraction: float = 0.0,
           test_fraction: float = 0.0, seed: int = 0) -> Dataset:
    """y = x² at n points x ~ Uniform[low, high] (the paper's 1D target: 300 points on [-1, 1],
    all of them training data, so the fractions default to 0)."""
    n = check_positive_int("n", n)
    low, high = check_real("low", low), check_real("high", high)
    if not low < high:
        raise ValueError(f"low must be < high; got low={low}, high={high}")
    val_fraction, test_fraction = _check_fractions(val_fraction, test_fraction)
    _check_size(n, val_fraction, test_fraction)
    seed = check_seed("seed", seed)
    gen = torch.Generator().manual_seed(seed)
    x = low + (high - low) * torch.rand(n, 1, generator=gen, dtype=torch.float64)
    return _split("square", x, x * x, seed, gen, val_fraction, test_fraction, dict(low=low, high=high),
                  centre=torch.tensor([(low + high) / 2], dtype=torch.float64))


def circles(n: int = 2000, *, inner_radius: float = 0.4, gap_radius: float = 0.5, outer_radius: float = 1.0,
            inner_fraction: float = 0.5, standardise: bool = True, val_fraction: float = 0.15,
            test_fraction: float = 0.3, seed: int = 0) -> Dataset:
    """The enclosed-class set: round(inner_fraction n) points uniform in the disc r ≤ inner_radius
    (label 0) and the rest uniform in the annulus gap_radius ≤ r ≤ outer_radius (label 1).

    Area-uniform radii: disc r = r_in √U, annulus r = √((R² - r_gap²) U + r_gap²), angle 2πV,
    with U, V ~ Uniform[0, 1).  ``standardise`` maps x to (x - mean) / std with the training
    split's per-feature statistics.  Defaults: the paper's 2000 points, 30 % test; 15 % of the
    points validate (the paper's 70 % training part, split 55/15).
    """
    n = check_positive_int("n", n)
    r_in = check_positive("inner_radius", inner_radius)
    r_gap = check_positive("gap_radius", gap_radius)
    r_out = check_positive("outer_radius", outer_radius)
    if not r_in < r_gap:
        raise ValueError(f"inner_radius must be < gap_radius (the classes must not overlap); got "
                         f"inner_radius={r_in}, gap_radius={r_gap}")
    if not r_gap < r_out:
        raise ValueError(f"gap_radius must be < outer_radius; got gap_radius={r_gap}, outer_radius={r_out}")
    inner_fraction = check_real("inner_fraction", inner_fraction)
    if not 0 < inner_fraction < 1:
        raise ValueError(f"inner_fraction must be in (0, 1); got {inner_fraction}")
    val_fraction, test_fraction = _check_fractions(val_fraction, test_fraction)
    _check_size(n, val_fraction, test_fraction, standardise)
    n0 = round(inner_fraction * n)
    if not 0 < n0 < n:
        raise ValueError(f"n={n} with inner_fraction={inner_fraction} leaves a class empty ({n0} inner, "
                         f"{n - n0} outer points); use a larger n")
    seed = check_seed("seed", seed)
    gen = torch.Generator().manual_seed(seed)
    u, v = torch.rand(2, n, generator=gen, dtype=torch.float64)
    r = torch.empty(n, dtype=torch.float64)
    r[:n0] = r_in * u[:n0].sqrt()
    r[n0:] = ((r_out ** 2 - r_gap ** 2) * u[n0:] + r_gap ** 2).sqrt()
    phi = 2 * math.pi * v
    x = torch.stack([r * phi.cos(), r * phi.sin()], dim=1)
    y = torch.zeros(n, 1, dtype=torch.float64)
    y[n0:] = 1.0
    return _split("circles", x, y, seed, gen, val_fraction, test_fraction,
                  dict(inner_radius=r_in, gap_radius=r_gap, outer_radius=r_out, inner_fraction=inner_fraction),
                  standardise=standardise)


def xor(n: int = 2000, *, half_width: float = 1.0, val_fraction: float = 0.1, test_fraction: float = 0.2,
        seed: int = 0) -> Dataset:
    """The saddle ("XOR") set: x uniform on [-a, a]², label 1 iff x₂² ≥ x₁² (a = half_width).
    Defaults: the paper's 2000 points and 80/20 split, with 10 % of the points for validation."""
    n = check_positive_int("n", n)
    a = check_positive("half_width", half_width)
    val_fraction, test_fraction = _check_fractions(val_fraction, test_fraction)
    _check_size(n, val_fraction, test_fraction)
    seed = check_seed("seed", seed)
    gen = torch.Generator().manual_seed(seed)
    x = a * (2 * torch.rand(n, 2, generator=gen, dtype=torch.float64) - 1)
    y = (x[:, 1] ** 2 >= x[:, 0] ** 2).to(torch.float64)[:, None]
    return _split("xor", x, y, seed, gen, val_fraction, test_fraction, dict(half_width=a))


DATASETS: dict[str, Callable[..., Dataset]] = {"square": square, "circles": circles, "xor": xor}


def make_dataset(name: str, **kw: Any) -> Dataset:
    """The data set called ``name`` (square, circles, xor) with keyword parameters ``kw``."""
    if name not in DATASETS:
        raise ValueError(f"dataset must be one of {sorted(DATASETS)}; got {name!r}")
    return DATASETS[name](**kw)
