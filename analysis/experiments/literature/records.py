"""What a literature study returns (:class:`StudyResult`), its claims rows (:class:`ClaimRow`),
the verdict rules shared by the studies, and the HDF5 record of a study (:class:`StudyRecord`).

A claim row is: claim | source | expected | measured | verdict, with verdict

- ``"consistent"``: the measurement agrees with the published claim (a fitted exponent whose
  interval meets the expected value's tolerance band; a theorem that holds on every draw,
  reported as k/n with its Wilson 95 % interval; a stated threshold met);
- ``"contradicts"``: it does not; ``note`` says how and why this run may differ (scaled sizes,
  another optimiser, ...).  A contradiction is reported, never tuned away.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from analysis.continuum.convergence import OrderFit
from analysis.io.schema import Attr, Json, Mapping, Schema, Strings, register

VERDICTS = ("consistent", "contradicts")


@dataclass(frozen=True)
class ClaimRow:
    """One row of the claims table."""

    study: str
    claim: str
    source: str
    expected: str
    measured: str
    verdict: str
    note: str = ""

    def __post_init__(self):
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS}; got {self.verdict!r}")


@dataclass
class StudyResult:
    """A study's output: ``data`` (name -> array or JSON value, stored in the HDF5 group),
    ``figures`` (file stem -> matplotlib Figure), ``claims`` rows, ``scaled`` (what differs from
    the published sizes), ``config`` (the settings used)."""

    name: str
    source: str
    data: dict[str, Any]
    claims: list[ClaimRow]
    figures: dict[str, Any] = field(default_factory=dict)
    scaled: str = ""
    config: dict = field(default_factory=dict)


@dataclass
class StudyRecord:
    """The HDF5 form of a :class:`StudyResult` (no figures): the arrays under ``data``, the
    claims table as string columns along ``claim``, wall and CPU seconds."""

    study: str
    source: str
    scaled: str
    data: dict
    claim: list
    expected: list
    measured: list
    verdict: list
    note: list
    config: dict
    wall_seconds: float
    cpu_seconds: float

    @classmethod
    def of(cls, r: StudyResult, wall: float, cpu: float) -> "StudyRecord":
        """The record of ``r`` (its figures dropped; lists and tuples of ``data`` as arrays) with
        its ``wall`` and ``cpu`` seconds."""
        data = {k: (np.asarray(v) if isinstance(v, (list, tuple, np.ndarray)) else v) for k, v in r.data.items()}
        cols = {k: [getattr(c, k) for c in r.claims] for k in ("claim", "expected", "measured", "verdict", "note")}
        return cls(study=r.name, source=r.source, scaled=r.scaled, data=data, config=r.config,
                   wall_seconds=float(wall), cpu_seconds=float(cpu), **cols)

    def rows(self) -> list[ClaimRow]:
        """The claims table back as rows (the inverse of :meth:`of` for ``r.claims``)."""
        return [ClaimRow(self.study, c, self.source, e, m, v, n)
                for c, e, m, v, n in zip(self.claim, self.expected, self.measured, self.verdict, self.note)]


STUDY_RECORD = register(Schema("StudyRecord", StudyRecord, fields=(
    Attr("study", str), Attr("source", str), Attr("scaled", str), Mapping("data", doc="the study's arrays"),
    Strings("claim", ("claim",), doc="the published claim"),
    Strings("expected", ("claim",), doc="what the claim predicts"),
    Strings("measured", ("claim",), doc="what this study measured"),
    Strings("verdict", ("claim",), doc="consistent or contradicts"),
    Strings("note", ("claim",), doc="explanation of the verdict, settings scaled"), Json("config"),
    Attr("wall_seconds", float), Attr("cpu_seconds", float)), doc="one literature study (analysis.experiments.literature)"))


# --- verdict rules -------------------------------------------------------------------------------
def fmt_fit(fit: OrderFit) -> str:
    """'s = -0.98 [-1.05, -0.91]' (95 % interval)."""
    return f"slope {fit.order:.3g} [{fit.ci_low:.3g}, {fit.ci_high:.3g}]"


def slope_row(study: str, source: str, claim: str, fit: OrderFit, expected: float, tol: float,
              note: str = "") -> ClaimRow:
    """Consistent iff the fit's interval meets [expected - tol, expected + tol]."""
    ok = fit.ci_high >= expected - tol and fit.ci_low <= expected + tol
    return ClaimRow(study, claim, source, f"slope {expected:g} ± {tol:g}", fmt_fit(fit),
                    "consistent" if ok else "contradicts",
                    note if ok else (note + "; " if note else "") + "the fitted interval misses the expected band")


def fraction_row(study: str, source: str, claim: str, k: int, n: int, expected: str, ok: bool,
                 note: str = "") -> ClaimRow:
    """k/n with its Wilson 95 % interval (analysis.experiments.paper_claims); ``ok`` is the caller's rule."""
    from analysis.experiments.paper_claims import format_fraction

    return ClaimRow(study, claim, source, expected, format_fraction(int(k), int(n)),
                    "consistent" if ok else "contradicts", note)

