"""A sweep's results on disk, safe against interruption at any moment.

For an output name OUT the sweep writes

    OUT.d/sweep.json        the normalised sweep (its id decides which sweeps may share OUT)
    OUT.d/lock              held (flock) by the one process writing OUT; the OS frees it on any exit
    OUT.d/runs/<id>.h5      one file per completed run: groups ``model`` (the trained ResNet) and
                            ``result`` (config, summary row, histories, analysis arrays)
    OUT.d/events.log        ``start <id> <pid>`` (local workers) / ``submit <id>`` (Dask) / ``done <id>``
    OUT.h5                  the assembled sweep: groups runs/<id>/model, runs/<id>/result and the
                            table ``summary`` (one row per run along the dimension ``run``)
    OUT.csv                 the same summary table

A run file is written to a temporary name and renamed into place (analysis.hdf5's atomic create),
so a run is complete iff its file exists; a killed sweep loses at most the runs in flight.  OUT.h5
and OUT.csv are rebuilt (atomically) from the run files at the end of every invocation, complete
or not; the attribute ``complete`` of OUT.h5 says whether every run is in.
"""
from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from analysis.hdf5.schema import Attr, Json, Mapping, Schema, register

try:  # POSIX
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None
    import msvcrt

from .spec import SweepSpec

RUN_SUFFIX = ".h5"


@dataclass
class RunRecord:
    """The result group of one run: its id, complete config, swept parameters, summary row (the
    scalars of the summary table), wall time, worker, and arrays (training histories, analysis
    arrays)."""

    run_id: str
    config: dict
    params: dict
    summary: dict
    seconds: float
    worker: str
    arrays: dict


register(Schema("SweepRun", RunRecord, (Attr("run_id", str), Json("config"), Json("params"), Json("summary"),
                                        Attr("seconds", float), Attr("worker", str), Mapping("arrays")),
                doc="one run of a parameter sweep (analysis.sweep)"))


class SweepConflictError(ValueError):
    """Another sweep (a different sweep file) already writes to this output."""


class SweepBusyError(RuntimeError):
    """Another process is writing this output right now."""


def output_paths(out: str | os.PathLike) -> tuple[Path, Path, Path]:
    """(OUT.h5, OUT.csv, OUT.d) for ``out`` given with or without the .h5 suffix."""
    p = Path(out)
    if p.suffix in (".h5", ".hdf5"):
        p = p.with_suffix("")
    return p.with_name(p.name + ".h5"), p.with_name(p.name + ".csv"), p.with_name(p.name + ".d")


class SweepStore:
    """The files of one sweep output (module docstring).  Use as a context manager: entering takes
    the lock and checks (or records) the sweep's identity."""

    def __init__(self, out: str | os.PathLike, spec: SweepSpec):
        self.h5, self.csv, self.dir = output_paths(out)
        self.runs_dir = self.dir / "runs"
        self.spec = spec
        self._lock = None

    # --- identity and lock ------------------------------------------------------------------
    def __enter__(self) -> "SweepStore":
        self.dir.parent.mkdir(parents=True, exist_ok=True)
        self.runs_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.dir / "lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            _lock(fd)
        except OSError:
            os.close(fd)
            raise SweepBusyError(f"another process is writing the sweep output {self.dir}; wait for it to end "
                                 f"or choose another --out") from None
        self._lock = fd
        try:
            self._check_identity()
            self._remove_temporaries()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self._lock is not None:
            _unlock(self._lock)
            os.close(self._lock)
            self._lock = None

    def _check_identity(self) -> None:
        path = self.dir / "sweep.json"
        mine = dict(sweep_id=self.spec.sweep_id, sweep=self.spec.normalised)
        if path.exists():
            theirs = json.loads(path.read_text())
            if theirs.get("sweep_id") != mine["sweep_id"]:
                other = theirs.get("sweep", {})
                diff = sorted(k for k in set(other) | set(mine["sweep"]) if other.get(k) != mine["sweep"].get(k))
                raise SweepConflictError(
                    f"the output {self.dir} holds another sweep ({other.get('name')!r}, id {theirs.get('sweep_id')}); "
                    f"this sweep file ({self.spec.name!r}, id {mine['sweep_id']}) differs in {diff}. "
                    f"Choose another --out, or delete {self.dir} to start over")
            return
        tmp = path.with_name(".sweep.json.tmp")
        tmp.write_text(json.dumps(mine, indent=1, sort_keys=True))
        os.replace(tmp, path)

    def _remove_temporaries(self) -> None:
        """Temporary files left by a killed process (we hold the lock: nobody else writes)."""
        for folder in (self.runs_dir, self.h5.parent):
            for p in folder.glob(".*.tmp"):
                if folder == self.runs_dir or p.name.startswith(f".{self.h5.name}.") or \
                        p.name.startswith(f".{self.csv.name}."):
                    with contextlib.suppress(FileNotFoundError):
                        p.unlink()

    # --- runs ---------------------------------------------------------------------------------
    def run_path(self, run_id: str) -> Path:
        return self.runs_dir / f"{run_id}{RUN_SUFFIX}"

    def completed(self) -> set[str]:
        """Ids of the runs whose files exist (each is complete: files appear by rename)."""
        return {p.name[:-len(RUN_SUFFIX)] for p in self.runs_dir.glob(f"*{RUN_SUFFIX}") if not p.name.startswith(".")}

    def log(self, line: str) -> None:
        with open(self.dir / "events.log", "a") as fh:
            fh.write(line + "\n")

    @property
    def log_path(self) -> Path:
        return self.dir / "events.log"

    def write_run(self, out, params: dict) -> Path:
        """Store one :class:`~analysis.sweep.runner.RunOutput` atomically under its run id."""
        from analysis.hdf5 import save

        result = RunRecord(out.run_id, out.config, params, _jsonable(out.row), float(out.seconds), out.worker,
                           dict(out.arrays))
        path = self.run_path(out.run_id)
        save(path, {"model": out.model(), "result": result}, overwrite=True,
             seed=out.config["train"]["seed"], config=out.config)
        self.log(f"done {out.run_id}")
        return path

    # --- the assembled results ------------------------------------------------------------------
    def rows(self) -> list[dict]:
        """The summary rows of the completed runs, in the sweep's run order."""
        done = self.completed()
        rows = []
        for run in self.spec.runs:
            if run.run_id not in done:
                continue
            with h5py.File(self.run_path(run.run_id), "r") as f:
                g = f["result"]
                summary = json.loads(g.attrs["summary"])
                seconds = float(g.attrs["seconds"])
            rows.append(summary_row(run, summary, seconds))
        return rows

    def assemble(self) -> tuple[Path, Path]:
        """Write OUT.h5 and OUT.csv from the completed run files (atomically, replacing old ones)."""
        from analysis.hdf5.format import atomic_create
        from analysis.hdf5.schema import read_group, write_group

        rows = self.rows()
        done = [r["run_id"] for r in rows]
        with atomic_create(self.h5, overwrite=True) as f:
            f.attrs["sweep"] = json.dumps(self.spec.normalised)
            f.attrs["sweep_id"] = self.spec.sweep_id
            f.attrs["sweep_name"] = self.spec.name
            f.attrs["n_runs"] = np.int64(len(self.spec.runs))
            f.attrs["n_complete"] = np.int64(len(done))
            f.attrs["complete"] = np.int8(len(done) == len(self.spec.runs))
            runs = f.create_group("runs", track_order=True)
            for rid in done:
                with h5py.File(self.run_path(rid), "r") as src:
                    dst = runs.create_group(rid, track_order=True)
                    for name in ("model", "result"):
                        g = dst.create_group(name, track_order=True)
                        write_group(g, read_group(src[name]))
                        for k, v in src[name].attrs.items():
                            if k not in g.attrs:
                                g.attrs[k] = v
            write_table(f.create_group("summary", track_order=True), rows)
        text = table_csv(rows)
        tmp = self.csv.with_name(f".{self.csv.name}.tmp")
        tmp.write_text(text)
        os.replace(tmp, self.csv)
        return self.h5, self.csv


def _lock(fd: int) -> None:
    """Take the output's lock without waiting (OSError if held); the OS frees it when the holder
    exits, however it exits."""
    if fcntl is not None:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    else:  # pragma: no cover - Windows
        msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)


def _unlock(fd: int) -> None:
    if fcntl is not None:
        fcntl.flock(fd, fcntl.LOCK_UN)
    else:  # pragma: no cover - Windows
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)


def _jsonable(row: dict) -> dict:
    out = {}
    for k, v in row.items():
        if isinstance(v, (np.generic,)):
            v = v.item()
        out[k] = v
    return out


def summary_row(run, summary: dict, seconds: float) -> dict:
    """One summary row: run id, the run's full architecture and training parameters, its results."""
    m, t = run.config["model"], run.config["train"]
    row = {"run_id": run.run_id}
    row.update({k: m[k] for k in ("eps", "delta", "depth", "width", "activation", "input_map", "batchnorm")})
    row["T"] = m["T"] if m["T"] is not None else m["depth"] * m["delta"]
    row["ratio"] = m["delta"] / m["eps"] if m["eps"] > 0 else math.inf
    row.update({k: t[k] for k in ("seed", "epochs", "lr", "batch_size")})
    row.update(summary)
    row["seconds"] = seconds
    return row


def _column(values: list):
    """(numpy array, kind) for one column: bool -> int8, int -> int64, float -> float64, else str."""
    present = [v for v in values if v is not None]
    if present and all(isinstance(v, (bool, np.bool_)) for v in present):
        return np.array([-1 if v is None else int(v) for v in values], dtype=np.int8), "bool"
    if present and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in present) \
            and len(present) == len(values):
        return np.array(values, dtype=np.int64), "int"
    if present and all(isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)
                       for v in present):
        return np.array([math.nan if v is None else float(v) for v in values], dtype=np.float64), "float"
    return np.array(["" if v is None else str(v) for v in values], dtype=object), "str"


def columns_of(rows: list[dict]) -> list[str]:
    cols: dict[str, None] = {}
    for r in rows:
        cols.update(dict.fromkeys(r))
    return list(cols)


def write_table(g: h5py.Group, rows: list[dict]) -> None:
    """The summary as netCDF-style columns along the dimension ``run`` (coordinate: the run ids),
    so ``xarray.open_dataset(OUT.h5, group="summary", engine="h5netcdf")`` reads it as a table."""
    cols = columns_of(rows)
    str_t = h5py.string_dtype("utf-8")
    ids = g.create_dataset("run", data=np.array([r["run_id"] for r in rows], dtype=object), dtype=str_t)
    ids.make_scale("run")
    g.attrs["columns"] = json.dumps(cols)
    for c in cols:
        if c == "run_id":
            continue
        arr, kind = _column([r.get(c) for r in rows])
        ds = g.create_dataset(c, data=arr, dtype=str_t if kind == "str" else arr.dtype)
        ds.attrs["kind"] = kind
        if kind == "bool":
            ds.attrs["long_name"] = f"{c} (1 true, 0 false, -1 missing)"
        ds.dims[0].attach_scale(ids)


def read_table(path: str | os.PathLike) -> list[dict]:
    """The summary rows of an assembled sweep file (inverse of :func:`write_table`)."""
    with h5py.File(path, "r") as f:
        g = f["summary"]
        cols = json.loads(g.attrs["columns"])
        ids = [v.decode() if isinstance(v, bytes) else v for v in g["run"][()]]
        rows = [{"run_id": i} for i in ids]
        for c in cols:
            if c == "run_id":
                continue
            kind = g[c].attrs["kind"]
            vals = g[c][()]
            for r, v in zip(rows, vals):
                if kind == "bool":
                    r[c] = None if v < 0 else bool(v)
                elif kind == "str":
                    r[c] = v.decode() if isinstance(v, bytes) else v
                else:
                    r[c] = v.item()
    return rows


def table_csv(rows: list[dict]) -> str:
    """The summary as CSV (header = column names; floats in full precision, booleans true/false)."""
    cols = columns_of(rows)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(cols)
    for r in rows:
        w.writerow([_cell(r.get(c)) for c in cols])
    return buf.getvalue()


def _cell(v) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return repr(v)
    return str(v)
