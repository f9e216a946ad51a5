"""``odenet reproduce``: the paper's experiments end to end (:func:`run_paper` over
:func:`analysis.experiments.paper.reproduce`; scripts/reproduce_paper.py runs the same), or with
``--study NAME|a,b|all`` / ``--list`` the published continuum-limit studies
(:mod:`analysis.experiments.literature`, :func:`run_studies`).

Everything after ``reproduce`` is handed over untouched (:func:`odenet.cli.main` bypasses argparse
for it: ``argparse.REMAINDER`` does not collect arguments that start with '-')."""
from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Declare ``odenet reproduce`` on the subcommand set ``sub`` (its options are parsed by the library)."""
    about = "reproduce the tunnel-effect paper (figures, HDF5, summary table)"
    p = sub.add_parser("reproduce", help=about, description=about, add_help=False)
    p.add_argument("rest", nargs=argparse.REMAINDER, help="options of scripts/reproduce_paper.py (--help), or "
                                                          "--study NAME|all / --list for the literature studies")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Run the reproduction (or the literature studies when ``--study``/``--list`` is among
    ``args.rest``); returns its exit status."""
    if any(a in ("--list", "--study") or a.startswith("--study=") for a in args.rest):
        return run_studies(args.rest)
    return run_paper(args.rest)


def run_paper(argv: list[str] | None = None) -> int:
    """``odenet reproduce [--out DIR] [--quick] ...`` (and ``scripts/reproduce_paper.py``): the paper's
    experiments end to end (:func:`analysis.experiments.paper.reproduce`).  Exit status 0, 1 when an
    'always' claim is contradicted (everything is still written), 2 for bad input."""
    import sys

    from analysis.experiments.paper import EXPERIMENTS, report_contradictions, reproduce, summary_markdown

    parser = argparse.ArgumentParser(prog="odenet reproduce", description="Reproduce the tunnel-effect paper "
                                     "end to end over many seeds: claims, figures, HDF5 and a summary table.")
    parser.add_argument("--out", default="results", help="output folder (default: results)")
    parser.add_argument("--quick", action="store_true", help="fewer epochs and seeds, coarser grids, same structure")
    parser.add_argument("--seed", type=int, default=0, help="first training seed and the data seed (default 0)")
    parser.add_argument("--seeds", type=int, default=None, help="seeds per regime (default 16, 4 with --quick)")
    parser.add_argument("--only", default=None, help=f"comma-separated subset of {','.join(EXPERIMENTS)}")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing results folder")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    try:
        result = reproduce(args.out, quick=args.quick, seed=args.seed, seeds=args.seeds,
                           only=None if args.only is None else [s.strip() for s in args.only.split(",")],
                           overwrite=args.overwrite, progress=not args.quiet)
    except ValueError as exc:
        print(f"odenet reproduce: error: {exc}", file=sys.stderr)
        return 2
    if not args.quiet:
        print(summary_markdown(result.rows))
        print(f"wrote {args.out}/paper.h5, {args.out}/figures/, {args.out}/summary.md")
    return report_contradictions(result)


def run_studies(argv: list[str]) -> int:
    """``odenet reproduce --study NAME|a,b|all`` and ``--list``: published continuum-limit
    experiments, each with its claims rows (results/literature.h5, .md, figures)."""
    from analysis.experiments.literature import STUDIES, claims_markdown, run_studies as run_literature
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
    rows = run_literature(names, args.out, quick=args.quick, seeds=args.seeds, seed=args.seed,
                          progress=not args.quiet)
    if not args.quiet:
        print(claims_markdown(rows))
        print(f"wrote {args.out}/literature.h5, {args.out}/figures/literature_*.png, {args.out}/literature.md")
    return 0
