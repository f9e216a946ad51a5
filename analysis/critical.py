"""Critical points of scalar maps Φ : R^n → R (PAPER.md §3): :func:`find_critical_points`,
:func:`classify`, and :func:`inject_critical_point`.

The finder solves ∇Φ(x) = 0 on a box:

1. seeds: the nodes of a grid where |∇Φ| is a local minimum over the 3^n neighbouring nodes,
   and the centres of grid cells over whose 2^n corners every gradient component changes sign;
2. damped Newton, batched over seeds, with the autograd Hessian H = ∇²Φ (torch.func.hessian):

       d = -H⁺ ∇Φ(x)   (pseudo-inverse of the symmetrised H),  |d| capped at ``max_step``,
       x ← x + α d,    α = 1, 1/2, …, 2^-15 the first with |∇Φ(x + α d)| < |∇Φ(x)|,

   until |∇Φ| ≤ ``gtol`` (default 0), no step decreases |∇Φ|, or |∇Φ| falls by less than 10 % in
   three successive iterations (the rounding floor).  Non-degenerate zeros converge
   quadratically; degenerate ones (an injected point is one) linearly, so iterating to the floor
   matters: there |∇Φ| is tiny long before x is close;
3. points inside the box with |∇Φ| ≤ ``accept_tol`` are deduplicated (closest first by residual)
   and classified by the eigenvalues λ_1 ≤ … ≤ λ_n of H: Morse index #{λ_i < 0}; minimum (index
   0), maximum (index n), saddle; degenerate if min |λ_i| ≤ ``degenerate_tol`` · max(1, max |λ_i|).
"""
from __future__ import annotations

import copy
import itertools
from dataclasses import dataclass

import torch
from torch.func import grad, hessian, vmap

from odenet import ResNet
from solvers._validate import check_nonnegative, check_positive, check_positive_int

from .tracing import check_resnet_eval


@dataclass
class CriticalPoint:
    """One critical point: ``point`` (n,), ``value`` Φ(x*), ``gradient_residual`` |∇Φ(x*)|₂,
    ``hessian`` (n, n), ``eigenvalues`` (n,) ascending, ``morse_index``, ``degenerate``, ``kind``
    ("minimum", "maximum", "saddle" or "degenerate")."""

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
    """The critical points found by :func:`find_critical_points` (k of them).

    Attributes
    ----------
    points : (k, n)
    values : (k,)                 Φ at the points.
    gradient_residual : (k,)      |∇Φ|₂ at the points.
    hessians : (k, n, n)          ∇²Φ (autograd, symmetrised).
    eigenvalues : (k, n)          ascending.
    morse_index : (k,) int64      number of negative eigenvalues.
    degenerate : (k,) bool
    kinds : list[str]             "minimum", "maximum", "saddle" or "degenerate".
    box : (n, 2)                  the search box.
    n_seeds : int                 Newton starts.
    iterations : int              Newton iterations run (batched).
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

    def __len__(self) -> int:
        return self.points.shape[0]

    def __getitem__(self, i: int) -> CriticalPoint:
        return CriticalPoint(point=self.points[i], value=float(self.values[i]),
                             gradient_residual=float(self.gradient_residual[i]), hessian=self.hessians[i],
                             eigenvalues=self.eigenvalues[i], morse_index=int(self.morse_index[i]),
                             degenerate=bool(self.degenerate[i]), kind=self.kinds[i])

    def __iter__(self):
        return (self[i] for i in range(len(self)))


def _check_box(box, dtype, device=None) -> torch.Tensor:
    try:
        b = torch.as_tensor(box, dtype=dtype, device=device).detach().clone()
    except (TypeError, ValueError, RuntimeError) as e:
        raise ValueError(f"box must be a sequence of (low, high) pairs, shape (n, 2); got {box!r}") from e
    if b.ndim == 1 and b.shape == (2,):
        b = b[None]
    if b.ndim != 2 or b.shape[1] != 2 or b.shape[0] == 0:
        raise ValueError(f"box must have shape (n, 2): one (low, high) pair per input dimension; got shape {tuple(b.shape)}")
    if not torch.isfinite(b).all():
        raise ValueError(f"box must be finite; got {b.tolist()}")
    if not (b[:, 0] < b[:, 1]).all():
        raise ValueError(f"box is empty: every low must be < high; got {b.tolist()}")
    return b


def _scalar_fn(fn, n: int, dtype, device):
    """Φ on one point v (n,) -> 0-dim tensor, after checking fn's input and output shapes."""
    if isinstance(fn, ResNet):
        check_resnet_eval(fn, "fn")
        if fn.n_out != 1:
            raise ValueError(f"fn must be scalar-valued; got a ResNet with n_out={fn.n_out}")
        if fn.n_in != n:
            raise ValueError(f"box has n={n} dimensions but the ResNet has n_in={fn.n_in}")
        if fn.field.weight.dtype != dtype:
            raise ValueError(f"dtype {dtype} differs from the ResNet's {fn.field.weight.dtype}")
    elif not callable(fn):
        raise TypeError(f"fn must be callable (batch, n) -> (batch,) or an odenet.ResNet; got {type(fn).__name__}")
    probe = torch.zeros(1, n, dtype=dtype, device=device)
    try:
        with torch.no_grad():
            out = fn(probe)
    except Exception as e:  # a shape mismatch inside fn
        raise ValueError(f"fn failed on an input of shape (1, {n}) (box dimension n={n}): {e}") from e
    if not isinstance(out, torch.Tensor) or out.numel() != 1:
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ValueError(f"fn must be scalar-valued: (1, n) -> one number; got output {shape}")
    return lambda v: fn(v[None]).reshape(())


def _grid_seeds(grad_fn, box: torch.Tensor, resolution: int, max_seeds: int, chunk: int) -> torch.Tensor:
    n = box.shape[0]
    axes = [torch.linspace(float(lo), float(hi), resolution, dtype=box.dtype, device=box.device) for lo, hi in box]
    X = torch.cartesian_prod(*axes).reshape(-1, n)
    G = vmap(grad_fn, chunk_size=chunk)(X).detach()
    shape = (resolution,) * n
    gn = G.norm(dim=1).reshape(shape)
    # local minima of |∇Φ| over the 3^n neighbourhood (pad with +inf)
    pad = torch.full(tuple(s + 2 for s in shape), float("inf"), dtype=gn.dtype, device=gn.device)
    pad[(slice(1, -1),) * n] = gn
    is_min = torch.ones(shape, dtype=torch.bool, device=gn.device)
    for off in itertools.product((0, 1, 2), repeat=n):
        if off == (1,) * n:
            continue
        is_min &= gn <= pad[tuple(slice(o, o + resolution) for o in off)]
    seeds = [X[is_min.reshape(-1)]]
    order = [gn.reshape(-1)[is_min.reshape(-1)]]
    # cells where every gradient component changes sign over the 2^n corners
    Gs = G.reshape(shape + (n,))
    lo = torch.full(((resolution - 1),) * n + (n,), float("inf"), dtype=G.dtype, device=G.device)
    hi = -lo
    for off in itertools.product((0, 1), repeat=n):
        corner = Gs[tuple(slice(o, o + resolution - 1) for o in off)]
        lo, hi = torch.minimum(lo, corner), torch.maximum(hi, corner)
    cell = ((lo <= 0) & (hi >= 0)).all(-1).reshape(-1)
    if cell.any():
        step = (box[:, 1] - box[:, 0]) / (resolution - 1)
        corners = torch.cartesian_prod(*[a[:-1] for a in axes]).reshape(-1, n)
        centres = corners[cell] + step / 2
        seeds.append(centres)
        order.append(vmap(grad_fn, chunk_size=chunk)(centres).detach().norm(dim=1))
    seeds, order = torch.cat(seeds), torch.cat(order)
    return seeds[torch.argsort(order)[:max_seeds]]


_N_ALPHA = 16  # backtracking steps of the Newton line search (α down to 2^-15)


def find_critical_points(fn, box, *, resolution: int | None = None, gtol: float = 0.0,
                         accept_tol: float = 1e-9, max_iter: int = 100, max_step: float | None = None,
                         dedup_tol: float | None = None, degenerate_tol: float = 1e-6, max_seeds: int = 2000,
                         dtype: torch.dtype = torch.float64, device=None, chunk: int = 4096) -> CriticalPoints:
    """Critical points ∇Φ(x) = 0 of a scalar ``fn`` on ``box`` (see the module docstring).

    Parameters
    ----------
    fn : odenet.ResNet with n_out = 1 (eval mode), or callable (batch, n) -> (batch,) / (batch, 1)
        Must be differentiable with torch.func (grad, hessian) on one point of shape (1, n).
    box : (n, 2)
        One (low, high) pair per input dimension.
    resolution : int
        Grid nodes per dimension for the seeds (default: 101 for n ≤ 2, else about 2·10⁵^(1/n)).
    gtol, accept_tol : float
        Newton stops at |∇Φ|₂ ≤ gtol (default 0: at the rounding floor); points with
        |∇Φ|₂ ≤ accept_tol are reported.
    max_iter : int
        Newton iterations.
    max_step : float
        Largest Newton step (default: a tenth of the box diagonal).
    dedup_tol : float
        Points closer than this are one point (default 1e-6 · box diagonal).
    degenerate_tol : float
        Relative eigenvalue threshold of the degenerate flag.
    dtype, device :
        Of the search (a ResNet's own device by default); float64 for residuals near 1e-15.
    """
    if dtype not in (torch.float32, torch.float64):
        raise ValueError(f"dtype must be torch.float32 or torch.float64; got {dtype}")
    if device is None and isinstance(fn, ResNet):
        device = fn.field.weight.device
    box = _check_box(box, dtype, device)
    n = box.shape[0]
    phi = _scalar_fn(fn, n, dtype, device)
    if resolution is None:
        resolution = 101 if n <= 2 else max(3, int(round(2e5 ** (1 / n))))
    check_positive_int("resolution", resolution)
    if resolution < 3:
        raise ValueError(f"resolution must be >= 3; got {resolution}")
    gtol, accept_tol = check_nonnegative("gtol", gtol), check_positive("accept_tol", accept_tol)
    check_positive_int("max_iter", max_iter)
    check_positive_int("max_seeds", max_seeds)
    diag = float((box[:, 1] - box[:, 0]).norm())
    max_step = 0.1 * diag if max_step is None else check_positive("max_step", max_step)
    dedup_tol = 1e-6 * diag if dedup_tol is None else check_positive("dedup_tol", dedup_tol)
    degenerate_tol = check_positive("degenerate_tol", degenerate_tol)

    grad_fn, hess_fn = grad(phi), hessian(phi)
    G = lambda X: vmap(grad_fn, chunk_size=chunk)(X).detach()
    Hf = lambda X: vmap(hess_fn, chunk_size=chunk)(X).detach()

    x = _grid_seeds(grad_fn, box, resolution, max_seeds, chunk)
    n_seeds = x.shape[0]
    g = G(x)
    gn = g.norm(dim=1)
    active = gn > gtol
    slow = torch.zeros(len(x), dtype=torch.int64, device=x.device)  # consecutive iterations with little decrease
    it = 0
    for it in range(1, max_iter + 1):
        idx = active.nonzero()[:, 0]
        if len(idx) == 0:
            break
        xa, ga, gna = x[idx], g[idx], gn[idx]
        H = Hf(xa)
        H = 0.5 * (H + H.transpose(1, 2))
        d = -(torch.linalg.pinv(H, hermitian=True, rtol=1e-13) @ ga[:, :, None])[:, :, 0]
        dn = d.norm(dim=1, keepdim=True)
        d = torch.where(dn > max_step, d * (max_step / dn.clamp_min(1e-300)), d)
        # line search in one batched call: α = 1, 1/2, ..., 2^-(A-1); the first α that lowers |∇Φ|
        alphas = 0.5 ** torch.arange(_N_ALPHA, dtype=x.dtype, device=x.device)
        xt = (xa[:, None, :] + alphas[None, :, None] * d[:, None, :]).reshape(-1, n)
        gt = G(xt).reshape(len(idx), _N_ALPHA, n)
        better = gt.norm(dim=2) < gna[:, None]
        found = better.any(1)
        first = better.int().argmax(1)
        rows = torch.arange(len(idx), device=x.device)
        acc = found.nonzero()[:, 0]
        x[idx[acc]] = xt.reshape(len(idx), _N_ALPHA, n)[rows, first][acc]
        g[idx[acc]] = gt[rows, first][acc]
        pending = ~found
        gn_old, gn = gn, g.norm(dim=1)
        slow = torch.where(gn > 0.9 * gn_old, slow + 1, 0)
        active[idx[pending]] = False  # no decrease along the Newton direction: stalled
        active &= slow < 3  # rounding noise floor reached: |∇Φ| no longer falls
        active &= gn > gtol
        # far outside the box: stop following
        out = ((x < box[:, 0] - diag) | (x > box[:, 1] + diag)).any(1)
        active &= ~out
    margin = 1e-9 * diag
    inside = ((x >= box[:, 0] - margin) & (x <= box[:, 1] + margin)).all(1)
    keep = (inside & (gn <= accept_tol)).nonzero()[:, 0]
    keep = keep[torch.argsort(gn[keep])]
    chosen: list[int] = []
    if len(keep):
        D = torch.cdist(x[keep], x[keep])
        taken = torch.zeros(len(keep), dtype=torch.bool, device=x.device)
        for i in range(len(keep)):
            if taken[i]:
                continue
            chosen.append(int(keep[i]))
            taken |= D[i] <= dedup_tol
    pts = x[chosen] if chosen else x.new_zeros(0, n)
    c = classify(phi, pts, degenerate_tol=degenerate_tol, chunk=chunk)
    return CriticalPoints(points=pts, values=c["values"], gradient_residual=gn[chosen] if chosen else x.new_zeros(0),
                          hessians=c["hessians"], eigenvalues=c["eigenvalues"], morse_index=c["morse_index"],
                          degenerate=c["degenerate"], kinds=c["kinds"], box=box, n_seeds=n_seeds, iterations=it)


def classify(phi, points: torch.Tensor, *, degenerate_tol: float = 1e-6, chunk: int = 4096) -> dict:
    """Classify points by the eigenvalues λ (ascending) of H = ∇²Φ (``phi`` on one point (n,) ->
    0-dim): Morse index #{λ_i < -τ}, degenerate iff min |λ_i| ≤ τ, τ = degenerate_tol · max(1, max|λ_i|);
    kind minimum / maximum / saddle / degenerate.  Returns a dict of values, hessians, eigenvalues,
    morse_index, degenerate, kinds."""
    k, n = points.shape
    if k == 0:
        z = points.new_zeros
        return dict(values=z(0), hessians=z(0, n, n), eigenvalues=z(0, n),
                    morse_index=torch.zeros(0, dtype=torch.int64, device=points.device),
                    degenerate=torch.zeros(0, dtype=torch.bool, device=points.device), kinds=[])
    with torch.no_grad():
        values = torch.stack([phi(p) for p in points]) if k < 2 else vmap(phi, chunk_size=chunk)(points)
    H = vmap(hessian(phi), chunk_size=chunk)(points).detach()
    H = 0.5 * (H + H.transpose(1, 2))
    lam = torch.linalg.eigvalsh(H)
    tau = degenerate_tol * lam.abs().amax(1).clamp_min(1.0)
    degenerate = lam.abs().amin(1) <= tau
    index = (lam < -tau[:, None]).sum(1)
    kinds = ["degenerate" if dg else "minimum" if i == 0 else "maximum" if i == n else "saddle"
             for dg, i in zip(degenerate.tolist(), index.tolist())]
    return dict(values=values.detach(), hessians=H, eigenvalues=lam, morse_index=index, degenerate=degenerate, kinds=kinds)


def inject_critical_point(resnet: ResNet, block: int, x0) -> ResNet:
    """A copy of ``resnet`` with a critical point of Φ at ``x0`` (PAPER.md §3, sharpness):

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
