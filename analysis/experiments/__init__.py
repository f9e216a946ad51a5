"""Experiments built on the floors below: the paper's reproduction (:mod:`.paper`, its regime
table defined once in :mod:`.paper_regimes`, its claims in :mod:`.paper_claims`), the published
studies of the literature (:mod:`.literature`) and parameter sweeps (:mod:`.sweep`).

Each writes HDF5 through :mod:`analysis.io`, figures through :mod:`analysis.plots` and a claims
table whose verdicts are stated over many seeds (k/n with a Wilson interval).
"""
from analysis.experiments.sweep import SweepResult, SweepSpec, load_spec, run_sweep
# the record modules register their HDF5 schemas on import, so that analysis.io loads every file
from analysis.experiments import paper_records  # noqa: F401
from analysis.experiments.literature import records as _literature_records  # noqa: F401

__all__ = ["SweepResult", "SweepSpec", "load_spec", "run_sweep"]
