"""Run the literature studies (analysis.experiments.literature) and write results/literature.h5,
results/figures/literature_*.png and results/literature.md; the same as
``odenet reproduce --study ...``.

    python scripts/reproduce_literature.py --list
    python scripts/reproduce_literature.py --study sander2022 --quick
    python scripts/reproduce_literature.py --study all --out results
"""
from __future__ import annotations

import sys

from odenet.cli import main

if __name__ == "__main__":
    argv = sys.argv[1:]
    if not any(a in ("--list", "--study") or a.startswith("--study=") for a in argv):
        argv = ["--study", "all", *argv]
    raise SystemExit(main(["reproduce", *argv]))
