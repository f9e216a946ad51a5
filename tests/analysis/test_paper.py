"""The main job: `reproduce --quick` end to end (slow), and its refusals of bad input (fast)."""
import os

import h5py
import pytest
import xarray as xr

from analysis import hdf5
from analysis.paper import CIRCLES, EXPERIMENTS, ONE_D, XOR, main, reproduce

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("repro") / "results"
    rows = reproduce(out, quick=True, seed=0, progress=False)
    return out, rows


@pytest.mark.slow
def test_every_figure_is_a_png(quick_run):
    out, rows = quick_run
    figures = sorted((out / "figures").iterdir())
    names = {f.name for f in figures}
    for spec in ONE_D:
        assert f"1d_{spec.name}.png" in names
    for spec in CIRCLES + XOR:
        for kind in ("probability", "levels", "trajectories"):
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
def test_hdf5_holds_a_group_per_run_and_opens_in_xarray(quick_run):
    out, rows = quick_run
    path = out / "paper.h5"
    records = hdf5.list_records(path)
    for row in rows:
        assert f"runs/{row['run']}/model" in records
        assert f"runs/{row['run']}/training" in records
        assert f"runs/{row['run']}/trace" in records
    with h5py.File(path, "r") as f:
        assert set(f["runs"]) == {r["run"] for r in rows}
    ds = xr.open_dataset(path, engine="h5netcdf", group="runs/circles_neural_ode/trace")
    assert not any(d.startswith("phony_dim") for d in ds.dims)
    ds.close()
    # the stored model is the trained one: its outputs equal the run's accuracy computation
    model = hdf5.load_model(path, "runs/circles_neural_ode/model")
    assert model.depth == 20 and model.eps == 1.0 and model.delta == 0.1


@pytest.mark.slow
def test_summary_shows_the_tunnel_effect(quick_run):
    out, rows = quick_run
    by_name = {r["run"]: r for r in rows}
    assert by_name["circles_neural_ode"]["tunnel"] == "yes"
    assert by_name["circles_mlp"]["tunnel"] == "yes"
    assert "no" in (by_name["circles_standard"]["tunnel"], by_name["circles_augmented"]["tunnel"])
    text = (out / "summary.md").read_text()
    for r in rows:
        assert f"| {r['run']} |" in text


@pytest.mark.slow
def test_certified_one_d_runs_respect_the_lower_bound(quick_run):
    out, rows = quick_run
    one_d = [r for r in rows if r["task"] == "1d x²"]
    assert len(one_d) == len(ONE_D)
    certified = [r for r in one_d if r["certified"]]
    assert certified, "at least one 1D run should be certified"
    for r in certified:
        assert r["critical_points"] == 0
        assert r["sup_error"] >= 0.5 - 1e-9, r


@pytest.mark.slow
def test_the_same_seed_gives_the_same_table(quick_run, tmp_path):
    out, rows = quick_run
    again = reproduce(tmp_path / "again", quick=True, seed=0, only=["1d"], progress=False)
    first = [r for r in rows if r["task"] == "1d x²"]
    assert [r["metric"] for r in again] == [r["metric"] for r in first]


def test_unknown_experiment_is_refused(tmp_path):
    with pytest.raises(ValueError, match="only must name experiments among"):
        reproduce(tmp_path / "r", only=["1d", "tunnels"])
    assert os.listdir(tmp_path) == []
    assert main(["--out", str(tmp_path / "r"), "--only", "nonsense", "--quiet"]) == 2


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
    import analysis.paper as paper

    def boom(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(paper, "run_one_d", boom)
    with pytest.raises(KeyboardInterrupt):
        reproduce(tmp_path / "results", quick=True, only=["1d"], progress=False)
    assert os.listdir(tmp_path) == []


def test_experiment_names():
    assert EXPERIMENTS == ("1d", "circles", "xor", "injection", "beyond")
    assert len(ONE_D) == 9 and len(XOR) == 3


def test_replacing_results_keeps_the_old_ones_until_the_new_are_in_place(tmp_path, monkeypatch):
    import analysis.paper as paper

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
