"""The tunnel-effect paper's experiments rebuilt over many seeds, and the studies beyond it.

:func:`reproduce` trains every regime of :mod:`analysis.experiments.paper_regimes` for n seeds at once
(:func:`odenet.train_ensemble`; model selection on a validation split, never on the test set),
analyses every member (certificate, critical points on the logit, tunnel, bounds), checks the
paper's claims over all members (:mod:`analysis.experiments.paper_claims`), and writes, into a temporary
folder that replaces ``out`` only when everything is done:

    out/paper.h5          runs/<regime>/seeds (a member-stacked table of the verdicts),
                          runs/<regime>/seed_<s>/{model, training, critical_points, certificate,
                          tunnel}, runs/<regime>/trace (representative seed); beyond/...
    out/figures/*.png     per regime: the representative seed (the median-accuracy, in 1D the
                          median-sup-error member; named in the title) and all seeds' decision
                          boundaries (2D) or fits (1D); loss curves; the studies beyond the paper
    out/summary.md        the claims table, then one row per regime with k/n and Wilson 95 %
                          intervals

The theory (which claims are theorems, which are observations) is in docs/theory.md.
"""
from __future__ import annotations

import math
import os
import shutil
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Sequence, TextIO

import numpy as np
import torch

from odenet import ResNet, train, train_ensemble
from odenet.datasets import Dataset, circles, square
from solvers.validation import check_memory, check_output_path, check_positive_int, check_seed

from analysis.approximation.bounds import isotonic_bound
from analysis.geometry.certificates import certify
from analysis.geometry.critical import CriticalPointContradiction, find_critical_points, inject_critical_point
from analysis.geometry.maps import jacobian_map
from analysis.experiments.paper_claims import SeedOutcome, contradictions, evaluate_claims, format_fraction, markdown_cell
from analysis.experiments.paper_records import PhaseDiagram, RatioStudy, SeedTable, SingularValueMaps
from analysis.experiments.paper_regimes import (BATCH_1D, BATCH_2D, CIRCLES, INJECTION, ONE_D, TWO_D, XOR, OneDRun,
                                                TwoDRun, plane_window)
from analysis.geometry.tracing import trace
from analysis.approximation.tunnel_effect import evaluate_scalar, grid, tunnel
from analysis.geometry.width_one import width_one_layers

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

    from analysis.approximation.tunnel_effect import TunnelResult
    from analysis.experiments.paper_claims import ClaimVerdict
    from analysis.geometry.critical import CriticalPoints
    from odenet import EnsembleResult

EXPERIMENTS = ("1d", "circles", "xor", "injection", "beyond")
NO_BOUNDARY = "no decision boundary"  # tunnel verdict when Φ does not cross 0.5 on the window
THEORY = "docs/theory.md"


@dataclass
class Settings:
    """Sizes of one reproduction; :meth:`quick` keeps the structure and shrinks the work."""

    seeds: int = 16            # members per regime
    epoch_scale: float = 1.0
    grid: int = 161            # grid nodes per axis for tunnels and maps
    boundary_grid: int = 61    # grid nodes per axis of the small-multiples panels
    critical_resolution: int = 61
    phase_ratios: int = 9
    phase_omegas: int = 9
    phase_samples: int = 8
    ratio_epochs: int = 200
    trajectories: int = 80

    @classmethod
    def quick(cls) -> "Settings":
        """The quick reproduction's sizes (4 seeds, a fifth of the epochs, coarser grids)."""
        return cls(seeds=4, epoch_scale=0.2, grid=81, boundary_grid=41, critical_resolution=31, phase_ratios=5,
                   phase_omegas=5, phase_samples=3, ratio_epochs=40, trajectories=40)

    def epochs(self, n: int) -> int:
        """The epochs to train a run planned for ``n``: max(5, round(n * epoch_scale))."""
        return max(5, int(round(n * self.epoch_scale)))


@dataclass
class RegimeResult:
    """One regime over its seeds: the summary row, every member's outcome, the records for HDF5
    (names relative to runs/<regime>/), the figures (file name -> Figure) and the loss histories
    (train_loss, val_loss (K, E+1), best_epoch (K,), representative index)."""

    row: dict
    outcomes: list
    records: dict = field(default_factory=dict)
    figures: dict = field(default_factory=dict)
    history: dict | None = None


@dataclass
class Reproduction:
    """What :func:`reproduce` returns: the summary rows, every member's outcome, the claims."""

    rows: list
    outcomes: list
    claims: list

    @property
    def contradictions(self) -> list[ClaimVerdict]:
        """The verdicts of the 'always' claims that some member contradicts (empty when all hold)."""
        return contradictions(self.claims)


def member_seeds(seed: int, n: int) -> list[int]:
    """The training seeds of a regime's n members: seed, seed + 1, …, seed + n - 1 (the data
    are drawn once, with ``seed``)."""
    return [seed + k for k in range(n)]


def representative(values: Sequence[float]) -> int:
    """Index of the member whose value is the (lower) median of ``values``: the seed shown."""
    order = np.argsort(np.asarray(values, dtype=np.float64), kind="stable")
    return int(order[(len(order) - 1) // 2])


def critical_points(fn: Callable[[torch.Tensor], torch.Tensor], box: ArrayLike, resolution: int) -> CriticalPoints:
    """analysis.find_critical_points on ``box``, with its CriticalPointContradiction warning
    silenced: the reproduction reports that case itself, in the claims table (a network proved
    free of critical points with some found) and by its exit status."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CriticalPointContradiction)
        return find_critical_points(fn, box, resolution=resolution)


def _outcome_fields(crit) -> dict:
    """The critical-point fields of a SeedOutcome (flat regions of a saturated output apart)."""
    return dict(critical_points=len(crit), critical_counts={k: v for k, v in crit.counts().items() if v},
                flat_points=crit.n_flat, proved_free=crit.structural is not None)


# --- 1D -------------------------------------------------------------------------------------
X_GRID_1D = torch.linspace(-1.0, 1.0, 2001, dtype=torch.float64)[:, None]  # holds -1, 0 and 1


def _one_d_panels_of(model: ResNet):
    layers = width_one_layers(model, X_GRID_1D)
    with torch.no_grad():
        H = model.states(X_GRID_1D)[:, :, 0]
        W, b = model.field.effective_weights()
        panels = []
        for l, layer in enumerate(layers):
            dF = model.eps + model.delta * model.activation.derivative(W[l, 0, 0] * H[l] + b[l, 0]) * W[l, 0, 0]
            zeros = layer.critical_inputs if layer.critical_inputs is not None else torch.zeros(0)
            panels.append(dict(w=layer.w, b=layer.b, h=H[l], dF=dF, zeros=zeros,
                               threshold=-model.eps / model.delta))
    return panels


def run_one_d(spec: OneDRun, seed: int, settings: Settings, progress: bool) -> RegimeResult:
    """Train ``spec`` for settings.seeds members on one x² sample drawn with ``seed``; per member
    the sup error on [-1, 1], the training MSE against the isotonic bound of the same sample, the
    certificate and the critical points."""
    from analysis.plots.paper import one_d_fits, one_d_panels

    data = square(n=375, val_fraction=0.2, seed=seed)  # 300 training points, as the paper
    seeds = member_seeds(seed, settings.seeds)
    ens = train_ensemble(spec.model(seeds[0]), data, seeds=seeds, epochs=settings.epochs(spec.epochs),
                         batch_size=BATCH_1D, loss="mse", overrides=spec.overrides, progress=progress)
    iso = isotonic_bound(data.x_train[:, 0].numpy(), data.y_train[:, 0].numpy())
    outcomes, records, fits, crits = [], {}, [], []
    for s, member in zip(seeds, ens.members):
        model = member.model
        with torch.no_grad():
            fit = model(X_GRID_1D)[:, 0]
            mse = float(((model(data.x_train) - data.y_train) ** 2).mean())
        sup_err = float((fit - X_GRID_1D[:, 0] ** 2).abs().max())
        cert = certify(model)
        crit = critical_points(model, [[-1.0, 1.0]], settings.critical_resolution * 4)
        fits.append(fit)
        crits.append(crit)
        outcomes.append(SeedOutcome(spec.name, "1d x²", s, bool(cert.no_critical_points), **_outcome_fields(crit),
                                    sup_error=sup_err, mse=mse, isotonic_mse=iso))
        records.update({f"seed_{s}/model": model, f"seed_{s}/training": member,
                        f"seed_{s}/critical_points": crit, f"seed_{s}/certificate": cert})
    rep = representative([o.sup_error for o in outcomes])
    model = ens.members[rep].model
    records["trace"] = trace(model, X_GRID_1D[::20])
    records["seeds"] = SeedTable.of(spec.name, outcomes, rep)
    o = outcomes[rep]
    title = (f"{spec.name} (ε={spec.eps:g}, δ={spec.delta:g}, L={spec.depth}): median-sup-error seed {seeds[rep]} "
             f"of {len(seeds)}; sup {o.sup_error:.3f}, MSE {o.mse:.4f} (isotonic bound {iso:.4f})")
    figures = {
        f"1d_{spec.name}.png": one_d_panels(data.x_train[:, 0], data.y_train[:, 0], X_GRID_1D[:, 0], fits[rep],
                                            _one_d_panels_of(model), crits[rep].points[:, 0], title=title),
        f"1d_{spec.name}_seeds.png": one_d_fits(X_GRID_1D[:, 0], fits, seeds, [x.critical_points > 0 for x in outcomes],
                                                title=f"{spec.name}: the fits of all {len(seeds)} seeds"),
    }
    row = _aggregate(spec.name, "1d x²", spec.regime, spec.eps, spec.delta, spec.depth, 1, outcomes, seeds[rep])
    return RegimeResult(row, outcomes, records, figures, _history(ens, rep))


# --- 2D -------------------------------------------------------------------------------------
def train_two_d(spec: TwoDRun, data: Dataset, seeds: list[int], epochs: int, *, batchnorm: bool | None = None,
                progress: bool = False) -> EnsembleResult:
    """Train ``spec``'s network for every seed at once (odenet.train_ensemble): BCE on the
    sigmoid output, batch 128, the pre-BN bias frozen with BatchNorm.  Returns the EnsembleResult."""
    return train_ensemble(spec.model(seeds[0], batchnorm), data, seeds=seeds, epochs=epochs, batch_size=BATCH_2D,
                          loss="bce", freeze=spec.freeze(batchnorm), progress=progress)


def analyse_member(spec: TwoDRun, model: ResNet, data: Dataset, seed: int, settings: Settings, accuracy: float
                   ) -> tuple[SeedOutcome, dict[str, Any], TunnelResult | None, CriticalPoints]:
    """One trained 2D network: certificate, critical points on the window (BatchNorm folded; the
    search works on the logit of the sigmoid output), the tunnel (circles) and its outcome.
    Returns (SeedOutcome, records, TunnelResult or None, CriticalPoints)."""
    window = plane_window(data.x_train)
    cert = certify(model)
    folded = model.fold_batchnorm() if model.batchnorm else model  # eval-mode BN as plain weights
    crit = critical_points(folded, [[window[0], window[1]], [window[2], window[3]]], settings.critical_resolution)
    records = {"model": model, "critical_points": crit, "certificate": cert}
    tun, verdict = None, None
    if spec.dataset == "circles":
        prob = lambda x: model(x)[:, 0]  # noqa: E731
        values = evaluate_scalar(prob, grid(window, settings.grid)[2])
        if values.min() < 0.5 < values.max():
            assert data.centre is not None  # the circles data set carries its centre
            tun = tunnel(prob, window, data.centre, 0.5, settings.grid, points=data.x_test.numpy(),
                         labels=data.y_test[:, 0].numpy(), inner_label=0)
            records["tunnel"], verdict = tun, tun.verdict
        else:  # one class predicted on the whole window (an untrained or collapsed network)
            verdict = NO_BOUNDARY
    outcome = SeedOutcome(spec.name, spec.dataset, seed, bool(cert.no_critical_points), **_outcome_fields(crit),
                          tunnel=verdict,
                          tunnel_width=math.nan if tun is None else tun.width, accuracy=accuracy)
    return outcome, records, tun, crit


def _plane_grid(window, n: int):
    xs = np.linspace(window[0], window[1], n)
    ys = np.linspace(window[2], window[3], n)
    X, Y = np.meshgrid(xs, ys)
    return xs, ys, np.stack([X.ravel(), Y.ravel()], 1)


def analyse_two_d(spec: TwoDRun, ens: EnsembleResult, data: Dataset, seeds: list[int], settings: Settings
                  ) -> RegimeResult:
    """Every member of a trained 2D regime (:func:`analyse_member`), the representative
    (median test accuracy) member's figures and trace, and all members' decision boundaries."""
    from analysis.plots.paper import (decision_boundaries, plot_level_sets, probability_map, trajectories,
                                      tunnel_level_sets)

    window = plane_window(data.x_train)
    outcomes, records, boundaries = [], {}, []
    bxs, bys, bpts = _plane_grid(window, settings.boundary_grid)
    for s, member in zip(seeds, ens.members):
        model = member.model
        acc = float(member.metrics["test_accuracy"])
        outcome, recs, tun, crit = analyse_member(spec, model, data, s, settings, acc)
        outcomes.append(outcome)
        records.update({f"seed_{s}/{k}": v for k, v in recs.items()})
        records[f"seed_{s}/training"] = member
        boundaries.append(evaluate_scalar(lambda x: model(x)[:, 0], bpts).reshape(len(bys), len(bxs)))
    rep = representative([o.accuracy for o in outcomes])
    model = ens.members[rep].model
    folded = model.fold_batchnorm() if model.batchnorm else model
    coarse = torch.stack(torch.meshgrid(*(torch.linspace(window[0], window[1], 21, dtype=torch.float64),) * 2,
                                        indexing="xy"), -1).reshape(-1, 2)
    records["trace"] = trace(folded, coarse)
    records["seeds"] = SeedTable.of(spec.name, outcomes, rep)
    o = outcomes[rep]
    named = f"seed {seeds[rep]} (median accuracy of {len(seeds)})"
    head = f"{spec.regime}: ε={spec.eps:g}, δ={spec.delta:g}, L={spec.depth}, m={spec.width}"
    xs, ys, pts = _plane_grid(window, settings.grid)
    P = evaluate_scalar(lambda x: model(x)[:, 0], pts).reshape(len(ys), len(xs))
    tun = records.get(f"seed_{seeds[rep]}/tunnel")
    mask = None if tun is None else tun.mask
    verdict = "" if o.tunnel is None else f", {o.tunnel}"
    figures = {
        f"2d_{spec.name}_probability.png": probability_map(
            xs, ys, P, data.x_test, data.y_test, level=0.5, component_mask=mask,
            title=f"{head}\n{named}: test accuracy {o.accuracy:.3f}{verdict}"),
        f"2d_{spec.name}_levels.png": (
            tunnel_level_sets(tun, data.x_test, data.y_test, title=f"{spec.regime}, {named}") if tun is not None else
            plot_level_sets(xs, ys, P, 0.5, x_data=data.x_test, y_data=data.y_test, title=f"{spec.regime}, {named}")),
        f"2d_{spec.name}_boundaries.png": decision_boundaries(
            bxs, bys, boundaries, 0.5, [f"seed {s}" + ("" if x.tunnel is None else f": {x.tunnel}")
                                        for s, x in zip(seeds, outcomes)],
            x_data=data.x_test, y_data=data.y_test, highlight=rep,
            title=f"{head}: decision boundaries Φ = 0.5 of all {len(seeds)} seeds (framed: the representative)"),
    }
    n = min(settings.trajectories, len(data.x_test))
    with torch.no_grad():
        states = model.states(data.x_test[:n])
    figures[f"2d_{spec.name}_trajectories.png"] = trajectories(states, data.y_test[:n],
                                                              title=f"{spec.regime}, {named}: the flow of test points")
    row = _aggregate(spec.name, spec.dataset, spec.regime, spec.eps, spec.delta, spec.depth, spec.width, outcomes,
                     seeds[rep])
    return RegimeResult(row, outcomes, records, figures, _history(ens, rep))


def run_two_d(spec: TwoDRun, seed: int, settings: Settings, progress: bool) -> RegimeResult:
    """Train ``spec`` for settings.seeds members on one data set drawn with ``seed`` and analyse
    every member."""
    data = spec.data(seed)
    seeds = member_seeds(seed, settings.seeds)
    ens = train_two_d(spec, data, seeds, settings.epochs(spec.epochs), progress=progress)
    return analyse_two_d(spec, ens, data, seeds, settings)


# --- critical-point injection -----------------------------------------------------------------
def _through_block0(model: ResNet, data):
    """The data set with every input x replaced by h_1(x) = ε x + δ σ(W_0 x + b_0), block 0's
    output (identity input map): training blocks 1..L-1 on it is training the whole network with
    block 0 frozen."""
    from dataclasses import replace

    W, b = model.field.weight[0].detach(), model.field.bias[0].detach()
    step = lambda x: model.eps * x + model.delta * model.activation.fn(x @ W.T + b)
    return replace(data, x_train=step(data.x_train), x_val=step(data.x_val), x_test=step(data.x_test))


def _tail(model: ResNet) -> ResNet:
    """Blocks 1..L-1 and the output map of ``model`` as a network of depth L - 1."""
    net = ResNet(model.n_in, model.width, model.n_out, model.depth - 1, eps=model.eps, delta=model.delta,
                 input_map="identity", output=model.output)
    with torch.no_grad():
        net.field.weight.copy_(model.field.weight[1:])
        net.field.bias.copy_(model.field.bias[1:])
        net.out.load_state_dict(model.out.state_dict())
    return net


def run_injection(seed: int, settings: Settings, progress: bool) -> RegimeResult:
    """Train (ε, δ, L, m) = (1, 0.2, 5, 2) on circles with disc radius 0.3 for every seed, inject
    a critical point at x₀ = 0 in block 0 (W_0 = -(ε/δ) I, b_0 = 0, so DF_0(0) = 0) and retrain
    with block 0 frozen, so that ∇Φ(0) = 0 survives the retraining; then map σ_min of the partial
    networks of the representative member.

    With the identity input map and x₀ = 0 the injected block 0 is the same for every member, so
    the retraining is one ensemble of the depth-(L-1) tails on the inputs pushed through block 0."""
    from analysis.plots.paper import singular_value_maps

    spec = INJECTION
    data = spec.data(seed)
    seeds = member_seeds(seed, settings.seeds)
    epochs = settings.epochs(spec.epochs)
    first = train_two_d(spec, data, seeds, epochs, progress=progress)
    injected = [inject_critical_point(m.model, 0, torch.zeros(2, dtype=torch.float64)) for m in first.members]
    W0, b0 = injected[0].field.weight[0], injected[0].field.bias[0]
    assert all(torch.equal(m.field.weight[0], W0) and torch.equal(m.field.bias[0], b0) for m in injected)
    second = train_ensemble([_tail(m) for m in injected], _through_block0(injected[0], data), seeds=seeds,
                            epochs=epochs, batch_size=BATCH_2D, loss="bce", reinit=False, progress=progress)
    for m, tail in zip(injected, second.members):
        with torch.no_grad():
            m.field.weight[1:] = tail.model.field.weight
            m.field.bias[1:] = tail.model.field.bias
            m.out.load_state_dict(tail.model.out.state_dict())
        m.eval()
        tail.model = m  # the member's record now holds the whole network
    out = analyse_two_d(spec, second, data, seeds, settings)
    grads = [_gradient_norm(m, torch.zeros(1, 2, dtype=torch.float64)) for m in injected]
    out.row["metric"] += f"; max ‖∇Φ(0)‖ over seeds {max(grads):.1e}"
    out.row["grad_at_x0"] = max(grads)
    # DF_0(x) = ε diag(tanh²(x_i ε/δ)) is singular on the lines x_i = 0: every zero of the other partial
    # derivative along them is a genuine degenerate critical point (docs/theory.md §3), not a duplicate
    crits = [out.records[f"seed_{s}/critical_points"] for s in seeds]
    on_lines = sum(int((c.degenerate & (c.points.abs().amin(1) <= 1e-6)).sum()) for c in crits)
    out.row["degenerate_on_lines"] = on_lines
    out.row["metric"] += (f"; {on_lines} of {sum(int(c.degenerate.sum()) for c in crits)} degenerate points lie "
                          f"on the injected block's singular lines x₁ = 0 or x₂ = 0")
    rep = seeds.index(out.row["representative"])
    window = plane_window(data.x_train)
    box = ((window[0], window[1]), (window[2], window[3]))
    maps = [jacobian_map(injected[rep], box, settings.grid, start=0, stop=k) for k in range(1, spec.depth + 1)]
    out.figures["injection_singular_values.png"] = singular_value_maps(
        maps[0].x, maps[0].y, [m.sigma_min for m in maps], [f"blocks 0..{k - 1}" for k in range(1, spec.depth + 1)],
        marker=(0.0, 0.0),
        suptitle=f"σ_min of the partial networks' Jacobians, critical point injected at x₀ = 0 (block 0), "
                 f"after retraining; seed {seeds[rep]}")
    out.records["sigma_min_maps"] = SingularValueMaps(
        x=maps[0].x.numpy(), y=maps[0].y.numpy(), stop=np.arange(1, spec.depth + 1),
        sigma_min=torch.stack([m.sigma_min for m in maps]).numpy())
    return out


def _gradient_norm(model: ResNet, x: torch.Tensor) -> float:
    x = x.clone().requires_grad_()
    (g,) = torch.autograd.grad(model.logits(x).sum(), x)
    return float(g.norm())


def _history(ens, rep: int) -> dict:
    return dict(train_loss=ens.train_loss, val_loss=ens.val_loss, best_epoch=ens.best_epoch, representative=rep)


# --- beyond the paper ---------------------------------------------------------------------------
#: the runs whose δ the ratio studies vary at ε = 1: the width-one, depth-two x² network and the
#: standard circles network (L = 10, width 2) of the regime table
RATIO_BASE_1D = next(s for s in ONE_D if s.name == "resnet_L2")
RATIO_BASE_2D = TWO_D["circles_standard"]


def phase_diagram(settings: Settings, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fraction of random width-one, depth-two tanh networks (ε = 1, δ = r) with ‖W_l‖ = ω that
    have critical points on [-2, 2], over a grid of (r, ω); the certificate line is ω = 1/r.
    Returns (ratios (R,), omegas (W,), fraction (R, W)), R = settings.phase_ratios, W = settings.phase_omegas."""
    ratios = np.geomspace(0.1, 10, settings.phase_ratios)
    omegas = np.geomspace(0.1, 10, settings.phase_omegas)
    g = torch.Generator().manual_seed(seed)
    frac = np.zeros((len(ratios), len(omegas)))
    for i, r in enumerate(ratios):
        for j, w in enumerate(omegas):
            hits = 0
            for _ in range(settings.phase_samples):
                net = replace(RATIO_BASE_1D, delta=float(r)).model(int(torch.randint(0, 2**31 - 1, (1,), generator=g)))
                signs = torch.where(torch.rand(2, generator=g) < 0.5, -1.0, 1.0).to(torch.float64)
                net.field.weight.data[:] = (signs * w)[:, None, None]
                net.field.bias.data[:] = (2 * torch.rand(2, 1, generator=g, dtype=torch.float64) - 1)
                net.eval()
                hits += len(find_critical_points(net, [[-2.0, 2.0]], resolution=201)) > 0
            frac[i, j] = hits / settings.phase_samples
    return ratios, omegas, frac


def ratio_study_one_d(settings: Settings, seed: int, progress: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sup error on [-1, 1] of width-one, depth-two networks (ε = 1, δ = r) fitted to x², against r.
    Returns (ratios (7,), sup errors (7,), critical point counts (7,))."""
    ratios = np.geomspace(0.01, 10, 7)
    data = square(n=375, val_fraction=0.2, seed=seed)
    errors, n_crit = [], []
    for r in ratios:
        model = replace(RATIO_BASE_1D, delta=float(r)).model(seed)
        res = train(model, data, epochs=settings.ratio_epochs, batch_size=BATCH_1D, loss="mse", seed=seed,
                    progress=progress)
        with torch.no_grad():
            errors.append(float((res.model(X_GRID_1D)[:, 0] - X_GRID_1D[:, 0] ** 2).abs().max()))
        n_crit.append(len(find_critical_points(res.model, [[-1.0, 1.0]], resolution=201)))
    return ratios, np.array(errors), np.array(n_crit)


def ratio_study_circles(settings: Settings, seed: int, progress: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Misclassified test fraction and tunnel width of circles networks (ε = 1, δ = r, L = 10,
    width 2), against r.  Returns (ratios (5,), misclassified fractions (5,), tunnel widths (5,), 0
    where there is no tunnel)."""
    ratios = np.geomspace(0.05, 5, 5)
    data = circles(seed=seed)
    window = plane_window(data.x_train)
    mis, widths = [], []
    for r in ratios:
        spec = replace(RATIO_BASE_2D, name=f"ratio_{r:g}", regime="", delta=float(r), epochs=settings.ratio_epochs)
        res = train(spec.model(seed), data, epochs=settings.ratio_epochs, batch_size=BATCH_2D, loss="bce",
                    seed=seed, progress=progress)
        m = res.model
        with torch.no_grad():
            mis.append(float(((m(data.x_test)[:, 0] > 0.5).to(torch.float64) != data.y_test[:, 0]).to(torch.float64).mean()))
        assert data.centre is not None  # the circles data set carries its centre
        t = tunnel(lambda x: m(x)[:, 0], window, data.centre, 0.5, settings.grid)
        widths.append(t.width if t.tunnel else 0.0)
    return ratios, np.array(mis), np.array(widths)


# --- the table ----------------------------------------------------------------------------------
KINDS = ("minimum", "maximum", "saddle", "degenerate")


def _spread(values, fmt: str = ".3g") -> str:
    """'median [min, max]' of finite values, '—' for none."""
    v = np.asarray([x for x in values if np.isfinite(x)], dtype=np.float64)
    if len(v) == 0:
        return "—"
    return f"{np.median(v):{fmt}} [{v.min():{fmt}}, {v.max():{fmt}}]"


def _aggregate(name, task, regime, eps, delta, depth, width, outcomes: list, rep_seed: int) -> dict:
    """The summary row of one regime over its members: k/n with Wilson 95 % intervals for
    "tunnel", "certified" and "has critical points", the median [min, max] of the tunnel width
    and of the critical-point counts by type, and test accuracy mean ± sd (1D: sup error and MSE)."""
    n = len(outcomes)
    k_cert = sum(o.certified for o in outcomes)
    k_crit = sum(o.critical_points > 0 for o in outcomes)
    kinds = [k for k in KINDS if any(o.critical_counts.get(k, 0) for o in outcomes)]
    types = ", ".join(f"{k} {_spread([o.critical_counts.get(k, 0) for o in outcomes], 'g')}" for k in kinds) or "—"
    flat = [o.flat_points for o in outcomes]
    if any(flat):
        types += f"; flat-region points (not counted) {_spread(flat, 'g')}"
    row = dict(run=name, task=task, regime=regime, eps=eps, delta=delta, depth=depth, width=width, n=n,
               certified=format_fraction(k_cert, n), k_certified=k_cert,
               has_critical_points=format_fraction(k_crit, n), k_critical=k_crit, critical_kinds=types,
               representative=rep_seed)
    if task == "1d x²":
        row["metric"] = (f"sup {_spread([o.sup_error for o in outcomes])}; "
                         f"MSE {_spread([o.mse for o in outcomes], '.3f')}")
        row["lower_bound"] = f"sup ≥ 0.5, MSE ≥ {outcomes[0].isotonic_mse:.4f} (isotonic, same sample) without critical points"
    else:
        acc = np.array([o.accuracy for o in outcomes])
        row["accuracy_mean"], row["accuracy_sd"] = float(acc.mean()), float(acc.std(ddof=1)) if n > 1 else 0.0
        row["metric"] = f"test acc {row['accuracy_mean']:.3f} ± {row['accuracy_sd']:.3f}"
        row["lower_bound"] = "n/a"
    verdicts = [o.tunnel for o in outcomes]
    if any(v is not None for v in verdicts):
        k_tun = verdicts.count("tunnel")
        row["k_tunnel"] = k_tun
        other = ", ".join(f"{verdicts.count(v)} {v}" for v in ("closed", "centre-outside", NO_BOUNDARY)
                          if verdicts.count(v))
        row["tunnel"] = format_fraction(k_tun, n) + (f" ({other})" if other else "")
        row["tunnel_width"] = _spread([o.tunnel_width for o in outcomes if o.tunnel == "tunnel"])
    else:
        row["tunnel"], row["tunnel_width"], row["k_tunnel"] = "n/a", "—", None
    return row


SUMMARY_COLUMNS = (("run", "run"), ("task", "task"), ("regime", "regime"), ("ε", "eps"), ("δ", "delta"),
                   ("L", "depth"), ("width", "width"), ("seeds", "n"), ("error / accuracy", "metric"),
                   ("lower bound", "lower_bound"), ("certified k/n [95 %]", "certified"),
                   ("has critical points k/n [95 %]", "has_critical_points"),
                   ("critical points by type, median [min, max]", "critical_kinds"),
                   ("tunnel k/n [95 %]", "tunnel"), ("tunnel width median [min, max]", "tunnel_width"),
                   ("representative seed", "representative"))


def summary_markdown(rows: list[dict]) -> str:
    """One markdown table row per regime (:data:`SUMMARY_COLUMNS`)."""
    def fmt(v):
        if isinstance(v, float):
            return "—" if math.isnan(v) else f"{v:.3g}"
        return markdown_cell(v)

    head = "| " + " | ".join(h for h, _ in SUMMARY_COLUMNS) + " |"
    sep = "|" + "|".join("---" for _ in SUMMARY_COLUMNS) + "|"
    body = ["| " + " | ".join(fmt(r[k]) for _, k in SUMMARY_COLUMNS) + " |" for r in rows]
    return "\n".join([head, sep, *body]) + "\n"


# --- the whole reproduction ---------------------------------------------------------------------
def _check_out(out: Path, overwrite: bool) -> Path:
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"out must be a folder; got {str(out)!r}, which is a file")
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise ValueError(f"out {str(out)!r} already holds results; pass overwrite=True (--overwrite) to replace them")
    parent = out.resolve().parent
    if not parent.is_dir():
        raise ValueError(f"out's parent folder {str(parent)!r} does not exist")
    if not os.access(parent, os.W_OK):
        raise ValueError(f"out's parent folder {str(parent)!r} is not writable")
    return out


def _check_only(only) -> tuple:
    if only is None:
        return EXPERIMENTS
    only = tuple(only)
    unknown = [o for o in only if o not in EXPERIMENTS]
    if unknown or not only:
        raise ValueError(f"only must name experiments among {list(EXPERIMENTS)}; got {list(only)!r}")
    return only


def reproduce(out: str | os.PathLike = "results", *, quick: bool = False, seed: int = 0, seeds: int | None = None,
              only: Iterable[str] | None = None, overwrite: bool = False, progress: bool = True) -> Reproduction:
    """Run the experiments named in ``only`` (default all of :data:`EXPERIMENTS`) with ``seeds``
    members per regime (default 16, 4 with ``quick``; training seeds seed, …, seed + seeds - 1)
    and write ``out``/paper.h5, ``out``/figures/ and ``out``/summary.md (module docstring).

    Everything is written into a temporary folder beside ``out`` that replaces it at the end, so
    an error or an interruption leaves ``out`` as it was.  A contradicted claim does not stop the
    writing: it is in the returned :class:`Reproduction` (``contradictions``) and in summary.md.
    Raises ValueError (before any work) for a bad ``seed``, ``seeds``, ``only`` or ``out`` (an
    existing folder without ``overwrite``).
    """
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be an integer >= 0; got {seed!r}")
    if seeds is not None and (isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1):
        raise ValueError(f"seeds must be an integer >= 1 (members per regime); got {seeds!r}")
    out = _check_out(Path(out), overwrite)
    only = _check_only(only)
    settings = Settings.quick() if quick else Settings()
    if seeds is not None:
        settings.seeds = seeds
    # Width ≤ 3 networks: intra-op threads only add scheduling cost (and stall badly on a busy
    # machine), so the reproduction runs on one thread and restores the caller's setting, as it
    # restores the caller's global random state.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            return _reproduce(out, quick, seed, only, settings, progress)
    finally:
        torch.set_num_threads(threads)


def _reproduce(out: Path, quick: bool, seed: int, only: tuple, settings: Settings, progress: bool) -> Reproduction:
    from tqdm.auto import tqdm

    import analysis.io as hdf5
    from analysis.plots.paper import error_vs_ratio, loss_curves, plot_phase_diagram, tunnel_vs_ratio

    jobs: list[tuple[str, Callable[[], RegimeResult]]] = []
    if "1d" in only:
        jobs += [(s.name, partial(run_one_d, s, seed, settings, False)) for s in ONE_D]
    if "circles" in only:
        jobs += [(s.name, partial(run_two_d, s, seed, settings, False)) for s in CIRCLES]
    if "xor" in only:
        jobs += [(s.name, partial(run_two_d, s, seed, settings, False)) for s in XOR]
    if "injection" in only:
        jobs.append(("injection", lambda: run_injection(seed, settings, False)))
    studies = ("phase diagram", "x² error against δ/ε", "circles against δ/ε") if "beyond" in only else ()

    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.resolve().parent))
    try:
        figures = tmp / "figures"
        figures.mkdir()
        rows: list[dict] = []
        outcomes: list = []
        records: dict[str, Any] = {}
        histories: dict[str, dict] = {}
        bar = tqdm(total=len(jobs) + len(studies), desc="reproduce", disable=not progress, unit="regime")
        started = time.perf_counter()
        for name, job in jobs:
            bar.set_postfix_str(name)
            result = job()
            rows.append(result.row)
            outcomes += result.outcomes
            for k, v in result.records.items():
                records[f"runs/{name}/{k}"] = v
            for fname, fig in result.figures.items():
                _save_fig(fig, figures / fname)
            if result.history is not None:
                histories.setdefault(result.row["task"], {})[name] = result.history
            bar.update()
        for task, hist in histories.items():
            _save_fig(loss_curves(hist, title=f"loss curves: {task}"),
                      figures / f"loss_{task.replace(' ', '_').replace('²', '2')}.png")
        beyond: dict[str, PhaseDiagram | RatioStudy] = {}
        if studies:
            bar.set_postfix_str(studies[0])
            r, w, frac = phase_diagram(settings, seed)
            beyond["phase_diagram"] = PhaseDiagram(r, w, frac, settings.phase_samples)
            _save_fig(plot_phase_diagram(r, w, frac), figures / "beyond_phase_diagram.png")
            bar.update()
            bar.set_postfix_str(studies[1])
            r, err, ncrit = ratio_study_one_d(settings, seed, False)
            beyond["x2_error_vs_ratio"] = RatioStudy("x2", r, sup_error=err, critical_points=ncrit)
            title = f"x², width 1, L = {RATIO_BASE_1D.depth}, ε = {RATIO_BASE_1D.eps:g}"
            _save_fig(error_vs_ratio(r, err, 0.5, ylabel="sup |Φ - x²| on [-1, 1]", title=title),
                      figures / "beyond_x2_error_vs_ratio.png")
            bar.update()
            bar.set_postfix_str(studies[2])
            r, mis, widths = ratio_study_circles(settings, seed, False)
            beyond["circles_vs_ratio"] = RatioStudy("circles", r, misclassified=mis, tunnel_width=widths)
            _save_fig(tunnel_vs_ratio(r, mis, widths), figures / "beyond_circles_vs_ratio.png")
            bar.update()
        bar.close()
        for k, v in beyond.items():
            records[f"beyond/{k}"] = v
        claims = evaluate_claims(outcomes)
        hdf5.save(tmp / "paper.h5", records, seed=seed,
                  config=dict(quick=quick, seed=seed, only=list(only), settings=settings.__dict__))
        elapsed = time.perf_counter() - started
        (tmp / "summary.md").write_text(_summary_document(rows, claims, beyond, seed, quick, settings, elapsed))
        _replace_folder(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return Reproduction(rows, outcomes, claims)


def _replace_folder(new: Path, out: Path) -> None:
    """Put the folder ``new`` in place of ``out``.  An existing ``out`` is first renamed aside
    and deleted only once ``new`` is in place, so a failure leaves the old results whole."""
    if not out.exists():
        os.replace(new, out)
        return
    old = new.with_name(new.name + "-old")
    os.replace(out, old)
    try:
        os.replace(new, out)
    except BaseException:
        os.replace(old, out)
        raise
    shutil.rmtree(old, ignore_errors=True)


def _save_fig(fig, path):
    import matplotlib.pyplot as plt

    fig.savefig(path, dpi=100)
    plt.close(fig)


def _summary_document(rows, claims, beyond, seed, quick, settings: Settings, elapsed) -> str:
    from analysis.experiments.paper_claims import claims_markdown

    n_seeds = settings.seeds
    bad = contradictions(claims)
    lines = [f"# Reproduction of the tunnel-effect experiments ({'quick' if quick else 'full'} run, "
             f"{n_seeds} seeds per regime from seed {seed})", "",
             "## Claims", "",
             f"What the theory predicts ({THEORY} §10, \"Which claims are theorems, and which are observations\"): "
             "*always* is a theorem "
             "that every network in scope must satisfy (one exception contradicts it); *can* is an observation "
             "of the paper's runs, reported as k/n with a Wilson 95 % interval and never contradicted by any "
             "number of seeds.", ""]
    if bad:
        lines += [f"**{len(bad)} CONTRADICTION(S) of an 'always' claim** — see the rows marked CONTRADICTS.", ""]
    lines += [claims_markdown(claims), "## Regimes", "",
              f"One row per regime over its {n_seeds} seeds (models selected on a validation split; test figures "
              "reported only).  Critical points are searched on the logit of a sigmoid output (flat regions of "
              "the saturated sigmoid are reported apart and never counted).  Lower bounds hold for networks "
              f"without critical points ({THEORY} §6); the tunnel effect is §7.  Figures show the representative "
              "seed "
              "named in the last column.  Tunnels are measured on a "
              f"{settings.grid} × {settings.grid} grid over the window (-r, r)², r = 1.25 max |x| of the training "
              "data: a tunnel thinner than a grid cell is missed, and one that leaves a larger window is not seen.",
              "", summary_markdown(rows)]
    if "phase_diagram" in beyond:
        pd = beyond["phase_diagram"]
        below = [(r, w) for r in pd.ratio for w in pd.omega if r * w < 1]
        hits_below = sum(pd.fraction[i, j] > 0
                         for i, r in enumerate(pd.ratio) for j, w in enumerate(pd.omega) if r * w < 1)
        lines += ["## Beyond the paper (one seed)", "",
                  f"- Phase diagram: {len(below)} (δ/ε, ω) cells lie below the certificate line δKω = ε; "
                  f"{hits_below} of them show critical points (the certificate says none can).",
                  ]
    if "x2_error_vs_ratio" in beyond:
        b = beyond["x2_error_vs_ratio"]
        lines.append("- x² sup error against δ/ε: " + ", ".join(
            f"{r:.3g} → {e:.3f}{' (critical points)' if c else ''}" for r, e, c in
            zip(b.ratio, b.sup_error, b.critical_points)))
    if "circles_vs_ratio" in beyond:
        b = beyond["circles_vs_ratio"]
        lines.append("- circles against δ/ε (misclassified, tunnel width): " + ", ".join(
            f"{r:.3g} → {m:.3f}, {w:.2f}" for r, m, w in zip(b.ratio, b.misclassified, b.tunnel_width)))
    lines += ["", f"Wall time: {elapsed:.0f} s."]
    return "\n".join(lines) + "\n"


def report_contradictions(result: Reproduction, stream: TextIO | None = None) -> int:
    """Print every contradicted 'always' claim loudly to ``stream`` (stderr) and return the exit
    status: 1 if any, else 0."""
    stream = sys.stderr if stream is None else stream
    bad = result.contradictions
    for v in bad:
        print(f"!!! CONTRADICTION: '{v.claim.statement}' ({v.claim.theory}) — {v.k}/{v.n} hold; {v.note}",
              file=stream)
    if bad:
        print(f"!!! {len(bad)} 'always' claim(s) contradicted: the results are written, but something is wrong "
              "(code, numerics or theory)", file=stream)
    return 1 if bad else 0


# --- one circles regime over seeds (odenet tunnel) ----------------------------------------------
@dataclass
class TunnelStudy:
    """What :func:`tunnel_study` found: the regime, its data, the members' seeds, trainings
    (odenet.TrainResult), outcomes, tunnels and certificates."""

    spec: TwoDRun
    batchnorm: bool
    data: Dataset
    seeds: list
    members: list
    outcomes: list
    tunnels: list
    certificates: list


def check_output_file(name: str, path: str | os.PathLike | None, suffixes: tuple[str, ...], overwrite: bool
                      ) -> Path | None:
    """Refuse, before any work, an output ``path`` whose suffix is not among ``suffixes`` or that
    :func:`solvers.validation.check_output_path` refuses (missing folder, a folder, an existing
    file without ``overwrite``).  None passes through."""
    if path is None:
        return None
    if Path(path).suffix.lower() not in suffixes:
        raise ValueError(f"{name} must end in one of {list(suffixes)}; got {str(path)!r}")
    return Path(check_output_path(name, path, overwrite=overwrite))


def tunnel_study(regime: str, *, seed: int = 0, seeds: int = 1, data_seed: int = 0, epochs: int | None = None,
                 batchnorm: bool | None = None, resolution: int | None = None, out: str | os.PathLike | None = None,
                 figure: str | os.PathLike | None = None,
                 overwrite: bool = False, progress: bool = False) -> TunnelStudy:
    """Train the circles regime ``regime`` (a name of analysis.experiments.paper_regimes.CLI_NAMES or a run
    name) for ``seeds`` members (training seeds seed, …, seed + seeds - 1; data drawn with
    ``data_seed``) with the reproduction's settings (epochs, BatchNorm, batch, window, grid
    ``resolution`` default :attr:`Settings.grid`) and analyse each member as the reproduction
    does.  ``out`` (.h5): the members' records and their SeedTable; ``figure`` (.png, .pdf,
    .svg): the representative's level sets (one seed) or every seed's decision boundary.
    All arguments and output paths are checked before training."""
    from analysis.experiments.paper_regimes import circles_regime

    spec = circles_regime(regime)
    settings = Settings()
    check_seed("seed", seed)
    check_seed("data_seed", data_seed)
    check_positive_int("seeds", seeds)
    if resolution is not None:
        if isinstance(resolution, bool) or not isinstance(resolution, int) or resolution < 3:
            raise ValueError(f"resolution must be an integer >= 3; got {resolution!r}")
        settings.grid = resolution
    # the tunnel's grid: resolution² points, each with its state and a dozen per-point arrays
    check_memory(seeds * settings.grid ** 2 * (16 + 4 * spec.width) * 8,
                 f"resolution {settings.grid} ({settings.grid ** 2} grid points) for {seeds} seeds")
    epochs = spec.epochs if epochs is None else epochs
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be an integer >= 1; got {epochs!r}")
    out = check_output_file("out", out, (".h5",), overwrite)
    figure = check_output_file("figure", figure, (".png", ".pdf", ".svg"), overwrite)
    bn = spec.batchnorm if batchnorm is None else bool(batchnorm)
    data = spec.data(data_seed)
    member_list = member_seeds(seed, seeds)
    ens = train_two_d(spec, data, member_list, epochs, batchnorm=bn, progress=progress)
    outcomes, tunnels, certs, records = [], [], [], {}
    for s, member in zip(member_list, ens.members):
        outcome, recs, tun, _ = analyse_member(spec, member.model, data, s, settings,
                                               float(member.metrics["test_accuracy"]))
        outcomes.append(outcome)
        tunnels.append(tun)
        certs.append(recs["certificate"])
        records.update({f"seed_{s}/{k}": v for k, v in recs.items()})
        records[f"seed_{s}/training"] = member
    rep = representative([o.accuracy for o in outcomes])
    records["seeds"] = SeedTable.of(spec.name, outcomes, rep)
    if out is not None:
        import analysis.io as hdf5

        hdf5.save(out, records, overwrite=overwrite, seed=seed,
                  config=dict(regime=spec.name, seeds=member_list, data_seed=data_seed, epochs=epochs, batchnorm=bn,
                              resolution=settings.grid))
    if figure is not None:
        _tunnel_figure(spec, data, member_list, ens.members, outcomes, tunnels, rep, settings.grid, figure, overwrite)
    return TunnelStudy(spec, bn, data, member_list, ens.members, outcomes, tunnels, certs)


def _tunnel_figure(spec, data, seeds, members, outcomes, tunnels, rep, resolution: int, path: Path,
                   overwrite: bool) -> None:
    import matplotlib.pyplot as plt

    from analysis.io.atomic import atomic_path
    from analysis.plots.paper import decision_boundaries, tunnel_level_sets

    head = f"{spec.regime}: ε={spec.eps:g}, δ={spec.delta:g}, L={spec.depth}, m={spec.width}"
    if len(seeds) == 1 and tunnels[0] is not None:
        fig = tunnel_level_sets(tunnels[0], data.x_test, data.y_test, title=f"{head}, seed {seeds[0]}")
    else:
        xs, ys, pts = grid(plane_window(data.x_train), resolution)
        values = [evaluate_scalar(lambda x: m.model(x)[:, 0], pts).reshape(len(ys), len(xs)) for m in members]
        fig = decision_boundaries(xs, ys, values, 0.5, [f"seed {s}: {o.tunnel}" for s, o in zip(seeds, outcomes)],
                                  x_data=data.x_test, y_data=data.y_test, highlight=rep,
                                  title=f"{head}: decision boundaries of {len(seeds)} seeds (framed: median accuracy)")
    try:
        with atomic_path(path, overwrite=overwrite) as tmp:
            fig.savefig(tmp, format=path.suffix[1:].lower(), dpi=100)
    finally:
        plt.close(fig)
