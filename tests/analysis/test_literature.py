"""analysis.experiments.literature: the registry, the runner's files and input checks, the studies' small pure
functions; each study's --quick form in a slow test that checks its claims rows are written."""
import math

import h5py
import numpy as np
import pytest
import torch

from analysis import hdf5
from analysis.experiments.literature import STUDIES, claims_markdown, run_studies, run_study, study_names
from analysis.experiments.literature.iresnet2019 import logdet_truncation_bound, power_series_logdet
from analysis.experiments.literature.records import ClaimRow, StudyRecord


def test_registry_names_sources_and_modules():
    assert study_names()[0] == "iresnet2019"
    for name, s in STUDIES.items():
        assert s.name == name and s.source and s.description
        assert callable(s.run)


@pytest.mark.parametrize("names", [["nope"], [], "sander", ["all", "iresnet2019"]])
def test_run_studies_rejects_unknown_names_before_any_work(tmp_path, names):
    with pytest.raises(ValueError, match="names must"):
        run_studies(names, tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("name", ["all", "nope", ["iresnet2019"], None])
def test_run_study_takes_exactly_one_study_name(name):
    with pytest.raises(ValueError, match=r"name must be one study among .*got"):
        run_study(name)


def test_run_studies_rejects_bad_seeds_and_a_file_as_out(tmp_path):
    with pytest.raises(ValueError, match="seeds"):
        run_studies("all", tmp_path, seeds=1, progress=False)
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(ValueError, match="out must be a folder"):
        run_studies(["iresnet2019"], f, progress=False)


def test_claim_row_rejects_unknown_verdicts_and_table_escapes_pipes():
    with pytest.raises(ValueError, match="verdict"):
        ClaimRow("s", "c", "src", "e", "m", "maybe")
    md = claims_markdown([ClaimRow("s", "|x| < 1", "src", "e", "m", "contradicts", "why")])
    assert "\\|x\\| < 1" in md and "**contradicts**" in md


def test_power_series_logdet_converges_to_slogdet_within_the_bound():
    g = torch.Generator().manual_seed(0)
    m, q, eps, delta = 5, 0.7, 2.0, 1.0
    W = torch.randn(m, m, generator=g, dtype=torch.float64)
    W *= q * eps / delta / torch.linalg.matrix_norm(W, ord=2)
    b = torch.randn(m, generator=g, dtype=torch.float64)
    h = torch.randn(7, m, generator=g, dtype=torch.float64)
    series = power_series_logdet(W, b, h, eps, delta, 60)
    # exact Jacobian by autograd, independently of the closed form used in the series
    F = lambda x: eps * x + delta * torch.tanh(W @ x + b)  # noqa: E731
    exact = torch.stack([torch.linalg.slogdet(torch.autograd.functional.jacobian(F, x)).logabsdet for x in h])
    err = (series - exact).abs().amax(1).numpy()
    bound = logdet_truncation_bound(q, m, 60)
    assert (err <= bound + 1e-12).all()
    assert err[-1] < 1e-8 and err[0] > 1e-3  # it converges, and one term is not enough
    assert bound[1] == pytest.approx(m * q ** 3 / (3 * (1 - q)))


@pytest.mark.slow
@pytest.mark.parametrize("name", study_names())
def test_quick_study_writes_its_group_figure_and_claims_rows(tmp_path, name):
    rows = run_studies([name], tmp_path, quick=True, progress=False)
    assert rows and all(r.study == name and r.verdict in ("consistent", "contradicts") for r in rows)
    assert all(r.measured and r.expected for r in rows)
    rec = hdf5.load(tmp_path / "literature.h5", name)
    assert isinstance(rec, StudyRecord) and rec.claim == [r.claim for r in rows]
    assert rec.config["quick"] is True
    md = (tmp_path / "literature.md").read_text()
    assert all(r.claim.replace("|", "\\|") in md for r in rows)
    assert list((tmp_path / "figures").glob(f"literature_{name}*.png"))


@pytest.mark.slow
def test_rerunning_a_study_replaces_its_group_and_rows(tmp_path):
    first = run_studies(["iresnet2019"], tmp_path, quick=True, seeds=2, progress=False)
    before = (tmp_path / "literature.md").read_text()
    run_studies(["iresnet2019"], tmp_path, quick=True, seeds=3, progress=False)  # replaced, not duplicated
    with h5py.File(tmp_path / "literature.h5") as f:
        assert list(f) == ["iresnet2019"]
    assert hdf5.load(tmp_path / "literature.h5", "iresnet2019").config["seeds"] == 3
    claim = first[0].claim.replace("|", "\\|")
    assert before.count(claim) == (tmp_path / "literature.md").read_text().count(claim) == 1


# --- sander2022 ------------------------------------------------------------------------------------
def test_linear_resnet_gradient_step_matches_autograd():
    from analysis.experiments.literature.sander2022 import train_linear_resnet

    rng = np.random.default_rng(0)
    Y = np.eye(2) + rng.standard_normal((3, 2, 2))
    N, rate = 5, 0.1
    # one step from a random A is not reachable through the function (it starts at 0): check the
    # first step from 0 against autograd of ½‖∏(I + A_n/N) - Y‖² at A = 0
    A1, _, _ = train_linear_resnet(N, Y, rate=rate, max_iter=1)
    A = torch.zeros(3, N, 2, 2, dtype=torch.float64, requires_grad=True)
    X = torch.eye(2, dtype=torch.float64).expand(3, 2, 2)
    for n in range(N):
        X = (torch.eye(2, dtype=torch.float64) + A[:, n] / N) @ X
    (0.5 * (X - torch.as_tensor(Y)).square().sum()).backward()
    assert np.allclose(A1, -rate * N * A.grad.numpy(), atol=1e-14)
    # and a second step, from a non-zero A, through the prefix/suffix products
    A2, _, _ = train_linear_resnet(N, Y, rate=rate, max_iter=2)
    At = torch.tensor(A1, requires_grad=True)
    X = torch.eye(2, dtype=torch.float64).expand(3, 2, 2)
    for n in range(N):
        X = (torch.eye(2, dtype=torch.float64) + At[:, n] / N) @ X
    (0.5 * (X - torch.as_tensor(Y)).square().sum()).backward()
    assert np.allclose(A2, A1 - rate * N * At.grad.numpy(), atol=1e-13)


def test_reconstruction_check_flags_a_sign_inverted_backward_step():
    from analysis.experiments.literature.sander2022 import reconstruction_check, reconstruction_error

    g = torch.Generator().manual_seed(1)
    W, b = torch.randn(4, 4, generator=g, dtype=torch.float64), torch.randn(4, generator=g, dtype=torch.float64)
    f = lambda x: torch.tanh(x @ W.T + b)  # noqa: E731
    x0 = torch.randn(8, 4, generator=g, dtype=torch.float64)
    N = [4, 8, 16, 32, 64, 128]
    good = reconstruction_check(N, [reconstruction_error(f, x0, n) for n in N])
    bad = reconstruction_check(N, [reconstruction_error(f, x0, n, backward_sign=+1.0) for n in N])
    assert not good.flagged and abs(good.slope + 1) < 0.1
    assert bad.flagged and abs(bad.slope) < 0.1
    # closed form: f constant c -> Euler is exact both ways, error 0 (nothing to flag)
    assert reconstruction_error(lambda x: torch.ones_like(x), x0, 8) < 1e-15


# --- marion2025 ------------------------------------------------------------------------------------
def test_propagate_closed_form_for_identity_weights_and_positive_states():
    from analysis.experiments.literature.marion2025 import propagate

    L, d, c, beta = 50, 3, 0.7, 0.5
    V = c * torch.eye(d, dtype=torch.float64).expand(2, L, d, d).clone()
    W = torch.eye(d, dtype=torch.float64).expand(2, L, d, d).clone()
    h0 = torch.tensor([[1.0, 2.0, 0.5], [0.2, 0.1, 3.0]], dtype=torch.float64)  # ReLU(h) = h while h > 0
    u = torch.tensor([[1.0, 0.0, 0.0], [0.0, 3.0, 4.0]], dtype=torch.float64)
    r, g = propagate(V, W, beta, h0, u)
    growth = (1 + c * L ** -beta) ** L
    assert np.allclose(r, growth - 1, rtol=1e-12) and np.allclose(g, growth, rtol=1e-12)
    r0, g0 = propagate(torch.zeros_like(V), W, beta, h0, u)
    assert np.allclose(r0, 0) and np.allclose(g0, 1)


def test_regime_and_critical_beta_on_synthetic_power_laws():
    from analysis.experiments.literature.marion2025 import critical_beta, regime

    L = np.array([10, 100, 1000])
    assert regime(L, 0.5 * L ** -0.5) == "identity"
    assert regime(L, 0.5 * L ** 0.0) == "non-trivial"
    assert regime(L, 0.5 * L ** 0.5) == "explode"
    assert regime(L, np.array([1.0, 10.0, np.inf])) == "explode"
    betas = np.array([0.3, 0.5, 0.7, 0.9])
    assert critical_beta(betas, 0.6 - betas) == pytest.approx(0.6)  # s(β) = β_c - β crosses 0 at β_c
    assert math.isnan(critical_beta(betas, np.ones(4)))


# --- morse2024 -------------------------------------------------------------------------------------
def test_morse_architectures_have_the_gradient_structure_the_claims_rest_on():
    from torch.func import grad, vmap

    from analysis.experiments.literature.morse2024 import random_network

    g = torch.Generator().manual_seed(4)
    x = 3 * torch.rand(200, 2, generator=g, dtype=torch.float64) - 1.5
    for _ in range(5):
        bn = random_network("bottleneck", g)
        G = vmap(grad(lambda p: bn(p[None])[0]))(x)
        # Φ depends on a·x only: all gradients are parallel (2x2 minors vanish)
        minors = G[:-1, 0] * G[1:, 1] - G[:-1, 1] * G[1:, 0]
        assert minors.abs().max() <= 1e-12 * G.norm(dim=1).max() ** 2
        nw = random_network("narrow", g)
        Gn = vmap(grad(lambda p: nw(p[None])[0]))(x)
        assert (Gn.norm(dim=1) > 0).all()
    with pytest.raises(ValueError, match="family"):
        random_network("wide", g)


def test_run_studies_keeps_finished_studies_when_a_later_one_fails(tmp_path, monkeypatch):
    import analysis.experiments.literature as lit
    from analysis.experiments.literature.records import StudyResult

    def fake(name, *, quick, seeds, seed):
        if name == "sander2022":
            raise KeyboardInterrupt  # an interruption after the first study
        row = ClaimRow(name, "a | claim", "src", "1", "1", "consistent")
        return StudyResult(name, "src", {"x": np.arange(3.0)}, [row], config={"quick": quick}), 1.0, 0.5

    monkeypatch.setattr(lit, "run_study", fake)
    with pytest.raises(KeyboardInterrupt):
        run_studies(["iresnet2019", "sander2022"], tmp_path, progress=False)
    rec = hdf5.load(tmp_path / "literature.h5", "iresnet2019")
    assert np.array_equal(rec.data["x"], np.arange(3.0)) and rec.rows()[0].claim == "a | claim"
    md = (tmp_path / "literature.md").read_text()
    assert "a \\| claim" in md and "sander2022" not in md
    assert not list(tmp_path.glob(".*.tmp"))  # no temporary file left behind


# --- anode2019 -------------------------------------------------------------------------------------
def test_annuli_sampler_radii_labels_and_published_radius_law():
    from scipy import stats

    from analysis.experiments.literature.anode2019 import annuli

    x, y = annuli(4001, torch.Generator().manual_seed(0))
    r = x.norm(dim=1)
    assert x.shape == (4001, 2) and int((y == 0).sum()) == 2000 and int((y == 1).sum()) == 2001
    assert (r[y == 0] <= 0.5).all() and ((r[y == 1] >= 1) & (r[y == 1] <= 1.5)).all()
    # r = r0 + (r1 - r0) sqrt(u): ((r - r0)/(r1 - r0))² is uniform on [0, 1]
    u = ((r[y == 1] - 1) / 0.5).square().numpy()
    assert stats.kstest(u, "uniform").pvalue > 1e-3
    with pytest.raises(ValueError, match="n must"):
        annuli(1, torch.Generator())


def test_flip_mse_closed_form_and_the_bound_for_ordered_1d_flows():
    from analysis.experiments.literature.anode2019 import flip_mse
    from odenet import NeuralODE

    assert float(flip_mse(torch.tensor([1.0, -1.0]))) == 0.0
    assert float(flip_mse(torch.tensor([[0.0], [0.0]]))) == 1.0
    x = torch.tensor([[-1.0], [1.0]], dtype=torch.float64)
    for seed in range(5):
        # any 1-D flow keeps the order: z_T(-1) < z_T(1), hence ½[(a-1)² + (b+1)²] ≥ 1 for a ≤ b
        m = NeuralODE(1, 1, 1, field="mlp", hidden=8, seed=seed)
        with torch.no_grad():
            z = m.integrate(m.embed(x))
        assert z[0, 0] < z[1, 0] and float(flip_mse(z[:, 0])) >= 1.0
    a, b = np.meshgrid(np.linspace(-3, 3, 61), np.linspace(-3, 3, 61))
    ordered = a <= b
    vals = 0.5 * ((a - 1) ** 2 + (b + 1) ** 2)
    assert vals[ordered].min() == pytest.approx(1.0)


def test_anode_figure_draws_every_seed_and_marks_flagged_flows():
    import matplotlib.pyplot as plt

    from analysis.plots.literature import anode_figure

    rng = np.random.default_rng(0)
    data = {"flip_loss_node": np.ones((2, 5)), "flip_loss_anode": np.linspace(1, 1e-4, 10)[None].repeat(2, 0),
            "epoch": np.arange(1, 4), "annuli_acc_node": rng.random((2, 3)), "annuli_acc_anode": rng.random((2, 3)),
            "annuli_nfev_node": np.full((2, 3), 14.0), "annuli_nfev_anode": np.full((2, 3), 20.0),
            "recon_error": np.array([1e-4, 0.5, 1e-3]), "recon_flagged": np.array([False, True, False]),
            "recon_threshold": 0.1}
    fig = anode_figure(data)
    a, b, c, d = fig.axes[:4]
    assert len(a.lines) == 4 + 1 and len(b.lines) == 4 and len(c.lines) == 4  # 2 seeds x 2 models (+ bound)
    assert np.allclose(c.lines[2].get_ydata(), 20.0)
    passed, flagged = d.lines[0], d.lines[1]
    assert np.allclose(flagged.get_ydata(), [0.5]) and np.allclose(passed.get_xdata(), [0, 2])
    assert d.lines[2].get_ydata()[0] == 0.1
    plt.close(fig)
