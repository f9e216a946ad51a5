"""The main job: `reproduce --quick` end to end over several seeds (slow), its refusals of bad
input and `odenet tunnel`'s use of the same regime table (fast)."""
import os

import h5py
import numpy as np
import pytest
import torch
import xarray as xr

from analysis import hdf5
from analysis.experiments.paper import EXPERIMENTS, member_seeds, representative, reproduce
from analysis.experiments.paper_regimes import CIRCLES, CLI_NAMES, ONE_D, XOR, circles_regime
from odenet.cli.reproduce import run_paper

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
SEEDS = 2


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("repro") / "results"
    result = reproduce(out, quick=True, seed=0, seeds=SEEDS, progress=False)
    return out, result


@pytest.mark.slow
def test_every_figure_is_a_png(quick_run):
    out, _ = quick_run
    figures = sorted((out / "figures").iterdir())
    names = {f.name for f in figures}
    for spec in ONE_D:
        assert {f"1d_{spec.name}.png", f"1d_{spec.name}_seeds.png"} <= names
    for spec in CIRCLES + XOR:
        for kind in ("probability", "levels", "boundaries", "trajectories"):
            assert f"2d_{spec.name}_{kind}.png" in names
    for name in ("injection_singular_values.png", "beyond_phase_diagram.png", "beyond_x2_error_vs_ratio.png",
                 "beyond_circles_vs_ratio.png"):
        assert name in names
    assert any(n.startswith("loss_") for n in names)
    import matplotlib.image

    for f in figures:
        assert f.read_bytes()[:8] == PNG_MAGIC, f
        img = matplotlib.image.imread(f)
        assert img.ndim == 3 and img.shape[0] > 100 and img.shape[1] > 100


@pytest.mark.slow
def test_hdf5_holds_every_seed_of_every_regime_and_opens_in_xarray(quick_run):
    out, result = quick_run
    path = out / "paper.h5"
    records = hdf5.list_records(path)
    for row in result.rows:
        for s in member_seeds(0, SEEDS):
            for kind in ("model", "training", "critical_points", "certificate"):
                assert f"runs/{row['run']}/seed_{s}/{kind}" in records
        assert f"runs/{row['run']}/trace" in records
    with h5py.File(path, "r") as f:
        assert set(f["runs"]) == {r["run"] for r in result.rows}
    table = hdf5.load(path, "runs/circles_neural_ode/seeds")
    assert list(table.seed) == member_seeds(0, SEEDS)
    assert table.representative in table.seed
    ds = xr.open_dataset(path, engine="h5netcdf", group="runs/circles_neural_ode/seeds")
    assert ds.sizes["member"] == SEEDS
    ds.close()
    # the stored model is the trained one: its test accuracy is the table's
    from analysis.experiments.paper_regimes import CIRCLES as C

    data = C[0].data(0)
    for k, s in enumerate(member_seeds(0, SEEDS)):
        model = hdf5.load_model(path, f"runs/circles_neural_ode/seed_{s}/model")
        assert model.depth == 20 and model.eps == 1.0 and model.delta == 0.1
        with torch.no_grad():
            acc = float(((model(data.x_test)[:, 0] > 0.5).double() == data.y_test[:, 0]).double().mean())
        assert acc == pytest.approx(table.accuracy[k], abs=1e-12)


@pytest.mark.slow
def test_summary_has_the_claims_table_first_and_a_row_per_regime(quick_run):
    out, result = quick_run
    text = (out / "summary.md").read_text()
    assert text.index("## Claims") < text.index("## Regimes")
    for r in result.rows:
        assert f"| {r['run']} |" in text
        assert r["n"] == SEEDS
    assert "docs/theory.md" in text and "PAPER.md" not in text and "../shared" not in text
    keys = {v.claim.key for v in result.claims}
    assert {"certified_tunnels", "1d_sup_bound", "1d_isotonic_bound", "standard_can_close"} <= keys
    # the theorems hold on the reproduction's own networks
    assert not result.contradictions, [v.note for v in result.contradictions]


@pytest.mark.slow
def test_the_injected_critical_point_survives_the_retraining_of_every_seed(quick_run):
    out, result = quick_run
    row = next(r for r in result.rows if r["run"] == "injection")
    assert row["grad_at_x0"] < 1e-12  # DF_0(0) = 0 exactly, whatever the later blocks learnt
    for s in member_seeds(0, SEEDS):
        model = hdf5.load_model(out / "paper.h5", f"runs/injection/seed_{s}/model")
        assert torch.equal(model.field.weight[0], -(model.eps / model.delta) * torch.eye(2, dtype=torch.float64))
        assert torch.equal(model.field.bias[0], torch.zeros(2, dtype=torch.float64))
    assert all(o.critical_points >= 1 for o in result.outcomes if o.run == "injection")
    # the degenerate points are x0 and the zeros of the other partial derivative on the lines x_i = 0
    degenerate = sum(o.critical_counts.get("degenerate", 0) for o in result.outcomes if o.run == "injection")
    assert SEEDS <= row["degenerate_on_lines"] == degenerate


@pytest.mark.slow
def test_one_d_networks_without_critical_points_respect_both_bounds(quick_run):
    _, result = quick_run
    one_d = [o for o in result.outcomes if o.task == "1d x²"]
    assert len(one_d) == len(ONE_D) * SEEDS
    monotone = [o for o in one_d if o.critical_points == 0]
    assert monotone, "some 1D network should have no critical points"
    for o in monotone:
        assert o.sup_error >= 0.5 - 1e-9 and o.mse >= o.isotonic_mse * (1 - 1e-9), o


@pytest.mark.slow
def test_the_same_seed_gives_the_same_table(quick_run, tmp_path):
    _, result = quick_run
    again = reproduce(tmp_path / "again", quick=True, seed=0, seeds=SEEDS, only=["1d"], progress=False)
    first = [r for r in result.rows if r["task"] == "1d x²"]
    assert [r["metric"] for r in again.rows] == [r["metric"] for r in first]


def test_the_representative_is_the_lower_median():
    assert representative([0.9, 0.7, 0.8]) == 2
    assert representative([0.9, 0.7, 0.8, 0.6]) == 1  # sorted 0.6 0.7 | 0.8 0.9
    assert member_seeds(3, 4) == [3, 4, 5, 6]


def test_the_tunnel_command_uses_the_reproductions_regime_table(monkeypatch, tmp_path):
    import analysis.experiments.paper as paper

    seen = {}

    def fake_train(spec, data, seeds, epochs, *, batchnorm=None, progress=False):
        seen.update(spec=spec, seeds=seeds, epochs=epochs, batchnorm=batchnorm)
        raise KeyboardInterrupt  # stop before any real work

    monkeypatch.setattr(paper, "train_two_d", fake_train)
    for short, run in CLI_NAMES.items():
        with pytest.raises(KeyboardInterrupt):
            paper.tunnel_study(short, seed=2, seeds=3)
        spec = circles_regime(run)
        assert seen["spec"] is spec and seen["seeds"] == [2, 3, 4] and seen["epochs"] == spec.epochs
        assert seen["batchnorm"] is spec.batchnorm  # the regime's own BatchNorm setting
    assert circles_regime("neural-ode").batchnorm is False and circles_regime("neural-ode-bn").batchnorm is True
    # and the CLI's help names every regime of the table
    from odenet.cli import build_parser

    help_text = build_parser()._subparsers._group_actions[0].choices["tunnel"].format_help()
    assert all(name in help_text for name in CLI_NAMES)


@pytest.mark.parametrize("kwargs, match", [
    (dict(regime="tunnels"), "regime must be one of"),
    (dict(seeds=0), "seeds must be an integer >= 1"),
    (dict(resolution=2), "resolution must be an integer >= 3"),
    (dict(epochs=0), "epochs must be an integer >= 1"),
    (dict(out="x.txt"), "out must end in one of"),
    (dict(figure="nowhere/x.png"), "does not exist"),
])
def test_tunnel_study_refuses_bad_input_before_training(kwargs, match, monkeypatch, tmp_path):
    import analysis.experiments.paper as paper

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(paper, "train_two_d", lambda *a, **k: pytest.fail("trained before refusing"))
    regime = kwargs.pop("regime", "neural-ode")
    with pytest.raises(ValueError, match=match):
        paper.tunnel_study(regime, **kwargs)


def test_tunnel_outputs_are_not_clobbered(monkeypatch, tmp_path, capsys):
    import analysis.experiments.paper as paper
    from odenet.cli import main as cli

    monkeypatch.setattr(paper, "train_two_d", lambda *a, **k: pytest.fail("trained before refusing"))
    for name in ("r.h5", "r.png"):
        (tmp_path / name).write_text("precious")
    assert cli(["tunnel", "--quiet", "--out", str(tmp_path / "r.h5")]) == 2
    assert "exists; pass --overwrite" in capsys.readouterr().err
    assert cli(["tunnel", "--quiet", "--figure", str(tmp_path / "r.png")]) == 2
    assert all((tmp_path / n).read_text() == "precious" for n in ("r.h5", "r.png"))


@pytest.mark.slow
def test_tunnel_command_with_seeds_writes_records_and_figure(tmp_path, capsys):
    from odenet.cli import main as cli

    out, fig = tmp_path / "t.h5", tmp_path / "t.png"
    assert cli(["tunnel", "--regime", "mlp", "--seeds", "3", "--epochs", "3", "--resolution", "31", "--quiet",
                "--out", str(out), "--figure", str(fig)]) == 0
    text = capsys.readouterr().out
    lines = text.splitlines()
    spec = circles_regime("mlp")
    assert lines[0].startswith(f"mlp (eps={spec.eps}, delta={spec.delta}, L={spec.depth}, width={spec.width}, "
                               f"batchnorm={spec.batchnorm}, seeds=0..2")
    # 3 epochs: a network may not cross Φ = 0.5 on the window yet, which is reported, not an error
    assert sum(l.split(":")[0] in ("tunnel", "closed", "centre-outside", "no decision boundary")
               for l in lines[1:4]) == 3
    assert "Wilson" in lines[4]
    table = hdf5.load(out, "seeds")
    assert list(table.seed) == [0, 1, 2]
    assert fig.read_bytes()[:8] == PNG_MAGIC


def test_unknown_experiment_is_refused(tmp_path):
    with pytest.raises(ValueError, match="only must name experiments among"):
        reproduce(tmp_path / "r", only=["1d", "tunnels"])
    assert os.listdir(tmp_path) == []
    assert run_paper(["--out", str(tmp_path / "r"), "--only", "nonsense", "--quiet"]) == 2


def test_existing_results_are_not_overwritten(tmp_path):
    out = tmp_path / "results"
    out.mkdir()
    (out / "summary.md").write_text("precious")
    with pytest.raises(ValueError, match="already holds results"):
        reproduce(out, quick=True, only=["1d"])
    assert (out / "summary.md").read_text() == "precious"
    assert sorted(os.listdir(tmp_path)) == ["results"]


def test_unwritable_out_is_refused(tmp_path):
    # A file where the parent folder should be (permissions mean nothing to root, who runs CI).
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(ValueError, match="does not exist|is not writable|must be a folder"):
        reproduce(blocker / "results", only=["1d"])
    with pytest.raises(ValueError, match="must be a folder"):
        reproduce(blocker, only=["1d"])


def test_interrupted_run_leaves_nothing_behind(tmp_path, monkeypatch):
    import analysis.experiments.paper as paper

    def boom(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(paper, "run_one_d", boom)
    with pytest.raises(KeyboardInterrupt):
        reproduce(tmp_path / "results", quick=True, only=["1d"], progress=False)
    assert os.listdir(tmp_path) == []


def test_experiment_names_and_seed_counts():
    assert EXPERIMENTS == ("1d", "circles", "xor", "injection", "beyond")
    assert len(ONE_D) == 9 and len(XOR) == 3
    from analysis.experiments.paper import Settings

    assert Settings().seeds == 16 and Settings.quick().seeds == 4
    with pytest.raises(ValueError, match="seeds must be an integer >= 1"):
        reproduce("unused", seeds=0)
    assert run_paper(["--out", "unused", "--seeds", "-1", "--quiet"]) == 2


def test_replacing_results_keeps_the_old_ones_until_the_new_are_in_place(tmp_path, monkeypatch):
    import analysis.experiments.paper as paper

    out, new = tmp_path / "results", tmp_path / ".results.tmp-x"
    for folder, text in ((out, "old"), (new, "new")):
        folder.mkdir()
        (folder / "summary.md").write_text(text)
    real = os.replace

    def fail_on_the_new(src, dst):
        if os.fspath(src) == os.fspath(new):
            raise OSError("disk gone")
        real(src, dst)

    monkeypatch.setattr(paper.os, "replace", fail_on_the_new)
    with pytest.raises(OSError, match="disk gone"):
        paper._replace_folder(new, out)
    assert (out / "summary.md").read_text() == "old"  # was: deleted before the new were moved in
    monkeypatch.setattr(paper.os, "replace", real)
    paper._replace_folder(new, out)
    assert (out / "summary.md").read_text() == "new"
    assert sorted(os.listdir(tmp_path)) == ["results"]


def test_the_seed_table_round_trips_through_hdf5_and_opens_in_xarray(tmp_path):
    from analysis.experiments.paper_claims import SeedOutcome
    from analysis.experiments.paper_records import SeedTable

    outcomes = [SeedOutcome("circles_standard", "circles", s, s == 1, 2 * s, {"saddle": 2 * s}, flat_points=s,
                            tunnel=("tunnel", "closed", "centre-outside")[s], tunnel_width=0.25 if s == 0 else np.nan,
                            accuracy=0.8 + 0.01 * s) for s in range(3)]
    table = SeedTable.of("circles_standard", outcomes, 2)
    assert table.representative == 2 and list(table.tunnel) == ["tunnel", "closed", "centre-outside"]
    path = hdf5.save(tmp_path / "t.h5", {"runs/circles_standard/seeds": table})
    back = hdf5.load(path, "runs/circles_standard/seeds")
    assert list(back.seed) == [0, 1, 2] and list(back.certified) == [0, 1, 0]
    assert list(back.critical_points) == [0, 2, 4] and list(back.tunnel) == ["tunnel", "closed", "centre-outside"]
    np.testing.assert_array_equal(back.accuracy, [0.8, 0.81, 0.8 + 0.02])
    assert back.tunnel_width[0] == 0.25 and np.isnan(back.tunnel_width[1:]).all() and np.isnan(back.sup_error).all()
    with xr.open_dataset(path, engine="h5netcdf", group="runs/circles_standard/seeds") as ds:
        assert ds.sizes["member"] == 3 and "phony_dim_0" not in ds.dims
