"""Running sweeps: the same summary with the serial and the process executor, a Dask LocalCluster,
and ensembles on or off; the files (a group per run, the summary table in HDF5 and CSV); a run's
result equals an independent training and analysis of its config; resume."""
from __future__ import annotations

import csv
import math

import h5py
import numpy as np
import pytest
import torch

from analysis.io import list_records, load
from analysis.experiments.sweep import load_spec, read_table, run_sweep

TINY = {
    "sweep": {"name": "tiny", "ensemble_size": 4},
    "dataset": {"name": "circles", "n": 80},
    "model": {"width": 2, "depth": 2, "batchnorm": True},
    "train": {"epochs": 3, "batch_size": 16},
    "analyses": {"certificate": True, "bounds": True, "tunnel": {"resolution": 21}},
    "grid": {"eps": [0.5, 1.0], "seed": [0, 1, 2]},
}
SKIP = {"seconds"}  # wall time differs between executors


def same_rows(a: list[dict], b: list[dict], rtol=1e-6) -> None:
    """Equal summaries to float tolerance: ensembles agree with single runs to rounding, which
    BatchNorm trainings amplify (about 1e-9 relative in the losses after a few epochs)."""
    assert [r["run_id"] for r in a] == [r["run_id"] for r in b]
    for ra, rb in zip(a, b):
        assert set(ra) == set(rb)
        for k in ra:
            if k in SKIP:
                continue
            x, y = ra[k], rb[k]
            if isinstance(x, float) and isinstance(y, float):
                assert (math.isnan(x) and math.isnan(y)) or math.isclose(x, y, rel_tol=rtol, abs_tol=1e-12), (k, x, y)
            else:
                assert x == y, (k, x, y)


@pytest.fixture(scope="module")
def spec():
    return load_spec(TINY)


@pytest.fixture(scope="module")
def reference(spec, tmp_path_factory):
    out = tmp_path_factory.mktemp("ref") / "sweep"
    return run_sweep(spec, out, workers=0, ensemble=True, progress=False)


def test_same_summary_without_ensembles(spec, reference, tmp_path):
    res = run_sweep(spec, tmp_path / "single", workers=0, ensemble=False, progress=False)
    same_rows(reference.rows, res.rows)


def test_same_summary_with_local_processes(spec, reference, tmp_path):
    res = run_sweep(spec, tmp_path / "local", workers=2, ensemble=True, progress=False)
    assert len(res.computed) == len(spec.runs)
    same_rows(reference.rows, res.rows)


def test_same_summary_with_dask_local_cluster(spec, reference, tmp_path):
    from dask.distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as cluster:
        # by address, as `odenet sweep --scheduler tcp://HOST:PORT` does
        res = run_sweep(spec, tmp_path / "dask", scheduler=cluster.scheduler_address, progress=False)
        with Client(cluster) as client:  # or with a client of the caller's
            again = run_sweep(spec, tmp_path / "dask2", scheduler=client, ensemble=False, progress=False)
    assert len(res.computed) == len(spec.runs) == len(again.computed)
    same_rows(reference.rows, res.rows)
    same_rows(reference.rows, again.rows)
    log = (tmp_path / "dask.d" / "events.log").read_text().split()
    assert log.count("submit") == len(spec.runs) and log.count("done") == len(spec.runs)


def test_run_equals_independent_training_and_certificate(spec, reference):
    """One run's row against odenet.train + analysis.certify called directly on its config."""
    from analysis import certify
    from odenet import ResNet, make_dataset, train

    run = spec.runs[4]
    cfg = run.config
    data = make_dataset(**cfg["dataset"])
    res = train(ResNet(2, **cfg["model"], seed=cfg["train"]["seed"]), data, seed=cfg["train"]["seed"],
                epochs=cfg["train"]["epochs"], lr=cfg["train"]["lr"], batch_size=cfg["train"]["batch_size"],
                loss="bce", progress=False)
    row = next(r for r in reference.rows if r["run_id"] == run.run_id)
    assert math.isclose(row["test_loss"], res.metrics["test_loss"], rel_tol=1e-9)
    assert math.isclose(row["val_accuracy"], res.metrics["val_accuracy"], rel_tol=1e-12)
    rep = certify(res.model)
    assert math.isclose(row["min_margin"], float(rep.margin.min()), rel_tol=1e-9)
    assert row["certified"] == rep.no_critical_points
    # ... and its stored model is that trained model
    model = load(reference.h5, f"runs/{run.run_id}/model")
    x = data.x_test
    with torch.no_grad():
        assert torch.allclose(model(x), res.model(x), rtol=1e-9, atol=1e-12)


def test_critical_points_analysis_equals_a_direct_search(tmp_path):
    """The critical-points columns against analysis.find_critical_points on the padded data box."""
    from analysis import find_critical_points
    from odenet import make_dataset

    raw = dict(TINY, analyses={"critical_points": {"resolution": 9, "padding": 0.2}}, grid={"seed": [3]})
    res = run_sweep(load_spec(raw), tmp_path / "crit", workers=0, progress=False)
    (row,) = res.rows
    model = load(res.h5, f"runs/{row['run_id']}/model").fold_batchnorm()
    x = make_dataset(**TINY["dataset"]).x
    lo, hi = x.min(0).values, x.max(0).values
    box = torch.stack([lo - 0.2 * (hi - lo), hi + 0.2 * (hi - lo)], 1)
    cp = find_critical_points(model, box, resolution=9)
    assert row["n_critical"] == len(cp)
    assert row["n_saddles"] + row["n_minima"] + row["n_maxima"] + row["n_degenerate"] == len(cp)
    assert row["n_saddles"] == list(cp.kinds).count("saddle")


def test_files_hold_a_group_per_run_and_the_summary_table(spec, reference):
    import xarray as xr

    ids = [r.run_id for r in spec.runs]
    recs = list_records(reference.h5)
    assert {f"runs/{i}/model" for i in ids} | {f"runs/{i}/result" for i in ids} == set(recs)
    with h5py.File(reference.h5, "r") as f:
        assert f.attrs["complete"] == 1 and f.attrs["n_runs"] == len(ids)
        assert f.attrs["sweep_id"] == spec.sweep_id
    rec = load(reference.h5, f"runs/{ids[0]}/result")
    assert rec.run_id == ids[0] and rec.config == spec.runs[0].config
    assert rec.arrays["train_loss"].shape == (TINY["train"]["epochs"] + 1,)
    assert np.allclose(rec.arrays["certificate_margin"].min(), rec.summary["min_margin"])
    # the table: HDF5 group, CSV and xarray agree, one row per run in run order
    table = read_table(reference.h5)
    same_rows(table, reference.rows, rtol=0)
    with open(reference.csv) as fh:
        rows = list(csv.DictReader(fh))
    assert [r["run_id"] for r in rows] == ids
    assert [float(r["test_loss"]) for r in rows] == [r["test_loss"] for r in table]
    assert [r["certified"] for r in rows] == [str(r["certified"]).lower() for r in table]
    ds = xr.open_dataset(reference.h5, group="summary", engine="h5netcdf")
    try:
        assert list(ds["run"].values) == ids
        assert np.array_equal(ds["eps"].values, [r["eps"] for r in table])
        assert np.array_equal(ds["seed"].values, [0, 1, 2, 0, 1, 2])
    finally:
        ds.close()


def test_resume_skips_completed_and_recomputes_missing(spec, reference, tmp_path):
    import shutil

    out = tmp_path / "copy"
    shutil.copytree(reference.h5.with_suffix(".d"), tmp_path / "copy.d")
    gone = [spec.runs[1].run_id, spec.runs[5].run_id]
    for rid in gone:
        (tmp_path / "copy.d" / "runs" / f"{rid}.h5").unlink()
    res = run_sweep(spec, out, workers=0, progress=False)
    assert sorted(res.computed) == sorted(gone) and len(res.skipped) == len(spec.runs) - 2
    same_rows(reference.rows, res.rows)


def test_interrupted_sweep_assembles_what_is_complete(spec, tmp_path):
    from analysis.experiments.sweep import SerialExecutor

    class Interrupting(SerialExecutor):
        def run(self, tasks):
            it = super().run(tasks)
            yield next(it)
            raise KeyboardInterrupt

    res = run_sweep(spec, tmp_path / "int", executor=Interrupting(), progress=False)
    assert res.interrupted and not res.complete and 0 < len(res.rows) < len(spec.runs)
    with h5py.File(res.h5, "r") as f:
        assert f.attrs["complete"] == 0 and f.attrs["n_complete"] == len(res.rows)
    again = run_sweep(spec, tmp_path / "int", workers=0, progress=False)
    assert again.complete and set(again.computed).isdisjoint(res.computed)


def test_a_failing_task_does_not_stop_the_others(spec, reference, tmp_path):
    from analysis.experiments.sweep import SerialExecutor, run_task

    bad = spec.runs[0].run_id

    class Failing(SerialExecutor):
        def run(self, tasks):
            for t in tasks:
                if any(rid == bad for rid, _ in t["runs"]):
                    yield t, RuntimeError("boom")
                else:
                    yield t, run_task(t)

    res = run_sweep(spec, tmp_path / "fail", executor=Failing(), ensemble=False, progress=False)
    assert list(res.failed) == [bad] and "boom" in res.failed[bad] and not res.complete
    assert len(res.rows) == len(spec.runs) - 1
    again = run_sweep(spec, tmp_path / "fail", workers=0, progress=False)
    assert again.computed == [bad] and again.complete
    same_rows(reference.rows, again.rows)
