"""A sweep's results on disk, safe against interruption at any moment, contained in its output.

For an output name OUT the sweep writes

    OUT.d/sweep.json        the normalised sweep (its id decides which sweeps may share OUT) and
                            the SHA-256 of the OUT.csv it last wrote (OUT.csv's identity)
    OUT.d/sweep.json.lock   held by the one process writing OUT; the OS frees it on any exit
    OUT.d/runs/<id>.h5      one file per completed run: groups ``model`` (the trained ResNet) and
                            ``result`` (config, summary row, histories, analysis arrays)
    OUT.d/events.log        ``start <id> <pid>`` (local workers) / ``submit <id>`` (Dask) / ``done <id>``,
                            ``error <id> ...``, ``worker-lost ...``, ``retry <id> ...``
    OUT.h5                  the assembled sweep: groups runs/<id>/model, runs/<id>/result and the
                            table ``summary`` (one row per run along the dimension ``run``); root
                            attribute ``sweep_id`` (OUT.h5's identity)
    OUT.h5.lock             held while OUT.h5 and OUT.csv are rebuilt (analysis.io.atomic)
    OUT.csv                 the same summary table

and nothing else: every file appears by an atomic rename from a temporary file created with
``O_EXCL`` beside it (:mod:`analysis.io.atomic`), so a run is complete iff its file exists
and a killed sweep loses at most the runs in flight.  An existing OUT.h5, OUT.csv or OUT.d that
this sweep did not write (their identities above) is refused before anything is computed,
unless ``overwrite``.  OUT.h5 and OUT.csv are rebuilt from the run files at the end of every
invocation, complete or not, under OUT.h5's writer's lock; groups that another writer added to
OUT.h5 (outside ``runs`` and ``summary``) are carried over.  The attribute ``complete`` of
OUT.h5 says whether every run is in.
"""
from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import h5py
import numpy as np

from analysis.io.atomic import TEMP_SUFFIX, atomic_path, atomic_write_text, exclusive_lock, temp_files_of
from analysis.io.schema import Attr, Json, Mapping, Schema, register

from analysis.experiments.sweep.spec import Run, SweepSpec

if TYPE_CHECKING:
    from analysis.experiments.sweep.runner import RunOutput

RUN_SUFFIX = ".h5"
#: The groups of OUT.h5 that the assembly writes; any other top-level group is carried over.
SWEEP_GROUPS = ("runs", "summary")
#: What an OUT.d holds before its sweep.json is written (a sweep killed while starting).
UNCLAIMED = {"sweep.json.lock", "runs"}


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
                doc="one run of a parameter sweep (analysis.experiments.sweep)"))


class SweepConflictError(ValueError):
    """The output holds files this sweep did not write: another sweep's, or not a sweep's."""


class SweepBusyError(RuntimeError):
    """Another process is writing this output right now."""


def output_paths(out: str | os.PathLike) -> tuple[Path, Path, Path]:
    """(OUT.h5, OUT.csv, OUT.d) for ``out`` given with or without the .h5 suffix."""
    p = Path(out)
    if p.suffix in (".h5", ".hdf5"):
        p = p.with_suffix("")
    if not p.name or p.name in (".", ".."):
        raise ValueError(f"out must name a file (OUT writes OUT.h5, OUT.csv, OUT.d); got {os.fspath(out)!r}")
    return p.with_name(p.name + ".h5"), p.with_name(p.name + ".csv"), p.with_name(p.name + ".d")


def append_line(path: str | os.PathLike, line: str) -> None:
    """Append one line to a log file: one O_APPEND write (lines of concurrent writers never
    interleave), never through a symbolic link planted at ``path``.  Creates the file (0o644)
    if needed; takes no lock (none is needed for whole-line appends)."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o644)
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)


def sha256_of(path: str | os.PathLike) -> str:
    """Hex SHA-256 of the bytes of the file ``path`` (read in 1 MiB blocks)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def read_record(folder: Path) -> dict | None:
    """OUT.d/sweep.json as a dict; None if absent; {} if it is not a sweep's record."""
    path = folder / "sweep.json"
    if not path.exists():
        return None
    try:
        rec = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return rec if isinstance(rec, dict) else {}


def h5_sweep_id(path: Path) -> str | None:
    """The root attribute ``sweep_id`` of an HDF5 file; None if absent or not HDF5."""
    try:
        if not h5py.is_hdf5(path):
            return None
        with h5py.File(path, "r") as f:
            v = f.attrs.get("sweep_id")
    except (OSError, ValueError):
        return None
    return v.decode() if isinstance(v, bytes) else (None if v is None else str(v))


def check_outputs(out: str | os.PathLike, spec: SweepSpec, *, overwrite: bool = False) -> None:
    """Refuse (:class:`SweepConflictError`, naming the path) an existing OUT.d, OUT.h5 or OUT.csv
    that this sweep did not write, unless ``overwrite``; writes nothing.

    Identities: OUT.d/sweep.json holds this sweep's id (an OUT.d holding only what a sweep makes
    while starting counts as this sweep's); OUT.h5 has the root attribute ``sweep_id`` of this
    sweep; OUT.csv's SHA-256 is one that OUT.d/sweep.json records as written by this sweep.
    Paths that exist but are of the wrong kind (a file at OUT.d, a folder at OUT.h5) are refused
    even with ``overwrite``."""
    if not isinstance(overwrite, bool):
        raise TypeError(f"overwrite must be a bool; got {overwrite!r}")
    h5, csv_path, folder = output_paths(out)
    hint = "pass overwrite=True (--overwrite) to replace it, or choose another --out"
    for p, kind in ((folder, "folder"), (h5, "file"), (csv_path, "file")):
        if p.exists() and (not p.is_dir() if kind == "folder" else not p.is_file()):
            raise SweepConflictError(f"the sweep output {os.fspath(p)!r} exists and is not a {kind}; "
                                     f"choose another --out")
    if not folder.parent.is_dir() and folder.parent.exists():
        raise SweepConflictError(f"the folder of the sweep output, {os.fspath(folder.parent)!r}, is not a folder")
    if overwrite:
        return
    rec = read_record(folder) if folder.is_dir() else None
    if rec is None and folder.is_dir() and not _unclaimed(folder):
        raise SweepConflictError(f"the folder {os.fspath(folder)!r} exists and was not created by a sweep (no "
                                 f"sweep.json in it); {hint}")
    if rec is not None and rec.get("sweep_id") != spec.sweep_id:
        other = rec.get("sweep", {}) if isinstance(rec.get("sweep"), dict) else {}
        mine = spec.normalised
        diff = sorted(k for k in set(other) | set(mine) if other.get(k) != mine.get(k))
        raise SweepConflictError(
            f"the output {os.fspath(folder)!r} holds another sweep ({other.get('name')!r}, id {rec.get('sweep_id')}); "
            f"this sweep file ({spec.name!r}, id {spec.sweep_id}) differs in {diff}. "
            f"Choose another --out, pass overwrite=True (--overwrite) to take it over, or delete it to start over")
    if h5.is_file():
        owner = h5_sweep_id(h5)
        if owner != spec.sweep_id:
            whose = "no sweep" if owner is None else f"another sweep (id {owner})"
            raise SweepConflictError(f"{os.fspath(h5)!r} exists and was written by {whose}, not this sweep "
                                     f"(id {spec.sweep_id}); {hint}")
    if csv_path.is_file():
        known = (rec or {}).get("csv_sha256") or []
        if sha256_of(csv_path) not in known:
            raise SweepConflictError(f"{os.fspath(csv_path)!r} exists and was not written by this sweep (its "
                                     f"SHA-256 is not among those recorded in {os.fspath(folder / 'sweep.json')!r}); "
                                     f"{hint}")


def _unclaimed(folder: Path) -> bool:
    """An OUT.d left by a sweep killed before it wrote sweep.json: only the lock and an empty runs/."""
    names = {p.name for p in folder.iterdir()}
    runs = folder / "runs"
    return names <= UNCLAIMED and (not runs.is_dir() or not any(runs.iterdir()))


class SweepStore:
    """The files of one sweep output (module docstring).  Use as a context manager: entering
    checks the outputs' identities (:func:`check_outputs`), takes the lock and records the
    sweep's identity; ``overwrite`` takes over outputs this sweep did not write.

    The lock is OUT.d/sweep.json's writer's lock (:func:`analysis.io.atomic.exclusive_lock`),
    taken without waiting: :class:`SweepBusyError` if another process holds it.  It is held
    until :meth:`close` (the ``with`` block's end), so one process at a time writes the runs,
    sweep.json, OUT.h5 and OUT.csv; every one of those files is published atomically.
    Constructing the store touches nothing."""

    def __init__(self, out: str | os.PathLike, spec: SweepSpec, *, overwrite: bool = False):
        self.h5, self.csv, self.dir = output_paths(out)
        self.out = out
        self.runs_dir = self.dir / "runs"
        self.spec = spec
        self.overwrite = overwrite
        self._stack: contextlib.ExitStack | None = None

    # --- identity and lock ------------------------------------------------------------------
    def __enter__(self) -> "SweepStore":
        check_outputs(self.out, self.spec, overwrite=self.overwrite)  # before anything is written
        self.dir.parent.mkdir(parents=True, exist_ok=True)
        self.dir.mkdir(exist_ok=True)
        stack = contextlib.ExitStack()
        try:
            stack.enter_context(exclusive_lock(self.dir / "sweep.json", timeout=0))
        except TimeoutError:
            raise SweepBusyError(f"another process is writing the sweep output {os.fspath(self.dir)!r}; wait for "
                                 f"it to end or choose another --out") from None
        self._stack = stack
        try:
            check_outputs(self.out, self.spec, overwrite=self.overwrite)  # again, now that we hold the lock
            self._claim()
            self.runs_dir.mkdir(exist_ok=True)
            self._remove_temporaries(self.runs_dir.glob(f".*{RUN_SUFFIX}.*{TEMP_SUFFIX}"))  # runs/ is ours alone
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Release the lock (idempotent)."""
        if self._stack is not None:
            self._stack.close()
            self._stack = None

    def _claim(self) -> None:
        """Write sweep.json unless it already holds this sweep (``overwrite``: replace another's)."""
        rec = read_record(self.dir)
        if rec is not None and rec.get("sweep_id") == self.spec.sweep_id:
            return
        self._write_record(dict(sweep_id=self.spec.sweep_id, sweep=self.spec.normalised, csv_sha256=[]))

    def _write_record(self, rec: dict) -> None:
        atomic_write_text(self.dir / "sweep.json", json.dumps(rec, indent=1, sort_keys=True))

    @staticmethod
    def _remove_temporaries(paths) -> None:
        """Remove temporary files left by a killed writer (call with the lock that every writer of
        those files holds): regular files only, never a folder or a link of that name."""
        for p in paths:
            if p.is_symlink() or not p.is_file():
                continue
            with contextlib.suppress(FileNotFoundError):
                p.unlink()

    # --- runs ---------------------------------------------------------------------------------
    def run_path(self, run_id: str) -> Path:
        """OUT.d/runs/<run_id>.h5, the file of one run."""
        return self.runs_dir / f"{run_id}{RUN_SUFFIX}"

    def completed(self) -> set[str]:
        """Ids of the runs whose files exist (each is complete: files appear by rename)."""
        return {p.name[:-len(RUN_SUFFIX)] for p in self.runs_dir.glob(f"*{RUN_SUFFIX}") if not p.name.startswith(".")}

    def log(self, line: str) -> None:
        """Append ``line`` to OUT.d/events.log (:func:`append_line`)."""
        append_line(self.log_path, line)

    @property
    def log_path(self) -> Path:
        """OUT.d/events.log, the sweep's event log (module docstring)."""
        return self.dir / "events.log"

    def write_run(self, out: RunOutput, params: dict) -> Path:
        """Store one :class:`~analysis.experiments.sweep.runner.RunOutput` atomically under its run
        id (:func:`analysis.io.save`: groups ``model`` and ``result``; ``params``: the run's swept
        values) and log ``done <id>``; returns the file's path.  FileExistsError if the run's file
        exists: a completed run is never replaced."""
        from analysis.io import save

        result = RunRecord(out.run_id, out.config, params, _jsonable(out.row), float(out.seconds), out.worker,
                           dict(out.arrays))
        path = self.run_path(out.run_id)  # a pending run has no file: never replace one
        save(path, {"model": out.model(), "result": result}, seed=out.config["train"]["seed"], config=out.config)
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
        """Rebuild OUT.h5 and OUT.csv from the completed run files, atomically, holding OUT.h5's
        writer's lock (:func:`analysis.io.atomic.exclusive_lock`) for the whole read-copy-replace
        cycle: groups another writer added to OUT.h5 are carried over, none is lost."""
        from analysis.io.format import write_root_attrs
        from analysis.io.schema import read_group, write_group

        rows = self.rows()
        done = [r["run_id"] for r in rows]
        text = table_csv(rows)
        with exclusive_lock(self.h5):
            # every writer of these holds this lock; only the names temp_beside makes are taken
            # (the folder of OUT is the user's: another file that merely looks similar stays)
            self._remove_temporaries(temp_files_of(self.h5) + temp_files_of(self.csv))
            check_outputs(self.out, self.spec, overwrite=self.overwrite)  # nothing foreign appeared meanwhile
            old = self.h5 if self.h5.is_file() and h5_sweep_id(self.h5) == self.spec.sweep_id else None
            with atomic_path(self.h5, overwrite=True) as tmp, h5py.File(tmp, "w", track_order=True) as f:
                write_root_attrs(f)
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
                if old is not None:
                    with h5py.File(old, "r") as src:
                        for name in src:
                            if name not in SWEEP_GROUPS:
                                src.copy(src[name], f, name=name)
            # OUT.csv's identity: its hash is recorded before it is published, with the previous
            # one, so that a kill between the two steps leaves a CSV this sweep still recognises
            rec = read_record(self.dir) or {}
            digest = hashlib.sha256(text.encode()).hexdigest()
            rec["csv_sha256"] = [h for h in (rec.get("csv_sha256") or [])[-1:] if h != digest] + [digest]
            self._write_record(rec)
            atomic_write_text(self.csv, text)
        return self.h5, self.csv


def _jsonable(row: dict) -> dict:
    out = {}
    for k, v in row.items():
        if isinstance(v, (np.generic,)):
            v = v.item()
        out[k] = v
    return out


def summary_row(run: Run, summary: dict, seconds: float) -> dict:
    """One summary row: run id, the run's full architecture and training parameters, its results."""
    m, t = run.config["model"], run.config["train"]
    row: dict[str, Any] = {"run_id": run.run_id}
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
    """The union of the rows' keys, in order of first appearance (the table's columns)."""
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
