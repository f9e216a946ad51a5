"""A sweep writes only inside the output it was given: plain names, foreign outputs refused unless
--overwrite, temporary files never followed through a planted link, and an assembly that loses
nothing another writer added to OUT.h5 meanwhile."""
from __future__ import annotations

import hashlib
import subprocess
import sys
import textwrap

import h5py
import pytest

from analysis.experiments.sweep import SweepConflictError, SweepSpecError, SweepStore, dry_run, load_spec, read_table, run_sweep
from sweep_helpers import tiny_sweep



def raw(**tables) -> dict:
    return tiny_sweep(**({"grid": {"seed": [0]}} | tables))


def digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("name", ["../x", "/abs/x", "a/b", "..", ".", "", ".hidden", "a\\b"])
def test_escaping_or_hidden_names_are_refused(name):
    with pytest.raises(SweepSpecError) as info:
        load_spec(raw(sweep={"name": name}))
    msg = str(info.value)
    assert "sweep.name" in msg and repr(name) in msg and "plain file name" in msg


def test_cli_refuses_an_escaping_name_before_writing(tmp_path, monkeypatch, capsys):
    from odenet.cli import main

    work = tmp_path / "work"
    work.mkdir()
    (work / "s.toml").write_text('[sweep]\nname = "../escaped"\n[dataset]\nname = "circles"\nn = 60\n')
    monkeypatch.chdir(work)
    assert main(["sweep", "s.toml", "--workers", "0", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "sweep.name" in err and "'../escaped'" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["work"]
    assert sorted(p.name for p in work.iterdir()) == ["s.toml"]


def test_the_default_output_is_the_name_in_the_current_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    res = run_sweep(raw(sweep={"name": "plain"}), workers=0, progress=False)
    assert (tmp_path / res.h5).resolve() == (tmp_path / "plain.h5").resolve()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plain.csv", "plain.d", "plain.h5", "plain.h5.lock"]


def foreign_h5(path, sweep_id=None) -> None:
    with h5py.File(path, "w") as f:
        f["data"] = [1.0, 2.0]
        if sweep_id is not None:
            f.attrs["sweep_id"] = sweep_id


@pytest.mark.parametrize("kind", ["h5-text", "h5-other-sweep", "h5-hdf5", "csv", "dir"])
def test_foreign_outputs_are_refused_then_replaced_with_overwrite(tmp_path, kind):
    spec = load_spec(raw())
    out = tmp_path / "out"
    h5, csv, d = tmp_path / "out.h5", tmp_path / "out.csv", tmp_path / "out.d"
    if kind == "h5-text":
        h5.write_text("not a sweep")
        target = h5
    elif kind == "h5-other-sweep":
        foreign_h5(h5, sweep_id="0123456789abcdef")
        target = h5
    elif kind == "h5-hdf5":
        foreign_h5(h5)
        target = h5
    elif kind == "csv":
        csv.write_text("a,b\n1,2\n")
        target = csv
    else:
        d.mkdir()
        (d / "notes.txt").write_text("mine")
        target = d
    before = sorted(p.name for p in tmp_path.iterdir())
    stamp = digest(target) if target.is_file() else None
    for attempt in (lambda: run_sweep(spec, out, workers=0, progress=False), lambda: dry_run(spec, out)):
        with pytest.raises(SweepConflictError) as info:
            attempt()
        assert repr(str(target)) in str(info.value) and "--overwrite" in str(info.value)
    # refused before anything was written or computed
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    if stamp:
        assert digest(target) == stamp
    res = run_sweep(spec, out, workers=0, progress=False, overwrite=True)
    assert res.complete and [r["run_id"] for r in read_table(h5)] == [spec.runs[0].run_id]
    with h5py.File(h5, "r") as f:
        assert f.attrs["sweep_id"] == spec.sweep_id and "data" not in f
    if kind == "dir":
        assert (d / "notes.txt").read_text() == "mine"  # taken over, nothing deleted
    # now everything is this sweep's: a plain rerun resumes without --overwrite
    assert run_sweep(spec, out, workers=0, progress=False).computed == []


def test_own_csv_edited_by_hand_is_no_longer_this_sweeps(tmp_path):
    spec = load_spec(raw())
    out = tmp_path / "out"
    run_sweep(spec, out, workers=0, progress=False)
    assert run_sweep(spec, out, workers=0, progress=False).computed == []  # its own CSV: accepted
    csv = tmp_path / "out.csv"
    csv.write_text(csv.read_text() + "my,extra,row\n")
    with pytest.raises(SweepConflictError, match="out.csv"):
        run_sweep(spec, out, workers=0, progress=False)
    assert csv.read_text().endswith("my,extra,row\n")


def test_another_sweeps_output_can_be_taken_over_with_overwrite(tmp_path):
    first, second = load_spec(raw()), load_spec(raw(grid={"seed": [0, 1]}))
    out = tmp_path / "out"
    run_sweep(first, out, workers=0, progress=False)
    with pytest.raises(SweepConflictError, match="another sweep"):
        run_sweep(second, out, workers=0, progress=False)
    res = run_sweep(second, out, workers=0, progress=False, overwrite=True)
    # the shared run (same config, same id) is reused, the other computed
    assert res.complete and res.skipped == [first.runs[0].run_id] and len(res.computed) == 1
    assert [r["run_id"] for r in read_table(tmp_path / "out.h5")] == [r.run_id for r in second.runs]


def test_assembly_removes_only_its_own_stale_temporaries(tmp_path):
    # beside OUT.h5 is the user's folder: only the names temp_beside makes (.out.h5.<8>.tmp,
    # regular files) are a killed writer's leftovers; look-alikes, folders and links stay
    spec = load_spec(raw())
    out = tmp_path / "out"
    run_sweep(spec, out, workers=0, progress=False)
    stale = [tmp_path / ".out.h5.abcd1234.tmp", tmp_path / ".out.csv.x_y_z_09.tmp"]
    kept = [tmp_path / ".out.h5.mine.tmp", tmp_path / ".out.h5.notes.v2.tmp", tmp_path / ".out.csv.old.tmp"]
    for p in stale + kept:
        p.write_text("x")
    folder = tmp_path / ".out.h5.folder12.tmp"
    folder.mkdir()
    link = tmp_path / ".out.csv.link1234.tmp"
    link.symlink_to(tmp_path / "out.csv")
    run_file = tmp_path / "out.d" / "runs" / f"{spec.runs[0].run_id}.h5"
    stale_run = run_file.with_name(f".{run_file.name}.abcd1234.tmp")
    stale_run.write_text("x")
    run_file.unlink()  # a resume: recomputes and reassembles
    res = run_sweep(spec, out, workers=0, progress=False)
    assert res.complete and res.computed == [spec.runs[0].run_id]
    assert not any(p.exists() for p in stale) and not stale_run.exists()
    assert all(p.read_text() == "x" for p in kept)
    assert folder.is_dir() and link.is_symlink()


def test_planted_symlinks_at_old_temporary_names_are_not_followed(tmp_path):
    spec = load_spec(raw(grid={"seed": [0, 1]}))
    out = tmp_path / "out"
    run_sweep(load_spec(raw(grid={"seed": [0, 1]})), out, workers=0, progress=False)
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    for planted in (tmp_path / ".out.csv.tmp", tmp_path / "out.d" / ".sweep.json.tmp",
                    tmp_path / ".out.h5.tmp"):
        planted.symlink_to(victim)
    (tmp_path / "out.d" / "runs" / f"{spec.runs[1].run_id}.h5").unlink()  # a resume: recomputes, reassembles
    res = run_sweep(spec, out, workers=0, progress=False)
    assert res.computed == [spec.runs[1].run_id] and res.complete
    assert victim.read_text() == "precious"
    assert not victim.is_symlink() and len(read_table(res.h5)) == 2


APPENDER = textwrap.dedent("""
    import shutil, sys, h5py
    from analysis.io.atomic import exclusive_lock, publish, temp_beside
    path, n = sys.argv[1], int(sys.argv[2])
    print("ready", flush=True)
    sys.stdin.readline()  # go: the sweep's OUT.h5 exists
    for i in range(n):  # read-copy-replace under the writer's lock, as every writer of a results file
        with exclusive_lock(path):
            tmp = temp_beside(path)
            shutil.copyfile(path, tmp)
            with h5py.File(tmp, "r+") as f:
                f.create_group(f"extra{i}").attrs["i"] = i
            publish(tmp, path, overwrite=True)
""")


@pytest.mark.slow  # the appender's imports take ~10 s on a loaded machine
def test_assembly_and_a_concurrent_appender_lose_nothing(tmp_path):
    n = 15
    proc = subprocess.Popen([sys.executable, "-c", APPENDER, str(tmp_path / "out.h5"), str(n)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    spec = load_spec(raw(grid={"seed": [0, 1]}))
    out = tmp_path / "out"
    run_sweep(spec, out, workers=0, progress=False)  # while the appender imports
    assert proc.stdout.readline() == "ready\n", proc.stderr.read()
    proc.stdin.write("go\n")
    proc.stdin.flush()
    assemblies = 0
    with SweepStore(out, spec) as store:
        while proc.poll() is None or assemblies < 3:
            store.assemble()
            assemblies += 1
    assert proc.wait(timeout=120) == 0, proc.stderr.read()
    with h5py.File(tmp_path / "out.h5", "r") as f:
        assert sorted(k for k in f if k.startswith("extra")) == sorted(f"extra{i}" for i in range(n))
        assert sorted(f["runs"]) == sorted(r.run_id for r in spec.runs)
    assert len(read_table(tmp_path / "out.h5")) == 2 and assemblies >= 3
