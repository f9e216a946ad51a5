"""Reproduce the tunnel-effect paper end to end over many seeds (the main job, run by `make reproduce`).

    python scripts/reproduce_paper.py [--out results] [--quick] [--seed 0] [--seeds 16]
                                      [--only 1d,circles,xor,injection,beyond] [--overwrite] [--quiet]

Writes results/summary.md (the claims table, then one row per regime with k/n and Wilson 95 %
intervals), results/paper.h5 and results/figures/*.png; see analysis/experiments/paper.py (the work),
odenet/cli/reproduce.py (these options) and docs/theory.md.
Exit status 1 when an "always" claim is contradicted (everything is still written), 2 for bad input.
"""
import sys

from odenet.cli.reproduce import run_paper

if __name__ == "__main__":
    sys.exit(run_paper())
