"""Records of the paper reproduction (analysis.experiments.paper) and their HDF5 schemas: each regime's seed
table and the studies beyond the paper.

Dimension names: ``member`` (the seeds of one regime), ``ratio`` (channel ratio δ/ε, the
coordinate), ``omega`` (weight-norm bound ω = ‖W_l‖₂), ``stop`` (the partial network of blocks
0..stop-1), ``x`` and ``y`` (the input plane).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

import numpy as np

from analysis.io.schema import Array, Attr, Schema, Strings, register

if TYPE_CHECKING:
    from analysis.experiments.paper_claims import SeedOutcome


@dataclass
class SeedTable:
    """One regime's verdicts over its members, stacked along ``member``: the training ``seed``,
    ``certified`` (1/0), genuine ``critical_points`` and ``flat_points``, the ``tunnel`` verdict
    ("tunnel", "closed", "centre-outside", "n/a"), ``tunnel_width``, test ``accuracy`` (2D) and
    ``sup_error``, training ``mse`` and its ``isotonic_mse`` bound (1D); NaN where not measured.
    ``representative``: the seed whose figures are drawn."""

    run: str
    seed: np.ndarray
    certified: np.ndarray
    critical_points: np.ndarray
    flat_points: np.ndarray
    tunnel: list
    tunnel_width: np.ndarray
    accuracy: np.ndarray
    sup_error: np.ndarray
    mse: np.ndarray
    isotonic_mse: np.ndarray
    representative: int

    @classmethod
    def of(cls, run: str, outcomes: Sequence[SeedOutcome], representative: int) -> "SeedTable":
        """The table of ``outcomes`` (analysis.experiments.paper_claims.SeedOutcome, one per member);
        ``representative`` is the index of the member shown."""
        col = lambda name, dtype=np.float64: np.array([getattr(o, name) for o in outcomes], dtype=dtype)
        return cls(run, col("seed", np.int64), col("certified", np.int8), col("critical_points", np.int64),
                   col("flat_points", np.int64), [o.tunnel or "n/a" for o in outcomes], col("tunnel_width"),
                   col("accuracy"), col("sup_error"), col("mse"), col("isotonic_mse"),
                   int(outcomes[representative].seed))


@dataclass
class PhaseDiagram:
    """Fraction of random width-one tanh networks with critical points, ``fraction`` (ratio,
    omega), over channel ratios r = δ/ε and weight norms ω; the certificate line is δKω = ε."""

    ratio: np.ndarray
    omega: np.ndarray
    fraction: np.ndarray
    samples: int
    lipschitz: float = 1.0


@dataclass
class RatioStudy:
    """Trained networks against the channel ratio: for ``task`` "x2" the sup error on [-1, 1]
    and the number of critical points; for "circles" the misclassified test fraction and the
    tunnel width (0 where there is no tunnel).  Fields that do not apply are None."""

    task: str
    ratio: np.ndarray
    sup_error: np.ndarray | None = None
    critical_points: np.ndarray | None = None
    misclassified: np.ndarray | None = None
    tunnel_width: np.ndarray | None = None


@dataclass
class SingularValueMaps:
    """σ_min of the Jacobian of the partial networks blocks 0..stop-1 over the input plane:
    ``sigma_min`` (stop, y, x)."""

    x: np.ndarray
    y: np.ndarray
    stop: np.ndarray
    sigma_min: np.ndarray


SCHEMAS = (
    register(Schema("SeedTable", SeedTable, fields=(
        Attr("run", str), Array("seed", ("member",), doc="training seed of the member"),
        Array("certified", ("member",), doc="1 if every block has delta K |W_l| < eps, else 0"),
        Array("critical_points", ("member",), doc="number of critical points found (flat points excluded)"),
        Array("flat_points", ("member",), doc="number of flat-region points (never counted as critical)"),
        Strings("tunnel", ("member",), doc="tunnel verdict of the member"),
        Array("tunnel_width", ("member",), doc="tunnel width (NaN: no tunnel)"),
        Array("accuracy", ("member",), doc="test accuracy"),
        Array("sup_error", ("member",), doc="sup error to the target on the evaluation grid"),
        Array("mse", ("member",), doc="mean squared error on the training sample"),
        Array("isotonic_mse", ("member",), doc="mean squared error of the sample's best monotone fit"),
        Attr("representative", int)),
        doc="one regime's verdicts over its seeds")),
    register(Schema("PhaseDiagram", PhaseDiagram, fields=(
        Array("ratio", ("ratio",), doc="channel ratio delta/eps"), Array("omega", ("omega",), doc="weight norm omega"),
        Array("fraction", ("ratio", "omega"), doc="fraction of networks with critical points"),
        Attr("samples", int), Attr("lipschitz", float)), doc="critical points over (δ/ε, ω)")),
    register(Schema("RatioStudy", RatioStudy, fields=(
        Attr("task", str), Array("ratio", ("ratio",), doc="channel ratio delta/eps"),
        Array("sup_error", ("ratio",), doc="sup error on [-1, 1]"),
        Array("critical_points", ("ratio",), doc="number of critical points"),
        Array("misclassified", ("ratio",), doc="misclassified test fraction"),
        Array("tunnel_width", ("ratio",), doc="tunnel width (0: no tunnel)")), doc="trained networks against δ/ε")),
    register(Schema("SingularValueMaps", SingularValueMaps, fields=(
        Array("x", ("x",), doc="grid abscissae", axis="X"), Array("y", ("y",), doc="grid ordinates", axis="Y"),
        Array("stop", ("stop",), doc="number of blocks of the partial network"),
        Array("sigma_min", ("stop", "y", "x"), doc="smallest singular value of the Jacobian")),
        doc="σ_min of partial networks over the plane")),
)
