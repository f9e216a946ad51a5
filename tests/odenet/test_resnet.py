import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import solvers
from odenet import ResNet
from tests.helpers import with_random_batchnorm


def naive_forward(net: ResNet, x: torch.Tensor) -> torch.Tensor:
    """An independent re-implementation of docs/theory.md §1 (eval mode, BN folded by hand)."""
    h = net.embed(x)
    W, b = net.field.effective_weights()
    sigma = net.activation.fn
    for l in range(net.depth):
        h = net.eps * h + net.delta * sigma(h @ W[l].T + b[l])
    return net.readout(h)


CASES = [
    dict(n_in=2, width=2, input_map="identity"),
    dict(n_in=3, width=2, input_map="affine"),
    dict(n_in=1, width=3, input_map="activated", output="sigmoid"),
    dict(n_in=2, width=2, input_map="identity", batchnorm=True),
    dict(n_in=2, width=4, input_map="activated", batchnorm=True, activation="softplus"),
]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("case", CASES)
def test_forward_is_the_euler_solve_bit_for_bit(case, dtype):
    net = ResNet(depth=7, eps=0.8, delta=0.6, seed=1, dtype=dtype, **case)
    if net.batchnorm:
        net = with_random_batchnorm(net)
    x = torch.randn(33, net.n_in, dtype=dtype, generator=torch.Generator().manual_seed(2))
    sol = solvers.solve(net.field, net.embed(x), method="euler", eps=0.8, delta=0.6)
    assert sol.nfev == 7 and sol.success
    with torch.no_grad():
        assert torch.equal(net(x), net.readout(sol.y[-1]))
        assert torch.equal(net.states(x), sol.y)
    # and with autograd recording (a different branch of the step: no out= buffers)
    assert torch.equal(net(x).detach(), net.readout(sol.y[-1]).detach())
    tol = 1e-5 if dtype == torch.float32 else 1e-13
    torch.testing.assert_close(net(x), naive_forward(net, x), rtol=tol, atol=tol)


def test_forward_under_torch_func_matches():
    net = ResNet(2, 2, 1, depth=5, eps=1.0, delta=0.5, seed=3)
    x = torch.randn(10, 2, dtype=torch.float64)
    out = torch.func.vmap(lambda v: net(v[None])[0])(x)
    torch.testing.assert_close(out, net(x), rtol=0, atol=1e-15)


def test_folded_batchnorm_gives_the_same_outputs():
    net = with_random_batchnorm(ResNet(2, 3, 1, depth=4, input_map="affine", batchnorm=True, seed=5))
    folded = net.fold_batchnorm()
    assert not folded.batchnorm
    x = torch.randn(50, 2, dtype=torch.float64)
    torch.testing.assert_close(folded(x), net(x), rtol=1e-12, atol=1e-12)


def test_batchnorm_in_training_mode_uses_batch_statistics():
    net = ResNet(2, 2, 1, depth=3, batchnorm=True, seed=0).train()
    x = torch.randn(64, 2, dtype=torch.float64)
    h = net.states(x)[1]
    z = x @ net.field.weight[0].T + net.field.bias[0]
    bn = (z - z.mean(0)) / torch.sqrt(z.var(0, unbiased=False) + 1e-5)
    torch.testing.assert_close(h, x + net.delta * torch.tanh(bn), rtol=1e-12, atol=1e-12)


def test_refinement_converges_at_order_one_to_the_adaptive_flow():
    net = ResNet.neural_ode(2, 2, 1, depth=10, T=2.0, seed=0)
    x = torch.randn(64, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        flow = solvers.solve(net.ode(), x, method="dopri5", rtol=1e-11, atol=1e-12, record="end").y[-1]
        ms = [1, 2, 4, 8, 16]
        errors = [(net.blocks(x, refine=m) - flow).abs().max().item() for m in ms]
        assert torch.equal(net.blocks(x, refine=1), net.states(x)[-1])
    slope = np.polyfit(np.log(ms), np.log(errors), 1)[0]
    assert abs(slope + 1) <= 0.1, errors


def test_adaptive_flow_agrees_with_the_scipy_reference():
    net = ResNet(2, 2, 1, depth=6, eps=0.9, delta=0.4, seed=4)
    x = torch.randn(16, 2, dtype=torch.float64)
    with torch.no_grad():
        ode = net.ode()
        adaptive = solvers.solve(ode, x, method="dopri5", rtol=1e-10, atol=1e-10)
        reference = solvers.solve(ode, x, method="DOP853")
    assert (adaptive.y[-1] - reference.y[-1]).abs().max() < 1e-8
    # restarts at every layer boundary
    assert all(b in adaptive.t.tolist() for b in net.field.pieces.nodes().tolist())


@pytest.mark.parametrize("eps, delta", [(1.0, 0.1), (0.3, 0.7), (0.0, 1.0), (2.0, 1.0)])
def test_associated_ode_euler_step_is_the_block(eps, delta):
    """x + h(-γ x + a f) = ε x + δ f with γ = (1-ε)/h, a = δ/h (docs/theory.md §2)."""
    net = ResNet(2, 2, 1, depth=5, eps=eps, delta=delta, T=1.3, seed=7)
    assert math.isclose(net.gamma, (1 - eps) / (1.3 / 5)) and math.isclose(net.gain, delta / (1.3 / 5))
    x = torch.randn(20, 2, dtype=torch.float64)
    with torch.no_grad():
        euler_on_ode = solvers.solve(net.ode(), x, method="euler").y
        torch.testing.assert_close(euler_on_ode, net.states(x), rtol=1e-13, atol=1e-13)


def test_regime_constructors():
    assert (ResNet.neural_ode(2, 2, depth=20, T=2.0).eps, ResNet.neural_ode(2, 2, depth=20, T=2.0).delta) == (1.0, 0.1)
    assert ResNet.mlp(2, 2, depth=6).eps == 0.0 and ResNet.mlp(2, 2, depth=6).ratio == math.inf
    std = ResNet.standard(2, 2, depth=10)
    assert (std.eps, std.delta, std.ratio) == (1.0, 1.0, 1.0)
    r = ResNet.with_ratio(2, 2, depth=3, ratio=0.25, eps=2.0)
    assert (r.eps, r.delta) == (2.0, 0.5)
    assert ResNet(2, 2, depth=4, delta=0.5).T == 2.0  # default T = L δ


def test_seed_fixes_the_weights():
    a, b, c = (ResNet(3, 2, 1, depth=4, input_map="affine", seed=s) for s in (11, 11, 12))
    for pa, pb, pc in zip(a.parameters(), b.parameters(), c.parameters()):
        assert torch.equal(pa, pb)
    assert not all(torch.equal(pa, pc) for pa, pc in zip(a.parameters(), c.parameters()))
    bound = 1 / math.sqrt(2)
    assert a.field.weight.abs().max() <= bound


def test_from_config_rebuilds_the_architecture():
    net = ResNet(3, 2, 2, depth=4, eps=0.5, delta=0.25, input_map="activated", output="sigmoid", seed=9,
                 dtype=torch.float32)
    twin = ResNet.from_config(net.config)
    assert twin.config == net.config
    x = torch.randn(5, 3)
    assert torch.equal(twin(x), net(x))


@given(width=st.integers(1, 5), depth=st.integers(1, 12), batch=st.integers(1, 40),
       eps=st.floats(0.0, 2.0), delta=st.floats(1e-3, 3.0), seed=st.integers(0, 2**31 - 1),
       activation=st.sampled_from(["tanh", "relu", "softplus", "identity"]))
def test_property_forward_equals_solve_and_the_recursion(width, depth, batch, eps, delta, seed, activation):
    net = ResNet(width, width, 1, depth, eps=eps, delta=delta, activation=activation, seed=seed)
    x = torch.randn(batch, width, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        sol = net.solve(x)
        assert sol.y.shape == (depth + 1, batch, width) and sol.nfev == depth
        assert torch.equal(net(x), net.readout(sol.y[-1]))
        torch.testing.assert_close(net(x), naive_forward(net, x), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kwargs, pattern", [
    (dict(eps=-0.1), "eps must be >= 0"),
    (dict(delta=0.0), "delta must be > 0"),
    (dict(depth=0), "depth must be an integer >= 1"),
    (dict(width=0), "width must be an integer >= 1"),
    (dict(activation="gelu"), "activation must be one of"),
    (dict(input_map="conv"), "input_map must be one of"),
    (dict(output="softmax"), "output must be one of"),
    (dict(n_in=3), "input_map='identity' needs n_in == width"),
    (dict(T=0.0), "T must be > 0"),
    (dict(T=-1.0), "T must be > 0"),
    (dict(dtype=torch.float16), "dtype must be torch.float32 or torch.float64"),
])
def test_bad_input(kwargs, pattern):
    args = dict(n_in=2, width=2, n_out=1, depth=3)
    args.update(kwargs)
    with pytest.raises(ValueError, match=pattern):
        ResNet(**args)


def test_non_finite_states_are_reported_by_solve():
    net = ResNet(1, 1, 1, depth=40, eps=1e30, delta=1.0, seed=0)
    sol = net.solve(torch.ones(3, 1, dtype=torch.float64))
    assert sol.status == -1 and "non-finite state at step" in sol.message
    # 1e30^k overflows float64 (max ~1.8e308) at k = 11
    assert "step 11 " in sol.message and sol.y.shape[0] == 11


def test_solve_refines_with_the_refined_weights_and_refuses_a_bare_step_count():
    net = ResNet(2, 2, 1, 3, eps=0.6, delta=0.4, seed=1)
    x = torch.randn(5, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        sol = net.solve(x, refine=4)
        assert sol.y.shape == (13, 5, 2)
        assert torch.equal(sol.y, net.states(x, refine=4))
        # the refined weights by hand: ε_4 = 1 - (1 - ε)/4 = 0.9, δ_4 = δ/4 = 0.1, layer k // 4
        h = x
        for k in range(12):
            W, b = net.field.weight[k // 4], net.field.bias[k // 4]
            h = 0.9 * h + 0.1 * torch.tanh(h @ W.T + b)
        torch.testing.assert_close(sol.y[-1], h, rtol=1e-14, atol=1e-14)
    for kw in (dict(steps=6), dict(delta=0.2), dict(eps=1.0), dict(method="rk4")):
        with pytest.raises(ValueError, match="refine"):
            net.solve(x, **kw)


def test_set_block_checks_index_and_shapes_before_writing():
    net = ResNet(2, 2, 1, 3, seed=0)
    before = net.field.weight.detach().clone()
    with pytest.raises(ValueError, match="block index"):
        net.set_block(1.5, torch.eye(2, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"bias must have shape \(2,\)"):
        net.set_block(0, torch.eye(2, dtype=torch.float64), torch.zeros(3))
    with pytest.raises(ValueError, match=r"weight must have shape \(2, 2\)"):
        net.set_block(0, torch.eye(3))
    assert torch.equal(net.field.weight, before)  # nothing written by the refused calls
    net.set_block(2, -5.0, [0.5, -0.5])  # a scalar fills the block
    assert torch.equal(net.field.weight[2], torch.full((2, 2), -5.0, dtype=torch.float64))
    assert net.field.bias[2].tolist() == [0.5, -0.5]
