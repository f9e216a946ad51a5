"""Sweep files: validation (each bad file names its key), expansion, run ids, conflicts."""
from __future__ import annotations

import math

import pytest

from analysis.experiments.sweep import SweepBusyError, SweepConflictError, SweepSpecError, dry_run, load_spec, run_sweep
from analysis.experiments.sweep.spec import config_id
from sweep_helpers import tiny_sweep

def spec_with(**tables):
    return tiny_sweep(**({"grid": {"eps": [0.5, 1.0], "seed": [0, 1]}} | tables))


@pytest.mark.parametrize("tables, key", [
    (dict(model={"width": 2, "depht": 3}), "model.depht"),                      # unknown key
    (dict(sweep={"name": "t", "colour": 1}), "sweep.colour"),
    (dict(grid={"eps": [0.5], "sed": [1]}), "sed"),
    (dict(modle={"width": 2}), "unknown table [modle]"),
    (dict(analyses={"certificate": True, "homology": True}), "analyses.homology"),
    (dict(dataset={"name": "circles", "radius": 2}), "dataset.radius"),
    (dict(grid={"eps": []}), "grid.eps"),                                        # empty range
    (dict(grid={"depth": {"range": [5, 2, 1]}}), "grid.depth"),
    (dict(grid={"eps": {"linspace": [0, 1, 0]}}), "grid.eps"),
    (dict(grid={"seed": [0]}, random={"samples": 3, "eps": {"low": 1.0, "high": 0.5}}), "random.eps"),
    (dict(grid={"seed": [0]}, random={"samples": 3, "eps": {"choices": []}}), "random.eps"),
    (dict(random={"samples": 3, "eps": {"low": 0.1, "high": 0.5}}), "grid.eps and random.eps"),
    (dict(grid={"eps": [0.5, -1.0]}), "grid.eps[1]"),                            # eps < 0
    (dict(model={"eps": -0.1}), "model.eps"),
    (dict(grid={"seed": [0]}, random={"samples": 2, "eps": {"low": -1.0, "high": -0.5}}), "random.eps"),
    (dict(dataset={"name": "spirals"}), "dataset.name"),                        # unknown dataset
    (dict(grid={"depth": [2, 0]}), "grid.depth[1]"),
    (dict(grid={"width": [2.5]}), "grid.width[0]"),
    (dict(grid={"activation": ["tanh", "sine"]}), "grid.activation[1]"),
    (dict(train={"epochs": 1, "lr": 0}), "train.lr"),
    (dict(analyses={"critical_points": {"resolution": 0}}), "analyses.critical_points.resolution"),
    (dict(dataset={"name": "xor"}, analyses={"tunnel": True}), "analyses.tunnel"),
    (dict(analyses={"tunnel": {"level": 2.0}}), "analyses.tunnel.level"),  # no probability reaches 2
])
def test_bad_sweep_files_name_the_key(tables, key):
    with pytest.raises(SweepSpecError) as info:
        load_spec(spec_with(**tables))
    assert key in str(info.value)


def test_error_lists_what_is_allowed():
    with pytest.raises(SweepSpecError, match=r"allowed in \[model\].*'depth'"):
        load_spec(spec_with(model={"depht": 3}))
    with pytest.raises(SweepSpecError, match=r"\['circles', 'square', 'xor'\]"):
        load_spec(spec_with(dataset={"name": "spirals"}))


def test_bad_toml_file_is_refused_before_running(tmp_path):
    p = tmp_path / "bad.toml"
    p.write_text('[dataset]\nname = "circles"\n[grid]\neps = [0.5, -2]\n')
    with pytest.raises(SweepSpecError, match=r"grid\.eps\[1\]"):
        run_sweep(p, tmp_path / "out", workers=0, progress=False)
    assert not (tmp_path / "out.d").exists()  # nothing was written


def test_grid_expansion_ratio_and_ids():
    raw = spec_with(grid={"eps": [0.5, 2.0], "ratio": {"logspace": [-1, 1, 3]}, "depth": {"range": [2, 6, 2]},
                          "seed": [0, 1]})
    spec = load_spec(raw)
    assert len(spec.runs) == 2 * 3 * 2 * 2
    for r in spec.runs:
        m = r.config["model"]
        assert math.isclose(m["delta"], r.params["ratio"] * r.params["eps"], rel_tol=1e-15)
        assert "ratio" not in m and m["depth"] in (2, 4)
    # ids: a hash of the complete run config, equal for equal configs and stable across loads
    again = load_spec(raw)
    assert [r.run_id for r in spec.runs] == [r.run_id for r in again.runs]
    assert len({r.run_id for r in spec.runs}) == len(spec.runs)
    r = spec.runs[0]
    assert r.run_id == config_id(r.config)
    # the id does not depend on how a value was written (a list or a range)
    other = load_spec(spec_with(grid={"eps": [0.5], "ratio": [0.1], "depth": [2], "seed": [0]}))
    assert other.runs[0].run_id == spec.runs[0].run_id
    # ... nor on whether a default was written out
    explicit = load_spec(spec_with(dataset={"name": "circles", "n": 60, "inner_radius": 0.4},
                                   model={"width": 2, "depth": 2, "activation": "tanh"},
                                   grid={"eps": [0.5], "ratio": [0.1], "depth": [2], "seed": [0]}))
    assert explicit.runs[0].run_id == spec.runs[0].run_id
    changed = load_spec(spec_with(dataset={"name": "circles", "n": 60, "inner_radius": 0.3},
                                  grid={"eps": [0.5], "ratio": [0.1], "depth": [2], "seed": [0]}))
    assert changed.runs[0].run_id != spec.runs[0].run_id


def test_linspace_of_an_integer_parameter():
    # docs/sweeps.md's example: numpy.linspace gives floats 2.0, 4.0; the widths are ints 2, 4
    spec = load_spec(spec_with(grid={"width": {"linspace": [2, 4, 2]}, "eps": {"linspace": [0, 1, 2]}}))
    assert sorted({r.config["model"]["width"] for r in spec.runs}) == [2, 4]
    assert all(type(r.config["model"]["width"]) is int for r in spec.runs)
    # a real parameter stays a float: the same run id as written out by hand
    listed = load_spec(spec_with(grid={"width": [2, 4], "eps": [0.0, 1.0]}))
    assert [r.run_id for r in spec.runs] == [r.run_id for r in listed.runs]
    with pytest.raises(SweepSpecError, match=r"grid\.width\[1\]"):
        load_spec(spec_with(grid={"width": {"linspace": [2, 5, 3]}}))  # 3.5 is no width


def test_random_draws_are_seeded_and_in_range():
    raw = spec_with(sweep={"name": "t", "seed": 7}, grid={"seed": [0]},
                    random={"samples": 20, "eps": {"low": 0.1, "high": 1.0},
                            "delta": {"low": 0.01, "high": 10.0, "log": True},
                            "depth": {"low": 1, "high": 4, "integer": True}})
    a, b = load_spec(raw), load_spec(raw)
    assert [r.run_id for r in a.runs] == [r.run_id for r in b.runs] and len(a.runs) == 20
    for r in a.runs:
        assert 0.1 <= r.params["eps"] <= 1.0 and 0.01 <= r.params["delta"] <= 10.0
        assert r.params["depth"] in (1, 2, 3, 4) and r.config["model"]["delta"] == r.params["delta"]
    raw["sweep"]["seed"] = 8
    assert {r.run_id for r in load_spec(raw).runs}.isdisjoint({r.run_id for r in a.runs})


def test_ensemble_groups_share_everything_but_the_seed():
    spec = load_spec(spec_with(grid={"eps": [0.5, 1.0], "seed": [0, 1, 2]}))
    keys = {}
    for r in spec.runs:
        keys.setdefault(r.group_key, set()).add(r.params["eps"])
    assert len(keys) == 2 and all(len(v) == 1 for v in keys.values())


def test_conflicting_sweep_is_refused(tmp_path):
    spec = load_spec(spec_with(grid={"seed": [0]}))
    run_sweep(spec, tmp_path / "out", workers=0, progress=False)
    other = load_spec(spec_with(grid={"seed": [0, 1]}))
    with pytest.raises(SweepConflictError, match="another sweep"):
        run_sweep(other, tmp_path / "out", workers=0, progress=False)
    with pytest.raises(SweepConflictError):
        dry_run(other, tmp_path / "out")
    # the same sweep again is a resume, not a conflict; dry_run reports the run as done
    assert [r["status"] for r in dry_run(spec, tmp_path / "out")] == ["done"]
    assert run_sweep(spec, tmp_path / "out", workers=0, progress=False).computed == []


def test_second_writer_is_refused_while_the_first_holds_the_output(tmp_path):
    # the lock is re-entrant within a process, so the first writer is another process
    import subprocess
    import sys

    spec = load_spec(spec_with(grid={"seed": [0]}))
    run_sweep(spec, tmp_path / "out", workers=0, progress=False)
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom analysis.io.atomic import exclusive_lock\n"
         "with exclusive_lock(sys.argv[1]):\n    print('held', flush=True)\n    time.sleep(60)",
         str(tmp_path / "out.d" / "sweep.json")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(SweepBusyError, match="another process"):
            run_sweep(spec, tmp_path / "out", workers=0, progress=False)
    finally:
        holder.kill()
        holder.wait()
    assert run_sweep(spec, tmp_path / "out", workers=0, progress=False).complete  # free again


def test_bad_workers_refused_even_when_nothing_is_left_to_run(tmp_path):
    spec = load_spec(spec_with(grid={"seed": [0]}))
    with pytest.raises(ValueError, match="workers must be"):
        run_sweep(spec, tmp_path / "out", workers=-1, progress=False)
    assert not (tmp_path / "out.d").exists()
    assert run_sweep(spec, tmp_path / "out", workers=0, progress=False).complete
    with pytest.raises(ValueError, match="workers must be"):  # was accepted: no executor was made
        run_sweep(spec, tmp_path / "out", workers=-1, progress=False)


def test_cli_reports_a_bad_file_and_lists_runs(tmp_path, capsys):
    from odenet.cli import main

    bad = tmp_path / "bad.toml"
    bad.write_text('[dataset]\nname = "circles"\n[model]\nepsilon = 0.5\n')
    assert main(["sweep", str(bad), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "model.epsilon" in err and "'eps'" in err
    good = tmp_path / "good.toml"
    good.write_text('[dataset]\nname = "circles"\nn = 60\n[grid]\neps = [0.5, 1.0]\nseed = [0, 1, 2]\n')
    assert main(["sweep", str(good), "--out", str(tmp_path / "out"), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "6 runs (0 done, 6 pending)" in out and out.count("pending") == 7
    assert not (tmp_path / "out.d").exists()  # a dry run writes nothing
