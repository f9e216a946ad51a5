"""The one generalised-Euler kernel of the layer field (docs/theory.md §1–2):

    h_{k+1} = ε h_k + δ σ(N_l(W_l h_k + b_l)),       l = k // r   (r sub-steps per layer)
    J_{k+1} = DF_k J_k,   DF_k = ε I + δ diag(σ'(W_l h_k + b_l)) W_l     (optional tangents)

with an optional leading member axis (K models at once: W (K, L, m, m), h (K, B, m)) and an
optional per-layer normalisation N_l (BatchNorm; not with tangents, where it is folded into
W_l, b_l).  Every caller runs its blocks here: ``ResNet.forward``/``blocks``/``states``,
``solvers.solve(method="euler")`` on a :class:`~odenet.fields.LayerField`, the ensemble's
batched pass, ``analysis.trace``, ``analysis.jacobian_map`` and the forward residual of
``analysis.invert``.  So "the forward pass is the Euler solve" holds by construction.

Layout: the states are kept batch-last, (m, B), so that each step is one GEMM W_l (m×m) @ h
(m×B) with the bias broadcast along the contiguous batch axis (a tall, narrow (B×m)(m×m) GEMM
was 18× slower at B = 65536, m = 2 on the development machine), and the tangents (m, n, B) are
one GEMM W_l @ J as well.  Results are returned as (…, B, m) views of that storage.

Two paths run the *same* sequence of ATen operations, so they give the same bits:

- tight (nothing records gradients, plain tensors): every result goes into a preallocated
  buffer (``out=``), σ is applied in place, the update is one fused axpy, and the loop body is
  the only Python frame per step;
- functional (autograd records, or a torch.func transform wraps the inputs — detected with
  :func:`solvers.methods.has_storage`): the same operations without ``out=``.

Non-finite values are absorbing (ε·inf is inf or nan), so callers check finiteness once at
the end.
"""
from __future__ import annotations

from typing import Callable, Literal, NamedTuple, Sequence, Union

import torch

from solvers.methods import has_storage
from solvers.validation import check_compile_mode

from .activations import Activation
from .native import check_native, native_tangent_loop, run_euler_loop
from .scripted import check_scriptable, scripted_euler_loop

#: the ``compile=`` argument: False (eager), True (TorchScript), "native" (the C++ loop)
Compile = Union[bool, Literal["native"]]


_ONES: dict = {}


def _one(like: torch.Tensor) -> torch.Tensor:
    """A 0-dim 1 of ``like``'s dtype and device, made once."""
    key = (like.dtype, like.device)
    if key not in _ONES:
        _ONES[key] = torch.ones((), dtype=like.dtype, device=like.device)
    return _ONES[key]


class EulerRun(NamedTuple):
    """What :func:`generalised_euler` returns (S = stop - start steps, batch shape (…, B)).

    states : (S + 1, …, B, m) for ``record="all"``, else the last state (…, B, m)
    tangents : (S + 1, B, m, n) or the last (B, m, n); None without tangents
    layer_jacobians : (S, B, m, m) DF_k, or None
    """

    states: torch.Tensor
    tangents: torch.Tensor | None
    layer_jacobians: torch.Tensor | None


def layer_operands(weight: torch.Tensor, bias: torch.Tensor) -> tuple[tuple, tuple]:
    """Per-layer views (W_l, b_l as a column) of weight (…, L, m, m) and bias (…, L, m): one
    ``unbind`` each.  Views, not copies, so they stay right after any in-place write to the
    parameters (through ``.data`` too); callers may cache them per parameter object."""
    return weight.unbind(-3), bias.unsqueeze(-1).unbind(-3)


def activation_and_derivative(act: Activation, z: torch.Tensor,
                              ds_out: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """σ(z) (in place in z where σ allows) and σ'(z); tanh shares one evaluation, σ' = 1 - σ²."""
    if act.name == "tanh":
        s = z.tanh_()
        return s, torch.addcmul(_one(s), s, s, value=-1, out=ds_out)  # 1 - s² in one kernel
    ds = act.derivative(z)  # before σ overwrites z
    return act.apply_(z), ds


def check_compile(compile: object, activation: Activation, like: torch.Tensor | None = None) -> Compile:
    """Validate a ``compile=`` argument: False, True (the loop in TorchScript, with an activation
    it runs, see :mod:`odenet.scripted`) or ``"native"`` (the loop in C++, :mod:`odenet.native`,
    with tanh, relu, softplus or identity, and ``like``'s dtype and device if given: float32 or
    float64 on the CPU); TypeError for another type, ValueError for another string or an
    activation, dtype or device the chosen loop does not run."""
    mode = check_compile_mode(compile)
    if mode == "native":
        check_native(activation, None if like is None else like.dtype, None if like is None else like.device)
        return "native"
    if mode:
        check_scriptable(activation)
    return bool(mode)


def generalised_euler(weight: torch.Tensor, bias: torch.Tensor, activation: Activation, x0: torch.Tensor,
                      eps: float, delta: float, *, refine: int = 1, start: int = 0, stop: int | None = None,
                      norm: Callable[[torch.Tensor, int], torch.Tensor] | None = None,
                      tangent: torch.Tensor | None = None, record: str = "end", layer_jacobians: bool = False,
                      layers: tuple[tuple, tuple] | None = None, compile: Compile = False) -> EulerRun:
    """Steps k = start … stop-1 (of L·refine) of the iteration in the module docstring.

    weight (L, m, m) with x0 (B, m), or with a member axis weight (K, L, m, m), bias (K, L, m),
    x0 (K, B, m).  ``norm(z, l)`` maps pre-activations (…, B, m) of layer l.  ``tangent`` J_0
    (B, m, n) switches on J_{k+1} = DF_k J_k (no member axis, no norm, no autograd: it runs
    under ``torch.no_grad``); ``layer_jacobians`` also keeps every DF_k.  ``record`` is
    ``"all"`` (every state, tangent) or ``"end"``.  ``layers``: :func:`layer_operands` of
    weight and bias, if the caller caches them.  ``compile=True`` runs the tight path's loop
    in TorchScript (:mod:`odenet.scripted`: no Python frame per step, the same bits); where the
    kernel takes another path (autograd records, a torch.func transform, ``norm``, tangents)
    it runs that path eagerly, which gives the same bits too.  ``compile="native"`` runs the
    tight path's loop in C++ instead (:mod:`odenet.native`: float32/float64 on the CPU only,
    ValueError otherwise; within a few ulps per step of the eager path, not bitwise), tangents
    included (one fused loop over cache-sized chunks of the batch); it falls back to the eager
    path where gradients are recorded, a transform wraps the inputs and with ``norm``.
    ``compile`` is checked (:func:`check_compile`), the other arguments are not:
    callers validate.
    """
    check_compile(compile, activation, x0)
    stop = weight.shape[-3] * refine if stop is None else stop
    S = stop - start
    keep = record == "all"
    if tangent is not None:
        with torch.no_grad():
            if compile == "native" and has_storage(x0) and has_storage(weight):
                states, tangents, ds = native_tangent_loop(weight, bias, x0.mT, tangent.permute(1, 2, 0), eps, delta,
                                                           refine, start, S, activation.name, record, layer_jacobians)
                dfs = None if ds is None else _layer_jacobians(weight, ds, eps, delta, refine, start)
                return EulerRun(states.mT, tangents.permute(0, 3, 1, 2) if keep else tangents.permute(2, 0, 1), dfs)
            return _run(weight, bias, activation, x0, eps, delta, refine, start, S, None, tangent, keep,
                        layer_jacobians, layers, tight=True)
    records = torch.is_grad_enabled() and (x0.requires_grad or weight.requires_grad or bias.requires_grad
                                           or norm is not None)
    tight = not records and has_storage(x0) and has_storage(weight) and has_storage(bias)
    if compile == "native" and tight:
        if not x0.dtype == weight.dtype == bias.dtype:
            raise ValueError(f"compile='native' needs one dtype for x0, weight and bias; got {x0.dtype}, "
                             f"{weight.dtype}, {bias.dtype}")
        states = run_euler_loop(weight, bias, x0.mT, eps, delta, refine, start, S, activation.name, record)
        return EulerRun(states.mT, None, None)
    if compile and tight:
        Ws, bs = layer_operands(weight, bias) if layers is None else layers
        loop = scripted_euler_loop(activation.name, keep, x0.ndim == 3, eps == 1)
        states = loop(list(Ws), list(bs), x0.mT.contiguous(), float(eps), float(delta), refine, start, S)
        return EulerRun(states.mT, None, None)
    return _run(weight, bias, activation, x0, eps, delta, refine, start, S, norm, None, keep, False,
                layers if tight else None, tight)


def _step_jacobian(W: torch.Tensor, ds: torch.Tensor, eps: float, delta: float,
                   out: torch.Tensor | None = None) -> torch.Tensor:
    """DF = ε I + δ diag(σ') W, batch-last: W (…, m, m), σ' (…, m, B) -> (…, m, m, B); the one
    formula of both paths, so the same σ' gives the same bits."""
    df = torch.mul(W[..., :, :, None], ds[..., :, None, :], out=out).mul_(delta)
    df.diagonal(0, -3, -2).add_(eps)
    return df


def _layer_jacobians(weight: torch.Tensor, ds: torch.Tensor, eps: float, delta: float, refine: int,
                     start: int) -> torch.Tensor:
    """DF_k (S, B, m, m) from σ'_k (S, m, B) of steps start … start + S - 1 (:func:`_step_jacobian`)."""
    Wk = weight[torch.arange(start, start + ds.shape[0], device=weight.device) // refine]  # (S, m, m)
    return _step_jacobian(Wk, ds, eps, delta).permute(0, 3, 1, 2)


def _run(weight, bias, act, x0, eps, delta, refine, start, S, norm, J0, keep, keep_df, layers, tight) -> EulerRun:
    Ws, bs = layer_operands(weight, bias) if layers is None else layers
    steps = range(start, start + S)
    Wk = [Ws[k // refine] for k in steps]
    bk = [bs[k // refine] for k in steps]
    h = x0.mT.contiguous()  # (…, m, B)
    affine = torch.baddbmm if h.ndim == 3 else torch.addmm
    shape = h.shape
    apply_ = act.apply_
    if tight:
        hbuf = h.new_empty((S + 1 if keep else 2,) + shape)
        hbuf[0] = h
        hrows = hbuf.unbind(0)
        hnext = hrows[1:] if keep else [hrows[(i + 1) % 2] for i in range(S)]
        h = hrows[0]
        zbuf = h.new_empty(shape)
    else:
        hnext, zbuf = [None] * S, None
    states: list[torch.Tensor] = [h]  # the recorded states when there is no buffer
    J: torch.Tensor | None = None
    Jnext: Sequence[torch.Tensor] = ()
    dfs = ds_buf = None
    if J0 is not None:
        m, B, n = shape[0], shape[1], J0.shape[-1]
        Jbuf = J0.new_empty((S + 1 if keep else 2, m, n, B))
        Jbuf[0] = J0.permute(1, 2, 0)
        Jrows = Jbuf.unbind(0)
        Jnext = Jrows[1:] if keep else [Jrows[(i + 1) % 2] for i in range(S)]
        J = Jrows[0]
        ds_buf = h.new_empty(shape)
        WJ = J0.new_empty((m, n, B))  # scratch for W_l J_k
        if keep_df:
            dfbuf = J0.new_empty((S, m, m, B))
            dfs = dfbuf.unbind(0)
    for i, (W, b, out) in enumerate(zip(Wk, bk, hnext)):
        z = affine(b, W, h, out=zbuf)
        if norm is not None:
            z = norm(z.mT, (start + i) // refine).mT
        if J is None:
            s = apply_(z)
        else:
            s, ds = activation_and_derivative(act, z, ds_buf)
            Jn = Jnext[i]
            torch.mm(W, J.view(m, n * B), out=WJ.view(m, n * B))
            # J_{k+1} = ε J_k + δ diag(σ') W J_k: one fused addcmul (ε = 1), else a scaling first
            if eps == 1:
                torch.addcmul(J, WJ, ds[:, None, :], value=delta, out=Jn)
            else:
                torch.mul(J, eps, out=Jn).addcmul_(WJ, ds[:, None, :], value=delta)
            if dfs is not None:
                _step_jacobian(W, ds, eps, delta, out=dfs[i])
            J = Jn
        h = torch.add(h, s, alpha=delta, out=out) if eps == 1 else torch.mul(h, eps, out=out).add_(s, alpha=delta)
        if not tight and keep:
            states.append(h)
    if keep:
        result = (hbuf if tight else torch.stack(states)).mT
        tangents = None if J is None else Jbuf.permute(0, 3, 1, 2)
    else:
        result = h.mT
        tangents = None if J is None else J.permute(2, 0, 1)
    layer_dfs = dfbuf.permute(0, 3, 1, 2) if dfs is not None else None
    return EulerRun(result, tangents, layer_dfs)
