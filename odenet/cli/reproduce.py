"""``odenet reproduce``: the paper's experiments end to end (:func:`analysis.experiments.paper.main`,
whose options are those of scripts/reproduce_paper.py), or with ``--study NAME|a,b|all`` / ``--list``
the published continuum-limit studies (:mod:`analysis.experiments.literature`).

Everything after ``reproduce`` is handed over untouched (:func:`odenet.cli.main` bypasses argparse
for it: ``argparse.REMAINDER`` does not collect arguments that start with '-')."""
from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Declare ``odenet reproduce`` on the subcommand set ``sub`` (its options are parsed by the library)."""
    p = sub.add_parser("reproduce", help="reproduce the tunnel-effect paper (figures, HDF5, summary table)",
                       add_help=False)
    p.add_argument("rest", nargs=argparse.REMAINDER, help="options of scripts/reproduce_paper.py (--help), or "
                                                          "--study NAME|all / --list for the literature studies")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Run the reproduction (or the literature studies when ``--study``/``--list`` is among
    ``args.rest``); returns its exit status."""
    if any(a in ("--list", "--study") or a.startswith("--study=") for a in args.rest):
        return run_studies(args.rest)
    from analysis.experiments.paper import main as reproduce_main

    return reproduce_main(args.rest)


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
