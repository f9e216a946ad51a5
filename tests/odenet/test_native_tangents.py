"""compile="native" with tangents: the fused C++ loop of h_{k+1} = ε h_k + δ σ(W_l h_k + b_l),
J_{k+1} = DF_k J_k (odenet.native.native_tangent_loop) agrees with forward-mode differentiation of
the written-out recursion (torch.func.jacfwd, independent of the kernel) and with the eager
tangent path within a few ulps per step (the per-step Jacobians DF_k too), does not depend on the
number of threads, serves jacobian_map, range_jacobian and trace, and refuses what it cannot run
before any work.

The tests that run the loop need the extension (built once per session, slow); the refusals
need no build.
"""
import numpy as np
import pytest
import torch

from analysis import jacobian_map, trace
from analysis.geometry.maps import range_jacobian
from odenet import ResNet
from odenet import native
from odenet.activations import get_activation
from odenet.kernel import generalised_euler
from tests.odenet.test_native import _field


def _jacfwd_reference(W, b, act, x, J0, eps, delta, refine, start, stop):
    """States and tangents of steps start..stop-1 by jacfwd of the written-out recursion, float64."""
    def block_map(v):
        h = v
        for k in range(start, stop):
            h = eps * h + delta * act(h @ W[k // refine].T + b[k // refine])
        return h
    Dh = torch.func.vmap(torch.func.jacfwd(block_map))(x)  # (B, m, m)
    return block_map(x), Dh @ J0


@pytest.mark.slow
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("activation", ["tanh", "relu", "softplus", "identity"])
@pytest.mark.parametrize("m, n", [(1, 1), (2, 2), (3, 2), (4, 5), (6, 3), (8, 4), (17, 2)])
@pytest.mark.parametrize("eps", [1.0, 0.8])
def test_tangents_match_forward_mode_differentiation_of_the_recursion(built, dtype, activation, m, n, eps):
    """Width 1–4 (the unrolled loop), 6 (the general narrow loop), 8 with 4 tangent columns and 17
    (MKL's GEMM); a batch of 300 crosses the 256-column chunks; ε = 1 (its own code path) and
    ε ≠ 1, two sub-steps per layer and a step range."""
    L, B, refine, start, stop, delta = 6, 300, 2, 3, 11, 0.2
    act = get_activation(activation)
    W, b = _field(L, m, dtype, seed=10 * m + n)
    g = torch.Generator().manual_seed(m)
    x = torch.randn(B, m, dtype=torch.float64, generator=g).to(dtype)
    J0 = torch.randn(B, m, n, dtype=torch.float64, generator=g).to(dtype)
    run = generalised_euler(W, b, act, x, eps, delta, refine=refine, start=start, stop=stop, tangent=J0,
                            compile="native")
    assert run.states.shape == (B, m) and run.tangents.shape == (B, m, n) and run.tangents.dtype == dtype
    h_ref, J_ref = _jacfwd_reference(W.double(), b.double(), act.fn, x.double(), J0.double(), eps, delta, refine,
                                     start, stop)
    tol = 2e-5 if dtype == torch.float32 else 1e-12
    torch.testing.assert_close(run.states.double(), h_ref, rtol=tol, atol=tol)
    torch.testing.assert_close(run.tangents.double(), J_ref, rtol=tol, atol=tol * J_ref.abs().max().item())


@pytest.mark.slow
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("eps", [1.0, 0.6, 0.0])
@pytest.mark.parametrize("activation", ["tanh", "relu", "softplus"])
def test_every_recorded_state_and_tangent_agrees_with_the_eager_path(built, dtype, eps, activation):
    """record="all": each row within the native contract (relative 1e-5 / 1e-12) of the eager tangent
    path, the states of every row also against the written-out recursion."""
    W, b = _field(5, 2, dtype, seed=1)
    act = get_activation(activation)
    x = torch.randn(513, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(2)).to(dtype)
    J0 = torch.eye(2, dtype=dtype).expand(513, 2, 2)
    nat = generalised_euler(W, b, act, x, eps, 0.4, refine=3, start=1, tangent=J0, record="all",
                            layer_jacobians=True, compile="native")
    eager = generalised_euler(W, b, act, x, eps, 0.4, refine=3, start=1, tangent=J0, record="all",
                              layer_jacobians=True)
    assert nat.states.shape == eager.states.shape == (15, 513, 2)
    assert nat.tangents.shape == eager.tangents.shape == (15, 513, 2, 2)
    assert nat.layer_jacobians.shape == eager.layer_jacobians.shape == (14, 513, 2, 2)
    assert torch.equal(nat.tangents[0], J0) and torch.equal(nat.states[0], x)
    rel = 1e-5 if dtype == torch.float32 else 1e-12
    for got, want in ((nat.states, eager.states), (nat.tangents, eager.tangents),
                      (nat.layer_jacobians, eager.layer_jacobians)):
        assert ((got - want).abs().amax() / want.abs().amax()).item() <= rel
    # the recorded DF_k carry one tangent to the next: J_{k+1} = DF_k J_k
    torch.testing.assert_close(nat.layer_jacobians @ nat.tangents[:-1], nat.tangents[1:], rtol=10 * rel, atol=10 * rel)
    h, naive = x.double(), [x.double()]  # the recursion written out from step 1 on
    for k in range(1, 15):
        h = eps * h + 0.4 * act.fn(h @ W[k // 3].double().T + b[k // 3].double())
        naive.append(h)
    torch.testing.assert_close(nat.states.double(), torch.stack(naive), rtol=10 * rel, atol=10 * rel)


@pytest.mark.slow
def test_the_result_does_not_depend_on_the_number_of_threads(built):
    """Chunks of columns run in parallel; each column's arithmetic is the same, so the bits are."""
    W, b = _field(20, 2, torch.float64, seed=3)
    x = torch.randn(5000, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    J0 = torch.eye(2, dtype=torch.float64).expand(5000, 2, 2)
    before = torch.get_num_threads()
    try:
        runs = []
        for threads in (1, 2):
            torch.set_num_threads(threads)
            runs.append(generalised_euler(W, b, get_activation("tanh"), x, 1.0, 0.1, tangent=J0, compile="native"))
    finally:
        torch.set_num_threads(before)
    assert torch.equal(runs[0].states, runs[1].states) and torch.equal(runs[0].tangents, runs[1].tangents)


@pytest.mark.slow
def test_jacobian_map_range_jacobian_and_trace_run_the_native_recursion(built):
    """Against finite differences of the forward pass (independent of the tangent code) and within
    the native contract of the eager results."""
    net = ResNet.neural_ode(2, 2, 1, depth=12, T=2.0, seed=5).eval()
    box = ((-2.0, 2.0), (-1.5, 1.0))
    nat = jacobian_map(net, box, (21, 17), compile="native")
    eager = jacobian_map(net, box, (21, 17))
    for key in ("sigma_min", "sigma_max", "logabsdet"):
        torch.testing.assert_close(getattr(nat, key), getattr(eager, key), rtol=1e-12, atol=1e-12)
    assert torch.equal(nat.sign, eager.sign)
    x = nat.points[::37]
    J = range_jacobian(net, x, compile="native")
    step = 1e-6  # central differences of h_L = blocks(x) (identity input map): error O(step²)
    with torch.no_grad():
        fd = torch.stack([(net.blocks(x + step * e) - net.blocks(x - step * e)) / (2 * step)
                          for e in torch.eye(2, dtype=x.dtype)], -1)
    torch.testing.assert_close(J, fd, rtol=1e-7, atol=1e-7)
    for kwargs in (dict(start=3, stop=9), dict(start=0, stop=5, refine=2), dict(output=True),
                   dict(refine=np.int64(2))):  # a NumPy integer, as the eager path takes it
        torch.testing.assert_close(range_jacobian(net, x, compile="native", **kwargs), range_jacobian(net, x, **kwargs),
                                   rtol=1e-12, atol=1e-12)
    for model in (net, ResNet(2, 3, 1, depth=6, eps=0.8, delta=0.3, input_map="activated", seed=6).eval()):
        for keep in (False, True):  # the wider model's log|det| comes from its layer Jacobians
            tr_nat = trace(model, x, layer_jacobians=keep, compile="native")
            tr = trace(model, x, layer_jacobians=keep)
            assert tr_nat.logdet_of == tr.logdet_of
            for key in ("states", "cumulative", "logabsdet", "jacobian", "singular_values", "layer_jacobians"):
                if getattr(tr, key) is None:
                    assert getattr(tr_nat, key) is None
                else:
                    torch.testing.assert_close(getattr(tr_nat, key), getattr(tr, key), rtol=1e-12, atol=1e-12)


def test_bad_arguments_are_refused_before_any_build(monkeypatch):
    def no_build(*args, **kwargs):
        raise AssertionError("the extension must not be built for a refused call")
    monkeypatch.setattr(native, "native_module", no_build)
    net = ResNet.neural_ode(2, 2, 1, depth=3, seed=0).eval()
    x = torch.randn(4, 2, dtype=torch.float64)
    with pytest.raises(ValueError, match="compile must be False, True or 'native'; got 'fast'"):
        jacobian_map(net, compile="fast")
    with pytest.raises(ValueError, match="compile must be False, True or 'native'; got 'fast'"):
        range_jacobian(net, x, compile="fast")
    with pytest.raises(ValueError, match="compile applies to a ResNet only"):
        trace(lambda t, v: -v, x, compile="native")
    with pytest.raises(ValueError, match="float32 and float64 only; got dtype torch.float16"):
        jacobian_map(net.half(), compile="native")
    W, b = torch.zeros(3, 2, 2), torch.zeros(3, 2)
    h, J = torch.zeros(2, 5), torch.zeros(2, 2, 5)
    with pytest.raises(ValueError, match="activation must be one of .*got 'sigmoid'"):
        native.native_tangent_loop(W, b, h, J, 1.0, 0.1, 1, 0, 3, "sigmoid")
    with pytest.raises(ValueError, match="record must be 'all' or 'end'; got 'last'"):
        native.native_tangent_loop(W, b, h, J, 1.0, 0.1, 1, 0, 3, "tanh", record="last")
    with pytest.raises(ValueError, match=r"J0 \(m, n, B\); got shapes"):
        native.native_tangent_loop(W, b, h, J[0], 1.0, 0.1, 1, 0, 3, "tanh")
    with pytest.raises(ValueError, match="shapes do not fit together"):
        native.native_tangent_loop(W, b, h, J[:, :, :4], 1.0, 0.1, 1, 0, 3, "tanh")
    with pytest.raises(ValueError, match="share a dtype"):
        native.native_tangent_loop(W, b, h, J.double(), 1.0, 0.1, 1, 0, 3, "tanh")
    with pytest.raises(ValueError, match=r"start \+ steps <= L \* refine = 6; got refine=2, start=2, steps=5"):
        native.native_tangent_loop(W, b, h, J, 1.0, 0.1, 2, 2, 5, "tanh")
