"""reconstruction_error: forward then backward integration against closed forms, the flag, bad input."""
import numpy as np
import pytest
import scipy.linalg
import torch

import analysis
from odenet import NeuralODE, ResNet


def _linear_model(W, **solver):
    """z' = W z on [0, 1]: one piece, identity activation and input map, zero bias."""
    m = NeuralODE(2, 2, 1, field="layer", pieces=1, T=1.0, activation="identity", seed=0, **solver)
    with torch.no_grad():
        m.field.weight[0] = torch.as_tensor(W, dtype=torch.float64)
        m.field.bias.zero_()
    return m


W = np.array([[-0.5, 2.0], [-1.0, 0.3]])


@pytest.mark.parametrize("n", [4, 16, 64])
def test_euler_there_and_back_is_the_closed_form(n):
    """Euler forward then Euler on the reversed field: ẑ(0) = (I - hW)^n (I + hW)^n z(0) = (I - h²W²)^n z(0)."""
    x = torch.tensor([[1.0, -0.5], [0.2, 0.7], [-2.0, 1.0]], dtype=torch.float64)
    r = analysis.reconstruction_error(_linear_model(W, method="euler", steps=n), x, threshold=1e-3)
    h = 1.0 / n
    back = x.numpy() @ np.linalg.matrix_power(np.eye(2) - h * h * W @ W, n).T
    diff = back - x.numpy()
    assert r.error == pytest.approx(np.linalg.norm(diff) / np.linalg.norm(x.numpy()), rel=1e-10)
    assert np.allclose(r.point_errors, np.linalg.norm(diff, axis=1) / np.linalg.norm(x.numpy(), axis=1), rtol=1e-10)
    assert r.flagged == (r.error > 1e-3)
    assert (r.nfev_forward, r.nfev_backward) == (n, n)


def test_adaptive_error_follows_the_tolerance_and_the_flag_the_threshold():
    x = torch.randn(20, 2, dtype=torch.float64)
    errors = []
    for tol in (1e-3, 1e-6, 1e-9):
        r = analysis.reconstruction_error(_linear_model(W, method="dopri5", rtol=tol, atol=tol), x)
        assert r.threshold == 100 * tol and r.flagged == (r.error > r.threshold)
        assert not r.flagged  # a benign, well-conditioned flow (‖expm(±W)‖ moderate)
        errors.append(r.error)
    assert errors[0] > 100 * errors[1] > 1e4 * errors[2]


def test_a_strongly_contracting_flow_is_flagged_at_a_loose_tolerance():
    """z' = -12 z contracts by e^-12: the backward solve amplifies the forward error by e^12 ≈ 1.6e5,
    so at rtol 1e-4 the start is lost (flagged), while rtol 1e-10 brings it back."""
    x = torch.randn(10, 2, dtype=torch.float64)
    contracting = -12 * np.eye(2)
    loose = analysis.reconstruction_error(_linear_model(contracting, method="dopri5", rtol=1e-4, atol=1e-4), x)
    tight_model = _linear_model(contracting, method="dopri5", rtol=1e-10, atol=1e-10)
    tight = analysis.reconstruction_error(tight_model, x, threshold=1e-2)
    assert loose.flagged and loose.error > 0.1
    assert not tight.flagged and tight.error < 1e-3
    # the forward map is expm(-12 I) = e^-12 I, to the tolerance relative to the state's size
    with torch.no_grad():
        zT = tight_model.integrate(x)
    assert torch.allclose(zT, x * float(scipy.linalg.expm(-12 * np.eye(1))[0, 0]), rtol=1e-4, atol=1e-9)


def test_bad_input_is_refused():
    m = _linear_model(W, method="euler", steps=4)
    x = torch.randn(3, 2, dtype=torch.float64)
    with pytest.raises(ValueError, match="threshold is required"):
        analysis.reconstruction_error(m, x)
    with pytest.raises(ValueError, match="threshold"):
        analysis.reconstruction_error(m, x, threshold=0.0)
    with pytest.raises(ValueError, match="finite"):
        analysis.reconstruction_error(m, torch.tensor([[float("inf"), 0.0]], dtype=torch.float64), threshold=1.0)
    with pytest.raises(TypeError, match="to_ode"):
        analysis.reconstruction_error(ResNet.neural_ode(2, 2, 1, depth=3), x, threshold=1.0)
