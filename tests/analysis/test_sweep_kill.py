"""Interruption: `odenet sweep` killed (SIGKILL, SIGINT, SIGTERM) mid-way and restarted completes with exactly
one result per run, and the runs completed before the kill are not computed again."""
from __future__ import annotations

import contextlib
import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

if sys.version_info >= (3, 11):
    from tomllib import loads as tomllib_loads
else:  # pragma: no cover - Python 3.10
    from tomli import loads as tomllib_loads

from analysis.experiments.sweep import load_spec, read_table

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


def process_table() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, state) of every live process, from /proc (Linux)."""
    table = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    rest = fh.read().rsplit(")", 1)[1].split()
            except OSError:  # gone meanwhile
                continue
            table[int(entry)] = (int(rest[1]), rest[0])
    return table


def descendants(pid: int) -> set[int]:
    table, found, frontier = process_table(), set(), {pid}
    while frontier:
        frontier = {p for p, (ppid, _) in table.items() if ppid in frontier} - found
        found |= frontier
    return found


def alive(pids: set[int]) -> dict[int, str]:
    """The pids among ``pids`` still running (zombies, dead but not yet reaped, are not), with their commands."""
    table, out = process_table(), {}
    for p in pids:
        if p in table and table[p][1] != "Z":
            with contextlib.suppress(OSError):
                out[p] = Path(f"/proc/{p}/cmdline").read_bytes().replace(b"\0", b" ").decode()[:120]
    return out


@pytest.mark.slow  # spawning two workers that import torch: ~30 s on a loaded machine
def test_workers_and_resource_tracker_end_with_a_killed_parent(tmp_path):
    """SIGKILL of `odenet sweep` leaves no orphan: its worker processes and multiprocessing's
    resource tracker are gone within a few seconds."""
    if not Path("/proc/self/stat").exists():
        pytest.skip("reads the process table from /proc (Linux only)")
    file = tmp_path / "sweep.toml"
    file.write_text(SWEEP.replace("epochs = 30", "epochs = 100000"))  # the workers are busy when killed
    cmd = [sys.executable, "-m", "odenet.cli", "sweep", str(file), "--out", str(tmp_path / "out"), "--workers", "2",
           "--no-ensemble", "--quiet"]
    with open(tmp_path / "stderr.txt", "w") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err)
    log = tmp_path / "out.d" / "events.log"
    t0 = time.monotonic()
    def started() -> set[int]:
        return {int(ln.split()[2]) for ln in log.read_text().splitlines() if ln.startswith("start ")} \
            if log.exists() else set()

    while len(started()) < 2:
        assert proc.poll() is None, (tmp_path / "stderr.txt").read_text()
        assert time.monotonic() - t0 < 300, "the workers never started"
        time.sleep(0.1)
    workers = started()
    children = descendants(proc.pid)
    assert workers <= children and len(children) >= 3  # two workers and the resource tracker
    proc.kill()
    proc.wait()
    deadline = time.monotonic() + 10
    while alive(children) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not alive(children), f"orphans after SIGKILL of the parent: {alive(children)}"


@pytest.mark.slow  # spawns two workers that import torch
def test_a_killed_local_worker_is_logged_and_its_runs_retried_by_a_rerun(tmp_path):
    import threading

    from analysis.experiments.sweep import run_sweep

    # two runs of a few seconds each, one per worker: running when the kill comes
    text = SWEEP.replace("epochs = 30", "epochs = 300").replace("seed = [0, 1, 2]", "seed = [0]")
    spec = load_spec(tomllib_loads(text))
    out = tmp_path / "out"
    log = tmp_path / "out.d" / "events.log"
    result = {}
    th = threading.Thread(target=lambda: result.update(res=run_sweep(spec, out, workers=2, ensemble=False,
                                                                      progress=False)))
    th.start()
    t0 = time.monotonic()
    while not (log.exists() and any(ln.startswith("start ") for ln in log.read_text().splitlines())):
        assert th.is_alive() and time.monotonic() - t0 < 300, "no worker started"
        time.sleep(0.05)
    victim = int(next(ln for ln in log.read_text().splitlines() if ln.startswith("start ")).split()[2])
    os.kill(victim, signal.SIGKILL)
    th.join(600)
    res = result["res"]
    assert res.failed and not res.complete and all("BrokenProcessPool" in m for m in res.failed.values())
    lines = log.read_text().splitlines()
    assert sum(ln.startswith("worker-lost local pool") for ln in lines) == 1, lines
    assert {ln.split()[1] for ln in lines if ln.startswith("error ")} == set(res.failed)
    again = run_sweep(spec, out, workers=0, progress=False)
    assert again.complete and sorted(again.computed) == sorted(res.failed)
