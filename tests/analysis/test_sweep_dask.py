"""Dask: a scheduler without workers ends the sweep after --dask-timeout with a clear message and
exit status 2; a lost worker and the retries of its tasks are logged in events.log; a LocalCluster
started by the sweep shuts down without the nannies' warnings."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from analysis.experiments.sweep import NoWorkersError, load_spec, read_table, run_sweep

pytest.importorskip("dask.distributed", reason="the Dask executor needs dask.distributed")

SWEEP = '[sweep]\nname = "d"\n[dataset]\nname = "circles"\nn = 60\n[train]\nepochs = 1\nbatch_size = 30\n' \
        '[grid]\nseed = [0, 1]\n'


@pytest.fixture(scope="module")
def empty_scheduler():
    from dask.distributed import LocalCluster

    with LocalCluster(n_workers=0, processes=False, dashboard_address=":0") as cluster:  # any free port
        yield cluster.scheduler_address


def test_no_workers_exit_2_after_the_timeout(tmp_path, capsys, empty_scheduler):
    from odenet.cli import main

    (tmp_path / "s.toml").write_text(SWEEP)
    code = main(["sweep", str(tmp_path / "s.toml"), "--out", str(tmp_path / "o"), "--scheduler", empty_scheduler,
                 "--dask-timeout", "0.5", "--quiet"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "no worker" in err and "--dask-timeout" in err and "0.5 s" in err and empty_scheduler in err
    assert list((tmp_path / "o.d" / "runs").iterdir()) == []  # nothing ran


def test_no_workers_from_python_raises(tmp_path, empty_scheduler):
    spec = load_spec({"dataset": {"name": "circles", "n": 60}, "train": {"epochs": 1}})
    t0 = time.monotonic()
    with pytest.raises(NoWorkersError, match=r"dask_timeout \(--dask-timeout\) = 0.3 s"):
        run_sweep(spec, tmp_path / "o", scheduler=empty_scheduler, dask_timeout=0.3, progress=False)
    assert time.monotonic() - t0 < 60  # does not hang (a generous bound: the machine is shared)


@pytest.mark.parametrize("bad", [0, -1.0, float("nan"), float("inf"), "10", True])
def test_bad_dask_timeout_is_refused_before_work(tmp_path, bad):
    spec = load_spec({"dataset": {"name": "circles", "n": 60}, "train": {"epochs": 1}})
    with pytest.raises(ValueError, match=r"dask_timeout \(--dask-timeout\) must be a finite number of seconds > 0; "
                                         r"got " + repr(bad).replace("(", r"\(").replace(")", r"\)")):
        run_sweep(spec, tmp_path / "o", workers=0, dask_timeout=bad, progress=False)
    assert not (tmp_path / "o.d").exists()


@pytest.mark.slow  # a LocalCluster of worker processes and a training long enough to be killed in
def test_a_lost_worker_and_the_retry_are_logged(tmp_path):
    from dask.distributed import Client, LocalCluster

    text = SWEEP.replace("epochs = 1", "epochs = 400").replace("seed = [0, 1]", "seed = [0]")
    (tmp_path / "s.toml").write_text(text)
    spec = load_spec(tmp_path / "s.toml")
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        result = {}
        th = threading.Thread(target=lambda: result.update(res=run_sweep(spec, tmp_path / "o", scheduler=client,
                                                                          progress=False)))
        th.start()
        t0 = time.monotonic()
        while not any(client.processing().values()):
            assert time.monotonic() - t0 < 120 and th.is_alive(), "the task never started"
            time.sleep(0.05)
        busy = next(w for w, keys in client.processing().items() if keys)
        os.kill(client.run(os.getpid, workers=[busy])[busy], signal.SIGKILL)  # the nanny restarts it
        th.join(600)
    res = result["res"]
    assert res.complete and read_table(res.h5)[0]["run_id"] == spec.runs[0].run_id
    log = (tmp_path / "o.d" / "events.log").read_text().splitlines()
    assert any(ln.startswith(f"worker-lost {busy} running 1 task") for ln in log), log
    assert f"retry {spec.runs[0].run_id} worker {busy} lost" in log, log


@pytest.mark.slow  # starts a LocalCluster of worker processes
def test_own_local_cluster_closes_without_nanny_warnings(tmp_path):
    (tmp_path / "s.toml").write_text(SWEEP)
    p = subprocess.run([sys.executable, "-m", "odenet.cli", "sweep", str(tmp_path / "s.toml"), "--out",
                        str(tmp_path / "o"), "--dask", "--workers", "1", "--quiet"], capture_output=True, text=True,
                       timeout=600)
    assert p.returncode == 0, p.stderr
    assert "still alive" not in p.stderr and "killing" not in p.stderr.lower(), p.stderr
    assert len(read_table(tmp_path / "o.h5")) == 2
