import os
import re

import numpy as np
import pytest
import torch

from solvers import solve
from solvers.validation import (SEED_LIMIT, all_finite, available_memory, check_memory, check_output_path, check_real,
                                check_seed)
from tests.solvers.fields import PiecewiseLinear, oscillating_linear

X0 = torch.zeros(4, 2, dtype=torch.float64)
FIELD = PiecewiseLinear([[[0.0, 1.0], [-1.0, 0.0]]] * 3, T=1.0)


@pytest.mark.parametrize("kwargs, pattern", [
    (dict(x0=torch.tensor([[0.0, float("nan")]], dtype=torch.float64)), "x0 must be finite"),
    (dict(x0=torch.tensor([[0.0, float("inf")]], dtype=torch.float64)), "x0 must be finite"),
    (dict(x0=torch.tensor(0.0, dtype=torch.float64)), r"x0 must have shape \(batch, d\)"),  # 1-D is (d,), accepted
    (dict(x0=torch.zeros(2, 2, 2, dtype=torch.float64)), r"x0 must have shape \(batch, d\)"),
    (dict(x0=torch.zeros(0, 2, dtype=torch.float64)), "x0 must not be empty"),
    (dict(x0=torch.zeros(4, 2, dtype=torch.int64)), "x0 must have dtype float32 or float64; got dtype torch.int64"),
    (dict(x0=torch.zeros(4, 2, dtype=torch.float16)), "x0 must have dtype float32 or float64; got dtype torch.float16"),
    (dict(x0=torch.zeros(4, 2, dtype=torch.bfloat16)),
     "x0 must have dtype float32 or float64; got dtype torch.bfloat16"),
    (dict(method="leapfrog"), "method must be one of"),
    (dict(record="some"), "record must be one of"),
    (dict(steps=0), "steps must be an integer >= 1"),
    (dict(steps=4), "steps must be a multiple of the field's 3 pieces"),
    (dict(eps=-0.5), "eps must be >= 0"),
    (dict(delta=0.0), "delta must be > 0"),
    (dict(delta=-1.0), "delta must be > 0"),
    (dict(t_span=(0.0, 2.0)), r"t_span must equal the piecewise field's span"),
    (dict(method="rk4", eps=0.5), "eps and delta apply to method='euler' only"),
    (dict(method="dopri5", steps=10), "steps applies to fixed-step methods only"),
    (dict(method="dopri5", rtol=0.0), "rtol must be > 0"),
])
def test_bad_input_is_refused_before_any_work(kwargs, pattern):
    calls = []

    class Spy(PiecewiseLinear):
        def piece(self, l):
            calls.append(l)
            return super().piece(l)

    field = Spy(FIELD.mats, T=1.0)
    args = dict(x0=X0)
    args.update(kwargs)
    with pytest.raises(ValueError, match=pattern):
        solve(field, args.pop("x0"), **args)
    assert calls == []


@pytest.mark.parametrize("t_span, pattern", [
    ((1.0, 1.0), "t1 > t0"),
    ((1.0, 0.0), "t1 > t0"),
    ((0.0,), r"t_span must be a pair"),
    ((0.0, float("nan")), "t_span\\[1\\] must be finite"),
    (None, "t_span is required"),
])
def test_bad_time_spans(t_span, pattern):
    with pytest.raises(ValueError, match=pattern):
        solve(oscillating_linear, X0, t_span, method="rk4", steps=4)


def test_plain_fields_need_steps():
    with pytest.raises(ValueError, match="steps is required"):
        solve(oscillating_linear, X0, (0.0, 1.0), method="rk4")


def test_non_callable_field():
    with pytest.raises(TypeError, match="field must be callable"):
        solve(3.0, X0, (0.0, 1.0), method="rk4", steps=4)


# --- the shared checks (solvers.validation): seeds, memory, output paths ---------------------------
@pytest.mark.parametrize("value, error", [
    (-1, ValueError), (2 ** 63, ValueError), (np.uint64(2 ** 63), ValueError), (-np.int64(2), ValueError),
    (True, TypeError), (np.bool_(True), TypeError), (3.0, TypeError), ("3", TypeError),
])
def test_check_seed_refuses(value, error):
    pattern = r"seed must be a non-negative integer below 2\*\*63; got " + re.escape(repr(value))
    with pytest.raises(error, match=pattern):
        check_seed("seed", value)


def test_check_seed_accepts_python_and_numpy_integers_up_to_the_limit():
    assert SEED_LIMIT == 2 ** 63
    for v in (0, 2 ** 63 - 1, np.int64(5), np.uint32(7), np.int8(0)):
        out = check_seed("seed", v)
        assert out == int(v) and type(out) is int


def test_available_memory_is_between_zero_and_physical_memory():
    total = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    assert 0 < available_memory() <= total


def test_check_memory_refuses_more_than_available_with_the_estimate():
    total = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    assert check_memory(1024, "a small thing") == 1024
    with pytest.raises(ValueError, match=r"a big thing needs about [0-9.]+ [GTP]iB of memory, more than the "
                                         r"[0-9.]+ [KMGT]iB available"):
        check_memory(2 * total, "a big thing")


def test_solve_estimates_the_record_before_allocating():
    calls = []

    class Spy(PiecewiseLinear):
        def piece(self, l):
            calls.append(l)
            return super().piece(l)

    steps = 3 * 10 ** 14  # (steps + 1) x 4 x 2 float64 values: 1.92e16 B = 17.05 PiB
    with pytest.raises(ValueError, match=rf"solve with record='all' over steps={steps} for x0 of shape \(4, 2\) "
                                         r"needs about 17.1 PiB"):
        solve(Spy(FIELD.mats, T=1.0), X0, steps=steps)
    assert calls == []


def test_check_output_path(tmp_path):
    missing = tmp_path / "nodir"
    with pytest.raises(ValueError, match=rf"--out '{missing}/x.h5': the folder '{missing}' does not exist"):
        check_output_path("--out", tmp_path / "nodir" / "x.h5")
    with pytest.raises(ValueError, match=rf"--out '{tmp_path}' is a folder"):
        check_output_path("--out", tmp_path, overwrite=True)
    f = tmp_path / "x.h5"
    assert check_output_path("--out", f) == str(f)
    f.write_bytes(b"")
    with pytest.raises(ValueError, match=rf"--out '{f}' exists; pass --overwrite"):
        check_output_path("--out", f)
    assert check_output_path("--out", f, overwrite=True) == str(f)
    dangling = tmp_path / "link.h5"
    dangling.symlink_to(tmp_path / "missing")
    with pytest.raises(ValueError, match="exists"):  # a planted link counts as existing
        check_output_path("--out", dangling)


def test_available_memory_of_a_cuda_device_is_its_free_memory(monkeypatch):
    # no GPU here: the branch is checked with torch.cuda's answers replaced
    asked = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda d: (asked.append(d), (3 * 2 ** 30, 80 * 2 ** 30))[1])
    assert available_memory("cuda:1") == 3 * 2 ** 30 and asked == [torch.device("cuda:1")]
    with pytest.raises(ValueError, match=r"x needs about 4.0 GiB of memory, more than the 3.0 GiB available"):
        check_memory(4 * 2 ** 30, "x", "cuda:1")


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_all_finite_agrees_with_isfinite_even_where_the_sum_overflows(dtype):
    """all_finite decides by one sum when it is finite; a sum that overflows (every entry finite)
    and the non-finite entries themselves are settled entry by entry, as torch.isfinite does."""
    big = torch.finfo(dtype).max
    cases = [torch.zeros(0, 2, dtype=dtype), torch.randn(256, 2, dtype=dtype),
             torch.full((4, 2), big, dtype=dtype),                       # sum overflows to inf: all finite
             torch.tensor([[big, -big], [big, big]], dtype=dtype)]
    for value in (float("nan"), float("inf"), -float("inf")):
        x = torch.randn(7, 3, dtype=dtype)
        x[5, 1] = value
        cases.append(x)
    both = torch.randn(3, 2, dtype=dtype)
    both[0, 0], both[2, 1] = float("inf"), -float("inf")  # inf + (-inf): a NaN sum
    cases.append(both)
    for x in cases:
        assert all_finite(x) == bool(torch.isfinite(x).all())
    assert all_finite(cases[2]) and not all_finite(both)
    z = torch.randn(4, dtype=torch.complex128)
    assert all_finite(z)
    z[2] = complex(1.0, float("inf"))
    assert not all_finite(z)  # complex entries by torch.isfinite, not the real sum test


def test_check_real_takes_python_numbers_by_the_fast_path_with_the_same_rules():
    assert check_real("eps", 3) == 3.0 and type(check_real("eps", 3)) is float
    assert check_real("eps", 0.25) == 0.25 and check_real("eps", np.float32(0.5)) == 0.5
    assert check_real("eps", float("inf"), finite=False) == float("inf")
    for bad in (float("nan"), float("inf"), -float("inf")):
        with pytest.raises(ValueError, match="eps must be finite"):
            check_real("eps", bad)
    with pytest.raises(TypeError, match="eps must be a real number; got True"):
        check_real("eps", True)
