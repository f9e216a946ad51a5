"""The paper's claims checked against many seeds: one :class:`SeedOutcome` per trained network,
and :func:`evaluate_claims`, a pure function of those outcomes.

Each claim says what the theory predicts (docs/theory.md §10, "Which claims are theorems, and
which are observations"):

- **always** (a theorem, given its hypotheses): every network in scope must satisfy it; one
  network that does not is a *contradiction* (of the code, the numerics or the theory), printed
  loudly and turned into a non-zero exit status by the reproduction;
- **can** (an observation of the paper's runs): reported as k/n with a Wilson 95 % interval; no
  number of seeds without the phenomenon contradicts it, and neither does one seed with it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Sequence

from scipy.stats import norm

# Rounding slack of the "always" inequalities: the bounds are exact, the measured errors are
# float64 sums over at most a few thousand points.
_REL_SLACK = 1e-9


def wilson_interval(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion with k successes in n trials:

        p̂ = k/n,  z = Φ⁻¹((1 + confidence)/2),
        centre = (p̂ + z²/(2n)) / (1 + z²/n),
        half   = z / (1 + z²/n) · √(p̂(1 - p̂)/n + z²/(4n²)),

    returned as (centre - half, centre + half), clipped to [0, 1]; (0, 1) when n = 0 (no data
    says nothing).  The same interval as scipy's ``binomtest(k, n).proportion_ci(method="wilson")``.
    """
    for name, v in (("k", k), ("n", n)):
        if isinstance(v, bool) or not isinstance(v, int):
            raise TypeError(f"{name} must be an int; got {type(v).__name__} {v!r}")
    if n < 0 or not 0 <= k <= n:
        raise ValueError(f"need 0 <= k <= n; got k={k}, n={n}")
    if not (isinstance(confidence, float) and 0.0 < confidence < 1.0):
        raise ValueError(f"confidence must be a float in (0, 1); got {confidence!r}")
    if n == 0:
        return 0.0, 1.0
    z = float(norm.ppf(0.5 + confidence / 2))
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z / denom * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def format_fraction(k: int, n: int) -> str:
    """'k/n [lo, hi]' with the Wilson 95 % interval in percent, or '0/0' for no data."""
    if n == 0:
        return "0/0"
    lo, hi = wilson_interval(k, n)
    return f"{k}/{n} [{100 * lo:.0f}, {100 * hi:.0f}] %"


@dataclass(frozen=True)
class SeedOutcome:
    """What one trained network of the reproduction showed.

    Fields
    ------
    run, task, seed : the run (analysis.experiments.paper_regimes name), "1d x²" / "circles" / "xor", and the
        member's training seed.
    certified : bool
        The certificate δK‖W_l‖ < ε holds for every block (no critical points can exist).
    critical_points : int
        Genuine critical points found (flat regions of a saturated output not counted).
    critical_counts : dict kind -> int
        By type ("minimum", "maximum", "saddle", "degenerate").
    flat_points : int
        Points of flat regions, reported separately.
    proved_free : bool
        The structure proves there is no critical point (certificate, narrow MLP with full-rank
        square weights, width one: analysis.geometry.critical's ``structural``).
    tunnel : str or None
        The tunnel verdict ("tunnel", "closed", "centre-outside"); None where not measured.
    tunnel_width : float
        NaN unless a tunnel.
    accuracy : float
        Test accuracy (2D); NaN in 1D.
    sup_error, mse, isotonic_mse : float
        1D only (NaN otherwise): sup |Φ - x²| on [-1, 1] (grid including -1, 0, 1), the mean
        squared error on the training sample and the best monotone fit's on the same sample.
    """

    run: str
    task: str
    seed: int
    certified: bool
    critical_points: int
    critical_counts: dict = field(default_factory=dict)
    flat_points: int = 0
    proved_free: bool = False
    tunnel: str | None = None
    tunnel_width: float = math.nan
    accuracy: float = math.nan
    sup_error: float = math.nan
    mse: float = math.nan
    isotonic_mse: float = math.nan


@dataclass(frozen=True)
class Claim:
    """One claim: ``theory`` is "always" or "can"; ``scope`` picks the outcomes it is about;
    ``holds`` is, for "always", the property every outcome in scope must have and, for "can",
    the phenomenon counted."""

    key: str
    statement: str
    theory: str
    scope: Callable[[SeedOutcome], bool]
    holds: Callable[[SeedOutcome], bool]


@dataclass(frozen=True)
class ClaimVerdict:
    """A claim measured: ``k`` of the ``n`` outcomes in scope satisfy ``holds``; ``verdict`` is
    "consistent" or "contradicts"; ``note`` says what was (not) seen; ``offenders`` names the
    (run, seed) pairs that contradict an "always" claim."""

    claim: Claim
    k: int
    n: int
    verdict: str
    note: str
    offenders: tuple = ()

    @property
    def interval(self) -> tuple[float, float]:
        """The Wilson 95 % interval of ``k/n`` (:func:`wilson_interval`)."""
        return wilson_interval(self.k, self.n)


def _sup_bound(o: SeedOutcome) -> bool:
    return o.sup_error >= 0.5 * (1 - _REL_SLACK)


def _isotonic_bound(o: SeedOutcome) -> bool:
    return o.mse >= o.isotonic_mse * (1 - _REL_SLACK)


def _in_run(name: str) -> Callable[[SeedOutcome], bool]:
    return lambda o: o.run == name and o.tunnel in ("tunnel", "closed")


CLAIMS = (
    Claim("certified_tunnels", "a network proved free of critical points (certified, or a narrow MLP with "
          "full-rank square weights) cannot enclose the centre: its class region tunnels (circles; networks whose "
          "centre is predicted inner)", "always",
          lambda o: (o.certified or o.proved_free) and o.tunnel in ("tunnel", "closed"),
          lambda o: o.tunnel == "tunnel"),
    Claim("proved_no_critical_points", "a network proved free of critical points (certified, or a narrow MLP "
          "with full-rank square weights) has none: the search agrees", "always",
          lambda o: o.certified or o.proved_free, lambda o: o.critical_points == 0),
    Claim("1d_sup_bound", "1D, no critical points: sup |Φ - x²| on [-1, 1] ≥ 1/2", "always",
          lambda o: o.task == "1d x²" and o.critical_points == 0, _sup_bound),
    Claim("1d_isotonic_bound", "1D, no critical points: training MSE ≥ the isotonic (best monotone) fit's "
          "MSE of the same sample", "always",
          lambda o: o.task == "1d x²" and o.critical_points == 0, _isotonic_bound),
    Claim("neural_ode_tunnels", "the neural-ODE regime (ε = 1, δ = 0.1, L = 20) tunnels", "can",
          _in_run("circles_neural_ode"), lambda o: o.tunnel == "tunnel"),
    Claim("mlp_tunnels", "the MLP regime (ε = 0.1, δ = 1, L = 6) tunnels", "can",
          _in_run("circles_mlp"), lambda o: o.tunnel == "tunnel"),
    Claim("standard_can_close", "the standard ResNet (ε = δ = 1, L = 10) can close the level set", "can",
          _in_run("circles_standard"), lambda o: o.tunnel == "closed"),
    Claim("augmented_can_close", "the augmented width-3 MLP need not tunnel (can close the level set)", "can",
          _in_run("circles_augmented"), lambda o: o.tunnel == "closed"),
)


def evaluate_claims(outcomes: Sequence[SeedOutcome], claims: Sequence[Claim] = CLAIMS) -> list[ClaimVerdict]:
    """Each claim over the outcomes in its scope: k/n and the verdict ("contradicts" only for an
    "always" claim with k < n)."""
    verdicts = []
    for c in claims:
        if c.theory not in ("always", "can"):
            raise ValueError(f"claim {c.key!r}: theory must be 'always' or 'can'; got {c.theory!r}")
        scoped = [o for o in outcomes if c.scope(o)]
        good = [o for o in scoped if c.holds(o)]
        k, n = len(good), len(scoped)
        if c.theory == "always":
            bad = tuple((o.run, o.seed) for o in scoped if not c.holds(o))
            verdict = "contradicts" if bad else "consistent"
            note = ("no network in scope" if n == 0 else
                    f"fails at {', '.join(f'{r} seed {s}' for r, s in bad)}" if bad else "holds for every network")
            verdicts.append(ClaimVerdict(c, k, n, verdict, note, bad))
        else:
            note = "not run" if n == 0 else "observed" if k else f"not observed in {n} seeds (no contradiction)"
            verdicts.append(ClaimVerdict(c, k, n, "consistent", note))
    return verdicts


def contradictions(verdicts: Sequence[ClaimVerdict]) -> list[ClaimVerdict]:
    """The verdicts that contradict an "always" claim."""
    return [v for v in verdicts if v.verdict == "contradicts"]


def markdown_cell(text: str) -> str:
    """``text`` safe inside a markdown table cell: '|' (as in |Φ - x²|) escaped, newlines as spaces."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def claims_markdown(verdicts: Sequence[ClaimVerdict]) -> str:
    """The claims table (markdown): claim, theory, measured k/n with its Wilson 95 % interval,
    verdict, note."""
    lines = ["| claim | theory | measured k/n [95 % Wilson] | verdict | note |", "|---|---|---|---|---|"]
    for v in verdicts:
        verdict = "**CONTRADICTS**" if v.verdict == "contradicts" else v.verdict
        cells = (v.claim.statement, v.claim.theory, format_fraction(v.k, v.n), verdict, v.note)
        lines.append("| " + " | ".join(markdown_cell(c) for c in cells) + " |")
    return "\n".join(lines) + "\n"
