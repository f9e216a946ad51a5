"""NeuralODE: gradients against finite differences of a scipy reference flow, adjoint against
backprop, layer boundaries against a closed form, exact conversions to and from ResNets, training
through odenet.train, the augmented fit that a plain flow cannot make, and bad input."""
import math

import numpy as np
import pytest
import scipy.linalg
import torch
import torchdiffeq

import odenet
import solvers
from odenet import NeuralODE, ResNet


def _reference_output(model, x, tol=1e-13):
    """Φ(x) with the flow solved by scipy's DOP853 (float64, restarted at every piece boundary):
    a computation independent of the model's own solver and gradient code."""
    z = solvers.solve(model.field, model.embed(x), method="DOP853", rtol=tol, atol=tol, record="end").y[-1]
    return model.readout(z)


def _loss(out):
    return (torch.sin(3 * out) + out ** 2).sum()


def _fd_gradients(model, x, step=1e-4):
    """Central differences (ℓ(θ + s e_i) - ℓ(θ - s e_i)) / 2s of the reference loss, for every
    parameter entry and every input entry."""
    grads = {}
    with torch.no_grad():
        for name, p in list(model.named_parameters()) + [("x", x)]:
            g = torch.zeros_like(p)
            flat, gflat = p.view(-1), g.view(-1)
            for i in range(flat.numel()):
                v = flat[i].item()
                flat[i] = v + step
                up = _loss(_reference_output(model, x)).item()
                flat[i] = v - step
                down = _loss(_reference_output(model, x)).item()
                flat[i] = v
                gflat[i] = (up - down) / (2 * step)
            grads[name] = g
    return grads


def _autograd_gradients(model, x):
    model.zero_grad()
    xx = x.clone().requires_grad_()
    _loss(model(xx)).backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters()}
    grads["x"] = xx.grad.clone()
    return grads


def _rel(a, b):
    return float((a - b).norm() / b.norm())


def _model(field, augment, **kw):
    return NeuralODE(2, 2, 1, field=field, pieces=3 if field == "layer" else 2, T=1.0, augment=augment,
                     input_map="affine", seed=7, **kw)


@pytest.mark.slow
@pytest.mark.parametrize("field,augment", [("layer", 0), ("layer", 2), ("smooth", 0), ("smooth", 2)])
def test_gradients_match_central_differences_of_the_reference_flow(field, augment):
    model = _model(field, augment, method="dopri5", rtol=1e-12, atol=1e-12)
    x = torch.tensor([[0.3, -0.7], [-1.1, 0.4], [0.9, 0.8]], dtype=torch.float64)
    fd = _fd_gradients(model, x)
    for mode in ("backprop", "adjoint"):
        model.set_solver(gradient=mode)
        g = _autograd_gradients(model, x)
        assert set(g) == set(fd)
        for name in fd:
            assert _rel(g[name], fd[name]) <= 1e-6, (mode, name, _rel(g[name], fd[name]))


def test_gradients_match_central_differences_fast_case():
    """One configuration of the slow matrix above, kept in the fast suite."""
    model = NeuralODE(1, 1, 1, field="layer", pieces=1, T=1.0, augment=1, seed=3, method="dopri5",
                      rtol=1e-12, atol=1e-12)
    x = torch.tensor([[0.5], [-0.8]], dtype=torch.float64)
    fd = _fd_gradients(model, x)
    for mode in ("backprop", "adjoint"):
        g = _autograd_gradients(model.set_solver(gradient=mode), x)
        for name in fd:
            assert _rel(g[name], fd[name]) <= 1e-6, (mode, name)


@pytest.mark.parametrize("field", ["layer", "smooth", "mlp"])
def test_adjoint_and_backprop_agree_to_the_tolerance(field):
    model = _model(field, 1, method="dopri5", rtol=1e-9, atol=1e-9)
    x = torch.randn(5, 2, dtype=torch.float64)
    bp = _autograd_gradients(model.set_solver(gradient="backprop"), x)
    adj = _autograd_gradients(model.set_solver(gradient="adjoint"), x)
    for name in bp:
        assert _rel(adj[name], bp[name]) <= 1e-6, name
    # and they are not trivially equal (two computations): the adjoint is exact only to tolerance
    assert any(not torch.equal(adj[n], bp[n]) for n in bp)


def test_fixed_step_adjoint_is_the_continuous_adjoint_and_converges():
    """Euler's adjoint (torchdiffeq, continuous adjoint on the grid) differs from the exact discrete
    gradient by O(h): the gap to the reference gradient halves as the steps double."""
    model = _model("layer", 0, method="dopri5", rtol=1e-12, atol=1e-12)
    x = torch.randn(4, 2, dtype=torch.float64)
    exact = _autograd_gradients(model, x)["field.weight"]
    gaps = []
    for steps in (48, 96, 192):
        model.set_solver(method="euler", steps=steps, gradient="adjoint")
        gaps.append(_rel(_autograd_gradients(model, x)["field.weight"], exact))
    assert 1.7 < gaps[0] / gaps[1] < 2.3 and 1.7 < gaps[1] / gaps[2] < 2.3, gaps


def _two_piece_linear_model(rtol):
    """z' = W_l z on two pieces of [0, 2] (identity activation, zero biases), W_1 stiffer than W_0:
    the exact flow is expm(W_1) expm(W_0)."""
    model = NeuralODE(2, 2, 1, field="layer", pieces=2, T=2.0, activation="identity", method="dopri5",
                      rtol=rtol, atol=rtol, seed=0)
    with torch.no_grad():
        model.field.weight[0] = torch.tensor([[0.0, 1.0], [-1.0, 0.0]])
        model.field.weight[1] = torch.tensor([[-3.0, 2.0], [0.5, -4.0]])
        model.field.bias.zero_()
    W = model.field.weight.detach().numpy()
    return model, scipy.linalg.expm(W[1]) @ scipy.linalg.expm(W[0])


@pytest.mark.parametrize("gradient", ["backprop", "adjoint"])
def test_layer_boundary_inside_a_step_is_restarted(gradient):
    """A single dopri5 solve over [0, 2] steps across the jump at t = 1; ours restarts there (in
    the adjoint pass too) and matches the closed form where the unrestarted solve does not."""
    model, M = _two_piece_linear_model(1e-7)
    model.set_solver(gradient=gradient)
    z0 = torch.tensor([[1.0, 0.5], [-0.3, 2.0]], dtype=torch.float64, requires_grad=True)
    zT = model.integrate(z0)
    zT.sum().backward()
    exact = z0.detach() @ torch.from_numpy(M).T
    ours = float((zT.detach() - exact).abs().max())
    assert ours < 1e-6
    assert torch.allclose(z0.grad, torch.ones(2, 2, dtype=torch.float64) @ torch.from_numpy(M), atol=1e-6, rtol=0)
    # the same solver without the restart, its steps straddling t = 1, is far less accurate
    with torch.no_grad():
        def jumping(t, z):  # W_0 before t = 1, W_1 from t = 1 on (and past T, where dopri5 may evaluate)
            return model.field.piece(0 if float(t) < 1.0 else 1)(t, z)

        naive = torchdiffeq.odeint(jumping, z0, torch.tensor([0.0, 2.0], dtype=torch.float64),
                                   rtol=1e-7, atol=1e-7, method="dopri5")[-1]
    assert float((naive - exact).abs().max()) > 20 * ours


def test_adjoint_and_backprop_equal_a_hand_written_restarted_solve():
    """Our restarts against torchdiffeq written directly, piece by piece: the same numbers."""
    model, _ = _two_piece_linear_model(1e-8)
    z0 = torch.randn(3, 2, dtype=torch.float64)
    z = z0
    for l in range(2):
        z = torchdiffeq.odeint(model.field.piece(l), z, torch.tensor([float(l), l + 1.0], dtype=torch.float64),
                               rtol=1e-8, atol=1e-8, method="dopri5",
                               options={"step_t": torch.tensor([l + 1.0], dtype=torch.float64)})[-1]
    for gradient in ("backprop", "adjoint"):
        assert torch.equal(model.set_solver(gradient=gradient).integrate(z0), z)


@pytest.mark.parametrize("input_map,output", [("identity", "linear"), ("affine", "sigmoid"), ("activated", "linear")])
def test_euler_neural_ode_is_the_resnet_bit_for_bit(input_map, output):
    n_in = 2 if input_map == "identity" else 3
    L = 6
    net = ResNet.neural_ode(n_in, 2, 1, depth=L, T=1.5, input_map=input_map, output=output, seed=4)
    ode = NeuralODE(n_in, 2, 1, field="layer", pieces=L, T=1.5, input_map=input_map, output=output, seed=4,
                    method="euler", steps=L)
    for (n1, p1), (n2, p2) in zip(sorted(net.named_parameters()), sorted(ode.named_parameters())):
        assert n1 == n2 and torch.equal(p1, p2)  # the same seed draws the same weights
    x = torch.randn(50, n_in, dtype=torch.float64)
    assert torch.equal(ode(x), net(x))
    # m Euler steps per piece: the ResNet of depth m L with every block repeated m times
    ode.set_solver(steps=3 * L)
    deep = ode.to_resnet(3 * L)
    assert torch.equal(deep.field.weight[3 * 2 + 1], ode.field.weight[2])
    assert torch.equal(ode(x), deep(x))


@pytest.mark.parametrize("T,L,r", [(0.3, 10, 3), (0.1, 4, 5), (0.7, 3, 3), (2.9, 6, 3), (1.5, 6, 3)])
def test_deeper_resnet_repeats_each_piece_r_times(T, L, r):
    # times l T / (r L) that equal a boundary j T / L in exact arithmetic can round below it in
    # floats (every case here but T = 1.5 has such an l): the block must still take piece l // r
    ode = NeuralODE(2, 2, 1, field="layer", pieces=L, T=T, seed=7, method="euler", steps=r * L)
    deep = ode.to_resnet(r * L)
    for l in range(r * L):
        assert torch.equal(deep.field.weight[l], ode.field.weight[l // r]), l
        assert torch.equal(deep.field.bias[l], ode.field.bias[l // r]), l
    x = torch.randn(40, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    assert torch.equal(ode(x), deep(x))  # r Euler steps per piece are the deep ResNet, bit for bit


def test_resnet_to_ode_to_resnet_is_the_identity():
    net = ResNet.neural_ode(3, 2, 2, depth=5, T=2.0, input_map="activated", output="sigmoid", seed=11)
    back = net.to_ode().to_resnet(5)
    assert back.config == net.config
    assert all(torch.equal(a, b) for a, b in zip(back.state_dict().values(), net.state_dict().values()))
    x = torch.randn(20, 3, dtype=torch.float64)
    assert torch.equal(net.to_ode()(x), net(x))
    # to_ode with an adaptive method is the network's associated flow
    flow = net.to_ode(method="dopri5", rtol=1e-10, atol=1e-10)
    assert torch.allclose(flow(x), net.flow(x, rtol=1e-10, atol=1e-10), atol=1e-9, rtol=0)


def test_augmented_to_resnet_pads_maps_with_zeros():
    ode = NeuralODE(2, 2, 1, field="layer", pieces=4, augment=3, method="euler", seed=2)
    net = ode.to_resnet(4)
    assert net.width == 5 and net.input_map == "affine"
    assert torch.equal(net.inp.weight, torch.cat([torch.eye(2), torch.zeros(3, 2)]).double())
    assert torch.equal(net.out.weight[:, 2:], torch.zeros(1, 3, dtype=torch.float64))
    x = torch.randn(30, 2, dtype=torch.float64)
    assert torch.allclose(net(x), ode(x), atol=1e-14, rtol=0)


def test_smooth_field_to_resnet_samples_at_layer_times():
    ode = NeuralODE(2, 2, 1, field="smooth", pieces=3, T=1.5, seed=5)
    W, b = ode.field.knot_weight.detach(), ode.field.knot_bias.detach()
    net = ode.to_resnet(4)
    for l in range(4):
        t = l * 1.5 / 4
        k = min(int(t / 0.5), 2)
        u = (t - 0.5 * k) / 0.5
        assert torch.allclose(net.field.weight[l], W[k] + u * (W[k + 1] - W[k]), atol=1e-15)
        assert torch.allclose(net.field.bias[l], b[k] + u * (b[k + 1] - b[k]), atol=1e-15)
    assert net.delta == 1.5 / 4 and net.eps == 1.0


def test_trains_through_odenet_train_and_records_nfev():
    data = odenet.circles(80, seed=0)
    for gradient in ("backprop", "adjoint"):
        ode = NeuralODE(2, 2, 1, field="layer", pieces=4, T=2.0, input_map="activated", output="sigmoid",
                        method="dopri5", rtol=1e-5, atol=1e-5, gradient=gradient)
        fit = odenet.train(ode, data, epochs=2, batch_size=40, loss="bce", lr=0.05, seed=1, progress=False)
        steps = 2 * math.ceil(len(data.x_train) / 40)
        assert len(ode.nfev_log) == steps
        assert all(f >= 4 * 6 for f, _ in ode.nfev_log)  # dopri5: at least one step (6 evaluations) per piece
        assert (ode.nfev_forward, ode.nfev_backward) == ode.nfev_log[-1]
        if gradient == "adjoint":
            assert all(b >= 4 * 6 for _, b in ode.nfev_log)
        else:
            assert all(b == 0 for _, b in ode.nfev_log)
        assert fit.best_val_loss < fit.val_loss[0]


def test_training_the_euler_neural_ode_is_training_the_resnet():
    """One code path: the same seed gives the same trained weights, bit for bit."""
    data = odenet.circles(100, seed=2)
    kw = dict(input_map="activated", output="sigmoid")
    net = ResNet.neural_ode(2, 2, 1, depth=5, T=2.0, **kw)
    ode = NeuralODE(2, 2, 1, field="layer", pieces=5, T=2.0, method="euler", **kw)
    fits = [odenet.train(m, data, epochs=3, batch_size=25, loss="bce", seed=3, progress=False) for m in (net, ode)]
    for (n1, p1), (n2, p2) in zip(sorted(net.named_parameters()), sorted(ode.named_parameters())):
        assert torch.equal(p1, p2), n1
    assert np.array_equal(fits[0].val_loss, fits[1].val_loss)


def test_train_ensemble_trains_the_euler_neural_ode_as_its_resnet():
    """One Euler step per piece: the ensemble's members equal single odenet.train runs of the
    NeuralODE (to the ensemble's rounding, 1e-10) and come back as NeuralODEs."""
    data = odenet.circles(120, seed=1)
    make = lambda: NeuralODE(2, 2, 1, field="layer", pieces=4, T=2.0, input_map="activated",  # noqa: E731
                             output="sigmoid", method="euler")
    settings = dict(epochs=3, batch_size=30, loss="bce", progress=False)
    ens = odenet.train_ensemble(make(), data, seeds=[2, 5], **settings)
    for member, seed in zip(ens.members, (2, 5)):
        single = odenet.train(make(), data, seed=seed, **settings)
        assert isinstance(member.model, NeuralODE) and member.model.method == "euler"
        for (n, p), (_, q) in zip(single.model.named_parameters(), member.model.named_parameters()):
            assert (p - q).abs().max() <= 1e-10, n
        assert np.allclose(single.val_loss, member.val_loss, rtol=0, atol=1e-10)
    assert not torch.allclose(ens.members[0].model.field.weight, ens.members[1].model.field.weight)


@pytest.mark.parametrize("kw", [dict(method="dopri5"), dict(method="euler", steps=8), dict(augment=1, method="euler"),
                                dict(field="smooth", method="euler")])
def test_train_ensemble_refuses_a_neural_ode_that_is_no_resnet(kw):
    ode = NeuralODE(2, 2, 1, pieces=4, **kw)
    with pytest.raises(TypeError, match="steps=pieces"):
        odenet.train_ensemble(ode, odenet.circles(60), seeds=[0, 1], epochs=1, select="last", progress=False)


@pytest.mark.slow
def test_augmented_flow_fits_the_crossing_map_that_a_plain_flow_cannot():
    """g(-1) = 1, g(1) = -1 with the readout fixed to the first channel (w = 1, b = 0): a flow on R
    keeps order, so the plain model's MSE is ≥ 1 (min over a ≤ b of ((a-1)² + (b+1)²)/2); one extra
    channel lets the flow pass the points around each other."""
    x = torch.tensor([[-1.0], [1.0]], dtype=torch.float64)
    fixed = dict(overrides={"out.weight": 1.0, "out.bias": 0.0}, freeze=["out.weight", "out.bias"])

    def mse(augment, seed):
        m = NeuralODE(1, 1, 1, field="layer", pieces=3, T=3.0, augment=augment, method="rk4", steps=6)
        fit = odenet.train(m, (x, -x), epochs=80, lr=0.1, batch_size=2, seed=seed, select="last", progress=False,
                           **fixed)
        return fit.metrics["train_loss"]

    seeds = range(8)
    augmented = [mse(1, s) for s in seeds]
    plain = [mse(0, s) for s in seeds[:4]]
    fitted = sum(v < 1e-2 for v in augmented)
    # observed 8/8 (MSE 1e-5 .. 5e-4; Wilson 95 % interval of the success rate [0.68, 1]); one failure tolerated
    assert fitted >= 7, augmented
    assert min(plain) >= 0.9, plain  # every seed: a theorem, not a statistic


@pytest.mark.parametrize("kw,exc,match", [
    (dict(gradient="forward"), ValueError, "gradient"),
    (dict(augment=-1), ValueError, "augment"),
    (dict(augment=1.5), TypeError, "augment"),
    (dict(rtol=0.0), ValueError, "rtol"),
    (dict(atol=-1e-9), ValueError, "atol"),
    (dict(method="DOP853"), ValueError, "method"),
    (dict(method="euler", steps=5), ValueError, "multiple"),
    (dict(method="dopri5", steps=4), ValueError, "steps"),
    (dict(field="spline"), ValueError, "field"),
    (dict(field="mlp", method="rk4"), ValueError, "steps"),
])
def test_bad_options_are_refused(kw, exc, match):
    with pytest.raises(exc, match=match):
        NeuralODE(2, 2, 1, pieces=2, **kw)


def test_set_solver_keeps_what_it_is_not_told_to_change():
    ode = NeuralODE(2, 2, 1, pieces=2, method="rk4", steps=8)
    assert ode.set_solver(gradient="adjoint").steps == 8
    assert ode.set_solver(method="euler").steps == 2  # a new fixed method: one step per piece
    assert ode.set_solver(method="dopri5", rtol=1e-5).steps is None and ode.atol == 1e-9


def test_bad_solver_change_leaves_the_options_as_they_were():
    ode = NeuralODE(2, 2, 1, pieces=2, method="dopri5", rtol=1e-6)
    with pytest.raises(ValueError, match="rtol"):
        ode.set_solver(method="bosh3", rtol=-1.0)
    assert (ode.method, ode.rtol) == ("dopri5", 1e-6)


def test_bad_input_and_conversions_are_refused():
    ode = NeuralODE(2, 2, 1, pieces=2)
    with pytest.raises(ValueError, match="finite"):
        ode(torch.tensor([[0.0, float("nan")]], dtype=torch.float64))
    with pytest.raises(ValueError, match="shape"):
        ode(torch.zeros(3, dtype=torch.float64))
    # width and dtype named before the solver starts (not a matmul error from inside it)
    affine = NeuralODE(3, 2, 1, pieces=2, input_map="affine", gradient="adjoint")
    f32, f64 = torch.float32, torch.float64
    for model, x in ((ode, torch.zeros(4, 3, dtype=f64)), (ode, torch.zeros(4, 2, dtype=f32)),
                     (affine, torch.zeros(4, 2, dtype=f64)), (affine, torch.zeros(4, 3, dtype=f32))):
        with pytest.raises(ValueError, match=rf"x must have shape \(batch, {model.n_in}\) and dtype torch.float64 .* "
                                             rf"got shape \(4, {x.shape[1]}\) and dtype {x.dtype}"):
            model(x)
        with pytest.raises(ValueError, match="x must have shape"):
            model.logits(x)
    assert ode.nfev_log == [] and affine.nfev_log == []  # refused before any evaluation
    with pytest.raises(TypeError, match="MLP"):
        NeuralODE(2, 2, 1, field="mlp").to_resnet(4)
    with pytest.raises(ValueError, match="σ\\(0\\)"):
        NeuralODE(2, 2, 1, augment=1, input_map="activated", activation="softplus").to_resnet(4)
    with pytest.raises(ValueError, match="ε = 1"):
        ResNet(2, 2, 1, 4, eps=0.5, delta=0.25).to_ode()
    with pytest.raises(ValueError, match="BatchNorm"):
        ResNet.neural_ode(2, 2, 1, depth=4, batchnorm=True).to_ode()
