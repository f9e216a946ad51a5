"""The `odenet` command line.

Each subcommand is a ``_cmd_<name>(args)`` function registered in :func:`build_parser`; it
imports what it needs lazily (odenet's one allowed import of analysis happens here, inside the
commands).
"""
from __future__ import annotations

import argparse
import os
import sys


# The demo's hard caps: time, not memory, is the limit (the reference flow restarts DOP853 at every
# layer boundary: about 3 s per 1000 layers at width 2, and its cost grows like width² per step).
DEMO_MAX_DEPTH = 10_000
DEMO_MAX_WIDTH = 256


def _cmd_demo(args) -> int:
    """Euler refinement of a random ResNet towards its ODE flow: a first real result."""
    import math

    import torch

    from odenet import ResNet
    from solvers.validation import check_seed

    if not (1 <= args.depth <= DEMO_MAX_DEPTH) or not (1 <= args.width <= DEMO_MAX_WIDTH) \
            or not (math.isfinite(args.T) and args.T > 0):
        raise ValueError(f"--depth must be in [1, {DEMO_MAX_DEPTH}], --width in [1, {DEMO_MAX_WIDTH}] and --T "
                         f"finite and > 0; got --depth {args.depth}, --width {args.width}, --T {args.T}")
    check_seed("--seed", args.seed)
    net = ResNet(args.width, args.width, 1, args.depth, eps=1.0, delta=args.T / args.depth, T=args.T, seed=args.seed)
    x = torch.randn(256, args.width, dtype=torch.float64, generator=torch.Generator().manual_seed(args.seed))
    with torch.no_grad():
        ref = net.flow(x, method="DOP853", rtol=1e-12, atol=1e-12)
        print(f"ResNet (eps=1, delta={args.T / args.depth:g}, L={args.depth}, width={args.width}, seed={args.seed})")
        print(f"{'sub-steps m':>12} {'max |Phi_m - Phi_flow|':>24} {'ratio':>8}")
        prev = None
        for m in (1, 2, 4, 8, 16, 32):
            err = (net.readout(net.blocks(net.embed(x), refine=m)) - ref).abs().max().item()
            ratio = f"{prev / err:8.3f}" if prev else ""
            print(f"{m:>12} {err:>24.3e} {ratio}")
            prev = err
    print("first-order convergence: the error halves with each doubling of m (ratio -> 2)")
    return 0


def _cmd_inspect(args) -> int:
    """Print the tree of an odenet HDF5 file (groups, shapes, dimension names, key attributes),
    read every dataset verifying its checksum, and report (``--clean``: remove) the temporary files
    of interrupted writes beside it.  Exit 0: all datasets read and verified; 1: some dataset cannot
    be read or fails its checksum (named on stderr), or ``--clean`` found a writer running; 2: the
    file cannot be opened as an odenet file."""
    from analysis.io.inspect import check, describe

    try:
        found = check(args.file, clean=args.clean, full=args.full)
        described = describe(args.file) if args.json else None
    except OSError as exc:
        print(f"odenet inspect: error: {exc}", file=sys.stderr)
        return 2
    if described is not None:  # machine-readable: the whole tree, then the verdict
        import json

        described.update(ok=found.ok, damaged=found.damaged, unchecked=found.unchecked,
                         temp_files=[str(t) for t in found.temp_files], writer_active=found.writer_active,
                         removed=[str(t) for t in found.removed])
        print(json.dumps(described, indent=1, allow_nan=True))
    else:
        print(found.text)
    if found.unchecked and described is None:
        print(f"note: {len(found.unchecked)} dataset(s) carry no checksum (written by another tool): "
              + ", ".join(found.unchecked))
    if found.temp_files and described is None:
        names = ", ".join(str(t) for t in found.temp_files)
        if found.writer_active:
            print(f"temporary files beside the file, in use by a writer that holds {args.file}.lock now: {names}")
        elif found.removed:
            print(f"removed {len(found.removed)} stale temporary file(s) of interrupted writes: {names}")
        else:
            print(f"{len(found.temp_files)} stale temporary file(s) of interrupted writes "
                  f"(odenet inspect --clean removes them): {names}")
    status = 0
    if found.damaged:
        print(f"odenet inspect: error: {len(found.damaged)} object(s) of {args.file} cannot be read or fail their "
              f"checksum (the file is damaged):", file=sys.stderr)
        for line in found.damaged:
            print(f"  {line}", file=sys.stderr)
        status = 1
    if args.clean and found.writer_active:
        print(f"odenet inspect: error: a writer holds {args.file}.lock; nothing removed, try again later",
              file=sys.stderr)
        status = 1
    return status


def _cmd_trace(args) -> int:
    """Trace a saved model over a grid of inputs and write the result to an HDF5 file."""
    from analysis.io.commands import trace_to_file

    try:
        path, side = trace_to_file(args.model, args.grid, args.out, group=args.group,
                                   overwrite=args.overwrite, xdmf=args.xdmf)
    except OSError as exc:
        print(f"odenet trace: error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {path}" + (f" and {side}" if side else "") + f" (see: odenet inspect {path})")
    return 0


def _cmd_reproduce(args) -> int:
    """The paper's experiments end to end (analysis.experiments.paper), or with ``--study``/``--list`` the
    literature studies (analysis.experiments.literature)."""
    if any(a in ("--list", "--study") or a.startswith("--study=") for a in args.rest):
        return _reproduce_studies(args.rest)
    from analysis.experiments.paper import main as reproduce_main

    return reproduce_main(args.rest)


def _reproduce_studies(argv: list[str]) -> int:
    """``odenet reproduce --study NAME|a,b|all`` and ``--list``: published continuum-limit
    experiments, each with its claims rows (results/literature.h5, .md, figures)."""
    from analysis.experiments.literature import STUDIES, claims_markdown, run_studies
    from solvers.validation import check_positive_int, check_seed

    parser = argparse.ArgumentParser(prog="odenet reproduce", description="Published continuum-limit and "
                                     "invertibility experiments, each with a claim, the measurement and a verdict.")
    parser.add_argument("--list", action="store_true", help="print the studies with their sources and exit")
    parser.add_argument("--study", default="all", help="a study name, a comma-separated list, or 'all'")
    parser.add_argument("--quick", action="store_true", help="the small form of each study (about a minute each)")
    parser.add_argument("--seeds", type=int, default=None, help="draws per verdict (default: each study's)")
    parser.add_argument("--seed", type=int, default=0, help="base seed")
    parser.add_argument("--out", default="results", help="output folder (default: results)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar, no table")
    args = parser.parse_args(argv)
    if args.list:
        for s in STUDIES.values():
            print(f"{s.name:12s} {s.description}\n{'':12s} source: {s.source}")
        return 0
    check_seed("--seed", args.seed)
    if args.seeds is not None:
        check_positive_int("--seeds", args.seeds)
    names = "all" if args.study == "all" else [n.strip() for n in args.study.split(",")]
    rows = run_studies(names, args.out, quick=args.quick, seeds=args.seeds, seed=args.seed,
                       progress=not args.quiet)
    if not args.quiet:
        print(claims_markdown(rows))
        print(f"wrote {args.out}/literature.h5, {args.out}/figures/literature_*.png, {args.out}/literature.md")
    return 0


def _cmd_sweep(args) -> int:
    """Run or resume a parameter sweep described by a TOML file (analysis.experiments.sweep)."""
    from analysis.experiments.sweep.command import sweep_command

    return sweep_command(args)


def _cmd_converge(args) -> int:
    """Refinement studies (observed orders) and work-precision data for one field (analysis.continuum.cli)."""
    from analysis.continuum.cli import run

    return run(args)


def _cmd_tunnel(args) -> int:
    """Train one circles regime of the reproduction for one or more seeds and report the tunnels
    (analysis.experiments.paper.tunnel_study: the same network, data, training and analysis as `reproduce`)."""
    from analysis.experiments.paper import tunnel_study
    from analysis.experiments.paper_claims import format_fraction
    from solvers.validation import check_positive_int, check_seed

    check_seed("--seed", args.seed)  # named as the flag, before the library names its argument
    check_seed("--data-seed", args.data_seed)
    check_positive_int("--seeds", args.seeds)
    study = tunnel_study(args.regime, seed=args.seed, seeds=args.seeds, data_seed=args.data_seed, epochs=args.epochs,
                         batchnorm=args.batchnorm, resolution=args.resolution, out=args.out, figure=args.figure,
                         overwrite=args.overwrite, progress=not args.quiet)
    spec, n = study.spec, len(study.seeds)
    print(f"{args.regime} (eps={spec.eps}, delta={spec.delta}, L={spec.depth}, width={spec.width}, "
          f"batchnorm={study.batchnorm}, seeds={study.seeds[0]}..{study.seeds[-1]}, data seed {args.data_seed})")
    for s, member, o, t, cert in zip(study.seeds, study.members, study.outcomes, study.tunnels, study.certificates):
        where = ("" if t is None else f", width {t.width:.3f}, area {t.area:.3f}, {len(t.tunnel_points)} of "
                 f"{len(study.data.x_test)} test points in the tunnel")
        print(f"{o.tunnel}: seed {s}{where}; test accuracy {o.accuracy:.3f}, best epoch {member.best_epoch}; "
              f"{o.critical_points} critical points; {cert.verdict}")
    k_tun = sum(o.tunnel == "tunnel" for o in study.outcomes)
    k_cert = sum(o.certified for o in study.outcomes)
    print(f"tunnel {format_fraction(k_tun, n)}; certified {format_fraction(k_cert, n)} (Wilson 95 % intervals)")
    for name in ("out", "figure"):
        if getattr(args, name):
            print(f"wrote {getattr(args, name)}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(prog="odenet", description="odenet: the continuum limit of residual networks "
                                     "(ResNets as Euler steps of neural ODEs). Run 'odenet COMMAND --help' for a "
                                     "command's options.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}",
                        help="print odenet's version and exit")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("demo", help="Euler refinement of a ResNet towards its neural-ODE flow",
                       description="Build a random ResNet h <- h + (T/L) tanh(W h + b) of the given width and depth, "
                                   "refine each block into m Euler sub-steps (m = 1, 2, ..., 32) and print the "
                                   "distance to the flow of its ODE (DOP853 at rtol = atol = 1e-12): first-order "
                                   "convergence, the error halving with each doubling of m.")
    p.add_argument("--width", type=int, default=2,
                   help=f"hidden width m = input width (1 to {DEMO_MAX_WIDTH}; default 2)")
    p.add_argument("--depth", type=int, default=10, help=f"number of blocks L (1 to {DEMO_MAX_DEPTH}; default 10)")
    p.add_argument("--T", type=float, default=2.0,
                   help="time horizon T of the ODE; the step is delta = T/L (default 2)")
    p.add_argument("--seed", type=int, default=0, help="seed of the weights and inputs, an integer in [0, 2**63)")
    p.set_defaults(func=_cmd_demo)

    p = sub.add_parser("reproduce", help="reproduce the tunnel-effect paper (figures, HDF5, summary table)",
                       add_help=False)
    p.add_argument("rest", nargs=argparse.REMAINDER, help="options of scripts/reproduce_paper.py (--help), or --study NAME|all / --list for the literature studies")
    p.set_defaults(func=_cmd_reproduce)

    p = sub.add_parser("inspect", help="print the tree of an odenet HDF5 file with shapes, dims and attributes; "
                                       "verify every dataset's checksum",
                       description="Print the tree of an odenet HDF5 file, read every dataset verifying its "
                                   "checksum, and list stale temporary files of interrupted writes. Exit status: "
                                   "0 all verified, 1 a dataset cannot be read or fails its checksum, 2 not an "
                                   "odenet file.")
    p.add_argument("file", help="the odenet HDF5 file")
    p.add_argument("--json", action="store_true",
                   help="print the whole tree as JSON instead: every group (type, attributes, full config) and "
                        "dataset (shape, dtype, dims, attributes), and the verdict (ok, damaged, unchecked)")
    p.add_argument("--full", action="store_true", help="print long attributes and configs in full (no '...')")
    p.add_argument("--clean", action="store_true",
                   help="remove the stale temporary files .FILE.*.tmp of interrupted writes beside FILE "
                        "(only those; under FILE's writer's lock)")
    p.set_defaults(func=_cmd_inspect)

    p = sub.add_parser("trace", help="trace a saved model over a grid of inputs and write an HDF5 file")
    p.add_argument("model", help="HDF5 file holding the model (written by analysis.io.save_model)")
    p.add_argument("--grid", required=True, help="x0:x1:nx for n_in = 1, x0:x1:nx,y0:y1:ny for n_in = 2 (write --grid=-1:1:50,... when x0 is negative)")
    p.add_argument("--out", required=True, help="output HDF5 file (groups model, grid, trace); its folder must exist")
    p.add_argument("--group", default=None, help="group of the model in MODEL (default: its only model)")
    p.add_argument("--xdmf", action="store_true", help="also write OUT.xmf so ParaView opens the trajectories")
    p.add_argument("--overwrite", action="store_true", help="replace OUT (and OUT.xmf) if it exists")
    p.set_defaults(func=_cmd_trace)

    p = sub.add_parser("sweep", help="run or resume a parameter sweep (TOML file; local processes or Dask)",
                       description="Train and analyse every run of a sweep file; rerun to resume. See docs/sweeps.md.")
    p.add_argument("file", help="sweep file (TOML), e.g. examples/phase-diagram.toml")
    p.add_argument("--out", default=None, help="output name OUT: writes OUT.h5, OUT.csv and OUT.d/ (default: the sweep's name)")
    p.add_argument("--workers", type=int, default=None, help="local processes (default: all cores; 0: this process); with --dask, LocalCluster workers")
    p.add_argument("--scheduler", default=None, metavar="tcp://HOST:PORT", help="run on this Dask scheduler")
    p.add_argument("--dask", action="store_true", help="run on a Dask LocalCluster started here")
    p.add_argument("--no-ensemble", dest="ensemble", action="store_false", help="train each run alone (default: runs sharing an architecture train together)")
    p.add_argument("--ensemble-size", type=int, default=None, help="most runs per ensemble (default: the file's sweep.ensemble_size, 64)")
    p.add_argument("--dry-run", action="store_true", help="list the runs (id, status, parameters) and exit")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--overwrite", action="store_true", help="replace OUT.h5 / OUT.csv and take over OUT.d when this sweep did not write them (default: refuse)")
    p.add_argument("--max-runs", type=int, default=None, help="refuse a sweep of more runs, counted without listing them (default 100000)")
    p.add_argument("--dask-timeout", type=float, default=None, metavar="SECONDS", help="wait this long for a first Dask worker, then exit with status 2 (default 60)")
    p.set_defaults(func=_cmd_sweep)
    p = sub.add_parser("converge", help="convergence to the flow: observed orders, Richardson, work-precision",
                       description="Refinement studies of fixed-step methods (errors against the step, observed "
                                   "orders with confidence intervals, Richardson estimates) and a work-precision "
                                   "table of adaptive methods, for a linear field with a closed-form flow, a random "
                                   "smooth field, or a saved model's ODE. See docs/continuum-limit.md.")
    p.add_argument("--field", default="linear",
                   help="linear (x' = A x, closed-form flow), smooth (a random SmoothField) or a model file (.h5)")
    p.add_argument("--methods", default="euler,heun,rk4",
                   help="comma list of euler, heun, midpoint, rk4 (refinement studies) and adaptive methods "
                        "such as dopri5 (work-precision table)")
    p.add_argument("--depths", default="4:256", help="steps (layers) per level: a:b doubles from a to b, or a,b,c")
    p.add_argument("--reference", default="auto",
                   help="auto (closed form for linear, else DOP853 at rtol=atol=1e-12), none (Richardson), or a method")
    p.add_argument("--tolerances", default="1e-3,1e-5,1e-7,1e-9", help="rtol = atol of the adaptive methods")
    p.add_argument("--T", type=float, default=1.0, help="time horizon of the linear and smooth fields")
    p.add_argument("--width", type=int, default=3, help="width of the smooth field")
    p.add_argument("--knots", type=int, default=4, help="knot intervals of the smooth field (steps: multiples)")
    p.add_argument("--batch", type=int, default=64, help="number of random inputs (seeded)")
    p.add_argument("--seed", type=int, default=0, help="an integer in [0, 2**63)")
    p.add_argument("--out", default=None, help="HDF5 file to write (one group per method, work_precision); "
                                               "its folder must exist")
    p.add_argument("--overwrite", action="store_true", help="replace OUT if it exists")
    p.add_argument("--plot", default=None, help="figure to write (.png, .pdf, .svg): log-log with reference slopes")
    p.add_argument("--quiet", action="store_true", help="print nothing")
    p.set_defaults(func=_cmd_converge)

    p = sub.add_parser("tunnel", help="train a circles regime for one or more seeds and report the tunnels",
                       description="Train a circles regime of the reproduction (same network, data, epochs, "
                                   "BatchNorm and analysis as `odenet reproduce`) and report each seed's tunnel.")
    # the names are checked by the command (analysis.experiments.paper_regimes.CLI_NAMES, the table shared with
    # `reproduce`): importing analysis here would slow every other command down
    p.add_argument("--regime", default="neural-ode",
                   help="neural-ode (default), neural-ode-bn, mlp, standard, augmented, or a circles run name "
                        "of the reproduction such as circles_standard")
    p.add_argument("--seed", type=int, default=0, help="first training seed (initialisation and data order)")
    p.add_argument("--seeds", type=int, default=1, help="number of seeds, trained together as an ensemble")
    p.add_argument("--data-seed", type=int, default=0, help="seed of the circles data set")
    p.add_argument("--epochs", type=int, default=None, help="default: the reproduction's for the regime")
    p.add_argument("--batchnorm", action=argparse.BooleanOptionalAction, default=None,
                   help="BatchNorm in the blocks (default: the regime's, as in `reproduce`)")
    p.add_argument("--resolution", type=int, default=None, help="grid points per axis (default: the reproduction's)")
    p.add_argument("--out", default=None, metavar="FILE.h5", help="write every seed's records to this HDF5 file")
    p.add_argument("--figure", default=None, metavar="FILE.png",
                   help="write the level sets (one seed) or all seeds' decision boundaries")
    p.add_argument("--overwrite", action="store_true", help="replace --out / --figure if they exist")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_tunnel)
    for action in sub._choices_actions:  # a command's --help starts with its one-line help at least
        if sub.choices[action.dest].description is None:
            sub.choices[action.dest].description = action.help
    return parser


#: exit status when stdout is closed early (``odenet inspect f.h5 | head -1``): 128 + SIGPIPE, as
#: a shell reports a program killed by SIGPIPE
EXIT_BROKEN_PIPE = 141


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status.  Output to a closed pipe ends quietly with
    status :data:`EXIT_BROKEN_PIPE` (141), for every command."""
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    if argv[:1] == ["reproduce"]:
        # argparse.REMAINDER does not collect arguments that start with '-' (``reproduce --quick``
        # fails with "unrecognized arguments"): hand everything after the command over untouched
        args = argparse.Namespace(command="reproduce", rest=argv[1:], func=_cmd_reproduce)
    else:
        args = parser.parse_args(argv)
    try:
        try:
            status = args.func(args)
        except ValueError as exc:
            print(f"odenet {args.command}: error: {exc}", file=sys.stderr)
            status = 2
        sys.stdout.flush()  # a closed pipe shows here, not at interpreter exit
        return status
    except BrokenPipeError:
        _silence_stdout()
        return EXIT_BROKEN_PIPE


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so that the interpreter's final flush of what is still buffered
    does not fail again (the recipe of Python's documentation of SIGPIPE)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # stdout without a file descriptor (captured)
        pass


if __name__ == "__main__":
    sys.exit(main())
