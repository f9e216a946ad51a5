"""Homeomorphism certificates and inverses: margins against numpy's SVD, certified networks
without critical points, one sign of det, exact inverses, and the structural proofs that a
network has no critical points (each checked against the search)."""
import numpy as np
import pytest
import torch

from analysis import certify, find_critical_points, invert, jacobian_map, no_critical_point_proof
from odenet import ResNet


def _scaled(model, target):
    """Rescale every W_l so that δ K ‖W_l‖₂ = target · ε."""
    with torch.no_grad():
        W = model.field.weight
        norms = torch.linalg.matrix_norm(W, ord=2)
        W.mul_((target * model.eps / (model.delta * norms))[:, None, None])
    return model.eval()


def certified_model(seed, depth=6, width=2, target=0.9, **kw):
    kw = dict(dict(eps=1.0, delta=0.8), **kw)
    return _scaled(ResNet(width, width, 1, depth, seed=seed, **kw), target)


def test_margins_match_numpy_svd():
    m = ResNet(3, 3, 1, 5, eps=0.7, delta=1.3, seed=1).eval()
    rep = certify(m)
    svd = np.array([np.linalg.svd(W, compute_uv=False)[0] for W in m.field.weight.detach().numpy()])
    assert np.allclose(rep.weight_norms.numpy(), svd, atol=1e-14)
    assert np.allclose(rep.margin.numpy(), 0.7 - 1.3 * svd, atol=1e-14)
    assert rep.folding_blocks == [l for l in range(5) if 0.7 - 1.3 * svd[l] <= 0]


def test_batchnorm_is_folded():
    m = ResNet(2, 2, 1, 3, batchnorm=True, seed=2)
    with torch.no_grad():
        for bn in m.field.bn:
            bn.running_var.fill_(4.0)
            bn.weight.fill_(0.5)
    m.eval()
    rep = certify(m)
    W = m.fold_batchnorm().field.weight.detach()
    assert torch.allclose(rep.weight_norms, torch.linalg.matrix_norm(W, ord=2))
    assert torch.allclose(rep.weight_norms, 0.25 * torch.linalg.matrix_norm(m.field.weight.detach(), ord=2))
    with pytest.raises(ValueError, match="eval"):
        certify(m.train())


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_certified_networks_have_no_critical_points(seed):
    m = certified_model(seed)
    rep = certify(m, sample=torch.randn(50, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(seed)))
    assert rep.homeomorphism and rep.no_critical_points and rep.folding_blocks == []
    assert rep.orientation_consistent and "without critical points" in rep.verdict
    box = [(-3.0, 3.0), (-3.0, 3.0)]
    assert len(find_critical_points(m, box, resolution=41)) == 0
    # one sign of det ∂h_L/∂x over the whole grid
    jm = jacobian_map(m, box, 101)
    assert torch.all(jm.sign == jm.sign[0, 0]) and jm.sign[0, 0] != 0
    assert float(jm.sigma_min.min()) > 0


def test_uncertified_and_degenerate_cases():
    m = certified_model(3, depth=4)
    with torch.no_grad():
        m.field.weight[2].mul_(2.0)  # δ‖W_2‖ = 1.8 ε
    rep = certify(m)
    assert rep.folding_blocks == [2] and not rep.homeomorphism and not rep.no_critical_points
    assert "blocks [2]" in rep.verdict
    mlp = ResNet.mlp(2, 2, 1, 3, seed=0).eval()
    assert certify(mlp).folding_blocks == [0, 1, 2]
    # rank-deficient input map, zero output weight
    a = _scaled(ResNet(3, 2, 1, 3, eps=1.0, delta=0.5, input_map="affine", seed=4), 0.5)
    with torch.no_grad():
        a.inp.weight[1] = 2 * a.inp.weight[0]
    rep = certify(a)
    assert rep.homeomorphism and rep.input_rank == 1 and not rep.input_ok and not rep.no_critical_points
    z = certified_model(5)
    with torch.no_grad():
        z.out.weight.zero_()
    rep = certify(z)
    assert not rep.output_ok and not rep.no_critical_points
    # augmented (width > n_in): W_in^T has a kernel
    aug = _scaled(ResNet(2, 3, 1, 2, eps=1.0, delta=0.5, input_map="affine", seed=6), 0.5)
    assert not certify(aug).input_ok


@pytest.mark.parametrize("input_map", ["identity", "affine", "activated"])
def test_invert_returns_the_input(input_map):
    m = certified_model(7, depth=8, width=3, input_map=input_map, target=0.8)
    x = 0.5 * torch.randn(20, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(8))
    with torch.no_grad():
        y = m.blocks(m.embed(x))
    inv = invert(m, y)
    assert torch.allclose(inv.x, x, atol=1e-10, rtol=0)
    assert float(inv.residual.max()) < 1e-12
    assert inv.iterations.shape == (8,) and torch.all(inv.block_residuals <= 1e-13)


def test_invert_a_range_of_blocks():
    m = certified_model(9, depth=6)
    x = torch.randn(10, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(9))
    with torch.no_grad():
        H = m.states(x)
    inv = invert(m, H[5], start=2, stop=5)
    assert inv.x is None
    assert torch.allclose(inv.h, H[2], atol=1e-10, rtol=0)


def test_invert_refuses_uncertified_blocks():
    m = certified_model(10, depth=4)
    with torch.no_grad():
        m.field.weight[1].mul_(1.5)  # margin 1 - 1.35 = -0.35
    y = torch.zeros(3, 2, dtype=torch.float64)
    with pytest.raises(ValueError, match=r"block 1 .*margin -0\.35"):
        invert(m, y)
    invert(m, y, start=2)  # the certified blocks alone are fine
    with pytest.raises(ValueError, match="shape"):
        invert(m, torch.zeros(3, 3, dtype=torch.float64))
    with pytest.raises(ValueError, match="start"):
        invert(m, y, start=3, stop=2)


def test_invert_refuses_a_singular_input_map_before_any_work():
    m = certified_model(11, depth=3, input_map="affine")
    with torch.no_grad():
        m.inp.weight.copy_(torch.tensor([[1.0, 2.0], [2.0, 4.0]], dtype=torch.float64))  # rank 1
    y = torch.zeros(4, 2, dtype=torch.float64)
    with pytest.raises(ValueError, match="W_in is singular"):
        invert(m, y)
    assert invert(m, y, through_input=False).x is None  # the blocks alone still invert


@pytest.mark.filterwarnings("error::analysis.geometry.critical.CriticalPointContradiction")
def test_structural_proofs_name_their_reason_and_agree_with_the_search():
    box2 = [(-3.0, 3.0), (-3.0, 3.0)]
    # certified
    m = certified_model(0)
    assert no_critical_point_proof(m).startswith("certified: δK‖W_l‖₂ < ε")
    # narrow MLP, full-rank weights (random, then large), tanh and softplus
    for act, scale in (("tanh", 1.0), ("tanh", 4.0), ("softplus", 3.0)):
        mlp = ResNet.mlp(2, 2, 1, 3, activation=act, seed=1).eval()
        with torch.no_grad():
            mlp.field.weight.mul_(scale)
        assert not certify(mlp).no_critical_points  # the certificate says nothing for ε = 0
        proof = no_critical_point_proof(mlp)
        assert proof.startswith("narrow MLP") and f"{act}' > 0" in proof
        cps = find_critical_points(mlp, box2, resolution=41)
        assert len(cps) == 0 and cps.structural == proof
    # width one, ε > 0, a large positive weight: not certified (δ‖W‖ = 7 > ε) but monotone
    w1 = ResNet(1, 1, 1, 2, eps=1.0, delta=1.0, seed=0).eval()
    w1.set_block(0, [[7.0]], [0.3]).set_block(1, [[-0.9]], [0.0])
    assert not certify(w1).no_critical_points
    assert no_critical_point_proof(w1).startswith("width one")
    assert len(find_critical_points(w1, [(-3.0, 3.0)])) == 0
    # ... and with w = -5 < -ε/δ it folds: no proof, and the search finds the two folds
    w1.set_block(1, [[-5.0]], [0.0])
    assert no_critical_point_proof(w1) is None
    assert len(find_critical_points(w1, [(-3.0, 3.0)])) >= 2


def test_no_structural_proof_without_its_hypotheses():
    relu = ResNet.mlp(2, 2, 1, 3, activation="relu", seed=1).eval()  # σ' = 0 on a half-line
    assert no_critical_point_proof(relu) is None
    singular = ResNet.mlp(2, 2, 1, 3, seed=1).eval()
    singular.set_block(1, [[1.0, 2.0], [2.0, 4.0]])  # rank 1
    assert no_critical_point_proof(singular) is None
    augmented = ResNet.mlp(2, 3, 1, 2, input_map="affine", seed=1).eval()  # DA^T has a kernel
    assert no_critical_point_proof(augmented) is None
    zero_out = ResNet.mlp(2, 2, 1, 3, seed=1).eval()
    with torch.no_grad():
        zero_out.out.weight.zero_()
    assert no_critical_point_proof(zero_out) is None
    # BatchNorm with γ = 0 on one channel folds to a rank-1 block weight
    bn = ResNet.mlp(2, 2, 1, 2, batchnorm=True, seed=1)
    with torch.no_grad():
        bn.field.bn[0].weight[1] = 0.0
    assert no_critical_point_proof(bn.eval()) is None
    assert no_critical_point_proof(ResNet.mlp(2, 2, 1, 2, batchnorm=True, seed=1).eval()).startswith("narrow MLP")
