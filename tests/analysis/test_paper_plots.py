"""Figure content: the reproduction's plot functions return Figures whose artists a reader needs
(decision-level contour, labelled colour bar, axis labels, data scatter, legend), on small
synthetic inputs."""
import numpy as np
import torch
import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.collections import PathCollection  # noqa: E402
from matplotlib.collections import LineCollection  # noqa: E402

from analysis.plots import paper as plots  # noqa: E402
from analysis.approximation.tunnel_effect import tunnel  # noqa: E402

XS = np.linspace(-2, 2, 41)
YS = np.linspace(-2, 2, 31)
X, Y = np.meshgrid(XS, YS)
BOWL = 1 / (1 + np.exp(-(X ** 2 + Y ** 2 - 1)))          # a closed decision level: the circle r = 1
RNG = np.random.default_rng(0)
PTS = RNG.uniform(-2, 2, (60, 2))
LABELS = (np.hypot(PTS[:, 0], PTS[:, 1]) > 1).astype(float)


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


def _curves(ax, gid="decision level"):
    """The vertices (k, 2) of every curve the axes draw under ``gid``, one array per collection."""
    return [np.concatenate(c.get_segments()) for c in ax.collections
            if isinstance(c, LineCollection) and c.get_gid() == gid and c.get_segments()]


def _on_bowl_level(ax, level):
    """The decision curve drawn is {BOWL = level}: the circle r² = 1 + logit(level) (closed form)."""
    (points,) = _curves(ax)
    radius = np.sqrt(1 + np.log(level / (1 - level)))
    return np.abs(np.hypot(points[:, 0], points[:, 1]) - radius).max() < 0.01


def _colorbar_labels(fig):
    return [ax.get_ylabel() for ax in fig.axes if ax.get_label() == "<colorbar>"]


def _scatters(ax):
    return [c for c in ax.collections if isinstance(c, PathCollection)]


def _check_plane(fig, level):
    ax = fig.axes[0]
    assert _on_bowl_level(ax, level), "the decision level is drawn at exactly `level`"
    assert any(label for label in _colorbar_labels(fig)), "a labelled colour bar"
    assert ax.get_xlabel() and ax.get_ylabel()
    scat = _scatters(ax)
    assert len(scat) == 2 and {s.get_label() for s in scat} == {"class 0 (inner)", "class 1 (outer)"}
    assert sum(len(s.get_offsets()) for s in scat) == len(PTS)
    legend = ax.get_legend()
    assert legend is not None
    texts = [t.get_text() for t in legend.get_texts()]
    assert any(f"decision level Φ = {level:g}" in t for t in texts) and "class 0 (inner)" in texts


@pytest.mark.parametrize("level", [0.5, 0.3])
def test_level_sets_draw_the_requested_decision_level_the_data_and_a_colour_bar(level):
    fig = plots.plot_level_sets(XS, YS, BOWL, level, x_data=PTS, y_data=LABELS, title="bowl", n_levels=7)
    _check_plane(fig, level)
    # the other level sets: 7 circles about the origin (BOWL is radial), wider as Φ grows
    radii = [np.hypot(p[:, 0], p[:, 1]) for p in _curves(fig.axes[0], "level set")]
    assert len(radii) == 7 and all(np.ptp(r) < 0.02 for r in radii)
    assert np.all(np.diff([r.mean() for r in radii]) > 0)


def test_probability_map_and_tunnel_level_sets():
    _check_plane(plots.probability_map(XS, YS, BOWL, PTS, LABELS, level=0.5, title="bowl"), 0.5)
    result = tunnel(lambda x: torch.sigmoid(x[:, 0] ** 2 + x[:, 1] ** 2 - 1), (-2, 2, -2, 2), (0.0, 0.0), 0.5, 41)
    fig = plots.tunnel_level_sets(result, PTS, LABELS, title="bowl")
    _check_plane(fig, 0.5)
    assert "closed" in fig.axes[0].get_title()
    assert any("component" in t.get_text() for t in fig.axes[0].get_legend().get_texts())


def test_a_grid_of_the_wrong_shape_is_refused():
    with pytest.raises(ValueError, match="values must have shape"):
        plots.plot_level_sets(XS, YS, BOWL.T, 0.5, title="x")


def test_decision_boundaries_small_multiples_frame_the_representative():
    values = [BOWL, 1 - BOWL, BOWL * 0.9 + 0.05]
    fig = plots.decision_boundaries(XS, YS, values, 0.5, ["seed 0", "seed 1", "seed 2"], x_data=PTS, y_data=LABELS,
                                    highlight=1, title="three seeds")
    panels = [ax for ax in fig.axes if ax.get_title().startswith("seed")]
    assert len(panels) == 3
    for ax in panels:
        assert _on_bowl_level(ax, 0.5) and len(_scatters(ax)) == 2
    assert all(s.get_linewidth() == 2.5 for s in panels[1].spines.values())
    assert panels[0].get_xlabel() or panels[-1].get_xlabel()
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert "decision level Φ = 0.5" in labels and "class 1 (outer)" in labels


def test_singular_value_maps_have_labelled_axes_and_colour_bar():
    maps = [np.abs(X) + 1e-3, np.abs(X * Y) + 1e-6]
    fig = plots.singular_value_maps(XS, YS, maps, ["blocks 0..0", "blocks 0..1"], marker=(0.0, 0.0), suptitle="σ")
    assert _colorbar_labels(fig) == ["log₁₀ σ_min of the Jacobian"]
    panels = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]
    assert all(ax.get_xlabel() for ax in panels) and panels[0].get_ylabel()
    assert panels[0].get_legend() is not None


def test_loss_curves_show_every_run_in_its_own_panel_with_a_legend():
    E = 20
    hist = {name: dict(train_loss=np.exp(-np.arange(E + 1) / 5)[None].repeat(3, 0) + k,
                       val_loss=np.exp(-np.arange(E + 1) / 6)[None].repeat(3, 0) + k,
                       best_epoch=np.array([E, E - 1, E]), representative=1) for k, name in enumerate("abcd")}
    fig = plots.loss_curves(hist, title="loss")
    panels = [ax for ax in fig.axes if ax.get_title() in hist]
    assert len(panels) == 4, "no run hides under another"
    assert all(ax.get_xlabel() == "epoch" and ax.get_ylabel() == "loss" for ax in panels)
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert len(labels) == 4 and any("validation" in t for t in labels)


def test_one_d_figures_and_trajectories_have_labels_and_legends():
    x = np.linspace(-1, 1, 101)
    layers = [dict(w=0.5, b=0.1, dF=1 + 0.5 * np.cos(x), zeros=np.array([]), threshold=-1.0),
              dict(w=-2.0, b=0.0, dF=np.sin(3 * x), zeros=np.array([0.0]), threshold=-1.0)]
    fig = plots.one_d_panels(x, x ** 2, x, x, layers, np.array([0.0]), title="1d")
    for ax in fig.axes:
        assert ax.get_xlabel() and ax.get_ylabel() and ax.get_legend() is not None
    fig = plots.one_d_fits(x, [x, x ** 2], [0, 1], [False, True], title="fits")
    assert len(fig.axes[0].get_legend().get_texts()) == 3
    states = np.cumsum(RNG.normal(size=(6, 10, 2)), 0)
    fig = plots.trajectories(states, LABELS[:10], title="flow")
    ax = fig.axes[0]
    assert ax.get_xlabel() and ax.get_ylabel() and len(ax.get_legend().get_texts()) == 4


def test_beyond_the_paper_figures():
    r = np.geomspace(0.1, 10, 4)
    fig = plots.plot_phase_diagram(r, r, np.linspace(0, 1, 16).reshape(4, 4))
    assert _colorbar_labels(fig) == ["fraction of networks with critical points"]
    fig = plots.tunnel_vs_ratio(r, np.linspace(0, 0.2, 4), np.linspace(0, 1, 4))
    ax = fig.axes[0]
    assert len(ax.get_legend().get_texts()) == 2 and fig.axes[1].get_ylabel()
    fig = plots.error_vs_ratio(r, r, 0.5, ylabel="sup error", title="x²")
    assert fig.axes[0].get_legend() is not None and fig.axes[0].get_ylabel() == "sup error"
