"""Reproduce the tunnel-effect paper end to end (the main job, run by `make reproduce`).

    python scripts/reproduce_paper.py [--out results] [--quick] [--seed 0] [--only 1d,circles,...]
                                      [--overwrite] [--quiet]

Writes results/paper.h5, results/figures/*.png and results/summary.md; see analysis/paper.py.
"""
import sys

from analysis.paper import main

if __name__ == "__main__":
    sys.exit(main())
