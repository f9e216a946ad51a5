"""Batched traces: Jacobians against autograd and finite differences, log|det|, fields, the
variational equation, Liouville's formula and trajectory crossings."""
import math

import numpy as np
import pytest
import torch
from scipy.optimize import brentq

import solvers
from analysis import crossings, liouville, trace
from odenet import ResNet
from tests.helpers import with_random_batchnorm

AJ = torch.autograd.functional.jacobian


CASES = [
    dict(n_in=2, width=2, depth=4, eps=1.0, delta=0.7, input_map="identity", output="linear", activation="tanh"),
    dict(n_in=3, width=2, depth=3, eps=0.5, delta=1.3, input_map="affine", output="sigmoid", activation="tanh"),
    dict(n_in=2, width=3, depth=5, eps=0.0, delta=1.0, input_map="activated", output="linear", activation="softplus"),
    dict(n_in=3, width=3, depth=6, eps=2.0, delta=1.0, input_map="identity", output="sigmoid", activation="tanh",
         batchnorm=True),
]


def _model(case, seed):
    kw = dict(case)
    n_in, width, depth = kw.pop("n_in"), kw.pop("width"), kw.pop("depth")
    m = ResNet(n_in, width, 1, depth, seed=seed, **kw)
    with torch.no_grad():
        m.field.weight.mul_(3.0)  # large weights: folds happen
    return with_random_batchnorm(m, seed) if m.batchnorm else m.eval()


@pytest.mark.parametrize("refine", [1, 3])
@pytest.mark.parametrize("case", range(len(CASES)))
def test_jacobians_match_autograd_and_finite_differences(case, refine):
    m = _model(CASES[case], seed=case)
    x = torch.randn(7, m.n_in, dtype=torch.float64, generator=torch.Generator().manual_seed(10 + case))
    tr = trace(m, x, refine=refine)

    def phi(v):
        return m.readout(m.blocks(m.embed(v[None]), refine=refine))[0]

    def hL(v):
        return m.blocks(m.embed(v[None]), refine=refine)[0]

    ref = torch.stack([AJ(phi, xi) for xi in x])
    assert tr.jacobian.shape == (7, 1, m.n_in)
    assert torch.allclose(tr.jacobian, ref, atol=1e-12, rtol=0)
    assert torch.allclose(tr.cumulative[-1], torch.stack([AJ(hL, xi) for xi in x]), atol=1e-12, rtol=0)
    with torch.no_grad():
        assert torch.allclose(tr.outputs, torch.stack([phi(xi) for xi in x]), atol=1e-14, rtol=0)
    # central differences, float64, h = 1e-5: truncation ~1e-10
    h = 1e-5
    fd = torch.zeros_like(ref)
    with torch.no_grad():
        for j in range(m.n_in):
            e = torch.zeros(m.n_in, dtype=torch.float64)
            e[j] = h
            fd[:, :, j] = torch.stack([(phi(xi + e) - phi(xi - e)) / (2 * h) for xi in x])
    assert torch.allclose(tr.jacobian, fd, atol=1e-6, rtol=0)
    # singular values of the 1 x n Jacobian: |∇Φ|
    assert torch.allclose(tr.singular_values[:, 0], ref[:, 0].norm(dim=1), atol=1e-12)


def test_every_cumulative_and_layer_jacobian():
    m = _model(CASES[0], seed=3)
    x = torch.randn(5, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    tr = trace(m, x, refine=2)
    S = m.depth * 2
    assert tr.states.shape == (S + 1, 5, 2) and tr.layer_jacobians.shape == (S, 5, 2, 2)
    assert tr.cumulative.shape == (S + 1, 5, 2, 2) and tr.logabsdet.shape == (S + 1, 5)
    assert torch.equal(tr.step_layer, torch.arange(S) // 2)
    eps, delta = m.refined_weights(2)
    W, b = m.field.weight.detach(), m.field.bias.detach()
    for k in range(S):
        l = k // 2

        def block(v, l=l):
            return eps * v + delta * torch.tanh(W[l] @ v + b[l])

        DF = torch.stack([AJ(block, hk) for hk in tr.states[k]])
        assert torch.allclose(tr.layer_jacobians[k], DF, atol=1e-13)
        assert torch.allclose(tr.states[k + 1], torch.stack([block(hk) for hk in tr.states[k]]), atol=1e-14)
    for k in range(S + 1):
        def partial(v, k=k):
            return m.states(v[None], refine=2)[k, 0]

        Jk = torch.stack([AJ(partial, xi) for xi in x])
        assert torch.allclose(tr.cumulative[k], Jk, atol=1e-12)
        sign, lad = np.linalg.slogdet(Jk.numpy())
        assert np.allclose(tr.logabsdet[k].numpy(), lad, atol=1e-10)
        assert np.array_equal(tr.sign[k].numpy(), sign)


def test_layer_jacobians_can_be_left_out():
    m = _model(CASES[1], seed=5)
    x = torch.randn(4, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    full, lean = trace(m, x), trace(m, x, layer_jacobians=False)
    assert lean.layer_jacobians is None
    assert torch.equal(full.cumulative, lean.cumulative) and torch.equal(full.logabsdet, lean.logabsdet)


def test_nonsquare_input_logdet_is_the_block_product():
    m = _model(CASES[1], seed=5)
    x = torch.randn(4, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    tr = trace(m, x)
    assert tr.logdet_of == "blocks" and tr.cumulative.shape == (4, 4, 2, 3)
    sign, lad = torch.linalg.slogdet(tr.layer_jacobians)
    assert torch.allclose(tr.logabsdet[1:], torch.cumsum(lad, 0), atol=1e-13)
    assert torch.equal(tr.sign[1:], torch.cumprod(sign, 0))
    assert torch.all(tr.logabsdet[0] == 0)


def test_batchnorm_train_mode_is_refused():
    m = ResNet(2, 2, 1, 2, batchnorm=True, seed=0).train()
    with pytest.raises(ValueError, match="eval"):
        trace(m, torch.zeros(3, 2, dtype=torch.float64))
    with pytest.raises(ValueError, match="eval"):  # its ODE would use (and update) batch statistics
        liouville(m, torch.zeros(3, 2, dtype=torch.float64))


def test_field_fixed_step_traces():
    m = ResNet(2, 2, 1, 4, eps=1.0, delta=0.25, seed=2).eval()
    x = torch.randn(5, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    t_res = trace(m, x)
    t_field = trace(m.ode(), x, method="euler")  # Euler on the associated ODE is the ResNet
    assert torch.allclose(t_field.cumulative, t_res.cumulative, atol=1e-14)
    assert torch.allclose(t_field.states, t_res.states, atol=1e-15)
    # rk4: against central differences of the rk4 map computed by solvers.solve
    t4 = trace(m.ode(), x, method="rk4", steps=8)

    def end(v):
        return solvers.solve(m.ode(), v, method="rk4", steps=8, record="end").y[-1]

    h = 1e-6
    for j in range(2):
        e = torch.zeros(2, dtype=torch.float64)
        e[j] = h
        fd = (end(x + e) - end(x - e)) / (2 * h)
        assert torch.allclose(t4.jacobian[:, :, j], fd, atol=1e-8)


@pytest.mark.parametrize("method", ["dopri5", "DOP853"])
def test_variational_equation_and_liouville(method):
    m = ResNet(2, 2, 1, 3, eps=1.0, delta=0.5, seed=4).eval()
    with torch.no_grad():
        m.field.weight.mul_(2.0)
    x = torch.randn(4, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    tr = trace(m.ode(), x, method=method, rtol=1e-10, atol=1e-12)
    assert tr.layer_jacobians is None and tr.trace_integral.shape == tr.logabsdet.shape

    def end(v):
        return solvers.solve(m.ode(), v, method="DOP853", record="end", rtol=1e-13, atol=1e-13).y[-1]

    h = 1e-5
    for j in range(2):
        e = torch.zeros(2, dtype=torch.float64)
        e[j] = h
        fd = (end(x + e) - end(x - e)) / (2 * h)
        assert torch.allclose(tr.jacobian[:, :, j], fd, atol=1e-7)
    # Liouville: log|det Dφ_t| = ∫ tr D_x f along the whole trajectory, det > 0
    assert torch.all(tr.sign == 1)
    assert torch.allclose(tr.logabsdet, tr.trace_integral, atol=1e-8)
    check = liouville(m, x, method=method, rtol=1e-10, atol=1e-12)
    assert torch.allclose(check.gap, torch.zeros(4, dtype=torch.float64), atol=1e-8)


def test_liouville_first_order_convergence_of_refined_euler():
    m = ResNet(2, 2, 1, 3, eps=0.8, delta=0.6, seed=6).eval()
    x = torch.randn(6, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(7))
    exact = liouville(m, x, method="DOP853").trace_integral
    refs = [4, 8, 16, 32, 64]
    errs = np.array([float((trace(m, x, refine=r).logabsdet[-1] - exact).abs().max()) for r in refs])
    slope = np.polyfit(np.log(refs), np.log(errs), 1)[0]
    assert abs(slope + 1) < 0.1, (errs, slope)
    assert errs[-1] < 0.08 * errs[0]  # refined 16 times: error / 16


def _fold_model():
    """Width one, ε = δ = 1, w = -5, b = 0: F(h) = h + tanh(-5h) folds on |h| < h*."""
    m = ResNet(1, 1, 1, 1, eps=1.0, delta=1.0, seed=0).eval()
    m.set_block(0, [[-5.0]], [0.0])
    return m


def test_crossings_of_a_folding_resnet():
    m = _fold_model()
    x = torch.linspace(-2, 2, 41, dtype=torch.float64)[:, None]
    cr = crossings(trace(m, x))
    assert cr.order_change_step == 1
    assert len(cr.order_change_pairs) > 0
    # det DF = 1 - 5 sech²(5h) < 0 exactly on |h| < acosh(√5)/5
    hstar = math.acosh(math.sqrt(5)) / 5
    expected = torch.where(x[:, 0].abs() < hstar, 1, -1)
    assert torch.equal(cr.det_sign_change, expected)
    # two distinct inputs with the same image: 0 and the positive root of h = tanh(5h)
    r = brentq(lambda h: h - math.tanh(5 * h), 0.5, 2.0, xtol=1e-15)
    pair = torch.tensor([[0.0], [r], [-1.7]], dtype=torch.float64)
    cr2 = crossings(trace(m, pair), tol=1e-9)
    assert cr2.close_step == 1 and cr2.close_pairs.tolist() == [[0, 1]]


def test_a_flow_never_crosses():
    m = _fold_model()
    flow = m.ode()
    x = torch.linspace(-2, 2, 41, dtype=torch.float64)[:, None]
    cr = crossings(trace(flow, x, method="dopri5"), tol=1e-6)
    assert cr.order_change_step == -1 and cr.close_step == -1
    assert torch.all(cr.det_sign_change == -1)


def test_bad_input():
    m = ResNet(2, 2, 1, 2, seed=0)
    with pytest.raises(ValueError, match="shape"):
        trace(m, torch.zeros(3, 3, dtype=torch.float64))
    with pytest.raises(ValueError, match="dtype"):
        trace(m, torch.zeros(3, 2, dtype=torch.float32))
    with pytest.raises(ValueError, match="method"):
        trace(m, torch.zeros(3, 2, dtype=torch.float64), method="rk4")
    with pytest.raises(ValueError, match="refine"):
        trace(m.ode(), torch.zeros(3, 2, dtype=torch.float64), refine=2)
    with pytest.raises(ValueError, match="method"):
        trace(m.ode(), torch.zeros(3, 2, dtype=torch.float64), method="nope")
    with pytest.raises(ValueError, match="t_span"):
        trace(lambda t, v: v, torch.zeros(3, 2, dtype=torch.float64))
    with pytest.raises(TypeError):
        trace(3, torch.zeros(3, 2, dtype=torch.float64))
    with pytest.raises(TypeError):
        crossings("trace")


from hypothesis import given, strategies as st  # noqa: E402


@given(width=st.integers(1, 4), depth=st.integers(1, 5), eps=st.floats(0.0, 2.0), delta=st.floats(0.05, 2.0),
       scale=st.floats(0.1, 5.0), refine=st.integers(1, 3), seed=st.integers(0, 2**16))
def test_random_networks_match_autograd(width, depth, eps, delta, scale, refine, seed):
    m = ResNet(width, width, 1, depth, eps=eps, delta=delta, seed=seed).eval()
    with torch.no_grad():
        m.field.weight.mul_(scale)
    x = torch.randn(3, width, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    tr = trace(m, x, refine=refine)
    ref = torch.stack([AJ(lambda v: m.blocks(v[None], refine=refine)[0], xi) for xi in x])
    assert torch.allclose(tr.cumulative[-1], ref, atol=1e-12 * max(1.0, float(ref.abs().max())), rtol=0)


def test_a_trace_is_a_solution_whose_states_are_the_forward_pass_bit_for_bit():
    m = _model(CASES[2], seed=8)
    x = torch.randn(6, m.n_in, dtype=torch.float64, generator=torch.Generator().manual_seed(9))
    tr = trace(m, x, refine=2)
    assert isinstance(tr, solvers.Solution) and tr.success and tr.status == 0
    assert tr.y is tr.states and tr.step_piece is tr.step_layer
    assert tr.nfev == tr.n_steps == tr.n_accepted == 2 * m.depth and tr.n_rejected == 0
    with torch.no_grad():  # one kernel: the traced states are the forward pass's states
        assert torch.equal(tr.states, m.states(x, refine=2))
        assert torch.equal(tr.outputs, m.readout(m.states(x, refine=2)[-1]))


def test_trace_outputs_are_preallocated_not_stacked():
    """states, cumulative and layer Jacobians are views of one buffer each, written in place:
    their storage holds exactly their elements (a stack of per-step results would be a copy
    beside the per-step tensors)."""
    m = _model(CASES[0], seed=3)
    x = torch.randn(50, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    tr = trace(m, x, refine=3)
    for t in (tr.states, tr.cumulative, tr.layer_jacobians):
        assert t.untyped_storage().nbytes() == t.numel() * t.element_size()


def test_closed_form_singular_values_agree_with_lapack_plain_and_under_every_transform():
    """The 2 × 2 closed form against torch.linalg.svdvals on plain tensors (the in-place path), and
    the same values under torch.func.vmap, through jacfwd/jacrev (compared with svdvals' own
    derivatives) and forward-mode duals, which need the functional path."""
    from analysis.geometry.tracing import singular_values
    J = torch.randn(64, 2, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    J[0] = 0.0  # both singular values 0
    J[1] = torch.tensor([[1.0, 2.0], [2.0, 4.0]])  # singular
    ref = torch.linalg.svdvals(J)
    torch.testing.assert_close(singular_values(J), ref, rtol=1e-13, atol=1e-14)
    torch.testing.assert_close(singular_values(J.permute(1, 2, 0).contiguous().permute(2, 0, 1)), ref,
                               rtol=1e-13, atol=1e-14)  # batch-last storage, as the kernel returns
    torch.testing.assert_close(torch.func.vmap(singular_values)(J[2:].reshape(31, 2, 2, 2)),
                               ref[2:].reshape(31, 2, 2), rtol=1e-13, atol=1e-14)
    A = J[5]
    for jac in (torch.func.jacfwd, torch.func.jacrev):
        torch.testing.assert_close(jac(lambda M: singular_values(M[None])[0])(A), jac(torch.linalg.svdvals)(A),
                                   rtol=1e-10, atol=1e-12)
    import torch.autograd.forward_ad as fwAD
    tangent = torch.randn(2, 2, dtype=torch.float64)
    with fwAD.dual_level():
        out = singular_values(fwAD.make_dual(A, tangent)[None])[0]
        ref_out = torch.linalg.svdvals(fwAD.make_dual(A, tangent))
        torch.testing.assert_close(fwAD.unpack_dual(out).tangent, fwAD.unpack_dual(ref_out).tangent,
                                   rtol=1e-10, atol=1e-12)
