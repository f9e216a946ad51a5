"""Critical points of scalar maps Φ : R^n → R (docs/theory.md §3 and §9):
:func:`find_critical_points`, :func:`classify` and :func:`inject_critical_point`.

**The searched map g.**  For Φ = s ∘ g with s strictly monotone (a ResNet with
``output="sigmoid"``, or a callable passed with ``logit=g``) ∇Φ = s'(g) ∇g, and at a critical point
∇²Φ = s'(g) ∇²g: the critical points of Φ and their Morse types are those of g.  The search and
the classification run on g (``searched_on = "logit"``), so a saturated sigmoid (s' → 0) never
creates a point; otherwise g = Φ (``"output"``).  Below, every quantity is of g.

1. **Scales** from g and ∇g on a grid of ``resolution`` nodes per dimension (diag = box diagonal,
   u = unit round-off of the dtype):

       S = max(median |∇g|, (max g - min g) / diag)                   gradient scale
       M = max |∇g|                                                   size behind rounding errors
       C = max(median ‖∇²g‖₂ over a sub-grid of ≤ 1024 nodes, S / diag) curvature scale

   Multiplying g by c multiplies S, M, C and every |∇g|, λ by c: nothing below depends on c.
2. **Seeds**: the grid nodes where |∇g| is a local minimum over the 3^n neighbours, and the centres
   of cells over whose 2^n corners every gradient component changes sign.
3. **Damped Newton**, batched over seeds, with the autograd Hessian H = ∇²g (torch.func.hessian):

       d = -H⁺ ∇g(x)   (pseudo-inverse of the symmetrised H),  |d| capped at ``max_step``,
       x ← x + α d,    α = 1, 1/2, …, 2^-15 the first with |∇g(x + α d)| < |∇g(x)|,

   until |∇g| ≤ ``gtol`` (default 0), no step decreases |∇g|, or |∇g| falls by less than 10 % in
   three successive iterations (the rounding floor).  Non-degenerate zeros converge
   quadratically; degenerate ones (an injected point is one) linearly, so iterating to the floor
   matters.  Newton *converged* at x when it took no step (the seed was already a zero) or its
   last step was ≤ ``xtol`` · diag.
4. **Acceptance**, relative to the scale of the map: x inside the box with

       |∇g(x)| ≤ τ_g = accept_tol · S + 64 u M.

5. **Flat regions** are reported apart (``flat_points``) and never counted: an accepted x whose
   Hessian is numerically singular (min |λ_i| ≤ τ_H, below) and which is not a verified isolated
   zero — Newton did not converge there, or |∇g| ≤ τ_g also at one of the probes x ± r e_i,
   x ± r v (v the eigenvector of the smallest |λ|, r a quarter of the smallest grid step).  That
   is a plateau where ∇g only underflows (σ' = 1 - tanh² rounds to 0 for |z| ≳ 19, although it
   is positive), or a non-isolated critical set (a dead ReLU region) that has no Morse type.
6. **Classification** of the remaining points (deduplicated, closest first by residual) by the
   eigenvalues λ_1 ≤ … ≤ λ_n of ∇²g with a threshold relative to the curvature of the box,
   τ_H = ``degenerate_tol`` · C: Morse index #{λ_i < -τ_H}; minimum (index 0), maximum (index n),
   saddle; degenerate if min |λ_i| ≤ τ_H.  A non-degenerate minimum of small curvature stays a
   minimum however small the scale of g.
7. **Structure**: for a ResNet, :func:`analysis.geometry.certificates.no_critical_point_proof` may prove
   that g has no critical point (certified; narrow MLP with full-rank square weights and σ' > 0;
   width one).  The sentence is kept in ``structural``; if points are found all the same, the
   search contradicts a theorem: :class:`CriticalPointContradiction` (a RuntimeWarning, an error
   under the test suite's filters) is issued naming them, and the points are still returned so
   that the discrepancy can be inspected.
"""
from __future__ import annotations

import copy
import itertools
import warnings
from dataclasses import dataclass
from typing import Callable

import torch
from numpy.typing import ArrayLike
from torch.func import grad, grad_and_value, hessian, vmap

from odenet import ResNet
from solvers.validation import check_nonnegative, check_positive, check_positive_int

from analysis.geometry.certificates import no_critical_point_proof
from analysis.geometry.tracing import check_resnet_eval
from analysis.io.schema import Array, Attr, Schema, Strings, register

KINDS = ("minimum", "maximum", "saddle", "degenerate")


class CriticalPointContradiction(RuntimeWarning):
    """The structure of a network proves it has no critical points, yet the search found some."""


@dataclass
class CriticalPoint:
    """One critical point: ``point`` (n,), ``value`` Φ(x*), ``gradient_residual`` |∇g(x*)|₂,
    ``hessian`` ∇²g(x*) (n, n), ``eigenvalues`` (n,) ascending, ``morse_index``, ``degenerate``,
    ``kind`` ("minimum", "maximum", "saddle" or "degenerate"); g is the searched map (the logit
    for a sigmoid output, else Φ)."""

    point: torch.Tensor
    value: float
    gradient_residual: float
    hessian: torch.Tensor
    eigenvalues: torch.Tensor
    morse_index: int
    degenerate: bool
    kind: str


@dataclass
class CriticalPoints:
    """The critical points found by :func:`find_critical_points` (k genuine ones, f flat-region
    points); g is the searched map (see ``searched_on``).

    Attributes
    ----------
    points : (k, n)
    values : (k,)                 Φ = fn at the points (the probability for a sigmoid output).
    gradient_residual : (k,)      |∇g|₂ at the points.
    hessians : (k, n, n)          ∇²g (autograd, symmetrised).
    eigenvalues : (k, n)          ascending.
    morse_index : (k,) int64      number of eigenvalues below -τ_H.
    degenerate : (k,) bool        min |λ| ≤ τ_H.
    kinds : list[str]             "minimum", "maximum", "saddle" or "degenerate".
    box : (n, 2)                  the search box.
    n_seeds : int                 Newton starts.
    iterations : int              Newton iterations run (batched).
    flat_points : (f, n)          flat-region points (singular Hessian, ∇g only underflows or
                                  vanishes on a whole neighbourhood): not critical points, not
                                  counted; one per grid step.
    searched_on : str             "logit" (g = the logit of Φ = s ∘ g) or "output" (g = Φ).
    structural : str or None      the sentence proving that g has no critical point, when the
                                  structure of the network proves it.
    gradient_scale : float        S of the module docstring.
    hessian_scale : float         C of the module docstring.
    accept_threshold : float      τ_g: points with |∇g| ≤ τ_g were accepted.
    """

    points: torch.Tensor
    values: torch.Tensor
    gradient_residual: torch.Tensor
    hessians: torch.Tensor
    eigenvalues: torch.Tensor
    morse_index: torch.Tensor
    degenerate: torch.Tensor
    kinds: list
    box: torch.Tensor
    n_seeds: int
    iterations: int
    flat_points: torch.Tensor | None = None
    searched_on: str = "output"
    structural: str | None = None
    gradient_scale: float = float("nan")
    hessian_scale: float = float("nan")
    accept_threshold: float = float("nan")

    def __post_init__(self):
        if self.flat_points is None:  # records written before flat regions were reported
            self.flat_points = self.points.new_zeros(0, self.points.shape[1])

    def __len__(self) -> int:
        return self.points.shape[0]

    @property
    def n_flat(self) -> int:
        """Number of flat-region points (not critical points)."""
        return 0 if self.flat_points is None else self.flat_points.shape[0]

    def counts(self) -> dict[str, int]:
        """Number of critical points of each kind; all four kinds present."""
        return {k: self.kinds.count(k) for k in KINDS}

    def __getitem__(self, i: int) -> CriticalPoint:
        return CriticalPoint(point=self.points[i], value=float(self.values[i]),
                             gradient_residual=float(self.gradient_residual[i]), hessian=self.hessians[i],
                             eigenvalues=self.eigenvalues[i], morse_index=int(self.morse_index[i]),
                             degenerate=bool(self.degenerate[i]), kind=self.kinds[i])

    def __iter__(self):
        return (self[i] for i in range(len(self)))


def check_box(box: ArrayLike, dtype: torch.dtype, device: torch.device | str | None = None) -> torch.Tensor:
    """``box`` as a (n, 2) tensor of (low, high) pairs with low < high, finite (a single pair is
    one dimension); ValueError naming what was received otherwise."""
    try:
        b = torch.as_tensor(box, dtype=dtype, device=device).detach().clone()
    except (TypeError, ValueError, RuntimeError) as e:
        raise ValueError(f"box must be a sequence of (low, high) pairs, shape (n, 2); got {box!r}") from e
    if b.ndim == 1 and b.shape == (2,):
        b = b[None]
    if b.ndim != 2 or b.shape[1] != 2 or b.shape[0] == 0:
        raise ValueError("box must have shape (n, 2): one (low, high) pair per input dimension; "
                         f"got shape {tuple(b.shape)}")
    if not torch.isfinite(b).all():
        raise ValueError(f"box must be finite; got {b.tolist()}")
    if not (b[:, 0] < b[:, 1]).all():
        raise ValueError(f"box is empty: every low must be < high; got {b.tolist()}")
    return b


def _scalar_fn(fn, n: int, dtype, device, name: str = "fn"):
    """``fn`` on one point v (n,) -> 0-dim tensor, after checking its input and output shapes."""
    if isinstance(fn, ResNet):
        check_resnet_eval(fn, name)
        if fn.n_out != 1:
            raise ValueError(f"{name} must be scalar-valued; got a ResNet with n_out={fn.n_out}")
        if fn.n_in != n:
            raise ValueError(f"box has n={n} dimensions but the ResNet has n_in={fn.n_in}")
        if fn.field.weight.dtype != dtype:
            raise ValueError(f"dtype {dtype} differs from the ResNet's {fn.field.weight.dtype}")
    elif not callable(fn):
        raise TypeError(f"{name} must be callable (batch, n) -> (batch,) or an odenet.ResNet; got {type(fn).__name__}")
    probe = torch.zeros(1, n, dtype=dtype, device=device)
    try:
        with torch.no_grad():
            out = fn(probe)
    except Exception as e:  # a shape mismatch inside fn
        raise ValueError(f"{name} failed on an input of shape (1, {n}) (box dimension n={n}): {e}") from e
    if not isinstance(out, torch.Tensor) or out.numel() != 1:
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ValueError(f"{name} must be scalar-valued: (1, n) -> one number; got output {shape}")
    return lambda v: fn(v[None]).reshape(())


def _searched_map(fn, logit, n: int, dtype, device):
    """(Φ, g, searched_on, structural): Φ and g on one point (n,) -> 0-dim."""
    phi = _scalar_fn(fn, n, dtype, device)
    if isinstance(fn, ResNet):
        if logit is not None:
            raise ValueError("logit is for plain callables; a ResNet with output='sigmoid' is searched on "
                             f"its own logits (got logit={logit!r})")
        structural = no_critical_point_proof(fn)
        if fn.output == "sigmoid":
            return phi, lambda v: fn.logits(v[None]).reshape(()), "logit", structural
        return phi, phi, "output", structural
    if logit is None:
        return phi, phi, "output", None
    return phi, _scalar_fn(logit, n, dtype, device, "logit"), "logit", None


def _check_monotone(phi_values: torch.Tensor, g_values: torch.Tensor) -> None:
    """Φ must be a monotone function of g on the grid nodes (``logit`` given for a callable)."""
    order = torch.argsort(g_values)
    p = phi_values[order]
    d = p.diff()
    tol = 64 * torch.finfo(p.dtype).eps * float(p.abs().max())
    direction = 1.0 if float(p[-1]) >= float(p[0]) else -1.0
    bad = (direction * d < -tol).nonzero()[:, 0]
    if len(bad):
        i = int(bad[0])
        g = g_values[order]
        raise ValueError("logit must satisfy fn = s ∘ logit with s strictly monotone; on the grid, fn is not "
                         f"monotone in logit (logit {float(g[i]):.6g} -> {float(g[i + 1]):.6g} takes fn "
                         f"{float(p[i]):.6g} -> {float(p[i + 1]):.6g})")


def _grid(box: torch.Tensor, resolution: int) -> tuple[list[torch.Tensor], torch.Tensor]:
    """The grid axes and its nodes (resolution^n, n), first coordinate slowest."""
    n = box.shape[0]
    axes = [torch.linspace(float(lo), float(hi), resolution, dtype=box.dtype, device=box.device) for lo, hi in box]
    return axes, torch.cartesian_prod(*axes).reshape(-1, n)


def _grid_seeds(grad_fn, axes: list[torch.Tensor], X: torch.Tensor, G: torch.Tensor, max_seeds: int,
                chunk: int) -> torch.Tensor:
    """Local minima of |∇g| over the 3^n neighbours, and centres of the cells over whose corners
    every gradient component changes sign; at most ``max_seeds``, smallest |∇g| first."""
    n, resolution = X.shape[1], axes[0].shape[0]
    shape = (resolution,) * n
    gn = G.norm(dim=1).reshape(shape)
    pad = torch.full(tuple(s + 2 for s in shape), float("inf"), dtype=gn.dtype, device=gn.device)
    pad[(slice(1, -1),) * n] = gn
    is_min = torch.ones(shape, dtype=torch.bool, device=gn.device)
    for off in itertools.product((0, 1, 2), repeat=n):
        if off == (1,) * n:
            continue
        is_min &= gn <= pad[tuple(slice(o, o + resolution) for o in off)]
    seeds = [X[is_min.reshape(-1)]]
    order = [gn.reshape(-1)[is_min.reshape(-1)]]
    Gs = G.reshape(shape + (n,))
    lo = torch.full(((resolution - 1),) * n + (n,), float("inf"), dtype=G.dtype, device=G.device)
    hi = -lo
    for off in itertools.product((0, 1), repeat=n):
        corner = Gs[tuple(slice(o, o + resolution - 1) for o in off)]
        lo, hi = torch.minimum(lo, corner), torch.maximum(hi, corner)
    cell = ((lo <= 0) & (hi >= 0)).all(-1).reshape(-1)
    if cell.any():
        step = torch.stack([a[1] - a[0] for a in axes])
        corners = torch.cartesian_prod(*[a[:-1] for a in axes]).reshape(-1, n)
        centres = corners[cell] + step / 2
        seeds.append(centres)
        order.append(vmap(grad_fn, chunk_size=chunk)(centres).detach().norm(dim=1))
    return torch.cat(seeds)[torch.argsort(torch.cat(order))[:max_seeds]]


def _symmetric_hessians(hess_fn, X: torch.Tensor, chunk: int) -> torch.Tensor:
    H = vmap(hess_fn, chunk_size=chunk)(X).detach()
    return 0.5 * (H + H.transpose(1, 2))


def _curvature_scale(hess_fn, box: torch.Tensor, resolution: int, gradient_scale: float, chunk: int) -> float:
    """C = max(median ‖∇²g‖₂ over a sub-grid of at most 1024 nodes, S / diag)."""
    n = box.shape[0]
    k = max(3, min(resolution, int(1024 ** (1 / n))))
    _, X = _grid(box, k)
    norms = torch.linalg.eigvalsh(_symmetric_hessians(hess_fn, X, chunk)).abs().amax(1)
    diag = float((box[:, 1] - box[:, 0]).norm())
    return max(float(norms.median()), gradient_scale / diag)


def _greedy_dedup(x: torch.Tensor, order: torch.Tensor, radius: float) -> list[int]:
    """Indices (into x) kept when points closer than ``radius`` to a kept one are dropped, in ``order``."""
    if len(order) == 0:
        return []
    D = torch.cdist(x[order], x[order])
    taken = torch.zeros(len(order), dtype=torch.bool, device=x.device)
    chosen = []
    for i in range(len(order)):
        if not taken[i]:
            chosen.append(int(order[i]))
            taken |= D[i] <= radius
    return chosen


def _zero_elsewhere(G, hess_fn, x0: torch.Tensor, p: torch.Tensor, r: float, threshold: float, tau_h: float,
                    chunk: int, steps: int = 3) -> torch.Tensor:
    """(k,) bool: Newton from the probes ``p`` (k, n), restricted to the eigenvalues |λ| > τ_H of
    ∇²g and with steps capped at r, reaches |∇g| ≤ threshold at a distance ≥ r/2 from ``x0``:
    the zero set of ∇g goes on through the probe (a curve of numerical zeros), whereas around an
    isolated zero the steps return to x0."""
    for _ in range(steps):
        lam, V = torch.linalg.eigh(_symmetric_hessians(hess_fn, p, chunk))
        inv = torch.where(lam.abs() > tau_h, 1 / torch.where(lam == 0, 1.0, lam), 0.0)
        d = -(V @ (inv[:, :, None] * (V.transpose(1, 2) @ G(p)[:, :, None])))[:, :, 0]
        dn = d.norm(dim=1, keepdim=True)
        p = p + torch.where(dn > r, d * (r / dn.clamp_min(1e-300)), d)
    return (G(p).norm(dim=1) <= threshold) & ((p - x0).norm(dim=1) >= r / 2)


def _flat(G, hess_fn, xc: torch.Tensor, converged: torch.Tensor, r: float, threshold: float, tau_h: float,
          chunk: int) -> torch.Tensor:
    """(k,) bool for accepted points ``xc`` (k, n): the Hessian is numerically singular
    (min |λ| ≤ τ_H) and the point is not a verified isolated zero — Newton did not converge there,
    or |∇g| ≤ threshold at one of the probes x ± r e_i, x ± r v (v the eigenvector of the
    smallest |λ|), or Newton from the ±r v probes finds another zero (:func:`_zero_elsewhere`)."""
    k, n = xc.shape
    flat = torch.zeros(k, dtype=torch.bool, device=xc.device)
    if k == 0:
        return flat
    lam, vec = torch.linalg.eigh(_symmetric_hessians(hess_fn, xc, chunk))
    s = (lam.abs().amin(1) <= tau_h).nonzero()[:, 0]
    if len(s) == 0:
        return flat
    v = vec[s].gather(2, lam[s].abs().argmin(1)[:, None, None].expand(-1, n, 1))[:, :, 0]
    dirs = torch.cat([torch.eye(n, dtype=xc.dtype, device=xc.device)[None].expand(len(s), n, n), v[:, None, :]], 1)
    dirs = torch.cat([dirs, -dirs], 1)  # (s, 2n + 2, n): ±e_i, ±v
    probes = xc[s][:, None, :] + r * dirs
    isolated = converged[s] & (G(probes.reshape(-1, n)).norm(dim=1).reshape(len(s), -1) > threshold).all(1)
    # along the null direction the zero set may curve away from the straight probe: pull the
    # ±r v probes back onto it and see whether they find a zero away from x
    j = isolated.nonzero()[:, 0]
    if len(j):
        pv = torch.stack([probes[j, n], probes[j, 2 * n + 1]], 1).reshape(-1, n)
        elsewhere = _zero_elsewhere(G, hess_fn, xc[s][j].repeat_interleave(2, 0), pv, r, threshold, tau_h, chunk)
        isolated[j] = ~elsewhere.reshape(-1, 2).any(1)
    flat[s] = ~isolated
    return flat


_N_ALPHA = 16  # backtracking steps of the Newton line search (α down to 2^-15)


def find_critical_points(fn: Callable[[torch.Tensor], torch.Tensor], box: ArrayLike, *,
                         logit: Callable[[torch.Tensor], torch.Tensor] | None = None, resolution: int | None = None,
                         gtol: float = 0.0, accept_tol: float = 1e-9, xtol: float = 1e-6, max_iter: int = 100,
                         max_step: float | None = None, dedup_tol: float | None = None,
                         degenerate_tol: float = 1e-6, max_seeds: int = 2000,
                         dtype: torch.dtype = torch.float64, device: torch.device | str | None = None,
                         chunk: int = 4096) -> CriticalPoints:
    """Critical points ∇g(x) = 0 of the map g searched for a scalar ``fn`` = Φ on ``box`` (the
    logit of a sigmoid output, else Φ; see the module docstring for every formula).

    Parameters
    ----------
    fn : odenet.ResNet with n_out = 1 (eval mode), or callable (batch, n) -> (batch,) / (batch, 1)
        Must be differentiable with torch.func (grad, hessian) on one point of shape (1, n).
        A ResNet with ``output="sigmoid"`` is searched on its logits.
    box : (n, 2)
        One (low, high) pair per input dimension.
    logit : callable (batch, n) -> (batch,), optional
        For a plain callable fn = s ∘ logit with s strictly monotone: search and classify on
        ``logit`` (checked: fn must be monotone in logit on the grid nodes).  Not for a ResNet.
    resolution : int
        Grid nodes per dimension for the seeds and the scales (default: 101 for n ≤ 2, else
        about 2·10⁵^(1/n)).
    gtol : float
        Newton stops at |∇g|₂ ≤ gtol (absolute; default 0: at the rounding floor).
    accept_tol : float
        Relative acceptance: |∇g|₂ ≤ accept_tol · S + 64 u M.
    xtol : float
        Newton converged when its last step is ≤ xtol · diag (used for the flat-region test).
    max_iter : int
        Newton iterations.
    max_step : float
        Largest Newton step (default: a tenth of the box diagonal).
    dedup_tol : float
        Points closer than this are one point (default 1e-6 · box diagonal).
    degenerate_tol : float
        Relative eigenvalue threshold: τ_H = degenerate_tol · C.
    dtype, device :
        Of the search (a ResNet's own device by default); float64 for residuals near 1e-15.

    Returns
    -------
    CriticalPoints
        ``len()`` counts the genuine critical points only; ``flat_points`` the flat regions.

    Warns
    -----
    CriticalPointContradiction
        When ``fn`` is a ResNet whose structure proves there are no critical points and some
        were found all the same (a failure of the numerics, never of the theorem).
    """
    if dtype not in (torch.float32, torch.float64):
        raise ValueError(f"dtype must be torch.float32 or torch.float64; got {dtype}")
    if device is None and isinstance(fn, ResNet):
        device = fn.field.weight.device
    box = check_box(box, dtype, device)
    n = box.shape[0]
    if resolution is None:
        resolution = 101 if n <= 2 else max(3, int(round(2e5 ** (1 / n))))
    check_positive_int("resolution", resolution)
    if resolution < 3:
        raise ValueError(f"resolution must be >= 3; got {resolution}")
    gtol, accept_tol = check_nonnegative("gtol", gtol), check_positive("accept_tol", accept_tol)
    xtol = check_positive("xtol", xtol)
    check_positive_int("max_iter", max_iter)
    check_positive_int("max_seeds", max_seeds)
    check_positive_int("chunk", chunk)
    diag = float((box[:, 1] - box[:, 0]).norm())
    max_step = 0.1 * diag if max_step is None else check_positive("max_step", max_step)
    dedup_tol = 1e-6 * diag if dedup_tol is None else check_positive("dedup_tol", dedup_tol)
    degenerate_tol = check_positive("degenerate_tol", degenerate_tol)
    phi, g1, searched_on, structural = _searched_map(fn, logit, n, dtype, device)

    grad_fn, hess_fn = grad(g1), hessian(g1)
    G = lambda X: vmap(grad_fn, chunk_size=chunk)(X).detach()

    # 1. scales and 2. seeds from one pass over the grid
    axes, X = _grid(box, resolution)
    GX, VX = vmap(grad_and_value(g1), chunk_size=chunk)(X)
    GX, VX = GX.detach(), VX.detach()
    if logit is not None:
        with torch.no_grad():
            _check_monotone(vmap(phi, chunk_size=chunk)(X), VX)
    gnX = GX.norm(dim=1)
    u = torch.finfo(dtype).eps
    S = max(float(gnX.median()), float(VX.max() - VX.min()) / diag)
    threshold = accept_tol * S + 64 * u * float(gnX.max())
    C = _curvature_scale(hess_fn, box, resolution, S, chunk)
    tau_h = degenerate_tol * C
    x = _grid_seeds(grad_fn, axes, X, GX, max_seeds, chunk)
    del X, GX, VX, gnX
    n_seeds = x.shape[0]

    # 3. damped Newton on ∇g
    g = G(x)
    gn = g.norm(dim=1)
    active = gn > gtol
    slow = torch.zeros(len(x), dtype=torch.int64, device=x.device)  # consecutive iterations with little decrease
    last_step = torch.zeros(len(x), dtype=dtype, device=x.device)
    moved = torch.zeros(len(x), dtype=torch.bool, device=x.device)
    it = 0
    for it in range(1, max_iter + 1):
        idx = active.nonzero()[:, 0]
        if len(idx) == 0:
            break
        xa, ga, gna = x[idx], g[idx], gn[idx]
        H = _symmetric_hessians(hess_fn, xa, chunk)
        d = -(torch.linalg.pinv(H, hermitian=True, rtol=1e-13) @ ga[:, :, None])[:, :, 0]
        dn = d.norm(dim=1, keepdim=True)
        d = torch.where(dn > max_step, d * (max_step / dn.clamp_min(1e-300)), d)
        # line search in one batched call: α = 1, 1/2, ..., 2^-(A-1); the first α that lowers |∇g|
        alphas = 0.5 ** torch.arange(_N_ALPHA, dtype=x.dtype, device=x.device)
        xt = (xa[:, None, :] + alphas[None, :, None] * d[:, None, :]).reshape(-1, n)
        gt = G(xt).reshape(len(idx), _N_ALPHA, n)
        better = gt.norm(dim=2) < gna[:, None]
        found = better.any(1)
        first = better.int().argmax(1)
        rows = torch.arange(len(idx), device=x.device)
        acc = found.nonzero()[:, 0]
        x_new = xt.reshape(len(idx), _N_ALPHA, n)[rows, first][acc]
        last_step[idx[acc]] = (x_new - x[idx[acc]]).norm(dim=1)
        moved[idx[acc]] = True
        x[idx[acc]] = x_new
        g[idx[acc]] = gt[rows, first][acc]
        gn_old, gn = gn, g.norm(dim=1)
        slow = torch.where(gn > 0.9 * gn_old, slow + 1, 0)
        active[idx[~found]] = False  # no decrease along the Newton direction: stalled
        active &= slow < 3  # rounding noise floor reached: |∇g| no longer falls
        active &= gn > gtol
        active &= ~((x < box[:, 0] - diag) | (x > box[:, 1] + diag)).any(1)  # far outside the box

    # 4. acceptance relative to the scale of g
    margin = 1e-9 * diag
    inside = ((x >= box[:, 0] - margin) & (x <= box[:, 1] + margin)).all(1)
    cand = (inside & (gn <= threshold)).nonzero()[:, 0]
    # 5. flat regions: singular Hessian and not a verified isolated zero
    grid_step = float((box[:, 1] - box[:, 0]).min()) / (resolution - 1)
    converged = ~moved[cand] | (last_step[cand] <= xtol * diag)
    flat = _flat(G, hess_fn, x[cand], converged, 0.25 * grid_step, threshold, tau_h, chunk)
    genuine, flats = cand[~flat], cand[flat]
    chosen = _greedy_dedup(x, genuine[torch.argsort(gn[genuine])], dedup_tol)
    pts = x[chosen] if chosen else x.new_zeros(0, n)
    kept_flat = _greedy_dedup(x, flats[torch.argsort(gn[flats])], grid_step)
    flat_pts = x[kept_flat] if kept_flat else x.new_zeros(0, n)
    if len(pts) and len(flat_pts):  # a flat point beside a genuine one is that point's neighbourhood
        flat_pts = flat_pts[torch.cdist(flat_pts, pts).amin(1) > grid_step]

    # 6. classification on g, values of Φ
    c = classify(g1, pts, hessian_scale=C, degenerate_tol=degenerate_tol, chunk=chunk)
    with torch.no_grad():
        values = vmap(phi, chunk_size=chunk)(pts).detach() if len(pts) else pts.new_zeros(0)
    cps = CriticalPoints(points=pts, values=values, gradient_residual=gn[chosen] if chosen else x.new_zeros(0),
                         hessians=c["hessians"], eigenvalues=c["eigenvalues"], morse_index=c["morse_index"],
                         degenerate=c["degenerate"], kinds=c["kinds"], box=box, n_seeds=n_seeds, iterations=it,
                         flat_points=flat_pts, searched_on=searched_on, structural=structural,
                         gradient_scale=S, hessian_scale=C, accept_threshold=threshold)
    # 7. a proof says there are none: finding some is a failure of the search, said loudly
    if structural is not None and len(cps):
        shown = ", ".join(f"{p.point.tolist()} ({p.kind}, |∇g| = {p.gradient_residual:.2g})" for p in list(cps)[:5])
        warnings.warn(CriticalPointContradiction(
            f"{len(cps)} critical point(s) found although the structure proves there are none ({structural}): "
            f"{shown}{' ...' if len(cps) > 5 else ''}; the numerics are at fault (raise resolution or check the "
            f"dtype), not the theorem"), stacklevel=2)
    return cps


def classify(g: Callable[[torch.Tensor], torch.Tensor], points: torch.Tensor, *, hessian_scale: float,
             degenerate_tol: float = 1e-6, chunk: int = 4096) -> dict:
    """Classify ``points`` (k, n) by the eigenvalues λ_1 ≤ … ≤ λ_n of H = ∇²g (``g`` on one point
    (n,) -> 0-dim, torch.func-differentiable), with the threshold τ = degenerate_tol · hessian_scale
    relative to the curvature of g where the points were searched (not to the point's own
    eigenvalues, which all vanish at a degenerate point): Morse index #{λ_i < -τ}, degenerate iff
    min |λ_i| ≤ τ; kind minimum (index 0), maximum (index n), saddle, or degenerate.

    Returns a dict of ``values`` g (k,), ``hessians`` (k, n, n) symmetrised, ``eigenvalues`` (k, n),
    ``morse_index`` (k,) int64, ``degenerate`` (k,) bool and ``kinds`` (list of str).
    """
    if not isinstance(points, torch.Tensor) or points.ndim != 2:
        raise ValueError(f"points must be a tensor of shape (k, n); got {getattr(points, 'shape', type(points))}")
    hessian_scale = check_nonnegative("hessian_scale", hessian_scale)
    degenerate_tol = check_positive("degenerate_tol", degenerate_tol)
    k, n = points.shape
    if k == 0:
        z = points.new_zeros
        return dict(values=z(0), hessians=z(0, n, n), eigenvalues=z(0, n),
                    morse_index=torch.zeros(0, dtype=torch.int64, device=points.device),
                    degenerate=torch.zeros(0, dtype=torch.bool, device=points.device), kinds=[])
    with torch.no_grad():
        values = vmap(g, chunk_size=chunk)(points)
    H = _symmetric_hessians(hessian(g), points, chunk)
    lam = torch.linalg.eigvalsh(H)
    tau = degenerate_tol * hessian_scale
    degenerate = lam.abs().amin(1) <= tau
    index = (lam < -tau).sum(1)
    kinds = ["degenerate" if dg else "minimum" if i == 0 else "maximum" if i == n else "saddle"
             for dg, i in zip(degenerate.tolist(), index.tolist())]
    return dict(values=values.detach(), hessians=H, eigenvalues=lam, morse_index=index, degenerate=degenerate,
                kinds=kinds)


def inject_critical_point(resnet: ResNet, block: int, x0: ArrayLike) -> ResNet:
    """A copy of ``resnet`` with a critical point of Φ at ``x0`` (n_in,) (docs/theory.md §3, sharpness):

        W_block = -(ε/δ) I,   b_block = -W_block h_block(x0) = (ε/δ) h_block(x0),

    so that W h + b = 0 and DF_block(h_block(x0)) = ε I + δ tanh'(0) W = 0, hence ∇Φ(x0) = 0.
    Needs tanh and ε > 0; BatchNorm (eval mode) is folded first.  The critical point is
    degenerate (tanh''(0) = 0 makes the Hessian vanish there too).
    """
    check_resnet_eval(resnet, "resnet")
    if resnet.activation.name != "tanh":
        raise ValueError(f"inject_critical_point needs activation='tanh' (σ'(0) = 1); got {resnet.activation.name!r}")
    if not resnet.eps > 0:
        raise ValueError(f"inject_critical_point needs eps > 0; got eps={resnet.eps}")
    if isinstance(block, bool) or not isinstance(block, int) or not 0 <= block < resnet.depth:
        raise ValueError(f"block must be an integer in [0, {resnet.depth - 1}]; got {block!r}")
    dtype = resnet.field.weight.dtype
    x0 = torch.as_tensor(x0, dtype=dtype, device=resnet.field.weight.device).reshape(-1)
    if x0.shape[0] != resnet.n_in or not torch.isfinite(x0).all():
        raise ValueError(f"x0 must be a finite point of R^{resnet.n_in}; got {x0.tolist()}")
    model = resnet.fold_batchnorm() if resnet.batchnorm else copy.deepcopy(resnet)
    with torch.no_grad():
        h = model.states(x0[None])[block, 0]
        W = -(model.eps / model.delta) * torch.eye(model.width, dtype=dtype, device=x0.device)
        model.set_block(block, W, -(W @ h))
    return model


# --- storage: the HDF5 schemas of this module's records, registered on import (docs/hdf5-format.md) ---
def _critical_points_schema() -> Schema:
    cls = CriticalPoints

    def build(v: dict):  # files written before flat regions were reported lack the newer fields
        return cls(**{k: x for k, x in v.items() if x is not None})

    return Schema("CriticalPoints", cls, fields=(
        Array("points", ("point", "input"), doc="location x*"),
        Array("values", ("point",), doc="Phi(x*)"),
        Array("gradient_residual", ("point",), doc="|grad g(x*)|_2, g the searched map (see searched_on)"),
        Array("hessians", ("point", "input", "input_j"), doc="Hessian of the searched map g at x*"),
        Array("eigenvalues", ("point", "eigen"), doc="Hessian eigenvalues, ascending"),
        Array("morse_index", ("point",), doc="number of negative eigenvalues"),
        Array("degenerate", ("point",), doc="singular Hessian"),
        Strings("kinds", ("point",), doc="type of critical point (minimum, maximum, saddle, degenerate)"),
        Array("box", ("input", "bound"), doc="search box [lower, upper] per input"),
        Attr("n_seeds", int), Attr("iterations", int),
        Array("flat_points", ("flat_point", "input"), doc="flat-region points (gradient underflow), not counted"),
        Attr("searched_on", str, doc="logit (Phi = s(g), s monotone) or output (g = Phi)"),
        Attr("structural", str, doc="why the structure proves there are no critical points"),
        Attr("gradient_scale", float), Attr("hessian_scale", float), Attr("accept_threshold", float),
    ), build=build, doc="critical points of the logit g of Phi (or of Phi): location, value, Hessian, Morse type",
        dtype_of="points")


def _critical_point_schema() -> Schema:
    return Schema("CriticalPoint", CriticalPoint, fields=(
        Array("point", ("input",), doc="location x*"), Attr("value", float), Attr("gradient_residual", float),
        Array("hessian", ("input", "input_j"), doc="Hessian of Phi at x*"),
        Array("eigenvalues", ("eigen",), doc="Hessian eigenvalues, ascending"),
        Attr("morse_index", int), Attr("degenerate", bool), Attr("kind", str),
    ), doc="one critical point", dtype_of="point")


register(_critical_points_schema())
register(_critical_point_schema())
