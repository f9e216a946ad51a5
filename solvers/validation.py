"""Argument checks, public and shared by every floor (solvers, odenet, analysis, the CLI).

Each ``check_*`` function returns the value it accepts (converted where the contract says so)
and otherwise raises, *before any work is done*, a ``ValueError`` (or ``TypeError`` for a value
of the wrong type) that names the argument, the value received and what is allowed::

    >>> check_positive_int("steps", 0)
    Traceback (most recent call last):
    ValueError: steps must be an integer >= 1; got 0

See docs/validation.md for the rules and the messages users see.
"""
from __future__ import annotations

import math
import numbers
import os
from typing import Collection, cast

import torch

SEED_LIMIT = 2 ** 63
"""Seeds are integers in [0, SEED_LIMIT): what torch.Generator.manual_seed, numpy's SeedSequence and
an HDF5 int64 attribute all hold."""

FLOAT_DTYPES = (torch.float32, torch.float64)
"""The dtypes of states and models: float16/bfloat16 lose the convergence orders this toolkit
measures, integer tensors are not states."""


def check_real(name: str, value: object, *, finite: bool = True) -> float:
    """A real number (Python, NumPy or a one-element tensor; bools refused) as a float, finite
    unless ``finite=False``."""
    if type(value) is float or type(value) is int:  # the common case, without the ABC check below
        if finite and not math.isfinite(value):
            raise ValueError(f"{name} must be finite; got {value!r}")
        return float(value)
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number; got {value!r} of type {type(value).__name__}")
    if finite and not math.isfinite(value):
        raise ValueError(f"{name} must be finite; got {value!r}")
    return float(value)


def check_positive_int(name: str, value: object) -> int:
    """An integer >= 1 (Python or NumPy; bools and floats refused) as an int."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer >= 1; got {value!r} of type {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} must be an integer >= 1; got {value!r}")
    return int(value)


def check_seed(name: str, value: object) -> int:
    """A seed: an integer 0 <= seed < 2**63 (Python or NumPy integer; bools and floats refused).

    The one seed rule of the project: the API (ResNet, datasets, train, train_ensemble), the
    command line (``--seed``) and sweep files all call this check."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be a non-negative integer below 2**63; got {value!r} of type "
                        f"{type(value).__name__}")
    if not 0 <= int(value) < SEED_LIMIT:
        raise ValueError(f"{name} must be a non-negative integer below 2**63; got {value!r}")
    return int(value)


def check_nonnegative(name: str, value: object) -> float:
    """A finite real number >= 0 as a float (:func:`check_real`)."""
    value = check_real(name, value)
    if value < 0:
        raise ValueError(f"{name} must be >= 0; got {value!r}")
    return value


def check_positive(name: str, value: object) -> float:
    """A finite real number > 0 as a float (:func:`check_real`)."""
    value = check_real(name, value)
    if not value > 0:
        raise ValueError(f"{name} must be > 0; got {value!r}")
    return value


def check_state(name: str, x: object, *, ndim: int = 2) -> torch.Tensor:
    """A finite floating tensor of shape (batch, d)."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of shape (batch, d); got {type(x).__name__}")
    check_float_dtype(name, x.dtype)
    if x.ndim != ndim:
        raise ValueError(f"{name} must have shape (batch, d) with {ndim} dimensions; got shape {tuple(x.shape)}")
    if x.numel() == 0:
        raise ValueError(f"{name} must not be empty; got shape {tuple(x.shape)}")
    check_finite(name, x)
    return x


def check_float_dtype(name: str, dtype: torch.dtype) -> torch.dtype:
    """float32 or float64 (:data:`FLOAT_DTYPES`)."""
    if dtype not in FLOAT_DTYPES:
        raise ValueError(f"{name} must have dtype float32 or float64; got dtype {dtype}")
    return dtype


def all_finite(x: torch.Tensor) -> bool:
    """Whether every entry of ``x`` is finite, by one sum when they are: a sum is finite only if
    every term is (inf and NaN propagate), so a finite sum settles it; a non-finite one (which a
    sum of large finite entries may also give) is settled by ``torch.isfinite``, entry by entry.
    (``torch.isfinite(x).all()`` is several kernels and cost 3x the sum at 256 x 2 here.)"""
    if x.is_complex():
        return bool(torch.isfinite(x).all())
    return math.isfinite(x.sum().item()) or bool(torch.isfinite(x).all())


def check_finite(name: str, x: torch.Tensor) -> torch.Tensor:
    """Every entry of ``x`` finite; else a ValueError with the number of NaN/inf entries and the
    index of the first (one reduction when all is well: :func:`all_finite`)."""
    if not all_finite(x):
        bad = ~torch.isfinite(x)
        first = tuple(bad.nonzero()[0].tolist())
        raise ValueError(f"{name} must be finite; got {int(bad.sum())} non-finite (NaN or inf) of {x.numel()} "
                         f"entries, the first at index {first}")
    return x


def check_choice(name: str, value: object, allowed: Collection[str]) -> str:
    """One of the names in ``allowed`` (the message lists them sorted)."""
    if value not in allowed:
        raise ValueError(f"{name} must be one of {sorted(allowed)}; got {value!r}")
    return cast(str, value)  # equal to one of the allowed names


def check_compile_mode(compile: object) -> bool | str:
    """A ``compile=`` argument of the generalised-Euler loop: False, True (the loop in TorchScript)
    or ``"native"`` (the loop in C++); TypeError for another type, ValueError for another string.
    Whether the chosen loop runs a given field, activation or dtype is the caller's check."""
    if isinstance(compile, str):
        if compile != "native":
            raise ValueError(f"compile must be False, True or 'native'; got {compile!r}")
        return compile
    if not isinstance(compile, bool):
        raise TypeError(f"compile must be False, True (the loop in TorchScript) or 'native' (the loop in C++); "
                        f"got {compile!r} of type {type(compile).__name__}")
    return compile


# --- size limits ---------------------------------------------------------------------------------
def available_memory(device: torch.device | str | None = None) -> int:
    """Bytes that can be allocated now: free memory of a CUDA device, else the host's MemAvailable
    (/proc/meminfo; fallback: free physical pages x page size)."""
    device = torch.device("cpu") if device is None else torch.device(device)
    if device.type == "cuda" and torch.cuda.is_available():
        return int(torch.cuda.mem_get_info(device)[0])
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def format_bytes(n: float) -> str:
    """1536 -> '1.5 KiB'."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} PiB"


def check_memory(nbytes: float, what: str, device: torch.device | str | None = None) -> int:
    """Refuse work whose estimated memory ``nbytes`` exceeds :func:`available_memory`, before any
    allocation; the message gives ``what`` and both sizes.  Returns the estimate."""
    available = available_memory(device)
    if nbytes > available:
        raise ValueError(f"{what} needs about {format_bytes(nbytes)} of memory, more than the "
                         f"{format_bytes(available)} available; make it smaller")
    return int(nbytes)


def check_output_path(name: str, path: str | os.PathLike, *, overwrite: bool = False) -> str:
    """An output file that can be written: its folder exists, it is not a folder, and it does not
    exist unless ``overwrite``.  Checked before any computation, so a typo costs nothing."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise ValueError(f"{name} {path!r}: the folder {folder!r} does not exist; create it first")
    if os.path.isdir(path):
        raise ValueError(f"{name} {path!r} is a folder; give a file name")
    if os.path.lexists(path) and not overwrite:
        raise ValueError(f"{name} {path!r} exists; pass --overwrite (overwrite=True) to replace it")
    return path
