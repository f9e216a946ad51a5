"""Run the literature studies (analysis.literature) and write results/literature.h5,
results/figures/literature_*.png and results/literature.md.

    python scripts/reproduce_literature.py --list
    python scripts/reproduce_literature.py --study sander2022 --quick
    python scripts/reproduce_literature.py --study all --out results
"""
from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    from analysis.literature import STUDIES, claims_markdown, run_studies

    parser = argparse.ArgumentParser(description="Published continuum-limit experiments with a verdict each.")
    parser.add_argument("--list", action="store_true", help="print the studies with their sources and exit")
    parser.add_argument("--study", default="all", help="a study name, a comma-separated list, or 'all'")
    parser.add_argument("--quick", action="store_true", help="the small form of each study (≤ 1 min each)")
    parser.add_argument("--seeds", type=int, default=None, help="draws per verdict (default: each study's)")
    parser.add_argument("--seed", type=int, default=0, help="base seed")
    parser.add_argument("--out", default="results", help="output folder (default results)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar, no table")
    args = parser.parse_args(argv)
    if args.list:
        for s in STUDIES.values():
            print(f"{s.name:12s} {s.description}\n{'':12s} source: {s.source}")
        return 0
    names = "all" if args.study == "all" else [n.strip() for n in args.study.split(",")]
    try:
        rows = run_studies(names, args.out, quick=args.quick, seeds=args.seeds, seed=args.seed,
                           progress=not args.quiet)
    except ValueError as exc:
        print(f"reproduce_literature: error: {exc}", file=sys.stderr)
        return 2
    if not args.quiet:
        print(claims_markdown(rows))
        print(f"wrote {args.out}/literature.h5, {args.out}/figures/literature_*.png, {args.out}/literature.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
