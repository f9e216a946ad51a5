"""The regime sweep (docs/theory.md §6–8, §10–11): train narrow (ε, δ) ResNets across channel ratios r = δ/ε,
depths and seeds on x² and on the circles, and measure per run how far the error is from the
lower bounds, whether the network is certified free of critical points, the critical points it
has, and (circles) whether the enclosed class escapes through a tunnel.

Per configuration the seeds are trained together with :func:`odenet.train_ensemble` (equal to
training them one by one).  Settings follow the paper: tanh, Adam lr 0.01;
x²: 300 points on [-1, 1], width 1, identity input, linear output, MSE, batch 10, the final epoch
kept (all data train, as the paper's 1D runs);
circles: 2000 points, width 2, activated input, sigmoid output, BCE, batch 128, the epoch of least
validation loss kept.  BatchNorm is off by default: in eval mode it folds into W_l as
diag(γ/√var) W_l, which can multiply the effective ratio δ‖W_eff‖/ε far beyond the nominal δ/ε
(so a "neural-ODE regime" with BatchNorm may fold); with ``batchnorm=True`` the pre-BN biases are
frozen (BatchNorm cancels them; their gradient is rounding noise).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import torch

from odenet import ResNet, train_ensemble
from odenet.datasets import circles, square
from solvers.validation import check_nonnegative, check_positive, check_positive_int

from analysis.approximation.bounds import isotonic_bound, model_bounds, sup_lower_bound
from analysis.geometry.certificates import certify
from analysis.geometry.critical import find_critical_points
from analysis.approximation.tunnel_effect import tunnel
from analysis.io.schema import Array, Attr, Schema, Strings, register

DATASETS = ("square", "circles")


@dataclass
class RegimeRun:
    """One trained network of :func:`regime_sweep` and what we measured on it.

    Fields
    ------
    dataset : str                "square" (target x² on [-1, 1]) or "circles".
    eps, delta, ratio : float    ε, δ, r = δ/ε (inf for ε = 0).
    depth, width, seed, epochs : int
    best_epoch : int             the epoch kept.
    sup_error : float            square: max |Φ - x²| on 2001 points of [-1, 1];
                                 circles: max |p - y| over the test points (p the probability).
    mse : float                  square: mean (Φ - x²)² on that grid; circles: mean (p - y)² on test.
    accuracy : float             circles: test accuracy; NaN for square.
    sup_bound : float            d/2 = 1/2 for x² (binding only when certified); NaN for circles.
    isotonic_bound : float       best monotone MSE on the grid (9/160 in the limit); NaN for circles.
    closeness : float            the regime's closeness bound on the output (Euler-ODE for ε = 1, ResNet-MLP for
                                 ε < 1; NaN otherwise), see :func:`analysis.model_bounds`.
    closeness_kind : str         "ode", "mlp" or "none".
    omega : float                max_l ‖W_l‖₂ (BatchNorm folded).
    critical_norm : float        ε/(δK): blocks with ‖W_l‖₂ below it cannot fold.
    certified : bool             :func:`analysis.certify` says Φ has no critical points.
    certificate_verdict : str
    critical_points : ndarray (k, n)   found by :func:`analysis.find_critical_points` on the box.
    critical_kinds : list[str]   "minimum", "maximum", "saddle" or "degenerate" per point.
    tunnel_verdict : str         circles: "tunnel", "closed", "centre-outside", or "one-class" (p never
                                 crosses 1/2 on the window); "" for square.
    tunnel_width : float         circles with a tunnel: its narrowest width (standardised units).
    tunnel_points : int          circles: misclassified test points inside the tunnel.
    """

    dataset: str
    eps: float
    delta: float
    ratio: float
    depth: int
    width: int
    seed: int
    epochs: int
    best_epoch: int
    sup_error: float
    mse: float
    accuracy: float
    sup_bound: float
    isotonic_bound: float
    closeness: float
    closeness_kind: str
    omega: float
    critical_norm: float
    certified: bool
    certificate_verdict: str
    critical_points: np.ndarray
    critical_kinds: list = field(default_factory=list)
    tunnel_verdict: str = ""
    tunnel_width: float = math.nan
    tunnel_points: int = 0

    @property
    def n_critical_points(self) -> int:
        """k, the number of rows of ``critical_points`` (k, n)."""
        return len(self.critical_points)


def data_window(x: torch.Tensor, margin: float = 0.05) -> tuple[float, float, float, float]:
    """The bounding box of the points (N, 2), widened by ``margin`` of its size on each side."""
    lo, hi = x.min(0).values.numpy(), x.max(0).values.numpy()
    pad = margin * (hi - lo)
    return (float(lo[0] - pad[0]), float(hi[0] + pad[0]), float(lo[1] - pad[1]), float(hi[1] + pad[1]))


def regime_sweep(ratios: Sequence[float] = (0.1, 1.0, 10.0), *, eps: float = 1.0, depths: Sequence[int] = (6,),
                 seeds: Sequence[int] = (0,), datasets: Sequence[str] = DATASETS,
                 epochs: dict[str, int] | None = None, batchnorm: bool = False, data_seed: int = 0,
                 critical_resolution: int = 41, tunnel_resolution: int = 161,
                 progress: bool = True) -> list[RegimeRun]:
    """Train and measure every (dataset, r, L, seed): δ = r ε, ε fixed (``eps = 0`` with any one
    ratio gives the MLP, δ = r).

    ``epochs`` maps dataset -> epochs (default square 200, circles 100).  Returns one
    :class:`RegimeRun` per network, in the order dataset, ratio, depth, seed.
    """
    eps = check_nonnegative("eps", eps)
    ratios = [check_positive("ratios", r) for r in ratios]
    depths = [check_positive_int("depths", L) for L in depths]
    seeds = list(seeds)
    if not ratios or not depths or not seeds:
        raise ValueError("ratios, depths and seeds must each name at least one value")
    for name in datasets:
        if name not in DATASETS:
            raise ValueError(f"datasets must be drawn from {list(DATASETS)}; got {name!r}")
    epochs = {"square": 200, "circles": 100, **(epochs or {})}
    runs: list[RegimeRun] = []
    for name in datasets:
        data = square(seed=data_seed) if name == "square" else circles(seed=data_seed)
        for r in ratios:
            delta = r * eps if eps > 0 else r
            for L in depths:
                if name == "square":
                    template = ResNet(1, 1, 1, L, eps=eps, delta=delta)
                    settings: dict[str, Any] = dict(batch_size=10, loss="mse", select="last")
                else:
                    template = ResNet(2, 2, 1, L, eps=eps, delta=delta, input_map="activated", batchnorm=batchnorm,
                                      output="sigmoid")
                    settings = dict(batch_size=128, loss="bce", select="best_val",
                                    freeze=["field.bias"] if batchnorm else [])
                ens = train_ensemble(template, data, seeds=seeds, epochs=epochs[name], progress=progress, **settings)
                for member in ens.members:
                    runs.append(_measure(name, data, member, critical_resolution, tunnel_resolution))
    return runs


def _measure(name, data, member, critical_resolution, tunnel_resolution) -> RegimeRun:
    model = member.model.eval()
    cert = certify(model)
    if name == "square":
        x = torch.linspace(-1, 1, 2001, dtype=torch.float64)[:, None]
        with torch.no_grad():
            err = model(x)[:, 0] - x[:, 0] ** 2
        sup_error, mse, acc = err.abs().max().item(), (err ** 2).mean().item(), math.nan
        sup_b, iso = sup_lower_bound(extremum_depth=1.0), isotonic_bound(x[:, 0].numpy(), (x[:, 0] ** 2).numpy())
        box = [[-1.0, 1.0]]
        bounds = model_bounds(model, x)
    else:
        with torch.no_grad():
            p = model(data.x_test)[:, 0]
        y = data.y_test[:, 0]
        sup_error, mse = (p - y).abs().max().item(), ((p - y) ** 2).mean().item()
        acc = member.metrics["test_accuracy"]
        sup_b = iso = math.nan
        window = data_window(data.x)
        box = [[window[0], window[1]], [window[2], window[3]]]
        bounds = model_bounds(model, data.x)
    cps = find_critical_points(model, box, resolution=critical_resolution)
    run = RegimeRun(name, model.eps, model.delta, model.ratio, model.depth, model.width, member.seed, member.epochs,
                    member.best_epoch, sup_error, mse, acc, sup_b, iso, bounds.closeness, bounds.closeness_kind,
                    bounds.omega, bounds.critical_norm, bool(cert.no_critical_points), cert.verdict,
                    cps.points.detach().numpy(), list(cps.kinds))
    if name == "circles":
        try:
            t = tunnel(model, window, data.centre.numpy(), 0.5, tunnel_resolution,
                       points=data.x_test.numpy(), labels=data.y_test[:, 0].numpy())
        except ValueError as exc:  # one class everywhere: p never crosses 1/2 on the window
            if "level" not in str(exc):
                raise
            run.tunnel_verdict = "one-class"
        else:
            run.tunnel_verdict, run.tunnel_width, run.tunnel_points = t.verdict, t.width, len(t.tunnel_points)
    return run


# --- storage: the HDF5 schemas of this module's records, registered on import (docs/hdf5-format.md) ---
def _regime_run_schema() -> Schema:
    cls = RegimeRun
    floats = ("eps", "delta", "ratio", "sup_error", "mse", "accuracy", "sup_bound", "isotonic_bound",
              "closeness", "omega", "critical_norm", "tunnel_width")
    ints = ("depth", "width", "seed", "epochs", "best_epoch", "tunnel_points")
    strs = ("dataset", "closeness_kind", "certificate_verdict", "tunnel_verdict")
    return Schema("RegimeRun", cls, fields=tuple(Attr(n, float) for n in floats) + tuple(Attr(n, int) for n in ints)
                  + tuple(Attr(n, str) for n in strs) + (
        Attr("certified", bool),
        Array("critical_points", ("point", "input"), doc="critical points found on the box"),
        Strings("critical_kinds", ("point",), doc="type of each critical point"),
    ), doc="one trained network of a regime sweep and what was measured on it", dtype_of="critical_points")


register(_regime_run_schema())
