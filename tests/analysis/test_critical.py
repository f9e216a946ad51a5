"""The critical-point finder: injected points, Morse functions with known critical points,
independent Hessians, searching on the logit of a sigmoid output, flat regions, acceptance and
classification relative to the scale of the map, structural proofs, and bad input."""
import math

import numpy as np
import pytest
import torch

from analysis import CriticalPointContradiction, find_critical_points, hdf5, inject_critical_point
from odenet import ResNet

AH = torch.autograd.functional.hessian
AJ = torch.autograd.functional.jacobian

# a proof of "no critical points" contradicted by the search is an error in these tests
pytestmark = pytest.mark.filterwarnings("error::analysis.geometry.critical.CriticalPointContradiction")


def _fd_hessian(f, x, h=1e-4):
    """Central second differences of a scalar numpy-free function of one point (n,)."""
    n = x.numel()
    H = torch.zeros(n, n, dtype=torch.float64)
    E = torch.eye(n, dtype=torch.float64) * h
    for i in range(n):
        for j in range(n):
            H[i, j] = (f(x + E[i] + E[j]) - f(x + E[i] - E[j]) - f(x - E[i] + E[j]) + f(x - E[i] - E[j])) / (4 * h * h)
    return H


@pytest.mark.parametrize("seed, block, x0", [(0, 2, (0.1234, -0.2345)), (1, 0, (-0.31, 0.47)), (2, 4, (0.05, 0.6))])
def test_injected_critical_point_is_found(seed, block, x0):
    base = ResNet(2, 2, 1, 5, eps=1.0, delta=0.2, seed=seed).eval()
    x0 = torch.tensor(x0, dtype=torch.float64)
    m = inject_critical_point(base, block, x0)
    assert m is not base and not torch.equal(m.field.weight, base.field.weight)
    W = m.field.weight[block].detach()
    assert torch.allclose(W, -5.0 * torch.eye(2, dtype=torch.float64))

    def phi(v):
        return m(v[None])[0, 0]

    # independent check of the injection: autograd gradient vanishes at x0
    g0 = torch.autograd.functional.jacobian(phi, x0)
    assert float(g0.norm()) < 1e-14
    cps = find_critical_points(m, [(-1.0, 1.0), (-1.0, 1.0)])
    d = (cps.points - x0).norm(dim=1)
    i = int(torch.argmin(d))
    assert float(d[i]) <= 1e-8
    assert float(cps.gradient_residual[i]) <= 1e-10
    # classification against the sign pattern of an independently computed Hessian: at an
    # injected point the Hessian vanishes too (tanh''(0) = 0), so the point is degenerate
    H = AH(phi, cps.points[i])
    lam = torch.linalg.eigvalsh(H)
    assert float(lam.abs().max()) < 1e-6
    assert cps.kinds[i] == "degenerate" and bool(cps.degenerate[i])
    assert cps[i].kind == "degenerate" and cps[i].point.shape == (2,)


def test_morse_function_in_2d():
    # f = x³ - 3x + y³ - 3y: minimum (1, 1), maximum (-1, -1), saddles (1, -1), (-1, 1)
    def f(X):
        return X[:, 0] ** 3 - 3 * X[:, 0] + X[:, 1] ** 3 - 3 * X[:, 1]

    cps = find_critical_points(f, [(-2.0, 2.0), (-1.7, 2.3)])
    assert len(cps) == 4
    expect = {(1, 1): "minimum", (-1, -1): "maximum", (1, -1): "saddle", (-1, 1): "saddle"}
    for cp in cps:
        key = tuple(int(round(v)) for v in cp.point.tolist())
        assert float((cp.point - torch.tensor(key, dtype=torch.float64)).abs().max()) < 1e-12
        assert cp.gradient_residual <= 1e-12
        assert cp.kind == expect[key]
        H = _fd_hessian(lambda v: f(v[None])[0], cp.point)
        neg = int((torch.linalg.eigvalsh(H) < 0).sum())
        assert cp.morse_index == neg and not cp.degenerate
        assert abs(cp.value - float(f(cp.point[None]))) < 1e-14


def test_morse_function_in_3d():
    # Σ cos x_i on [-1, 4]³: critical points at x_i ∈ {0, π}; index = number of zeros
    def f(X):
        return torch.cos(X).sum(1, keepdim=True)

    cps = find_critical_points(f, [(-1.0, 4.0)] * 3, resolution=21)
    assert len(cps) == 8
    for cp in cps:
        zeros = [abs(v) < 1e-9 for v in cp.point.tolist()]
        assert all(z or abs(v - math.pi) < 1e-9 for z, v in zip(zeros, cp.point.tolist()))
        signs = np.sign(np.diag(_fd_hessian(lambda v: f(v[None])[0, 0], cp.point).numpy()))
        assert cp.morse_index == int((signs < 0).sum()) == sum(zeros)
        assert cp.kind == {0: "minimum", 3: "maximum"}.get(cp.morse_index, "saddle")


def test_a_degenerate_minimum_is_flagged():
    # x⁴ + y²: degenerate minimum at 0
    cps = find_critical_points(lambda X: X[:, 0] ** 4 + X[:, 1] ** 2, [(-1.0, 1.3), (-1.0, 1.1)])
    assert len(cps) == 1 and cps.kinds == ["degenerate"]
    assert float(cps.points.abs().max()) < 1e-4  # a quartic zero: |x| ~ gradient^(1/3)


def test_folding_resnet_in_1d_matches_the_layer_closed_form():
    # width one, ε = δ = 1, w = -5: Φ(x) = F(x) critical at x = ±acosh(√5)/5
    m = ResNet(1, 1, 1, 1, eps=1.0, delta=1.0, seed=0).eval()
    m.set_block(0, [[-5.0]], [0.0])
    cps = find_critical_points(m, [(-2.0, 2.0)])
    r = math.acosh(math.sqrt(5)) / 5
    pts = sorted(cps.points[:, 0].tolist())
    assert len(pts) == 2 and abs(pts[0] + r) < 1e-12 and abs(pts[1] - r) < 1e-12
    sign_out = math.copysign(1, float(m.out.weight.detach()))
    kinds = dict(zip(cps.points[:, 0].tolist(), cps.kinds))
    assert kinds[pts[0]] == ("maximum" if sign_out > 0 else "minimum")


def test_bad_input():
    f = lambda X: (X ** 2).sum(1)
    with pytest.raises(ValueError, match="empty"):
        find_critical_points(f, [(1.0, 1.0), (0.0, 1.0)])
    with pytest.raises(ValueError, match="shape"):
        find_critical_points(f, [(0.0, 1.0, 2.0)])
    with pytest.raises(ValueError, match="shape"):
        find_critical_points(f, [])
    with pytest.raises(ValueError, match="scalar"):
        find_critical_points(lambda X: X, [(0.0, 1.0), (0.0, 1.0)])
    with pytest.raises(ValueError, match="n_in"):
        find_critical_points(ResNet(2, 2, seed=0).eval(), [(0.0, 1.0)] * 3)
    with pytest.raises(ValueError, match="scalar"):
        find_critical_points(ResNet(2, 2, 2, seed=0).eval(), [(0.0, 1.0)] * 2)
    with pytest.raises(ValueError, match="n=3"):
        find_critical_points(lambda X: X @ torch.ones(2, dtype=X.dtype), [(0.0, 1.0)] * 3)
    with pytest.raises(ValueError, match="finite"):
        find_critical_points(f, [(0.0, float("inf"))])
    with pytest.raises(ValueError, match="resolution"):
        find_critical_points(f, [(0.0, 1.0)], resolution=2)
    m = ResNet(2, 2, 1, 3, seed=0).eval()
    with pytest.raises(ValueError, match="block"):
        inject_critical_point(m, 3, [0.0, 0.0])
    with pytest.raises(ValueError, match="x0"):
        inject_critical_point(m, 0, [0.0, 0.0, 0.0])
    with pytest.raises(ValueError, match="tanh"):
        inject_critical_point(ResNet(2, 2, 1, 3, activation="relu", seed=0).eval(), 0, [0.0, 0.0])
    with pytest.raises(ValueError, match="eps"):
        inject_critical_point(ResNet.mlp(2, 2, 1, 3, seed=0).eval(), 0, [0.0, 0.0])


@pytest.mark.parametrize("seed", [1, 3])
def test_critical_points_of_a_folding_resnet_are_honest(seed):
    # ε = δ = 1 with large weights: folds; every reported point must be a critical point by an
    # independent autograd gradient, and its kind must match finite-difference Hessian signs
    m = ResNet(2, 2, 1, 3, eps=1.0, delta=1.0, seed=seed).eval()
    with torch.no_grad():
        m.field.weight.mul_(6.0)

    def phi(v):
        return m(v[None])[0, 0]

    cps = find_critical_points(m, [(-2.0, 2.0), (-2.0, 2.0)], resolution=81)
    assert len(cps) >= 4 and {"minimum", "maximum", "saddle"} <= set(cps.kinds)
    assert torch.cdist(cps.points, cps.points).add(torch.eye(len(cps))).min() > 1e-6  # deduplicated
    for cp in cps:
        g = torch.autograd.functional.jacobian(phi, cp.point)
        assert float(g.norm()) <= 1e-10
        if not cp.degenerate:
            with torch.no_grad():
                lam = torch.linalg.eigvalsh(_fd_hessian(phi, cp.point, h=1e-4))
            assert cp.morse_index == int((lam < 0).sum())


# --- sigmoid outputs, flat regions, relative scales, structure --------------------------------
def _fd_gradient_hessian(f, x, h=1e-5):
    """Central differences of the autograd gradient of f (one point (n,) -> scalar): an
    independent Hessian of f."""
    n = x.numel()
    E = torch.eye(n, dtype=torch.float64) * h
    cols = [(AJ(f, x + E[i]) - AJ(f, x - E[i])) / (2 * h) for i in range(n)]
    return torch.stack(cols, 1)


def saturated_mlp(scale, output="sigmoid"):
    """A narrow MLP (ε = 0, width 2, depth 3, tanh) with full-rank hand-set weights × ``scale``: for
    scale 8 and 12 most of [-3, 3]² is a tanh plateau where σ' = 1 - tanh² rounds to 0."""
    m = ResNet.mlp(2, 2, 1, 3, output=output, seed=0).eval()
    Ws = [[[1.0, 0.5], [-0.3, 1.2]], [[0.8, -1.0], [0.6, 0.9]], [[1.1, 0.2], [-0.7, 0.5]]]
    bs = [[0.1, -0.2], [0.3, 0.1], [-0.2, 0.25]]
    for l in range(3):
        m.set_block(l, scale * torch.tensor(Ws[l]), torch.tensor(bs[l]))
    with torch.no_grad():
        m.out.weight.copy_(torch.tensor([[1.5, -2.0]]))
        m.out.bias.fill_(0.3)
    return m


@pytest.mark.parametrize("scale", [8, 12])
def test_saturated_narrow_mlp_has_no_critical_points(scale):
    m = saturated_mlp(scale)
    assert all(int(torch.linalg.matrix_rank(W)) == 2 for W in m.field.weight.detach())
    box = [(-3.0, 3.0), (-3.0, 3.0)]
    cps = find_critical_points(m, box, resolution=41)
    assert len(cps) == 0 and cps.kinds == [] and cps.counts() == dict(minimum=0, maximum=0, saddle=0, degenerate=0)
    assert cps.searched_on == "logit"
    assert cps.structural is not None and cps.structural.startswith("narrow MLP") and "full rank" in cps.structural
    # the plateau is reported, apart: flat points, where the old search (on Φ, |∇Φ| ≤ 1e-9
    # absolute) would have stopped and counted a "degenerate critical point"
    assert cps.n_flat > 0 and cps.flat_points.shape == (cps.n_flat, 2)

    def phi(v):
        return m(v[None])[0, 0]

    grad_phi = torch.stack([AJ(phi, p) for p in cps.flat_points])
    assert float(grad_phi.norm(dim=1).max()) <= 1e-9


def test_saturated_plateau_searched_on_the_output_is_flat_too():
    # searching on Φ = s ∘ g itself (a plain callable, no logit): the acceptance relative to Φ's
    # scale and the flat-region test still count no plateau point
    m = saturated_mlp(8)
    on_phi = find_critical_points(lambda X: m(X), [(-3.0, 3.0), (-3.0, 3.0)], resolution=41)
    assert on_phi.searched_on == "output" and on_phi.structural is None
    assert len(on_phi) == 0 and on_phi.n_flat > 0


def planted_minimum(x_star, output="linear", w_out=1.0, b_out=0.0):
    """An augmented MLP (ε = 0, n = 2, width 3, one block, affine input) whose logit is

        g(x) = w Σ_j tanh(a_j · (x - x*) + c) + b_out,   a_j = k (cos θ_j, sin θ_j), θ_j = θ + 2πj/3,

    with c = -1/2: Σ a_j = 0 gives ∇g(x*) = 0 and ∇²g(x*) = w tanh''(c) (3k²/2) I, positive
    definite for w > 0 (tanh''(c) = -2 tanh c sech² c > 0).  The block weights mix the units
    (W_1 = M, W_in = M⁻¹ A) so that nothing is diagonal."""
    k, theta, c = 1.5, 0.4, -0.5
    ang = theta + 2 * math.pi * torch.arange(3, dtype=torch.float64) / 3
    A = k * torch.stack([ang.cos(), ang.sin()], 1)
    M = torch.tensor([[1.0, 0.3, -0.2], [0.1, 1.2, 0.4], [-0.3, 0.2, 0.9]], dtype=torch.float64)
    b_in = torch.tensor([0.1, -0.2, 0.3], dtype=torch.float64)
    x_star = torch.as_tensor(x_star, dtype=torch.float64)
    m = ResNet.mlp(2, 3, 1, 1, input_map="affine", output=output, seed=0).eval()
    with torch.no_grad():
        m.inp.weight.copy_(torch.linalg.solve(M, A))
        m.inp.bias.copy_(b_in)
        m.out.weight.fill_(w_out)
        m.out.bias.fill_(b_out)
    m.set_block(0, M, c - A @ x_star - M @ b_in)
    curvature = w_out * (-2 * math.tanh(c) / math.cosh(c) ** 2) * 1.5 * k ** 2
    return m, curvature


@pytest.mark.parametrize("output, b_out", [("linear", 0.0), ("sigmoid", 25.0)])
def test_planted_minimum_of_an_augmented_network(output, b_out):
    x_star = torch.tensor([0.3, -0.4], dtype=torch.float64)
    m, curvature = planted_minimum(x_star, output, b_out=b_out)

    def g(v):
        return m.logits(v[None])[0, 0]

    # the construction, independently: a zero of the autograd gradient with a positive
    # definite finite-difference Hessian equal to the closed form
    assert float(AJ(g, x_star).norm()) < 1e-14
    H_fd = _fd_gradient_hessian(g, x_star)
    assert torch.allclose(H_fd, curvature * torch.eye(2, dtype=torch.float64), atol=1e-8)
    cps = find_critical_points(m, [(-2.0, 2.0), (-2.0, 2.0)])
    d = (cps.points - x_star).norm(dim=1)
    i = int(torch.argmin(d))
    assert float(d[i]) <= 1e-8
    assert cps.kinds[i] == "minimum" and int(cps.morse_index[i]) == 0 and not bool(cps.degenerate[i])
    assert torch.allclose(cps.hessians[i], H_fd, atol=1e-7)
    with torch.no_grad():
        assert abs(cps.values[i] - float(m(x_star[None]))) < 1e-12  # values are Φ, the network output
    assert cps.structural is None  # augmented: width 3 > n = 2, no proof
    for cp in cps:  # every reported point is a zero of the logit's gradient
        assert float(AJ(g, cp.point).norm()) <= 1e-10
    if output == "sigmoid":
        assert cps.searched_on == "logit"
        # Φ = s(g) with s'(g(x*)) ≈ e^-25: Φ's Hessian is ~1e-11, which a threshold of the form
        # tol · max(1, |λ|) would call degenerate; classified on g it is a minimum
        phi = lambda v: m(v[None])[0, 0]  # noqa: E731
        assert float(torch.linalg.eigvalsh(AH(phi, x_star)).abs().max()) < 1e-9
        # the same search through a plain callable with logit=
        same = find_critical_points(lambda X: m(X), [(-2.0, 2.0), (-2.0, 2.0)], logit=m.logits)
        assert same.searched_on == "logit" and same.kinds == cps.kinds
        assert torch.allclose(same.points, cps.points, atol=1e-12)


@pytest.mark.parametrize("x0", [(0.1234, -0.2345), (0.0, 0.0)])
def test_injected_critical_point_is_classified_on_the_logit(x0):
    # (0, 0) is a node of the seed grid, where the gradient vanishes to the last bit
    base = ResNet(2, 2, 1, 5, eps=1.0, delta=0.2, output="sigmoid", seed=4).eval()
    x0 = torch.tensor(x0, dtype=torch.float64)
    m = inject_critical_point(base, 2, x0)

    def g(v):
        return m.logits(v[None])[0, 0]

    assert float(AJ(g, x0).norm()) < 1e-14
    cps = find_critical_points(m, [(-1.0, 1.0), (-1.0, 1.0)])
    assert cps.searched_on == "logit" and cps.structural is None
    d = (cps.points - x0).norm(dim=1)
    i = int(torch.argmin(d))
    assert float(d[i]) <= 1e-8
    assert cps.kinds[i] == "degenerate"
    assert torch.allclose(cps.hessians[i], AH(g, cps.points[i]), atol=1e-12, rtol=0)
    # degenerate relative to the curvature of the logit on the box, not absolutely
    assert float(cps.eigenvalues[i].abs().max()) <= 1e-6 * cps.hessian_scale
    if cps.n_flat:
        assert float((cps.flat_points - x0).norm(dim=1).min()) > 1e-3


@pytest.mark.parametrize("c", [1e-6, 1e-9])
def test_scaling_the_map_changes_nothing(c):
    x_star = torch.tensor([-0.25, 0.35], dtype=torch.float64)
    box = [(-2.0, 2.0), (-2.0, 2.0)]
    ref = find_critical_points(planted_minimum(x_star)[0], box)
    small_net, curvature = planted_minimum(x_star, w_out=c, b_out=0.7 * c)
    assert curvature < 1e-5  # a minimum of small curvature: it must not become "degenerate"
    small = find_critical_points(small_net, box)
    assert len(ref) >= 1 and len(small) == len(ref)
    match = torch.cdist(small.points, ref.points).argmin(1)  # the same points, in any order
    assert sorted(match.tolist()) == list(range(len(ref)))
    assert torch.allclose(small.points, ref.points[match], atol=1e-8)
    assert [ref.kinds[j] for j in match.tolist()] == small.kinds and "minimum" in small.kinds
    assert torch.allclose(small.eigenvalues, c * ref.eigenvalues[match], rtol=1e-6, atol=0)

    # a near-fold without critical point: |∇g| ≥ c·a > 0; an absolute tolerance 1e-9 accepts
    # the origin as soon as c·a < 1e-9
    a = 1e-4

    def near_fold(X):
        return c * (X[:, 0] ** 3 / 3 + a * X[:, 0] + X[:, 1] ** 2)

    for f in (near_fold, lambda X: near_fold(X) / c):
        cps = find_critical_points(f, [(-1.0, 1.3), (-1.1, 1.0)])
        assert len(cps) == 0 and cps.n_flat == 0


def test_a_flat_region_is_not_a_critical_point():
    # dead ReLU units: g is constant on an open half-plane, every point there has ∇g = 0 and no
    # Morse type.  The half-plane is reported as flat; the ReLU kink is not a smooth point.
    def g(X):
        return torch.relu(X[:, 0] - 0.5) ** 3 + torch.relu(X[:, 0] - 0.5) * X[:, 1] ** 2

    cps = find_critical_points(g, [(-1.0, 1.0), (-1.0, 1.0)], resolution=41)
    assert len(cps) == 0
    assert cps.n_flat > 0 and bool((cps.flat_points[:, 0] <= 0.5 + 1e-9).all())


def test_a_structural_proof_contradicted_by_the_search_is_loud(monkeypatch):
    import analysis.geometry.critical as critical

    m = ResNet(1, 1, 1, 1, eps=1.0, delta=1.0, seed=0).eval()
    m.set_block(0, [[-5.0]], [0.0])  # folds: two critical points
    monkeypatch.setattr(critical, "no_critical_point_proof", lambda net: "a wrong proof")
    with pytest.warns(CriticalPointContradiction, match="a wrong proof"):
        cps = find_critical_points(m, [(-2.0, 2.0)])
    assert len(cps) == 2 and cps.structural == "a wrong proof"  # the points are kept for inspection


def test_new_fields_round_trip_and_old_files_read(tmp_path):
    import h5py

    cps = find_critical_points(saturated_mlp(12), [(-3.0, 3.0), (-3.0, 3.0)], resolution=31)
    assert cps.n_flat > 0 and cps.structural is not None
    back = hdf5.load(hdf5.save(tmp_path / "c.h5", cps))
    assert torch.equal(back.flat_points, cps.flat_points) and back.searched_on == "logit"
    assert back.structural == cps.structural and back.accept_threshold == cps.accept_threshold
    # a file written before these fields existed: the new fields read back as their defaults
    old = find_critical_points(lambda X: (X ** 2).sum(1), [(-1.0, 1.2), (-1.0, 1.1)], resolution=11)
    path = hdf5.save(tmp_path / "old.h5", old)
    with h5py.File(path, "a") as f:
        grp = f["criticalpoints"]
        del grp["flat_points"]
        for k in ("searched_on", "gradient_scale", "hessian_scale", "accept_threshold"):
            del grp.attrs[k]
    back = hdf5.load(path)
    assert len(back) == 1 and back.kinds == ["minimum"] and back.searched_on == "output"
    assert back.flat_points.shape == (0, 2) and back.structural is None and math.isnan(back.gradient_scale)


def test_bad_logit():
    f = lambda X: torch.sigmoid(X[:, 0] - X[:, 1])  # noqa: E731
    box = [(-1.0, 1.0), (-1.0, 1.0)]
    with pytest.raises(ValueError, match="monotone"):
        find_critical_points(f, box, logit=lambda X: X[:, 0] + X[:, 1])
    with pytest.raises(TypeError, match="logit must be callable"):
        find_critical_points(f, box, logit=3.0)
    with pytest.raises(ValueError, match="logit must be scalar"):
        find_critical_points(f, box, logit=lambda X: X)
    with pytest.raises(ValueError, match="plain callables"):
        find_critical_points(ResNet(2, 2, output="sigmoid", seed=0).eval(), box, logit=f)
    with pytest.raises(ValueError, match="xtol"):
        find_critical_points(f, box, xtol=0.0)
    # a decreasing s is allowed: Φ = sigmoid(-g)
    cps = find_critical_points(lambda X: torch.sigmoid(-(X ** 2).sum(1)), box, logit=lambda X: (X ** 2).sum(1))
    assert len(cps) == 1 and cps.kinds == ["minimum"] and cps.searched_on == "logit"


@pytest.mark.parametrize("resolution", [31, 101])
def test_injection_forces_degenerate_points_on_its_singular_lines_each_found_once(resolution):
    """Φ = Ψ ∘ F with F the injected block (ε = 1, δ = 0.2, x₀ = (0.1, -0.2), identity input):
    F_i(x) = x_i - δ tanh((x_i - x₀_i)/δ), DF = diag(tanh²((x_i - x₀_i)/δ)), singular on the lines
    x_i = x₀_i.  With Ψ(h) = sin(2 h₁) + cos(1.5 h₂), ∂_iΦ = F_i'(x_i) ∂_iΨ(F(x)) vanishes iff
    x₁ ∈ {x₀₁} ∪ {F₁ = ±π/4} and x₂ ∈ {x₀₂} ∪ {F₂ = 0}: six critical points in closed form, the
    four on a singular line degenerate (F_i' has a double zero there), the other two not.  This is
    why retrained injected networks report many degenerate points: every zero of the remaining
    partial derivative along the lines x_i = x₀_i is a genuine, distinct one."""
    from scipy.optimize import brentq

    x0 = torch.tensor([0.1, -0.2], dtype=torch.float64)
    net = inject_critical_point(ResNet(2, 2, 1, 1, eps=1.0, delta=0.2, seed=0).eval(), 0, x0)

    def fn(X):
        H = net.blocks(net.embed(X))
        return torch.sin(2 * H[:, 0]) + torch.cos(1.5 * H[:, 1])

    F = [lambda t, c=float(c): t - 0.2 * math.tanh((t - c) / 0.2) for c in x0]
    xs1 = [0.1] + [brentq(lambda t, v=v: F[0](t) - v, -1.2, 1.2) for v in (-math.pi / 4, math.pi / 4)]
    xs2 = [-0.2, brentq(F[1], -1.2, 1.2)]
    truth = torch.tensor([[a, b] for a in xs1 for b in xs2], dtype=torch.float64)
    on_line = (truth - x0).abs().amin(1) < 1e-12
    cps = find_critical_points(fn, [(-1.2, 1.2), (-1.2, 1.2)], resolution=resolution)
    assert len(cps) == 6 and cps.n_flat == 0
    d = torch.cdist(truth, cps.points)
    assert (d.amin(1) < 1e-6).all() and (d.amin(0) < 1e-6).all()  # each true point found, nothing else
    found_degenerate = cps.degenerate[d.argmin(1)]
    assert torch.equal(found_degenerate, on_line) and int(on_line.sum()) == 4
