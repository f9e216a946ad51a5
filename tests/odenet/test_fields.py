import numpy as np
import pytest
import torch

import solvers
from odenet import LayerField, SmoothField, get_activation


def smooth_field(K=4, m=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    return SmoothField(torch.randn(K + 1, m, m, generator=g, dtype=torch.float64),
                       torch.randn(K + 1, m, generator=g, dtype=torch.float64), T=1.5)


def test_smooth_field_is_continuous_and_linear_between_knots():
    f = smooth_field()
    x = torch.randn(5, 2, dtype=torch.float64)
    for k in range(1, 4):
        s = f.pieces.boundary(k)
        left, right = f.piece(k - 1)(s, x), f.piece(k)(s, x)
        torch.testing.assert_close(left, right, rtol=1e-14, atol=1e-14)
    # midway between knots the weights are the average
    s0, s1 = f.pieces.boundary(1), f.pieces.boundary(2)
    W = 0.5 * (f.knot_weight[1] + f.knot_weight[2])
    b = 0.5 * (f.knot_bias[1] + f.knot_bias[2])
    torch.testing.assert_close(f(0.5 * (s0 + s1), x), torch.tanh(x @ W.T + b), rtol=1e-14, atol=1e-14)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_rk4_keeps_order_four_on_the_smooth_field(seed):
    # steps restart at the knots, so the kinks of W(t) there do not lower the order
    g = torch.Generator().manual_seed(seed)
    f = SmoothField(0.5 * torch.randn(5, 2, 2, generator=g, dtype=torch.float64),
                    0.5 * torch.randn(5, 2, generator=g, dtype=torch.float64), T=1.5)
    x = torch.randn(8, 2, generator=g, dtype=torch.float64)
    with torch.no_grad():
        ref = solvers.solve(f, x, method="DOP853", rtol=1e-13, atol=1e-13).y[-1]
        steps = [64, 128, 256, 512]  # the asymptotic range: errors 1e-7 .. 1e-11
        errs = [(solvers.solve(f, x, method="rk4", steps=n, record="end").y[-1] - ref).abs().max().item() for n in steps]
    slope = np.polyfit(np.log(steps), np.log(errs), 1)[0]
    assert abs(slope + 4) <= 0.1, errs


def test_sample_gives_the_weights_at_layer_times():
    f = smooth_field(K=3)
    W, b = f.sample(6)  # t_l = l * 1.5 / 6: knots at l = 0, 2, 4
    assert W.shape == (6, 2, 2) and b.shape == (6, 2)
    torch.testing.assert_close(W[2], f.knot_weight[1].detach(), rtol=0, atol=0)
    torch.testing.assert_close(W[1], 0.5 * (f.knot_weight[0] + f.knot_weight[1]).detach(), rtol=1e-15, atol=1e-15)


def test_layer_field_evaluates_the_layer_of_t():
    f = LayerField(2, 4, T=1.0)
    with torch.no_grad():
        f.weight.copy_(torch.arange(4, dtype=torch.float64)[:, None, None] * torch.eye(2))
    x = torch.ones(1, 2, dtype=torch.float64)
    for t, l in [(0.0, 0), (0.2499, 0), (0.25, 1), (0.75, 3), (1.0, 3)]:
        torch.testing.assert_close(f(t, x), torch.tanh(torch.full((1, 2), float(l), dtype=torch.float64)))


@pytest.mark.parametrize("name", ["tanh", "relu", "softplus", "identity"])
def test_activation_derivatives_match_autograd(name):
    act = get_activation(name)
    z = torch.linspace(-3, 3, 61, dtype=torch.float64)[1::2].requires_grad_()  # avoids relu's kink at 0
    (grad,) = torch.autograd.grad(act.fn(z).sum(), z)
    torch.testing.assert_close(act.derivative(z.detach()), grad, rtol=1e-14, atol=1e-14)
    assert act.lipschitz >= grad.abs().max().item()
    # the in-place variant computes the same numbers
    torch.testing.assert_close(act.apply_(z.detach().clone()), act.fn(z.detach()))


def test_bad_smooth_field_shapes():
    with pytest.raises(ValueError, match="knot_weight must have shape"):
        SmoothField(torch.zeros(1, 2, 2), torch.zeros(1, 2))
    with pytest.raises(ValueError, match="knot_bias must have shape"):
        SmoothField(torch.zeros(3, 2, 2), torch.zeros(3, 3))
