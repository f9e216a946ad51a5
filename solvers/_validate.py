"""Argument checks shared by the solvers: each raises ValueError (or TypeError) naming the
argument, the value received and what is allowed."""
from __future__ import annotations

import math
import numbers

import torch


def check_real(name: str, value, *, finite: bool = True) -> float:
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number; got {value!r} of type {type(value).__name__}")
    if finite and not math.isfinite(value):
        raise ValueError(f"{name} must be finite; got {value!r}")
    return float(value)


def check_positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer >= 1; got {value!r} of type {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} must be an integer >= 1; got {value!r}")
    return int(value)


def check_seed(name: str, value) -> int:
    """A seed: a non-negative integer (Python or NumPy), not a bool."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be a non-negative integer; got {value!r} of type {type(value).__name__}")
    if value < 0:
        raise ValueError(f"{name} must be a non-negative integer; got {value!r}")
    return int(value)


def check_nonnegative(name: str, value) -> float:
    value = check_real(name, value)
    if value < 0:
        raise ValueError(f"{name} must be >= 0; got {value!r}")
    return value


def check_positive(name: str, value) -> float:
    value = check_real(name, value)
    if not value > 0:
        raise ValueError(f"{name} must be > 0; got {value!r}")
    return value


def check_state(name: str, x, *, ndim: int = 2) -> torch.Tensor:
    """A finite floating tensor of shape (batch, d)."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of shape (batch, d); got {type(x).__name__}")
    if not x.is_floating_point():
        raise ValueError(f"{name} must have a floating dtype (float32 or float64); got dtype {x.dtype}")
    if x.ndim != ndim:
        raise ValueError(f"{name} must have shape (batch, d) with {ndim} dimensions; got shape {tuple(x.shape)}")
    if x.numel() == 0:
        raise ValueError(f"{name} must not be empty; got shape {tuple(x.shape)}")
    if not torch.isfinite(x).all():
        bad = (~torch.isfinite(x)).nonzero()[0].tolist()
        raise ValueError(f"{name} must be finite; got a non-finite entry at index {tuple(bad)}")
    return x


def check_choice(name: str, value, allowed) -> str:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {sorted(allowed)}; got {value!r}")
    return value
