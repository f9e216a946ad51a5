"""Parameter sweeps over (ε, δ or δ/ε, L, width, seed, ...): a TOML sweep file expands into runs
with deterministic ids; each run is trained (runs sharing an architecture together, as one
vectorised ensemble) and analysed (certificate, critical points, tunnel, bounds); results go to
one file per run as each finishes, and are assembled into OUT.h5 (a group per run and a summary
table) and OUT.csv.  Rerunning resumes; Dask runs the same sweep on a cluster.  docs/sweeps.md
describes the file format.

    spec = load_spec("examples/phase-diagram.toml")
    result = run_sweep(spec, "results/phase", workers=2)          # local processes
    result = run_sweep(spec, "results/phase", scheduler="tcp://host:8786")   # Dask
"""
from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from analysis.experiments.sweep.executors import (DASK_TIMEOUT, DaskExecutor, Executor, LocalExecutor, NoWorkersError,
                                                  SerialExecutor, check_timeout, check_workers, make_executor)
from analysis.experiments.sweep.runner import RunOutput, run_task
from analysis.experiments.sweep.spec import MAX_RUNS, Run, SweepSpec, SweepSpecError, canonical_json, config_id, load_spec
from analysis.experiments.sweep.store import SweepBusyError, SweepConflictError, SweepStore, check_outputs, output_paths, read_table

if TYPE_CHECKING:
    from dask.distributed import Client

__all__ = ["load_spec", "run_sweep", "plan_tasks", "dry_run", "SweepSpec", "Run", "SweepSpecError",
           "SweepConflictError", "SweepBusyError", "NoWorkersError", "SweepResult", "SweepStore", "RunOutput",
           "run_task", "read_table", "output_paths", "check_outputs", "config_id", "canonical_json",
           "make_executor", "Executor", "SerialExecutor", "LocalExecutor", "DaskExecutor", "MAX_RUNS", "DASK_TIMEOUT"]


@dataclass
class SweepResult:
    """What :func:`run_sweep` did: the files, the summary rows (completed runs, in run order), the
    runs computed now, those already complete, and ``failed`` (run id -> error message: runs whose
    task raised; they stay pending and a rerun retries them)."""

    spec: SweepSpec
    h5: Path
    csv: Path
    rows: list
    computed: list = field(default_factory=list)
    skipped: list = field(default_factory=list)
    interrupted: bool = False
    failed: dict = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        """Every run of the sweep is in (``len(rows) == len(spec.runs)``)."""
        return len(self.rows) == len(self.spec.runs)


def plan_tasks(runs: list[Run], *, ensemble: bool = True, ensemble_size: int = 64, workers: int = 1) -> list[list[Run]]:
    """Group runs into tasks.  With ``ensemble``, runs of one group key (same data, architecture and
    training settings; seeds differ) are trained together, in chunks of at most ``ensemble_size``,
    split further so that ``workers`` processes have a task each; else one run per task."""
    if not ensemble:
        return [[r] for r in runs]
    groups: dict[str, list[Run]] = {}
    for r in runs:
        groups.setdefault(r.group_key, []).append(r)
    per_group = max(1, math.ceil(workers / max(1, len(groups))))
    tasks = []
    for members in groups.values():
        size = max(1, min(ensemble_size, math.ceil(len(members) / per_group)))
        tasks += [members[i:i + size] for i in range(0, len(members), size)]
    return tasks


def dry_run(spec: SweepSpec, out: str | os.PathLike | None = None, *, overwrite: bool = False) -> list[dict]:
    """The runs as rows {run_id, status ("done"/"pending"), parameters}, without running or
    writing anything.  Raises SweepConflictError where the real run would (``out`` holds
    another sweep or files this sweep did not write, see :func:`check_outputs`)."""
    done: set[str] = set()
    if out is not None:
        check_outputs(out, spec, overwrite=overwrite)
        store = SweepStore(out, spec, overwrite=overwrite)  # not entered: nothing is locked or written
        if store.runs_dir.is_dir():
            done = store.completed()
    return [dict(run_id=r.run_id, status="done" if r.run_id in done else "pending", **r.params) for r in spec.runs]


def default_out(spec: SweepSpec) -> Path:
    """The output name used when none is given: the sweep's name, in the current folder."""
    return Path(spec.name)


def run_sweep(sweep: SweepSpec | str | os.PathLike | dict, out: str | os.PathLike | None = None, *,
              workers: int | None = None, scheduler: str | Client | None = None, dask: bool = False,
              ensemble: bool = True, ensemble_size: int | None = None, progress: bool = True,
              executor: Executor | None = None, overwrite: bool = False,
              max_runs: int = MAX_RUNS, dask_timeout: float = DASK_TIMEOUT) -> SweepResult:
    """Run (or resume) a sweep and assemble its results (module docstring).

    Parameters
    ----------
    sweep : a validated :class:`SweepSpec`, a TOML path or a parsed dict (then validated with
        ``max_runs``: a larger sweep is refused before it is expanded).
    out : output name OUT (files OUT.h5, OUT.csv, OUT.d/, and nothing else); default: the
        sweep's name, in the current folder.
    workers : local processes (default: all cores); 0 runs in this process.
    scheduler : a Dask scheduler address ``tcp://HOST:PORT`` or a ``dask.distributed.Client``.
    dask : run on a Dask ``LocalCluster`` of ``workers`` processes (when no scheduler is given).
    ensemble : train runs that share an architecture together (vectorised); False trains each run
        alone (same results to rounding).
    ensemble_size : most runs per ensemble (default: the sweep file's, 64).
    executor : an :class:`~analysis.experiments.sweep.executors.Executor` instead of the above (the
        caller closes it).
    overwrite : replace an OUT.h5 / OUT.csv and take over an OUT.d that this sweep did not write
        (otherwise they are refused with :class:`SweepConflictError` before anything runs).
    max_runs : most runs of a sweep given as a path or dict (:func:`load_spec`).
    dask_timeout : seconds to wait for a first Dask worker (:class:`NoWorkersError` after).

    Completed runs (their files exist) are skipped; a KeyboardInterrupt stops the sweep after
    assembling what is complete, and returns with ``interrupted=True``.  A task that raises does
    not stop the others: its runs are reported in ``failed`` (and in OUT.d/events.log).

    Bad arguments (:class:`SweepSpecError` for the sweep, ValueError for ``ensemble_size``,
    ``workers``, ``dask_timeout``) and outputs this sweep did not write
    (:class:`SweepConflictError`) are refused before anything runs; :class:`SweepBusyError` when
    another process is writing ``out``.  Files: each run's file appears atomically as the run
    finishes, and OUT.h5 and OUT.csv are rebuilt atomically at the end, all under OUT.d's lock
    (:class:`SweepStore`).
    """
    spec = sweep if isinstance(sweep, SweepSpec) else load_spec(sweep, max_runs=max_runs)
    out = default_out(spec) if out is None else out
    size = spec.ensemble_size if ensemble_size is None else ensemble_size
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ValueError(f"ensemble_size must be a positive int; got {size!r}")
    check_workers(workers)  # also when every run is complete and no executor is made
    check_timeout(dask_timeout)
    if ensemble and size > spec.ensemble_size:  # more runs trained together than the file's check allowed for
        from analysis.experiments.sweep.runner import dataset_of
        from analysis.experiments.sweep.spec import check_memory

        check_memory(spec, dataset_of(spec.runs[0].config), ensemble_size=size)
    with SweepStore(out, spec, overwrite=overwrite) as store:
        done = store.completed()
        pending = [r for r in spec.runs if r.run_id not in done]
        skipped = [r.run_id for r in spec.runs if r.run_id in done]
        computed: list[str] = []
        failed: dict[str, str] = {}
        interrupted = False
        if pending:
            own = executor is None
            ex = make_executor(workers, scheduler, dask, dask_timeout=dask_timeout) if executor is None else executor
            ex.events = store.log
            params = {r.run_id: r.params for r in spec.runs}
            tasks: list[dict[str, Any]] = [dict(runs=[(r.run_id, r.config) for r in t], ensemble=ensemble,
                          log=str(store.log_path) if ex.local else None)
                     for t in plan_tasks(pending, ensemble=ensemble, ensemble_size=size, workers=ex.workers)]
            if not ex.local:
                for t in tasks:
                    for rid, _ in t["runs"]:
                        store.log(f"submit {rid}")
            from tqdm.auto import tqdm

            bar = tqdm(total=len(spec.runs), initial=len(skipped), unit="run", desc=f"sweep {spec.name}",
                       disable=not progress, smoothing=0.1)
            t0 = time.perf_counter()
            finished = ex.run(tasks)
            try:
                for task, outputs in finished:
                    if isinstance(outputs, BaseException):  # the task's runs stay pending: a rerun retries them
                        msg = f"{type(outputs).__name__}: {outputs}".replace("\n", " ")
                        for rid, _ in task["runs"]:
                            failed[rid] = msg
                            store.log(f"error {rid} {msg}")
                        if progress:
                            bar.write(f"sweep {spec.name}: {len(task['runs'])} run(s) failed: {msg}")
                        continue
                    for o in outputs:
                        store.write_run(o, params[o.run_id])
                        computed.append(o.run_id)
                    bar.update(len(outputs))
            except KeyboardInterrupt:
                interrupted = True
            finally:
                finished.close()  # cancels what is still queued (Dask: the cluster's pending tasks)
                bar.close()
                if own:
                    ex.close(kill=True) if interrupted else ex.close()
            elapsed = time.perf_counter() - t0
            if progress and not interrupted:
                print(f"sweep {spec.name}: {len(computed)} runs in {elapsed:.1f} s, {len(skipped)} already complete")
        h5, csv = store.assemble()
        rows = store.rows()
    return SweepResult(spec, h5, csv, rows, computed, skipped, interrupted, failed)
