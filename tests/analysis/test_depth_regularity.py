"""Trained-network checks: solver swap, weight regularity, reverse-Euler reconstruction
(analysis.continuum.depth_regularity), and the depth-indexed weight samplers (analysis.continuum.depth_weights)."""
import math

import numpy as np
import pytest
import torch

from analysis.continuum.depth_regularity import (classification_accuracy, continuous_depth_ode, regularity_exponents,
                                       reverse_euler, reverse_euler_study, solver_swap, swap_study,
                                       weight_regularity)
from analysis.continuum.depth_weights import iid_weights, layer_times, load_weights, smooth_weights
from odenet import ResNet


WIDTH = 4


@pytest.fixture(scope="module")
def x():
    return torch.randn(64, WIDTH, dtype=torch.float64, generator=torch.Generator().manual_seed(0))


def make_net(depth, kind, delta, *, activation="tanh", std=1.0, bias_std=0.5, seed=3):
    """A ResNet (ε = 1, horizon 1) whose blocks are smooth in depth or i.i.d. across layers."""
    net = ResNet(WIDTH, WIDTH, 1, depth, eps=1.0, delta=delta, T=1.0, activation=activation, seed=0)
    if kind == "smooth":
        W, b = smooth_weights(depth, WIDTH, std=std, bias_std=bias_std, seed=seed)
    else:
        W, b = iid_weights(depth, WIDTH, std=std, bias_std=bias_std, seed=1000 * seed + depth)
    with torch.no_grad():  # one readout for every depth (the seeded one depends on the draw order)
        net.out.weight.fill_(1 / WIDTH)
        net.out.bias.zero_()
    return load_weights(net, W, b)


# --- samplers -----------------------------------------------------------------------------------
def test_smooth_weights_sample_one_path_at_every_depth():
    W8, b8 = smooth_weights(8, 3, bias_std=1.0, seed=5)
    W32, b32 = smooth_weights(32, 3, bias_std=1.0, seed=5)
    assert torch.equal(layer_times(8), layer_times(32)[::4])
    assert torch.allclose(W8, W32[::4], atol=1e-14) and torch.allclose(b8, b32[::4], atol=1e-14)


def test_smooth_weights_have_the_kernel_covariance():
    # Cov(W_ij(s), W_ij(t)) -> std² exp(-(s-t)²/(2 ℓ²)) over many independent paths
    draws = torch.stack([smooth_weights(5, 4, T=1.0, lengthscale=0.5, std=1.0, n_features=256, seed=s)[0]
                         for s in range(400)])  # (400, 5, 4, 4)
    v = draws.permute(1, 0, 2, 3).reshape(5, -1)
    cov = (v @ v.T / v.shape[1]).numpy()
    t = layer_times(5).numpy()
    kernel = np.exp(-(t[:, None] - t[None, :]) ** 2 / (2 * 0.5 ** 2))
    assert np.abs(cov - kernel).max() < 0.12


def test_iid_weights_are_independent_across_layers():
    W, _ = iid_weights(2000, 2, std=2.0, seed=1)
    a, b = W[:-1].reshape(-1), W[1:].reshape(-1)
    assert abs(float(torch.corrcoef(torch.stack([a, b]))[0, 1])) < 0.05
    assert float(W.std()) == pytest.approx(2.0, rel=0.05)


def test_samplers_need_a_seed():
    with pytest.raises(ValueError, match="seed or a generator"):
        iid_weights(4, 2)


# --- (b) weight regularity ----------------------------------------------------------------------
def test_weight_regularity_definitions():
    W = torch.zeros(3, 2, 2, dtype=torch.float64)
    W[1, 0, 0], W[2, 0, 0], W[2, 1, 1] = 3.0, 3.0, 4.0
    r = weight_regularity(W)
    assert np.allclose(r.norms, [0, 3, 5]) and np.allclose(r.increments, [3, 4])
    assert (r.max_norm, r.max_increment, r.total_variation, r.quadratic_variation) == (5, 4, 7, 25)
    assert r.rms_increment == pytest.approx(math.sqrt(25 / 2))
    assert weight_regularity(W, norm="spectral").max_norm == pytest.approx(4.0)


def test_weight_regularity_folds_batchnorm():
    net = ResNet(2, 2, 1, 3, batchnorm=True, seed=0).eval()
    with torch.no_grad():
        for bn in net.field.bn:
            bn.running_var.fill_(4.0)  # scale 1/2
    r = weight_regularity(net)
    assert np.allclose(r.norms, 0.5 * torch.linalg.matrix_norm(net.field.weight.detach()).numpy(), rtol=1e-4)


@pytest.mark.parametrize("beta", [0.25, 0.5, 0.75])
def test_planted_exponent_is_recovered(beta):
    depths = (32, 64, 128, 256, 512, 1024, 2048)
    family = []
    for L in depths:  # W_l = W(l/L) + L^-beta noise
        smooth, _ = smooth_weights(L, 6, std=0.3, lengthscale=1.0, seed=1)
        noise, _ = iid_weights(L, 6, std=1.0, seed=1000 + L)
        family.append(smooth + L ** -beta * noise)
    e = regularity_exponents(family)
    assert abs(e.beta - beta) < 0.1
    assert abs(e.beta_max - beta) < 0.1
    assert abs(e.alpha) < 0.1  # the smooth part keeps max ‖W_l‖ of order one
    assert abs(e.fit_quadratic_variation.order - (1 - 2 * beta)) < 0.2


def test_smooth_weights_have_exponent_one():
    e = regularity_exponents([smooth_weights(L, 6, seed=2)[0] for L in (32, 128, 512, 2048)])
    assert abs(e.beta - 1) < 0.1


def test_regularity_bad_input():
    with pytest.raises(ValueError, match="strictly increasing"):
        regularity_exponents([torch.zeros(L, 2, 2) for L in (8, 4, 16)])
    with pytest.raises(ValueError, match="at least 3 depths"):
        regularity_exponents([torch.zeros(L, 2, 2) for L in (4, 8)])
    with pytest.raises(ValueError, match="norm must be one of"):
        weight_regularity(torch.zeros(3, 2, 2), norm="nuclear")


# --- (c) reverse-Euler reconstruction -----------------------------------------------------------
def test_reverse_euler_is_exact_for_constant_blocks(x):
    # f_l(x) = tanh(b_l) does not depend on x: stepping back undoes every step exactly
    net = ResNet(WIDTH, WIDTH, 1, 6, eps=0.8, delta=0.3, seed=1)
    with torch.no_grad():
        net.field.weight.zero_()
    r = reverse_euler(net, x)
    assert r.err_sup < 1e-14 and r.layer_err_sup.shape == (7,)


def test_reverse_euler_one_layer_by_hand(x):
    net = ResNet(WIDTH, WIDTH, 1, 1, eps=0.9, delta=0.5, seed=2)
    with torch.no_grad():
        W, b = net.field.weight[0], net.field.bias[0]
        h1 = 0.9 * x + 0.5 * torch.tanh(x @ W.T + b)
        back = (h1 - 0.5 * torch.tanh(h1 @ W.T + b)) / 0.9
    assert reverse_euler(net, x).err_sup == pytest.approx(float((back - x).abs().max()), rel=1e-12)


def test_reverse_euler_error_decreases_for_smooth_weights(x):
    depths = (8, 32, 128, 512)
    s = reverse_euler_study([make_net(L, "smooth", 1 / L, std=0.5) for L in depths], x)
    assert np.all(np.diff(s.value_rms) < 0)
    assert abs(s.fit_rms.order + 1) < 0.15  # O(1/L)


def test_reverse_euler_error_does_not_decrease_for_iid_weights(x):
    # i.i.d. weights in their non-degenerate scaling δ = 1/√L: the bias δ² Σ Df_l f_l stays O(1)
    depths = (128, 512, 2048)
    errs = np.mean([reverse_euler_study([make_net(L, "iid", L ** -0.5, std=0.5, seed=s) for L in depths], x).value_rms
                    for s in range(3)], axis=0)
    smooth = reverse_euler_study([make_net(L, "smooth", 1 / L, std=0.5) for L in depths], x).value_rms
    assert errs[-1] > 0.7 * errs[0]  # flat, not ~ 1/L (which would give 1/16)
    assert errs[-1] > 20 * smooth[-1]


def test_reverse_euler_needs_a_skip(x):
    with pytest.raises(ValueError, match="eps must be > 0"):
        reverse_euler(ResNet.mlp(WIDTH, WIDTH, 1, 3, seed=0), x)


# --- (a) solver swap ----------------------------------------------------------------------------
def test_continuous_depth_readings_contain_the_network(x):
    net = make_net(12, "iid", 1 / 12)
    for reading in ("piecewise", "linear"):
        sw = solver_swap(net, x, methods=("euler",), refinements=(1,), reading=reading)
        assert sw.change_sup[0] < 1e-13
    ode = continuous_depth_ode(net, "linear")
    with torch.no_grad():  # halfway between layers 3 and 4 the linear reading averages their weights
        t = 3.5 / 12
        W = (net.field.weight[3] + net.field.weight[4]) / 2
        b = (net.field.bias[3] + net.field.bias[4]) / 2
        assert torch.allclose(ode(t, x), torch.tanh(x @ W.T + b), atol=1e-14)


def test_swap_change_shrinks_with_the_step_for_smooth_weights(x):
    depths = (16, 64, 256, 1024)
    for reading in ("piecewise", "linear"):
        s = swap_study([make_net(L, "smooth", 1 / L, activation="softplus") for L in depths], x, reading=reading)
        assert np.all(np.diff(s.value_rms) < 0), reading
        assert abs(s.fit_rms.order + 1) < 0.15, reading  # O(h), h = 1/L


def test_swap_change_does_not_shrink_for_iid_weights(x):
    # same scaling δ = 1/L, same API: i.i.d. layers read as a function of depth are no ODE
    depths = (16, 64, 256, 1024)
    s = swap_study([make_net(L, "iid", 1 / L, activation="softplus") for L in depths], x, reading="linear")
    assert abs(s.fit_rms.order) < 0.2
    assert s.value_rms[-1] > 0.5 * s.value_rms[0]


def test_solver_swap_rows_and_accuracy(x):
    net = make_net(16, "smooth", 1 / 16)
    labels = (x[:, 0] > 0).long()
    sw = solver_swap(net, x, labels, methods=("euler", "rk4", "dopri5"), refinements=(1, 4))
    assert sw.methods == ["euler", "euler", "rk4", "rk4", "dopri5"]
    assert list(sw.refine) == [1, 4, 1, 4, 0]
    assert list(sw.nfev[:4]) == [16, 64, 64, 256]
    assert sw.change_sup[0] == 0.0
    with torch.no_grad():
        assert sw.base_accuracy == float(((net(x)[:, 0] > 0).long() == labels).double().mean())
    # rk4 and dopri5 both approximate the same flow
    assert abs(sw.change_sup[3] - sw.change_sup[4]) < 1e-6


def test_classification_accuracy():
    out = torch.tensor([[0.2], [0.7], [0.9]])
    assert classification_accuracy(out, torch.tensor([0, 1, 0]), threshold=0.5) == pytest.approx(2 / 3)
    out2 = torch.tensor([[0.1, 0.9], [0.8, 0.2]])
    assert classification_accuracy(out2, torch.tensor([1, 1])) == 0.5


def test_swap_bad_input(x):
    net = make_net(4, "smooth", 0.25)
    with pytest.raises(ValueError, match="reading must be one of"):
        solver_swap(net, x, reading="cubic")
    with pytest.raises(ValueError, match="methods must be one of"):
        solver_swap(net, x, methods=("leapfrog",))
    with pytest.raises(ValueError, match="one entry per input"):
        solver_swap(net, x, torch.zeros(3))
    with pytest.raises(ValueError, match="strictly increasing"):
        swap_study([make_net(L, "smooth", 1 / L) for L in (8, 4, 16)], x)
