"""The one generalised-Euler kernel: member axis, tangents, record modes, the tight and the
functional paths, and that every caller goes through it."""
import pytest
import torch
from torch.func import jacrev, vmap

import solvers
from analysis import jacobian_map, trace
from odenet import ResNet
from odenet.activations import get_activation
from odenet.kernel import generalised_euler


def _weights(K, L, m, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    shape = (L, m, m) if K is None else (K, L, m, m)
    return (torch.randn(shape, generator=g, dtype=dtype) * 1.3, torch.randn(shape[:-1], generator=g, dtype=dtype))


def _member_axis_case(record):
    """K = 3 members, L = 6 layers of width 2, steps 3 … 9 of refine 2: (W, b, act, x, kwargs) for
    the compiled loops' tests against the eager kernel."""
    K, L, m = 3, 6, 2
    W, b = _weights(K, L, m, seed=9)
    x = torch.randn(K, 5, m, dtype=torch.float64, generator=torch.Generator().manual_seed(10))
    return W, b, get_activation("tanh"), x, {"refine": 2, "start": 3, "stop": 10, "record": record}


def _naive(W, b, act, x, eps, delta, refine=1):
    """The recursion written out, batch-first, one layer at a time (independent of the kernel)."""
    states = [x]
    for k in range(W.shape[0] * refine):
        l = k // refine
        x = eps * x + delta * act(x @ W[l].T + b[l])
        states.append(x)
    return torch.stack(states)


@pytest.mark.parametrize("eps, delta, refine", [(1.0, 0.3, 1), (0.6, 0.5, 3), (0.0, 1.0, 1)])
@pytest.mark.parametrize("activation", ["tanh", "relu", "softplus"])
def test_states_match_the_written_out_recursion(eps, delta, refine, activation):
    W, b = _weights(None, 4, 3)
    act = get_activation(activation)
    x = torch.randn(17, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    run = generalised_euler(W, b, act, x, eps, delta, refine=refine, record="all")
    ref = _naive(W, b, act.fn, x, eps, delta, refine)
    assert run.states.shape == ref.shape
    torch.testing.assert_close(run.states, ref, rtol=1e-14, atol=1e-14)
    end = generalised_euler(W, b, act, x, eps, delta, refine=refine)
    assert torch.equal(end.states, run.states[-1])  # record="end" runs the same steps


def test_member_axis_equals_each_member_alone():
    K, L, m = 5, 6, 2
    W, b = _weights(K, L, m, seed=3)
    act = get_activation("tanh")
    x = torch.randn(K, 11, m, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    run = generalised_euler(W, b, act, x, 0.8, 0.4, record="all")
    assert run.states.shape == (L + 1, K, 11, m)
    for k in range(K):
        alone = generalised_euler(W[k], b[k], act, x[k], 0.8, 0.4, record="all").states
        # baddbmm against addmm: the same products, summed by different BLAS calls
        torch.testing.assert_close(run.states[:, k], alone, rtol=1e-15, atol=1e-15)


def test_tangents_are_the_jacobian_of_the_states():
    W, b = _weights(None, 5, 3, seed=5)
    act = get_activation("tanh")
    x = torch.randn(8, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(6))
    eye = torch.eye(3, dtype=torch.float64).expand(8, 3, 3)
    run = generalised_euler(W, b, act, x, 0.9, 0.7, refine=2, tangent=eye, record="all", layer_jacobians=True)
    assert run.tangents.shape == (11, 8, 3, 3) and run.layer_jacobians.shape == (10, 8, 3, 3)

    def states(v):  # autograd through the naive recursion, per point
        return _naive(W, b, act.fn, v[None], 0.9, 0.7, 2)[:, 0]

    ref = vmap(jacrev(states))(x).transpose(0, 1)  # (S+1, batch, m, m)
    torch.testing.assert_close(run.tangents, ref, rtol=1e-12, atol=1e-12)
    # the tangent path computes the same states as the plain one, bit for bit
    assert torch.equal(run.states, generalised_euler(W, b, act, x, 0.9, 0.7, refine=2, record="all").states)
    # J_{k+1} = DF_k J_k for the kept layer Jacobians
    torch.testing.assert_close(run.layer_jacobians @ run.tangents[:-1], run.tangents[1:], rtol=1e-13, atol=1e-13)


def test_functional_path_gives_the_tight_paths_bits_and_gradients():
    net = ResNet(3, 3, 1, depth=6, eps=0.7, delta=0.5, activation="softplus", seed=2)
    x = torch.randn(9, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(3), requires_grad=True)
    out = net.blocks(x)  # autograd records: the functional path
    with torch.no_grad():
        tight = net.blocks(x)
    assert out.requires_grad and torch.equal(out.detach(), tight)
    g, = torch.autograd.grad(out.sum(), x)
    with torch.no_grad():
        W, b = net.field.weight, net.field.bias
    ref = jacrev(lambda v: _naive(W, b, net.activation.fn, v, 0.7, 0.5)[-1].sum())(x.detach())
    torch.testing.assert_close(g, ref, rtol=1e-12, atol=1e-12)


def test_cached_layer_views_follow_in_place_writes_and_replacement():
    net = ResNet(2, 2, 1, depth=3, seed=0)
    x = torch.randn(4, 2, dtype=torch.float64)
    with torch.no_grad():
        before = net.blocks(x)
        net.field.weight.data[1] = 0.5  # a write that bumps no version counter
        after = net.blocks(x)
        assert not torch.equal(before, after)
        torch.testing.assert_close(after, _naive(net.field.weight, net.field.bias, torch.tanh, x, 1.0, 1.0)[-1])
        net.field.weight.data = torch.zeros(3, 2, 2, dtype=torch.float64)  # a new storage
        # zero weights: h_L = x + Σ_l tanh(b_l)
        torch.testing.assert_close(net.blocks(x), x + torch.tanh(net.field.bias).sum(0), rtol=1e-15, atol=1e-15)


def test_every_caller_runs_the_kernel(monkeypatch):
    """ResNet.forward, blocks, states, solve(euler) on the layer field, the ensemble's pass, trace,
    jacobian_map and invert all go through odenet.kernel.generalised_euler."""
    import analysis.geometry.inverse
    import analysis.geometry.tracing
    import odenet.ensemble
    import odenet.fields
    from analysis import invert
    from odenet.ensemble import _Batched

    calls = []

    def spy(*args, **kw):
        calls.append(kw.get("tangent") is not None)
        return generalised_euler(*args, **kw)

    for mod in (odenet.fields, odenet.ensemble, analysis.geometry.tracing, analysis.geometry.inverse):
        monkeypatch.setattr(mod, "generalised_euler", spy)
    net = ResNet(2, 2, 1, depth=3, eps=1.0, delta=0.1, seed=0).eval()
    x = torch.randn(5, 2, dtype=torch.float64)
    with torch.no_grad():
        for run in (lambda: net(x), lambda: net.blocks(x), lambda: net.states(x), lambda: net.solve(x),
                    lambda: solvers.solve(net.field, x, method="euler"),
                    lambda: _Batched(net, [net, net]).forward(x.expand(2, 5, 2), False, False),
                    lambda: trace(net, x), lambda: jacobian_map(net, resolution=4),
                    lambda: invert(net, net.blocks(x))):
            calls.clear()
            run()
            assert calls, run
    assert calls[-1] is False  # invert's forward residual: no tangents
