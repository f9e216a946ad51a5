"""Interruption: `odenet sweep` killed (SIGKILL, SIGINT, SIGTERM) mid-way and restarted completes with exactly
one result per run, and the runs completed before the kill are not computed again."""
from __future__ import annotations

import csv
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from analysis.sweep import load_spec, read_table

SWEEP = """
[sweep]
name = "killme"
[dataset]
name = "circles"
n = 80
[model]
width = 2
depth = 2
[train]
epochs = 30
batch_size = 8
[analyses]
certificate = true
[grid]
eps = [0.5, 1.0]
seed = [0, 1, 2]
"""


def start(file: Path, out: Path) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "odenet.cli", "sweep", str(file), "--out", str(out), "--workers", "0",
           "--no-ensemble", "--quiet"]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_runs(proc: subprocess.Popen, runs: Path, k: int, timeout: float = 300) -> None:
    t0 = time.monotonic()
    while len(list(runs.glob("*.h5"))) < k:
        assert proc.poll() is None, f"the sweep ended before {k} runs: {proc.communicate()}"
        assert time.monotonic() - t0 < timeout, "no progress"
        time.sleep(0.05)


def starts(log: Path) -> list[str]:
    return [ln.split()[1] for ln in log.read_text().splitlines() if ln.startswith("start ")]


@pytest.mark.parametrize("sig", [signal.SIGKILL, pytest.param(signal.SIGINT, marks=pytest.mark.slow),
                                 pytest.param(signal.SIGTERM, marks=pytest.mark.slow)])
def test_killed_sweep_resumes_without_recomputing(tmp_path, sig):
    file = tmp_path / "sweep.toml"
    file.write_text(SWEEP)
    spec = load_spec(file)
    ids = [r.run_id for r in spec.runs]
    out = tmp_path / "out"
    runs, log = tmp_path / "out.d" / "runs", tmp_path / "out.d" / "events.log"

    proc = start(file, out)
    wait_for_runs(proc, runs, 2)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    if sig in (signal.SIGINT, signal.SIGTERM):
        assert proc.returncode == 130, err
        assert (tmp_path / "out.h5").exists()  # what was complete has been assembled
        assert len(read_table(tmp_path / "out.h5")) == len(list(runs.glob("*.h5")))
    else:
        assert proc.returncode == -signal.SIGKILL
    before = {p.stem: p.stat().st_mtime_ns for p in runs.glob("*.h5")}
    assert 2 <= len(before) < len(ids), "kill the sweep mid-way"
    n_log = len(starts(log))

    proc = start(file, out)
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err

    again = starts(log)[n_log:]
    assert set(again).isdisjoint(before), "a completed run was computed again"
    assert sorted(again) == sorted(set(ids) - set(before)), "each missing run computed exactly once"
    files = sorted(p.stem for p in runs.iterdir())
    assert files == sorted(ids)                                          # one file per run, no temporaries
    assert {p.stem: p.stat().st_mtime_ns for p in runs.glob("*.h5") if p.stem in before} == before
    with open(tmp_path / "out.csv") as fh:
        assert [r["run_id"] for r in csv.DictReader(fh)] == ids        # exactly one row per run
    assert [r["run_id"] for r in read_table(tmp_path / "out.h5")] == ids
    assert not list(tmp_path.glob(".*.tmp"))
