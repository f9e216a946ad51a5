"""Batched trajectories with Jacobians (docs/theory.md §3–4): :func:`trace`, :func:`liouville`,
:func:`crossings`.

For a ResNet the Jacobians come from the forward variational recursion

    h_{k+1} = ε h_k + δ σ(W_l h_k + b_l)
    DF_k    = ε I + δ diag(σ'(W_l h_k + b_l)) W_l          (analytic σ', no autograd)
    J_0     = DA(x) = I,  W_in,  or  diag(σ'(W_in x + b_in)) W_in
    J_{k+1} = DF_k J_k                                       (J_k = ∂h_k/∂x)
    ∇Φ      = w_out^T J_L   (times s(1 - s) for a sigmoid output s)

run for the whole batch at once by the one generalised-Euler kernel with tangents
(:func:`odenet.kernel.generalised_euler`; the states are those of the forward pass bit for bit):
one (m × m) @ (m × batch·n) matrix product per step, into preallocated outputs.  With
``refine = r`` every layer is split into r sub-steps with (ε_r, δ_r) of
:meth:`odenet.ResNet.refined_weights`, so k runs over L r steps and step k uses layer k // r.

For a generic field f(t, x) the fixed-step maps are differentiated with torch.func
(vmap ∘ jacfwd), and adaptive/reference solves integrate the variational equation with the state:

    x' = f(t, x),   J' = D_x f(t, x) J,   ℓ' = tr D_x f(t, x),   J(0) = I, ℓ(0) = 0,

so that Liouville's formula log|det Dφ_t| = ℓ(t) = ∫_0^t tr D_x f(s, x(s)) ds can be checked.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.func import jacfwd, jacrev, vmap

import solvers
from odenet import ResNet
from odenet.kernel import Compile, EulerRun, activation_and_derivative, check_compile, generalised_euler
from solvers.methods import has_storage
from solvers.validation import check_nonnegative, check_positive, check_positive_int, check_state
from solvers import FIXED_METHODS, SUCCESS, Field, Solution, TimeGrid, is_piecewise
from analysis.io.schema import Array, Attr, Schema, register

REACHED = "The solver successfully reached the end of the integration interval."


@dataclass(kw_only=True, repr=False, eq=False)
class Trace(Solution):
    """Trajectories of a batch of inputs with their Jacobians: a :class:`solvers.Solution`
    (``t``, ``y`` = the states, the solver statistics, ``status``, ``message``, ``method``,
    ``step_piece`` = the layer of each step) with what geometry needs in addition.

    S is the number of steps (L·refine for a ResNet, the solver's steps for a field), m the state
    dimension, n the input dimension, q the output dimension.

    Attributes (besides Solution's)
    ----------
    inputs : (batch, n)
        The inputs x.
    states : (S+1, batch, m)
        The same tensor as ``y``: h_0 = A(x), ..., h_S (t_k = k T / S for a ResNet).
    layer_jacobians : (S, batch, m, m) or None
        DF_k = ∂h_{k+1}/∂h_k; None for a trace of the variational equation (adaptive solvers)
        or when not requested.
    cumulative : (S+1, batch, m, n)
        J_k = ∂h_k/∂x = DF_{k-1} ⋯ DF_0 DA(x).
    logabsdet, sign : (S+1, batch)
        log|det| and sign (±1, 0 for singular) of ``cumulative`` when m == n (``logdet_of ==
        "cumulative"``); for a non-square input map (m != n) of the block product
        DF_{k-1} ⋯ DF_0 (``logdet_of == "blocks"``), i.e. Σ_{j<k} log|det DF_j|.
    logdet_of : str
        ``"cumulative"`` or ``"blocks"``, see above.
    jacobian : (batch, q, n)
        The full input-output Jacobian: w_out^T J_S (ResNet, times σ_out' for a sigmoid) or
        J_S (field: the time-T map).
    outputs : (batch, q) or None
        Φ(x) for a ResNet, None for a field.
    singular_values : (batch, min(q, n))
        Singular values of ``jacobian``, descending.
    step_layer : (S,) int64
        The same tensor as ``step_piece``: the layer (piece) of each step.
    trace_integral : (S+1, batch) or None
        ℓ_k = ∫_0^{t_k} tr D_x f(t, x(t)) dt, integrated with the state (variational traces
        only); Liouville: ``logabsdet ≈ trace_integral``.
    method : str
        ``"resnet"``, a fixed method name, or the adaptive/reference method used.

    ``states``, ``cumulative`` and ``layer_jacobians`` of a ResNet trace are views of the
    kernel's batch-last storage (not contiguous): index and reshape them, do not ``.view`` them.
    """

    inputs: torch.Tensor
    layer_jacobians: torch.Tensor | None
    cumulative: torch.Tensor
    logabsdet: torch.Tensor
    sign: torch.Tensor
    logdet_of: str
    jacobian: torch.Tensor
    outputs: torch.Tensor | None
    singular_values: torch.Tensor
    trace_integral: torch.Tensor | None

    @property
    def states(self) -> torch.Tensor:
        """h_0, ..., h_S, (S+1, batch, m): the same tensor as ``y``."""
        return self.y

    @property
    def step_layer(self) -> torch.Tensor | None:
        """The layer (piece) of each step, (S,) int64: the same tensor as ``step_piece`` (set on every
        trace that :func:`trace` returns)."""
        return self.step_piece

    def __repr__(self) -> str:
        return (f"Trace(method={self.method!r}, states={tuple(self.states.shape)}, "
                f"cumulative={tuple(self.cumulative.shape)}, logdet_of={self.logdet_of!r})")


def _trace_record(*, states: torch.Tensor, step_layer: torch.Tensor | None, nfev: int, n_rejected: int | None = 0,
                  **fields) -> Trace:
    """A Trace of a completed integration: S = len(states) - 1 accepted steps."""
    S = states.shape[0] - 1
    return Trace(y=states, step_piece=step_layer, nfev=nfev, n_steps=S, n_accepted=S, n_rejected=n_rejected,
                 status=SUCCESS, message=REACHED, **fields)


# --- helpers shared with analysis.geometry.maps -----------------------------------------------------------

def check_resnet_eval(model: ResNet, name: str = "model") -> None:
    """BatchNorm in train mode makes a block depend on the whole batch: refuse it."""
    if not isinstance(model, ResNet):
        raise TypeError(f"{name} must be an odenet.ResNet; got {type(model).__name__}")
    if model.batchnorm and model.training:
        raise ValueError(f"{name} has BatchNorm in train mode, where a block depends on the whole batch "
                         f"and has no per-point Jacobian; call {name}.eval() first")


def check_inputs(model: ResNet, x: torch.Tensor, name: str = "x") -> torch.Tensor:
    """``x`` unchanged if it is a finite, non-empty (batch, n_in) tensor of the model's dtype (see
    :func:`solvers.validation.check_state`); ValueError or TypeError naming ``name`` otherwise."""
    check_state(name, x)
    if x.shape[1] != model.n_in:
        raise ValueError(f"{name} must have shape (batch, {model.n_in}) for this model; got {tuple(x.shape)}")
    dtype = model.field.weight.dtype
    if x.dtype != dtype:
        raise ValueError(f"{name} must have the model's dtype {dtype}; got {x.dtype}")
    return x


def input_jacobian(model: ResNet, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """h_0 = A(x) and DA(x) of shape (batch, m, n): I, W_in, or diag(σ'(W_in x + b_in)) W_in."""
    B = x.shape[0]
    if model.inp is None:
        eye = torch.eye(model.n_in, dtype=x.dtype, device=x.device)
        return x, eye.expand(B, -1, -1)
    W = model.inp.weight
    z = torch.addmm(model.inp.bias, x, W.T)
    if model.input_map == "affine":
        return z, W.expand(B, -1, -1)
    s, ds = activation_and_derivative(model.activation, z)
    return s, ds[:, :, None] * W


def block_run(model: ResNet, h0: torch.Tensor, J0: torch.Tensor, refine: int, start: int = 0,
              stop: int | None = None, record: str = "all", layer_jacobians: bool = False,
              compile: Compile = False) -> EulerRun:
    """Steps start..stop-1 (of L·refine) of h_{k+1} = ε h_k + δ σ(W h_k + b), J_{k+1} = DF_k J_k
    with BatchNorm folded (eval mode): the one kernel, :func:`odenet.kernel.generalised_euler`.

    ``h0`` (batch, m), ``J0`` (batch, m, n).  Returns its :class:`~odenet.kernel.EulerRun`:
    states (S+1, batch, m), tangents (S+1, batch, m, n) for ``record="all"`` (else the last of
    each), and the DF_k (S, batch, m, m) if ``layer_jacobians``.  ``compile="native"`` runs the
    states and tangents in one C++ loop (see the kernel).
    """
    W, b = model.field.effective_weights()
    eps, delta = model.refined_weights(refine)
    return generalised_euler(W.detach(), b.detach(), model.activation, h0, eps, delta, refine=refine, start=start,
                             stop=stop, tangent=J0, record=record, layer_jacobians=layer_jacobians,
                             compile=compile)


def slogdet(J: torch.Tensor, chunk_elements: int = 1 << 20) -> tuple[torch.Tensor, torch.Tensor]:
    """sign and log|det| of a stack of square matrices (…, m, m), computed over the leading axis
    in chunks of about ``chunk_elements`` so that LAPACK's copies stay small beside J; 2×2 by
    the closed form det = a d - b c."""
    if J.shape[-2:] == (2, 2):
        det = J[..., 0, 0] * J[..., 1, 1] - J[..., 0, 1] * J[..., 1, 0]
        return torch.sign(det), torch.log(det.abs())
    if J.requires_grad and torch.is_grad_enabled():
        return torch.linalg.slogdet(J)  # differentiable, unchunked
    sign = J.new_empty(J.shape[:-2])
    lad = J.new_empty(J.shape[:-2])
    step = max(1, chunk_elements // max(1, J[0].numel()))
    for i in range(0, J.shape[0], step):
        torch.linalg.slogdet(J[i:i + step], out=(sign[i:i + step], lad[i:i + step]))
    return sign, lad


def output_jacobian(model: ResNet, hL: torch.Tensor, JL: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Φ(x) (batch, q) and ∇Φ = w_out^T J_L (batch, q, n), times p(1 - p) for a sigmoid output p."""
    logits = model.out(hL.contiguous())  # as the forward pass's readout, bit for bit
    jac = torch.einsum("qm,bmn->bqn", model.out.weight, JL)
    if model.output == "sigmoid":
        p = torch.sigmoid(logits)
        return p, jac * (p * (1 - p))[:, :, None]
    return logits, jac


def _plain(t: torch.Tensor) -> bool:
    """Whether ``t`` is a plain tensor that no differentiation watches: no autograd recording,
    no torch.func transform wrapping it, no forward-mode dual.  Only then may results be written
    with ``out=`` and in place."""
    return (has_storage(t) and not (t.requires_grad and torch.is_grad_enabled())
            and torch.autograd.forward_ad.unpack_dual(t).tangent is None)


def singular_values(J: torch.Tensor) -> torch.Tensor:
    """Singular values (descending) of a batch of matrices (batch, a, b); a closed form for 2×2:

        σ_max = (√(‖J‖_F² + 2|det J|) + √(‖J‖_F² - 2|det J|)) / 2,   σ_min = |det J| / σ_max.
    """
    if J.shape[-2:] == (2, 2):
        a, b, c, d = J[..., 0, 0], J[..., 0, 1], J[..., 1, 0], J[..., 1, 1]  # contiguous when J is batch-last
        if not _plain(J):  # differentiable, and traceable by torch.func
            F2 = a * a + b * b + c * c + d * d
            det = (a * d - b * c).abs()
            smax = 0.5 * (torch.sqrt(F2 + 2 * det) + torch.sqrt((F2 - 2 * det).clamp_min(0)))
            return torch.stack([smax, torch.where(smax > 0, det / torch.where(smax > 0, smax, 1.0), 0.0)], -1)
        # few temporaries, updated in place: at grid sizes each new tensor costs more than its arithmetic
        F2 = (a * a).addcmul_(b, b).addcmul_(c, c).addcmul_(d, d)
        det = (a * d).addcmul_(b, c, value=-1).abs_()
        out = J.new_empty((2,) + J.shape[:-2])  # (2, …): contiguous rows, returned as a (…, 2) view
        smax, smin = out[0], out[1]
        torch.sub(F2, det, alpha=2, out=smin).clamp_min_(0).sqrt_()  # √(‖J‖² - 2|det|), then σ_min
        torch.add(F2, det, alpha=2, out=smax).sqrt_().add_(smin).mul_(0.5)
        # σ_min = |det| / σ_max; J = 0 gives 0 / tiny = 0 (|det| <= σ_max², so a clamped σ_max changes nothing
        # above the underflow threshold)
        torch.div(det, F2.copy_(smax).clamp_min_(torch.finfo(J.dtype).tiny), out=smin)
        return out.movedim(0, -1)
    return torch.linalg.svdvals(J)


def _slogdet_blocks(DF: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Cumulative sign and log|det| of DF_{k-1} ⋯ DF_0 from the per-step slogdets; index 0: (1, 0)."""
    sgn, lad = slogdet(DF)  # (S, batch)
    one = torch.ones_like(sgn[:1])
    return torch.cat([one, torch.cumprod(sgn, 0)]), torch.cat([torch.zeros_like(lad[:1]), torch.cumsum(lad, 0)])


# --- tracing --------------------------------------------------------------------------------------

def trace(model_or_field: ResNet | Field, x: torch.Tensor, *, refine: int = 1, method: str | None = None,
          t_span: tuple[float, float] | None = None, steps: int | None = None, eps: float = 1.0,
          delta: float | None = None, rtol: float | None = None, atol: float | None = None,
          layer_jacobians: bool = True, compile: Compile = False) -> Trace:
    """Trace a batch ``x`` (batch, n) through a ResNet or a vector field, with Jacobians.

    ResNet (``model_or_field`` an :class:`odenet.ResNet`): the variational recursion of the
    module docstring, refined by ``refine`` sub-steps per layer; BatchNorm is folded (eval mode
    required).  ``method`` must be None.  ``compile="native"`` runs the states and Jacobians in
    one C++ loop (:mod:`odenet.native`; within a few ulps of the default eager path, float32/float64
    on the CPU); ``compile=True`` runs the eager path.

    Field f(t, x) (any callable on (batch, d), piecewise fields integrated piece by piece):
    with a fixed method (``"euler"`` default, ``"heun"``, ``"midpoint"``, ``"rk4"``) the step maps
    Φ_k are differentiated per point with ``vmap(jacfwd(Φ_k))`` and J_{k+1} = DΦ_k J_k; with an
    adaptive or reference method (``"dopri5"``, ``"DOP853"``, ...) the variational equation
    J' = D_x f J, ℓ' = tr D_x f is integrated together with the state by :func:`solvers.solve`
    (``layer_jacobians`` is then None and ``trace_integral`` is filled).  ``t_span``, ``steps``,
    ``eps``, ``delta``, ``rtol``, ``atol`` are passed on as in :func:`solvers.solve`.
    """
    if isinstance(model_or_field, ResNet):
        if method is not None:
            raise ValueError(f"method applies to fields only (a ResNet is traced exactly); got method={method!r}")
        check_compile(compile, model_or_field.activation, model_or_field.field.weight)
        return _trace_resnet(model_or_field, x, refine, layer_jacobians, compile)
    if compile is not False:
        raise ValueError(f"compile applies to a ResNet only (a field is traced by torch.func or solvers.solve); "
                         f"got compile={compile!r}")
    if not callable(model_or_field):
        raise TypeError(f"model_or_field must be an odenet.ResNet or a callable field f(t, x); "
                        f"got {type(model_or_field).__name__}")
    if refine != 1:
        raise ValueError(f"refine applies to a ResNet only; for a field pass steps; got refine={refine!r}")
    method = "euler" if method is None else method
    if method not in solvers.METHODS:
        raise ValueError(f"method must be one of {sorted(solvers.METHODS)}; got {method!r}")
    check_state("x", x)
    if method in FIXED_METHODS:
        return _trace_field_fixed(model_or_field, x, method, t_span, steps, eps, delta, layer_jacobians)
    return _trace_variational(model_or_field, x, method, t_span, rtol, atol)


def _trace_resnet(model: ResNet, x, refine, keep_layer, compile) -> Trace:
    check_resnet_eval(model)
    check_inputs(model, x)
    check_positive_int("refine", refine)
    with torch.no_grad():
        h0, J0 = input_jacobian(model, x)
        square = model.width == model.n_in
        run = block_run(model, h0, J0, refine, record="all", layer_jacobians=keep_layer or not square,
                        compile=compile)
        states, cumulative, DF = run  # (S+1, batch, m), (S+1, batch, m, n), (S, batch, m, m)
        assert cumulative is not None  # tangents J0 given, tangents returned
        if square:
            sign, lad = slogdet(cumulative)
            logdet_of = "cumulative"
        else:
            assert DF is not None  # asked for above when not square
            sign, lad = _slogdet_blocks(DF)
            logdet_of = "blocks"
        outputs, jac = output_jacobian(model, states[-1], cumulative[-1])
        S = model.depth * refine
        t = TimeGrid(0.0, model.T, S, model.depth).nodes(device=x.device)
        return _trace_record(inputs=x, t=t, states=states, layer_jacobians=DF if keep_layer else None,
                             cumulative=cumulative, logabsdet=lad, sign=sign, logdet_of=logdet_of, jacobian=jac,
                             outputs=outputs, singular_values=singular_values(jac), nfev=S,
                             step_layer=torch.arange(S, device=x.device) // refine, trace_integral=None,
                             method="resnet")


def _pointwise(f):
    """f(t, x) on one point x of shape (d,), for fields written for batches."""
    return lambda t, x: f(t, x[None])[0]


def _field_grid(field, t_span, steps) -> tuple[solvers.TimeGrid, list]:
    grid = solvers.fixed_grid(field, t_span, steps)
    return grid, solvers.split_pieces(field, grid.t0, grid.t1)[1]


def _trace_field_fixed(field, x, method, t_span, steps, eps, delta, keep_layer) -> Trace:
    grid, pieces = _field_grid(field, t_span, steps)
    if method != "euler" and (eps != 1.0 or delta is not None):
        raise ValueError(f"eps and delta apply to method='euler' only; got method={method!r}")
    eps = check_nonnegative("eps", eps)
    delta = grid.h if delta is None else check_positive("delta", delta)
    stepper = solvers.GeneralisedEuler(eps, delta) if method == "euler" else FIXED_METHODS[method]
    step, stages = stepper.step, stepper.stages
    r = grid.steps_per_piece
    B, d = x.shape
    h, J = x, torch.eye(d, dtype=x.dtype, device=x.device).expand(B, d, d)
    hs, Js, DFs = [h], [J], []
    for k in range(grid.n):
        f1 = _pointwise(pieces[k // r])
        tk = grid.node(k)

        def phi(v, f1=f1, tk=tk):
            y = step(f1, tk, grid.h, v, None)
            return y, y

        DF, h = vmap(jacfwd(phi, has_aux=True))(h)
        J = DF @ J
        hs.append(h.detach())
        Js.append(J.detach())
        DFs.append(DF.detach())
    states, cumulative, DF = torch.stack(hs), torch.stack(Js), torch.stack(DFs)
    sign, lad = slogdet(cumulative)
    return _trace_record(inputs=x, t=grid.nodes(device=x.device), states=states, nfev=stages * grid.n,
                         layer_jacobians=DF if keep_layer else None, cumulative=cumulative, logabsdet=lad,
                         sign=sign, logdet_of="cumulative", jacobian=cumulative[-1], outputs=None,
                         singular_values=singular_values(cumulative[-1]),
                         step_layer=torch.arange(grid.n, device=x.device) * grid.pieces // grid.n,
                         trace_integral=None, method=method)


class _Variational:
    """g(t, (x, vec J, ℓ)) = (f(t, x), vec(D_x f J), tr D_x f): the variational equation."""

    def __init__(self, field, d: int):
        self.field, self.d = field, d
        if is_piecewise(field):
            self.pieces = field.pieces

    def piece(self, l: int):
        return _variational_rhs(self.field.piece(l), self.d)

    def __call__(self, t, z):
        return _variational_rhs(self.field, self.d)(t, z)


def _variational_rhs(f, d: int):
    f1 = _pointwise(f)

    def g(t, z):
        B = z.shape[0]
        x, J = z[:, :d], z[:, d:d + d * d].reshape(B, d, d)
        Df = vmap(jacrev(lambda v: f1(t, v)))(x)
        return torch.cat([f(t, x), (Df @ J).reshape(B, d * d),
                          torch.diagonal(Df, dim1=-2, dim2=-1).sum(-1, keepdim=True)], 1)

    return g


def _trace_variational(field, x, method, t_span, rtol, atol) -> Trace:
    B, d = x.shape
    z0 = torch.cat([x, torch.eye(d, dtype=x.dtype, device=x.device).reshape(1, d * d).expand(B, -1),
                    torch.zeros(B, 1, dtype=x.dtype, device=x.device)], 1)
    sol = solvers.solve(_Variational(field, d), z0, t_span, method=method, rtol=rtol, atol=atol)
    if not sol.success:
        raise RuntimeError(f"variational integration failed: {sol.message}")
    y = sol.y.to(x.dtype)
    states, cumulative = y[:, :, :d], y[:, :, d:d + d * d].reshape(len(y), B, d, d)
    sign, lad = slogdet(cumulative)
    return _trace_record(inputs=x, t=sol.t, states=states, layer_jacobians=None, cumulative=cumulative,
                         nfev=sol.nfev, n_rejected=sol.n_rejected,
                         logabsdet=lad, sign=sign, logdet_of="cumulative", jacobian=cumulative[-1], outputs=None,
                         singular_values=singular_values(cumulative[-1]),
                         step_layer=sol.step_piece, trace_integral=y[:, :, -1], method=method)


@dataclass
class LiouvilleCheck:
    """Liouville's formula at the end of a solve, per point (batch,):

    ``logabsdet`` = log|det Dφ_T(x)| from the integrated variational equation, ``trace_integral``
    = ∫_0^T tr D_x f(t, x(t)) dt, ``sign`` = sign det Dφ_T (+1 for a flow), ``gap`` = their difference.
    """

    logabsdet: torch.Tensor
    trace_integral: torch.Tensor
    sign: torch.Tensor
    gap: torch.Tensor


def liouville(field: ResNet | Field, x: torch.Tensor, t_span: tuple[float, float] | None = None, *,
              method: str = "DOP853", rtol: float | None = None, atol: float | None = None) -> LiouvilleCheck:
    """Check det Dφ_T(x) = exp(∫_0^T tr D_x f(t, x(t)) dt) by integrating the variational equation
    and the trace integral with the state (adaptive or reference ``method``).  A ResNet is replaced
    by its associated ODE started at h_0 = A(x)."""
    if isinstance(field, ResNet):
        check_resnet_eval(field, "field")
        check_inputs(field, x)
        x, field = field.embed(x).detach(), field.ode()
    if method in FIXED_METHODS:
        raise ValueError(f"method must be adaptive or reference for the variational equation; got {method!r}")
    tr = trace(field, x, method=method, t_span=t_span, rtol=rtol, atol=atol)
    assert tr.trace_integral is not None  # a variational trace integrates ℓ with the state
    return LiouvilleCheck(logabsdet=tr.logabsdet[-1], trace_integral=tr.trace_integral[-1], sign=tr.sign[-1],
                          gap=tr.logabsdet[-1] - tr.trace_integral[-1])


# --- crossings ------------------------------------------------------------------------------------

@dataclass
class Crossings:
    """Where trajectories cross (a flow never does; large ResNet steps can).

    Attributes
    ----------
    order_change_step : int
        1D states (m = 1) only: first step k at which the order of h_k over the sorted inputs
        differs from the order of h_0; -1 if never (or m > 1).
    order_change_pairs : (P, 2) int64
        Indices (into the batch) of neighbouring inputs whose states swap order at that step.
    det_sign_change : (batch,) int64
        Per trajectory, the first step k ≥ 1 with sign det J_k ≠ sign det J_{k-1} (a fold of
        DF_{k-1}); -1 if none.
    close_step : int
        First step k ≥ 1 at which two inputs at least ``min_separation`` apart have states within
        ``tol`` of each other; -1 if never.
    close_pairs : (P, 2) int64, close_distance : (P,)
        Those pairs and their state distance at ``close_step``.
    """

    order_change_step: int
    order_change_pairs: torch.Tensor
    det_sign_change: torch.Tensor
    close_step: int
    close_pairs: torch.Tensor
    close_distance: torch.Tensor


def crossings(tr: Trace, *, tol: float = 1e-6, min_separation: float | None = None) -> Crossings:
    """Trajectory crossings of a :class:`Trace` (see :class:`Crossings`).

    ``min_separation`` (default 10 ``tol``) is the input distance |x_i - x_j| above which two
    inputs count as distinct.  The pairwise distances cost batch² per step: use a modest batch.
    """
    if not isinstance(tr, Trace):
        raise TypeError(f"tr must be an analysis.Trace; got {type(tr).__name__}")
    tol = check_positive("tol", tol)
    min_separation = 10 * tol if min_separation is None else check_positive("min_separation", min_separation)
    x, states = tr.inputs, tr.states
    empty = torch.zeros(0, 2, dtype=torch.int64, device=x.device)
    order_step, order_pairs = -1, empty
    if states.shape[-1] == 1 and x.shape[1] == 1:
        perm = torch.argsort(x[:, 0])
        diffs = torch.diff(states[:, perm, 0], dim=1)  # (S+1, batch-1)
        flipped = torch.sign(diffs) != torch.sign(diffs[:1])
        bad = flipped.any(1).nonzero()
        if len(bad):
            order_step = int(bad[0])
            idx = flipped[order_step].nonzero()[:, 0]
            order_pairs = torch.stack([perm[idx], perm[idx + 1]], 1)
    s = tr.sign
    change = (s[1:] != s[:-1])
    first = torch.where(change.any(0), change.int().argmax(0) + 1, torch.full_like(change[0], -1, dtype=torch.int64))
    dx = torch.cdist(x, x)
    distinct = torch.triu(dx >= min_separation, diagonal=1)
    close_step, close_pairs, close_dist = -1, empty, x.new_zeros(0)
    for k in range(1, states.shape[0]):
        dh = torch.cdist(states[k], states[k])
        hit = distinct & (dh <= tol)
        if hit.any():
            close_step, close_pairs = k, hit.nonzero()
            close_dist = dh[hit]
            break
    return Crossings(order_change_step=order_step, order_change_pairs=order_pairs, det_sign_change=first.long(),
                     close_step=close_step, close_pairs=close_pairs, close_distance=close_dist)


def trace_memory(model: ResNet, points: int) -> int:
    """Estimated peak bytes of :func:`trace` of ``model`` at ``points`` inputs, to check before
    tracing a large grid.  With S = depth steps, width m and n inputs, per point: the states (S+1) m
    and the cumulative Jacobians (S+1) m n, each built as a list and then stacked (twice), the layer
    Jacobians S m² (twice) and a slogdet workspace of the cumulative ones, plus 6 float64 of the grid
    itself: points · ((2 (S+1) m + 3 (S+1) m n + 2 S m²) · itemsize + 48)."""
    S, m, n = model.depth, model.width, model.n_in
    itemsize = next(model.parameters()).element_size()
    per_point = 2 * (S + 1) * m + 3 * (S + 1) * m * n + 2 * S * m * m
    return points * (per_point * itemsize + 6 * 8)


# --- storage: the HDF5 schemas of this module's records, registered on import (docs/hdf5-format.md) ---
def _trace_schema() -> Schema:

    def build(v: dict):
        # a Trace is a Solution; files written before it was carry no statistics: one
        # evaluation per recorded step, success (a trace that failed raised instead of being saved)
        if v.get("nfev") is None:
            S = v["y"].shape[0] - 1
            v.update(n_steps=S, n_accepted=S, nfev=S, njev=0, n_rejected=0, status=0, message="")
        return Trace(**v)

    return Schema(
        "Trace", Trace,
        fields=(
            Array("inputs", ("sample", "input"), doc="inputs x"),
            Array("t", ("step",), coord=True, doc="time of each recorded state"),
            Array("y", ("step", "sample", "state"), doc="h_k, h_0 = A(x)", key="states"),
            Array("layer_jacobians", ("interval", "sample", "state", "state_from"), doc="DF_k = dh_{k+1}/dh_k"),
            Array("cumulative", ("step", "sample", "state", "input"), doc="J_k = dh_k/dx"),
            Array("logabsdet", ("step", "sample"), doc="log|det| (see logdet_of)"),
            Array("sign", ("step", "sample"), doc="sign of det (0: singular)"),
            Attr("logdet_of", str),
            Array("jacobian", ("sample", "output", "input"), doc="input-output Jacobian"),
            Array("outputs", ("sample", "output"), doc="Phi(x)"),
            Array("singular_values", ("sample", "singular"), doc="singular values of the Jacobian, descending"),
            Array("step_piece", ("interval",), doc="layer of each step", key="step_layer"),
            Array("trace_integral", ("step", "sample"), doc="int_0^t tr D_x f dt (variational traces)"),
            Attr("method", str),
            Attr("n_steps", int), Attr("nfev", int), Attr("njev", int), Attr("n_accepted", int),
            Attr("n_rejected", int), Attr("status", int), Attr("message", str),
            Attr("success", bool, derived=True),
        ),
        build=build,
        doc="Trace: a Solution (trajectories, solver statistics) with per-layer and cumulative Jacobians",
        dtype_of="y",
    )


def _liouville_schema() -> Schema:
    return Schema("LiouvilleCheck", LiouvilleCheck, fields=(
        Array("logabsdet", ("sample",), doc="log|det D phi_T| from the variational equation"),
        Array("trace_integral", ("sample",), doc="int_0^T tr D_x f dt"),
        Array("sign", ("sample",), doc="sign of det D phi_T (+1 for a flow)"),
        Array("gap", ("sample",), doc="logabsdet - trace_integral"),
    ), doc="Liouville's formula checked per point", dtype_of="logabsdet")


def _crossings_schema() -> Schema:
    return Schema("Crossings", Crossings, fields=(
        Attr("order_change_step", int),
        Array("order_change_pairs", ("order_pair", "pair_member"), doc="neighbouring inputs whose states swap order"),
        Array("det_sign_change", ("sample",), doc="first step at which sign det J_k changes (-1: never)"),
        Attr("close_step", int),
        Array("close_pairs", ("close_pair", "pair_member"), doc="distant inputs whose states come close"),
        Array("close_distance", ("close_pair",), doc="state distance of a close pair at close_step"),
    ), doc="where trajectories cross", dtype_of="close_distance")


register(_trace_schema())
register(_liouville_schema())
register(_crossings_schema())
