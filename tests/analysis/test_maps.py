"""Singular-value / log|det| maps against per-point autograd Jacobians of partial networks."""
import numpy as np
import pytest
import torch

from analysis import jacobian_map, range_jacobian
from odenet import ResNet

AJ = torch.autograd.functional.jacobian


def _model(**kw):
    m = ResNet(2, 2, 1, 6, **dict(dict(eps=1.0, delta=0.4, seed=11), **kw))
    with torch.no_grad():
        m.field.weight.mul_(4.0)
    return m.eval()


@pytest.mark.parametrize("start, stop", [(None, None), (None, 3), (2, 5), (0, 6)])
def test_map_matches_autograd(start, stop):
    m = _model()
    jm = jacobian_map(m, [(-1.5, 1.0), (-0.5, 2.0)], (13, 11), start=start, stop=stop)
    assert jm.sigma_min.shape == (11, 13) and jm.points.shape == (143, 2)
    assert torch.allclose(jm.points[14], torch.stack([jm.x[1], jm.y[1]]))
    a, b = (0 if start is None else start), (6 if stop is None else stop)
    idx = torch.arange(0, 143, 7)
    for i in idx.tolist():
        x = jm.points[i]
        with torch.no_grad():
            h_a = m.states(x[None])[a, 0]

        if start is None:
            J = AJ(lambda v: m.states(v[None])[b, 0], x)
        else:
            def part(h):
                for l in range(a, b):
                    h = m.eps * h + m.delta * torch.tanh(m.field.weight[l] @ h + m.field.bias[l])
                return h
            J = AJ(part, h_a)
        s = np.linalg.svd(J.detach().numpy(), compute_uv=False)
        r, c = divmod(i, 13)
        assert abs(float(jm.sigma_max[r, c]) - s[0]) < 1e-12
        assert abs(float(jm.sigma_min[r, c]) - s[1]) < 1e-12
        sign, lad = np.linalg.slogdet(J.detach().numpy())
        assert float(jm.sign[r, c]) == sign and abs(float(jm.logabsdet[r, c]) - lad) < 1e-10


def test_whole_network_map_and_refinement():
    m = _model(output="sigmoid", input_map="affine")
    jm = jacobian_map(m, resolution=9, output=True)
    x = jm.points[::5]
    g = torch.stack([AJ(lambda v: m(v[None])[0, 0], xi) for xi in x])
    assert torch.allclose(jm.sigma_max.reshape(-1)[::5], g.norm(dim=1), atol=1e-13)
    assert torch.isnan(jm.logabsdet).all()  # 1 x 2 Jacobian: no determinant
    J3 = range_jacobian(m, x, refine=3)
    ref = torch.stack([AJ(lambda v: m.blocks(m.embed(v[None]), refine=3)[0], xi) for xi in x])
    assert torch.allclose(J3, ref, atol=1e-12)


def test_bad_input():
    m = _model()
    with pytest.raises(ValueError, match="start"):
        jacobian_map(m, start=4, stop=2)
    with pytest.raises(ValueError, match="output"):
        jacobian_map(m, stop=3, output=True)
    with pytest.raises(ValueError, match="n_in"):
        jacobian_map(ResNet(3, 3, seed=0).eval(), [(0, 1)] * 3)
    with pytest.raises(ValueError, match="empty"):
        jacobian_map(m, [(0, 1), (2, 2)])
