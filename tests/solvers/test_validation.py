import pytest
import torch

from solvers import solve
from tests.solvers.fields import PiecewiseLinear, oscillating_linear

X0 = torch.zeros(4, 2, dtype=torch.float64)
FIELD = PiecewiseLinear([[[0.0, 1.0], [-1.0, 0.0]]] * 3, T=1.0)


@pytest.mark.parametrize("kwargs, pattern", [
    (dict(x0=torch.tensor([[0.0, float("nan")]], dtype=torch.float64)), "x0 must be finite"),
    (dict(x0=torch.tensor([[0.0, float("inf")]], dtype=torch.float64)), "x0 must be finite"),
    (dict(x0=torch.zeros(2, dtype=torch.float64)), r"x0 must have shape \(batch, d\)"),
    (dict(x0=torch.zeros(2, 2, 2, dtype=torch.float64)), r"x0 must have shape \(batch, d\)"),
    (dict(x0=torch.zeros(0, 2, dtype=torch.float64)), "x0 must not be empty"),
    (dict(x0=torch.zeros(4, 2, dtype=torch.int64)), "x0 must have dtype float32 or float64; got dtype torch.int64"),
    (dict(x0=torch.zeros(4, 2, dtype=torch.float16)), "x0 must have dtype float32 or float64; got dtype torch.float16"),
    (dict(x0=torch.zeros(4, 2, dtype=torch.bfloat16)), "x0 must have dtype float32 or float64; got dtype torch.bfloat16"),
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
