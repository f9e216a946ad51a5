"""depth_swap: a neural ODE evaluated as the ResNets of depth L, against closed forms and a fitted order."""
import numpy as np
import pytest
import scipy.linalg
import torch

import analysis
import odenet
from odenet import NeuralODE


def test_linear_flow_errors_are_the_closed_form_and_of_order_one():
    """z' = W z, readout w^T z + b: Φ_L - Φ = w^T ((I + TW/L)^L - expm(TW)) z0."""
    m = NeuralODE(2, 2, 1, field="layer", pieces=1, T=1.0, activation="identity", seed=1, method="dopri5")
    W = np.array([[-0.5, 2.0], [-1.0, 0.3]])
    with torch.no_grad():
        m.field.weight[0] = torch.from_numpy(W)
        m.field.bias.zero_()
    x = torch.randn(6, 2, dtype=torch.float64)
    depths = [4, 8, 16, 32, 64]
    s = analysis.depth_swap(m, x, depths, rtol=1e-12, atol=1e-12)
    w = m.out.weight.detach().numpy()
    for L, e in zip(depths, s.err_sup):
        gap = np.linalg.matrix_power(np.eye(2) + W / L, L) - scipy.linalg.expm(W)
        assert e == pytest.approx(np.abs(x.numpy() @ gap.T @ w.T).max(), rel=1e-6)
    assert s.fit_sup.contains(1.0) or abs(s.order - 1) < 0.1
    assert s.resolved.all()


def test_layer_field_errors_equal_the_solver_swap_of_each_resnet():
    """For the layer field, the ResNet of depth L (a multiple of the pieces) has the model's own
    field as its piecewise ODE, so ‖Φ_L - Φ‖ is the solver swap (dopri5) of that ResNet: the
    training-side study and analysis.solver_swap measure one quantity from two ends."""
    m = NeuralODE(2, 2, 1, field="layer", pieces=4, T=2.0, input_map="affine", seed=3)
    x = torch.randn(8, 2, dtype=torch.float64)
    depths = [4, 8, 16, 32]
    s = analysis.depth_swap(m, x, depths, reference="dopri8", rtol=1e-11, atol=1e-11)
    for L, e in zip(depths, s.err_sup):
        swap = analysis.solver_swap(m.to_resnet(L), x, methods=("dopri8",), rtol=1e-11, atol=1e-11)
        assert e == pytest.approx(swap.change_sup[0], rel=1e-6, abs=1e-12)


@pytest.mark.parametrize("pieces,depths", [(1, (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)),
                                           (10, (10, 20, 40, 80, 160, 320, 640)), (300, (300, 600, 1200))])
def test_default_depths_of_a_layer_field_are_its_multiples(pieces, depths):
    from analysis.continuum.ode_swap import default_depths

    assert default_depths(NeuralODE(2, 2, 1, pieces=pieces)) == depths
    assert default_depths(NeuralODE(2, 2, 1, field="smooth", pieces=pieces)) == tuple(2 ** k for k in range(1, 11))


def test_the_default_layer_model_runs_with_the_default_depths():
    m = NeuralODE(2, 2, 1, seed=0)  # field="layer", pieces=10: 2, 4, ..., 1024 are not its multiples
    s = analysis.depth_swap(m, torch.randn(5, 2, dtype=torch.float64), rtol=1e-12, atol=1e-12)
    assert s.depths.tolist() == [10, 20, 40, 80, 160, 320, 640]
    assert abs(s.order - 1) < 0.1  # Euler on a field constant on each piece


def test_bad_input_is_refused():
    x = torch.randn(3, 2, dtype=torch.float64)
    with pytest.raises(ValueError, match="multiples"):
        analysis.depth_swap(NeuralODE(2, 2, 1, pieces=4), x, [2, 4, 8])
    with pytest.raises(ValueError, match="strictly increasing"):
        analysis.depth_swap(NeuralODE(2, 2, 1, pieces=2), x, [8, 4, 16])
    with pytest.raises(TypeError, match="layer or smooth"):
        analysis.depth_swap(NeuralODE(2, 2, 1, field="mlp"), x, [2, 4, 8])


@pytest.mark.slow
def test_trained_neural_odes_are_first_order_limits_of_their_resnets():
    """Train smooth-field neural ODEs on the circles (dopri5), evaluate them as ResNets of depth
    2..1024: every seed's fitted order lies within 0.1 of Euler's 1 (observed 3/3)."""
    data = odenet.circles(300, seed=0)
    orders = []
    for seed in range(3):
        m = NeuralODE(2, 2, 1, field="smooth", pieces=4, T=2.0, input_map="activated", output="sigmoid",
                      method="dopri5", rtol=1e-6, atol=1e-6)
        odenet.train(m, data, epochs=5, batch_size=50, loss="bce", lr=0.05, seed=seed, progress=False)
        orders.append(analysis.depth_swap(m, data.x_test[:100]).order)
    assert all(abs(p - 1) < 0.1 for p in orders), orders
