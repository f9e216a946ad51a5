"""``odenet sweep FILE``: validate a sweep file, then list (``--dry-run``) or run/resume it on local
processes or Dask (the work is :mod:`analysis.experiments.sweep`; see docs/sweeps.md)."""
from __future__ import annotations

import argparse
import signal
import sys


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Declare ``odenet sweep`` and its options on the subcommand set ``sub``."""
    p = sub.add_parser("sweep", help="run or resume a parameter sweep (TOML file; local processes or Dask)",
                       description="Train and analyse every run of a sweep file; rerun to resume. See docs/sweeps.md.")
    p.add_argument("file", help="sweep file (TOML), e.g. examples/phase-diagram.toml")
    p.add_argument("--out", default=None,
                   help="output name OUT: writes OUT.h5, OUT.csv and OUT.d/ (default: the sweep's name)")
    p.add_argument("--workers", type=int, default=None,
                   help="local processes (default: all cores; 0: this process); with --dask, LocalCluster workers")
    p.add_argument("--scheduler", default=None, metavar="tcp://HOST:PORT", help="run on this Dask scheduler")
    p.add_argument("--dask", action="store_true", help="run on a Dask LocalCluster started here")
    p.add_argument("--no-ensemble", dest="ensemble", action="store_false",
                   help="train each run alone (default: runs sharing an architecture train together)")
    p.add_argument("--ensemble-size", type=int, default=None,
                   help="most runs per ensemble (default: the file's sweep.ensemble_size, 64)")
    p.add_argument("--dry-run", action="store_true", help="list the runs (id, status, parameters) and exit")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--overwrite", action="store_true", help="replace OUT.h5 / OUT.csv and take over OUT.d when this "
                                                            "sweep did not write them (default: refuse)")
    p.add_argument("--max-runs", type=int, default=None,
                   help="refuse a sweep of more runs, counted without listing them (default 100000)")
    p.add_argument("--dask-timeout", type=float, default=None, metavar="SECONDS",
                   help="wait this long for a first Dask worker, then exit with status 2 (default 60)")
    p.set_defaults(func=run)
    return p


def _format_rows(rows: list[dict]) -> str:
    if not rows:
        return "(no runs)"
    cols = list(rows[0])
    cells = [[f"{r[c]:.6g}" if isinstance(r[c], float) else str(r[c]) for c in cols] for r in rows]
    widths = [max(len(c), *(len(x[i]) for x in cells)) for i, c in enumerate(cols)]
    lines = ["  ".join(c.rjust(w) for c, w in zip(cols, widths))]
    lines += ["  ".join(x.rjust(w) for x, w in zip(row, widths)) for row in cells]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Validate the sweep file, then list (--dry-run) or run/resume it; exit status 0 when every run is
    complete, 1 when some failed, 130 when interrupted (SIGINT or SIGTERM: what is complete is
    assembled), 2 on a bad file, a sweep larger than --max-runs, a conflicting or busy output, or a
    Dask scheduler without workers for --dask-timeout seconds."""
    from analysis.experiments.sweep import (DASK_TIMEOUT, MAX_RUNS, NoWorkersError, SweepBusyError, check_timeout,
                                            dry_run, load_spec, run_sweep)

    dask_timeout = DASK_TIMEOUT if args.dask_timeout is None else args.dask_timeout
    check_timeout(dask_timeout)  # ValueErrors (SweepSpecError too): reported by odenet.cli.main
    spec = load_spec(args.file, max_runs=MAX_RUNS if args.max_runs is None else args.max_runs)
    if args.dry_run:
        rows = dry_run(spec, args.out if args.out is not None else spec.name, overwrite=args.overwrite)
        print(_format_rows(rows))
        done = sum(r["status"] == "done" for r in rows)
        print(f"{len(rows)} runs ({done} done, {len(rows) - done} pending), sweep id {spec.sweep_id}")
        return 0
    def _terminate(signum: int, frame: object) -> None:  # SIGTERM (a batch system's stop) ends the sweep as Ctrl-C does
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        res = run_sweep(spec, args.out, workers=args.workers, scheduler=args.scheduler, dask=args.dask,
                        ensemble=args.ensemble, ensemble_size=args.ensemble_size, progress=not args.quiet,
                        overwrite=args.overwrite, dask_timeout=dask_timeout)
    except (SweepBusyError, NoWorkersError, ImportError, OSError) as exc:  # busy, no workers/dask, scheduler, disk
        print(f"odenet sweep: error: {exc}", file=sys.stderr)
        return 2
    finally:
        signal.signal(signal.SIGTERM, previous)
    if res.failed:
        first = next(iter(res.failed.items()))
        print(f"odenet sweep: {len(res.failed)} runs failed (first: {first[0]}: {first[1]}); see "
              f"{res.h5.with_suffix('.d') / 'events.log'}", file=sys.stderr)
    state = "complete" if res.complete else f"{len(res.rows)} of {len(spec.runs)} runs complete"
    print(f"{'interrupted: ' if res.interrupted else ''}{state}; wrote {res.h5} and {res.csv}"
          + ("; rerun the same command to resume" if not res.complete else ""))
    return 130 if res.interrupted else (0 if res.complete else 1)
