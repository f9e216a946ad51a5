"""compile="native": the kernel's loop in C++ agrees with the eager path within a few ulps per step
(not bitwise: another summation order than BLAS), on every entry point that offers it, and
refuses what it cannot run before any work.

Building the extension takes tens of seconds the first time (then torch's extensions cache
loads it): it is built once per session in a fixture, and the tests that need it are slow;
the validation test needs no build.
"""
import dataclasses

import pytest
import torch

import solvers
from odenet import ResNet
from odenet import native
from odenet.activations import get_activation
from odenet.kernel import generalised_euler
from tests.odenet.test_kernel import _member_axis_case, _naive, _weights


def _field(L, m, dtype, seed):
    g = torch.Generator().manual_seed(seed)
    W = torch.randn(L, m, m, generator=g, dtype=torch.float64) / m ** 0.5
    b = torch.randn(L, m, generator=g, dtype=torch.float64)
    return W.to(dtype), b.to(dtype)


@pytest.mark.slow
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("activation", ["tanh", "relu"])
@pytest.mark.parametrize("m", [1, 2, 3, 8, 32])
@pytest.mark.parametrize("B", [1, 7, 256])
def test_native_loop_agrees_with_eager_within_its_rounding(built, dtype, activation, m, B):
    """L = 100 steps of width m, batch B: against a float64 eager reference the native loop's
    error is at most a small multiple of the eager path's own float32 error; relative to the eager
    result it differs by at most 1e-5 (float32) or 1e-12 (float64)."""
    L, eps, delta = 100, 1.0, 1.0 / 100
    act = get_activation(activation)
    W, b = _field(L, m, dtype, seed=m * 1000 + B)
    x = torch.randn(B, m, dtype=torch.float64, generator=torch.Generator().manual_seed(B)).to(dtype)
    eager = generalised_euler(W, b, act, x, eps, delta).states
    nat = generalised_euler(W, b, act, x, eps, delta, compile="native").states
    assert nat.shape == eager.shape == (B, m) and nat.dtype == dtype
    ref = generalised_euler(W.double(), b.double(), act, x.double(), eps, delta).states
    scale = ref.abs().max().item()
    unit = torch.finfo(dtype).eps
    err_nat = (nat.double() - ref).abs().max().item()
    err_eager = (eager.double() - ref).abs().max().item()
    # a few ulps of the state's size per step, at most, and of the order of eager's own error
    assert err_nat <= 4 * err_eager + 4 * L ** 0.5 * unit * scale
    rel = (nat - eager).abs().max().item() / max(eager.abs().max().item(), 1e-30)
    assert rel <= (1e-5 if dtype == torch.float32 else 1e-12)


@pytest.mark.slow
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("activation", ["tanh", "relu", "softplus", "identity"])
@pytest.mark.parametrize("record", ["end", "all"])
@pytest.mark.parametrize("eps", [1.0, 0.6])
def test_native_loop_follows_the_written_out_recursion(built, dtype, activation, record, eps):
    W, b = _weights(None, 5, 3, seed=7, dtype=dtype)
    act = get_activation(activation)
    x = torch.randn(9, 3, dtype=dtype, generator=torch.Generator().manual_seed(8))
    nat = generalised_euler(W, b, act, x, eps, 0.3, refine=2, record=record, compile="native").states
    ref = _naive(W.double(), b.double(), act.fn, x.double(), eps, 0.3, refine=2)  # independent of the kernel
    ref = ref if record == "all" else ref[-1]
    assert nat.shape == ref.shape and nat.dtype == dtype
    tol = 1e-5 if dtype == torch.float32 else 1e-13
    torch.testing.assert_close(nat.double(), ref, rtol=tol, atol=tol)


@pytest.mark.slow
@pytest.mark.parametrize("record", ["end", "all"])
def test_native_loop_with_member_axis_and_a_step_range(built, record):
    W, b, act, x, kw = _member_axis_case(record)
    eager = generalised_euler(W, b, act, x, 0.8, 0.4, **kw).states
    nat = generalised_euler(W, b, act, x, 0.8, 0.4, compile="native", **kw).states
    assert nat.shape == eager.shape == ((8, 3, 5, 2) if record == "all" else (3, 5, 2))
    torch.testing.assert_close(nat, eager, rtol=1e-13, atol=1e-13)
    if record == "all":  # the first recorded state is x itself, untouched
        assert torch.equal(nat[0], x)


@pytest.mark.slow
def test_entry_points_forward_states_and_solve_run_the_native_loop(built):
    net = ResNet(2, 4, 1, depth=7, eps=0.9, delta=0.3, input_map="affine", seed=3).eval()
    x = torch.randn(33, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    close = dict(rtol=1e-13, atol=1e-13)
    with torch.no_grad():
        h0 = net.embed(x)
        torch.testing.assert_close(net(x, compile="native"), net(x), **close)
        torch.testing.assert_close(net.states(x, refine=2, compile="native"), net.states(x, refine=2), **close)
        torch.testing.assert_close(net.blocks(h0, compile="native"), net.blocks(h0), **close)
        for record in ("all", "end"):
            eager = solvers.solve(net.field, h0, method="euler", record=record)
            nat = solvers.solve(net.field, h0, method="euler", record=record, compile="native")
            torch.testing.assert_close(nat.y, eager.y, **close)
            assert torch.equal(nat.t, eager.t) and (nat.status, nat.nfev) == (eager.status, eager.nfev)
        ode = net.ode()
        eager = solvers.solve(ode, h0, method="euler", steps=14, record="all")
        nat = solvers.solve(ode, h0, method="euler", steps=14, record="all", compile="native")
        torch.testing.assert_close(nat.y, eager.y, **close)
        torch.testing.assert_close(net.solve(x, refine=2, compile="native").y, net.solve(x, refine=2).y, **close)


@pytest.mark.slow
def test_non_finite_states_are_reported_as_by_the_eager_path(built):
    net = ResNet(2, 2, 1, depth=6, eps=1.0, delta=1.0, activation="identity", seed=0)
    with torch.no_grad():
        net.field.weight.fill_(1e100)  # x -> x + W x overflows at the fourth step
    x = torch.ones(4, 2, dtype=torch.float64)
    with torch.no_grad():
        eager = solvers.solve(net.field, x, method="euler", record="end")
        nat = solvers.solve(net.field, x, method="euler", record="end", compile="native")
    assert eager.status == nat.status == -1 and nat.message == eager.message


@pytest.mark.slow
def test_where_gradients_are_recorded_or_a_transform_wraps_native_runs_the_eager_path(built):
    net = ResNet(3, 3, 1, depth=4, eps=0.7, delta=0.5, seed=2)
    x = torch.randn(6, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(3), requires_grad=True)
    out = net(x, compile="native")
    ref = net(x)
    assert out.requires_grad and torch.equal(out, ref)  # the eager path itself: the same bits
    g, = torch.autograd.grad(out.sum(), x)
    g_ref, = torch.autograd.grad(ref.sum(), x)
    assert torch.equal(g, g_ref)
    with torch.no_grad():
        per_point = torch.func.vmap(lambda v: net(v[None], compile="native")[0])(x.detach())
        torch.testing.assert_close(per_point, net(x.detach()), rtol=1e-14, atol=1e-14)


def test_bad_native_arguments_are_refused_before_any_build(monkeypatch):
    """No build needed: every refusal happens before the extension is built or the loop runs."""
    def no_build(*args, **kwargs):
        raise AssertionError("the extension must not be built for a refused call")
    monkeypatch.setattr(native, "native_module", no_build)
    net = ResNet(2, 2, 1, depth=3, seed=0)
    x = torch.randn(4, 2, dtype=torch.float64)
    W, b = net.field.weight.detach(), net.field.bias.detach()
    tanh = get_activation("tanh")
    for bad in ("Native", "jit", ""):
        with pytest.raises(ValueError, match=f"compile must be False, True or 'native'; got '{bad}'"):
            net(x, compile=bad)
        with pytest.raises(ValueError, match="compile must be False, True or 'native'"):
            generalised_euler(W, b, tanh, x, 1.0, 0.1, compile=bad)
        with pytest.raises(ValueError, match="compile must be False, True or 'native'"):
            solvers.solve(net.field, x, method="euler", compile=bad)
    with pytest.raises(ValueError, match="compile='native' needs method='euler'"):
        solvers.solve(net.field, x, method="rk4", compile="native")
    mine = dataclasses.replace(tanh, name="my_tanh")
    with pytest.raises(ValueError, match="'my_tanh'.*compile=False"):
        generalised_euler(W, b, mine, x, 1.0, 0.1, compile="native")
    with pytest.raises(ValueError, match="float32 and float64 only; got dtype torch.float16"):
        generalised_euler(W.half(), b.half(), tanh, x.half(), 1.0, 0.1, compile="native")
    with pytest.raises(ValueError, match="CPU only; got device meta"):
        generalised_euler(W.to("meta"), b.to("meta"), tanh, x.to("meta"), 1.0, 0.1, compile="native")
    with pytest.raises(ValueError, match="one dtype for x0, weight and bias; got torch.float32, torch.float64"):
        generalised_euler(W, b, tanh, x.float(), 1.0, 0.1, compile="native")
    h = x.mT
    with pytest.raises(ValueError, match="activation must be one of .*got 'sigmoid'"):
        native.native_euler_loop(W, b, h, 1.0, 0.1, 1, 0, 3, "sigmoid")
    with pytest.raises(ValueError, match="record must be 'all' or 'end'; got 'last'"):
        native.native_euler_loop(W, b, h, 1.0, 0.1, 1, 0, 3, "tanh", record="last")
    with pytest.raises(ValueError, match="shapes do not fit"):
        native.native_euler_loop(W, b[:, :1], h, 1.0, 0.1, 1, 0, 3, "tanh")
    with pytest.raises(ValueError, match="share a dtype"):
        native.native_euler_loop(W.float(), b, h, 1.0, 0.1, 1, 0, 3, "tanh")
    with pytest.raises(ValueError, match=r"start \+ steps <= L \* refine = 3; got refine=1, start=1, steps=3"):
        native.native_euler_loop(W, b, h, 1.0, 0.1, 1, 1, 3, "tanh")


def test_a_failed_build_is_one_runtime_error_that_says_why(monkeypatch):
    from torch.utils import cpp_extension

    def no_compiler(*args, **kwargs):
        raise OSError("c++: command not found")
    monkeypatch.setattr(cpp_extension, "load_inline", no_compiler)
    with pytest.raises(RuntimeError, match="needs a C\\+\\+ compiler.*OSError: c\\+\\+: command not found"):
        native._build(["-O3"])


@pytest.mark.slow
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_the_build_without_mkl_agrees_as_well(built, dtype):
    """Where torch has no MKL the loop uses ATen's Vectorized tanh (SLEEF) and its own GEMM loops
    at every width: built here without MKL (a second build, cached like the first) and held to
    the same contract against the eager path."""
    flags = [f for f in native._build_flags() if f != "-DODENET_MKL"]
    try:
        module = native._build(flags)
    except RuntimeError as exc:
        pytest.skip(f"the native loop cannot be built here: {exc}")
    act = get_activation("tanh")
    for m, B in ((2, 256), (3, 7), (32, 40)):  # width 32: the GEMM that MKL would run
        W, b = _field(100, m, dtype, seed=m + B)
        x = torch.randn(B, m, dtype=torch.float64, generator=torch.Generator().manual_seed(m)).to(dtype)
        eager = generalised_euler(W, b, act, x, 0.9, 0.02).states
        out = module.euler_loop(W[None], b[None], x.mT.contiguous()[None], 0.9, 0.02, 1, 0, 100,
                                native.NATIVE_ACTIVATIONS["tanh"], False)[0].mT
        rel = (out - eager).abs().max().item() / eager.abs().max().item()
        assert rel <= (1e-5 if dtype == torch.float32 else 1e-12)
