"""cohen2021: the weight-path statistics on closed-form and synthetic paths, the depth grid, the
data, the trainer's early stopping and the figure's content (the study's --quick form runs in
tests/analysis/test_literature.py's slow test, through the registry)."""
import math

import numpy as np
import pytest
import torch

from analysis.experiments.literature.cohen2021 import (D, estimator_check, geometric_depths, ode_data,
                                           path_statistics, train)
from analysis.experiments.literature.estimators import brownian_path, power_law_slope


def test_path_statistics_closed_forms_for_constant_weights():
    # A_k = C / L: no increments; W_k = k C / L is a straight segment of length |C|, so every
    # p-variation is |C|^p (one interval is optimal for a monotone segment)
    L = 40
    C = np.arange(D * D, dtype=float).reshape(D, D) / 50.0
    st = path_statistics(np.broadcast_to(C / L, (L, D, D)))
    c = np.linalg.norm(C)
    assert st["max_norm"] == pytest.approx(c / L)
    assert st["max_increment"] == 0.0 and st["quadratic_variation"] == 0.0
    for p in (1, 2, 3):
        assert st[f"pvar{p}"] == pytest.approx(c ** p)
    assert st["roughness"] == pytest.approx(1.0, abs=1e-9)


def test_path_statistics_scaling_separates_smooth_from_diffusive_weights():
    """Smooth A_k = a(k/L)/L: max|A| ~ L^-1, max|ΔA| ~ L^-2, Σ|ΔA|² ~ L^-3, W smooth (roughness 1).
    I.i.d. A_k ~ N(0, 1/L) per entry: Σ|ΔA|² → 2 d² (flat in L), W Brownian (roughness ½)."""
    rng = np.random.default_rng(0)
    depths = [64, 128, 256, 512]
    B = rng.standard_normal((D, D))
    smooth = [path_statistics(np.sin(2 * np.pi * np.arange(L) / L)[:, None, None] * B / L) for L in depths]
    slope = lambda key, st: power_law_slope(depths, [s[key] for s in st]).order
    assert slope("max_norm", smooth) == pytest.approx(-1, abs=0.01)
    assert slope("max_increment", smooth) == pytest.approx(-2, abs=0.02)
    assert slope("quadratic_variation", smooth) == pytest.approx(-3, abs=0.03)
    assert all(s["roughness"] > 0.95 for s in smooth)
    noisy = [[path_statistics(rng.standard_normal((L, D, D)) / math.sqrt(L)) for _ in range(4)] for L in depths]
    qv = np.array([[s["quadratic_variation"] for s in row] for row in noisy])
    assert np.abs(qv / (2 * D * D) - 1).max() < 0.15   # E Σ|ΔA|² = 2 d² (L - 1)/L, sd ~ 1/(d √L)
    assert abs(power_law_slope(depths, qv.mean(1)).order) < 0.05
    rough = np.array([s["roughness"] for row in noisy for s in row])
    assert abs(rough.mean() - 0.5) < 0.05


def test_brownian_quadratic_variation_is_one_over_many_seeds():
    rng = np.random.default_rng(5)
    qv = (np.diff(brownian_path(4096, 200, rng=rng), axis=0) ** 2).sum(0)
    # Σ over n steps of (N(0, 1/n))² has mean 1 and sd √(2/n) ≈ 0.022
    assert abs(qv.mean() - 1) < 3 * math.sqrt(2 / 4096) / math.sqrt(200) + 1e-3
    assert qv.std() == pytest.approx(math.sqrt(2 / 4096), rel=0.2)


def test_estimator_check_recovers_ground_truth():
    est = estimator_check(seed=3, n=512, paths=10)
    assert est["smooth_roughness"] == pytest.approx(1.0, abs=0.01)
    assert abs(est["smooth_v1_slope"]) < 0.01
    assert abs(np.mean(est["brownian_roughness"]) - 0.5) < 0.05
    assert est["brownian_v1_slope"] == pytest.approx(0.5, abs=0.1)
    assert np.median(est["brownian_qv"]) == pytest.approx(1.0, abs=0.1)


def test_geometric_depths_is_the_published_grid_and_checks_its_input():
    grid = geometric_depths(3, 1000, 1.2)
    assert grid == sorted({math.floor(1.2 ** k) for k in range(60)} & set(range(3, 1001)))
    assert grid[:4] == [3, 4, 5, 6] and grid[-1] == 850  # ⌊1.2^37⌋ = ⌊850.6⌋; 1.2^38 > 1000
    assert geometric_depths(8, 64, 2.0) == [8, 16, 32, 64]
    with pytest.raises(ValueError, match="low"):
        geometric_depths(0, 10, 2.0)
    with pytest.raises(ValueError, match="base"):
        geometric_depths(2, 10, 1.0)


def test_ode_data_unit_norms_and_one_draw_per_member():
    x, y = ode_data(64, 3, seed=1)
    assert x.shape == y.shape == (3, 64, D)
    assert torch.allclose(x.norm(dim=-1), torch.ones(3, 64, dtype=torch.float64)) and torch.allclose(y.norm(dim=-1), torch.ones(3, 64, dtype=torch.float64))
    assert not torch.allclose(x[0], x[1])
    assert (x - y).norm(dim=-1).min() > 1e-2  # the map moves every point
    x2, _ = ode_data(64, 3, seed=1)
    assert torch.equal(x, x2)


def test_train_stops_each_member_by_the_published_rules():
    x, y = ode_data(64, 2, seed=0)
    # a tolerance every loss meets: both stop after the first epoch, converged
    r = train(4, x, y, "tanh", max_epochs=10, seed=0, batch=32, tol=10.0)
    assert (r["epochs"] == 1).all() and r["converged"].all()
    assert r["A"].shape == (2, 4, D, D) and r["A"].abs().max() > 1e-3  # trained away from the 1e-5 start
    # an unreachable tolerance: they stop on the budget, not converged, losses finite and falling
    r3 = train(4, x, y, "relu", max_epochs=3, seed=0, batch=32, tol=0.0)
    assert (r3["epochs"] == 3).all() and not r3["converged"].any() and np.isfinite(r3["loss"]).all()
    with pytest.raises(ValueError, match="multiple of batch"):
        train(4, x, y, "tanh", max_epochs=1, seed=0, batch=50)


def _fake_data(depths, S=3):
    rng = np.random.default_rng(0)
    data = dict(L=np.array(depths))
    for act in ("tanh", "relu"):
        for k in ("max_norm", "max_increment", "quadratic_variation", "pvar1", "pvar2", "pvar3", "roughness"):
            data[f"{act}_{k}"] = np.outer(np.asarray(depths, float) ** -1.0, np.ones(S)) * rng.uniform(0.9, 1.1, S)
        for k in ("max_norm", "max_increment", "quadratic_variation"):
            data[f"{act}_slope_{k}"] = np.array([-1.0, -1.1, -0.9])
        data[f"{act}_example_A"] = rng.standard_normal((depths[-1], D, D))
    est = estimator_check(seed=0, n=256, paths=4)
    data.update({f"estimator_{k}": v for k, v in est.items()})
    return data


def test_figure_draws_every_statistic_with_its_slope_and_the_estimator_check():
    import matplotlib.pyplot as plt

    fig = __import__("analysis.plots.literature", fromlist=["x"]).cohen2021_figure(_fake_data([8, 16, 32, 64]))
    a, b, c, d, e = fig.axes
    for ax, act in ((a, "tanh"), (b, "relu")):
        labels = [t.get_text() for t in ax.get_legend().get_texts()]
        assert len(labels) == 3 and all("slope -1.00" in t for t in labels)
        assert act in ax.get_title() and all(len(line.get_xdata()) == 4 for line in ax.get_lines())
    assert len(c.get_lines()) == 6  # p = 1, 2, 3 for each activation
    assert [line.get_label() for line in d.get_lines()] == ["tanh, L = 64", "relu, L = 64"]
    assert "smooth" in e.get_lines()[0].get_label() and "Brownian" in e.get_lines()[1].get_label()
    plt.close(fig)
