"""compile=True: the kernel's loop in TorchScript gives the eager path's bits, on every entry point
that offers it, and refuses what it cannot run."""
import dataclasses

import pytest
import torch

import solvers
from odenet import ResNet
from odenet.activations import get_activation
from odenet.kernel import generalised_euler
from tests.odenet.test_kernel import _member_axis_case, _naive, _weights


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("activation", ["tanh", "relu", "softplus", "identity"])
@pytest.mark.parametrize("record", ["end", "all"])
@pytest.mark.parametrize("eps", [1.0, 0.6])
def test_compiled_loop_gives_the_eager_bits(dtype, activation, record, eps):
    W, b = _weights(None, 5, 3, seed=7, dtype=dtype)
    act = get_activation(activation)
    x = torch.randn(9, 3, dtype=dtype, generator=torch.Generator().manual_seed(8))
    eager = generalised_euler(W, b, act, x, eps, 0.3, refine=2, record=record).states
    # several calls: TorchScript's profiling executor re-optimises the graph after the first runs
    for _ in range(4):
        compiled = generalised_euler(W, b, act, x, eps, 0.3, refine=2, record=record, compile=True).states
        assert compiled.shape == eager.shape and compiled.dtype == dtype
        assert torch.equal(compiled, eager)
    ref = _naive(W, b, act.fn, x, eps, 0.3, refine=2)  # independent of both paths
    tol = 1e-5 if dtype == torch.float32 else 1e-13
    torch.testing.assert_close(compiled if record == "all" else compiled[None], ref if record == "all" else ref[-1:],
                               rtol=tol, atol=tol)


@pytest.mark.parametrize("record", ["end", "all"])
def test_compiled_loop_with_member_axis_and_a_step_range(record):
    W, b, act, x, kw = _member_axis_case(record)
    eager = generalised_euler(W, b, act, x, 0.8, 0.4, **kw).states
    for _ in range(3):
        assert torch.equal(generalised_euler(W, b, act, x, 0.8, 0.4, compile=True, **kw).states, eager)
    if record == "all":
        assert eager.shape == (8, 3, 5, 2)


def test_entry_points_forward_states_and_solve_give_the_same_bits():
    net = ResNet(2, 4, 1, depth=7, eps=0.9, delta=0.3, input_map="affine", seed=3).eval()
    x = torch.randn(33, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        h0 = net.embed(x)
        for _ in range(3):
            assert torch.equal(net(x, compile=True), net(x))
            assert torch.equal(net.states(x, refine=2, compile=True), net.states(x, refine=2))
            assert torch.equal(net.blocks(h0, compile=True), net.blocks(h0))
        for record in ("all", "end"):
            eager = solvers.solve(net.field, h0, method="euler", record=record)
            compiled = solvers.solve(net.field, h0, method="euler", record=record, compile=True)
            assert torch.equal(compiled.y, eager.y) and torch.equal(compiled.t, eager.t)
            assert (compiled.status, compiled.nfev) == (eager.status, eager.nfev)
        # the associated ODE runs the same kernel (its ε, δ folded in), compiled as well
        ode = net.ode()
        eager = solvers.solve(ode, h0, method="euler", steps=14, record="all")
        assert torch.equal(solvers.solve(ode, h0, method="euler", steps=14, record="all", compile=True).y, eager.y)
        assert torch.equal(net.solve(x, refine=2, compile=True).y, net.solve(x, refine=2).y)


def test_non_finite_states_are_reported_as_by_the_eager_path():
    net = ResNet(2, 2, 1, depth=6, eps=1.0, delta=1.0, activation="identity", seed=0)
    with torch.no_grad():
        net.field.weight.fill_(1e100)  # x -> x + W x overflows at the fourth step
    x = torch.ones(4, 2, dtype=torch.float64)
    with torch.no_grad():
        eager = solvers.solve(net.field, x, method="euler", record="end")
        compiled = solvers.solve(net.field, x, method="euler", record="end", compile=True)
    assert eager.status == compiled.status == -1
    assert compiled.message == eager.message and torch.equal(compiled.y, eager.y)


def test_where_gradients_are_recorded_or_a_transform_wraps_compile_runs_the_eager_path():
    net = ResNet(3, 3, 1, depth=4, eps=0.7, delta=0.5, seed=2)
    x = torch.randn(6, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(3), requires_grad=True)
    out = net(x, compile=True)
    ref = net(x)
    assert out.requires_grad and torch.equal(out, ref)
    g, = torch.autograd.grad(out.sum(), x)
    g_ref, = torch.autograd.grad(ref.sum(), x)
    assert torch.equal(g, g_ref)
    # inside a torch.func transform (no storage: no out=, no script) as well
    with torch.no_grad():
        per_point = torch.func.vmap(lambda v: net(v[None], compile=True)[0])(x.detach())
        torch.testing.assert_close(per_point, net(x.detach(), compile=True), rtol=1e-14, atol=1e-14)


def test_bad_compile_arguments_are_refused_before_any_work():
    net = ResNet(2, 2, 1, depth=3, seed=0)
    x = torch.randn(4, 2, dtype=torch.float64)
    W, b = net.field.weight.detach(), net.field.bias.detach()
    for bad in (1, None, 1.0):  # "native" and other strings: tests/odenet/test_native.py
        with pytest.raises(TypeError, match="compile must be False, True"):
            net(x, compile=bad)
        with pytest.raises(TypeError, match="compile must be False, True"):
            generalised_euler(W, b, net.activation, x, 1.0, 0.1, compile=bad)
        with pytest.raises(TypeError, match="compile must be False, True"):
            solvers.solve(net.field, x, method="euler", compile=bad)
    with pytest.raises(ValueError, match="method='euler'.*got method='rk4'"):
        solvers.solve(net.field, x, method="rk4", compile=True)
    explicit_euler = solvers.ExplicitRK("euler", 1, a=((),), b=(1,), c=(0,))  # Euler's tableau, not the kernel
    with pytest.raises(ValueError, match="method='euler'"):
        solvers.solve(net.field, x, method=explicit_euler, compile=True)
    with pytest.raises(ValueError, match="own generalised-Euler kernel"):
        solvers.solve(lambda t, v: -v, x, (0.0, 1.0), method="euler", steps=4, compile=True)
    # a user-defined activation cannot be scripted: named in the error, eager still runs it
    mine = dataclasses.replace(get_activation("tanh"), name="my_tanh")
    with pytest.raises(ValueError, match="'my_tanh'.*compile=False"):
        generalised_euler(W, b, mine, x, 1.0, 0.1, compile=True)
    with pytest.raises(ValueError, match="compile=False"):  # the same name, another object
        generalised_euler(W, b, dataclasses.replace(get_activation("tanh")), x, 1.0, 0.1, compile=True)
    assert torch.equal(generalised_euler(W, b, mine, x, 1.0, 0.1).states,
                       generalised_euler(W, b, get_activation("tanh"), x, 1.0, 0.1).states)
