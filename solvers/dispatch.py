"""One entry point over all methods: :func:`solve`."""
from __future__ import annotations

from typing import Callable, Sequence

import torch

from .validation import (check_choice, check_compile_mode, check_memory, check_nonnegative, check_positive, check_positive_int, check_state)
from .adaptive import ADAPTIVE_METHODS, BOUNDARIES, integrate_adaptive
from .dense import ScipyDense, hermite_from_record
from .fields import all_pieces, field_span, fixed_grid, is_piecewise, split_pieces
from .fixed import has_euler_kernel, integrate_fixed
from .methods import FIXED_METHODS, ExplicitRK, GeneralisedEuler
from .grid import TimeGrid
from .reference import REFERENCE_METHODS, integrate_reference
from .solution import FAILED, SUCCESS, Solution

METHODS = tuple(FIXED_METHODS) + ADAPTIVE_METHODS + tuple(REFERENCE_METHODS)


def solve(field: Callable[..., torch.Tensor], x0: torch.Tensor, t_span: tuple[float, float] | None = None, *,
          t_eval: torch.Tensor | Sequence[float] | None = None, dense: bool = False, method: str | ExplicitRK | GeneralisedEuler = "euler",
          steps: int | None = None, eps: float = 1.0, delta: float | None = None,
          rtol: float | None = None, atol: float | None = None, record: str = "all",
          max_steps: int | None = None, first_step: float | None = None, boundaries: str = "carry",
          compile: bool | str = False) -> Solution:
    """Integrate x' = f(t, x) from x(t0) = x0 over ``t_span = (t0, t1)``.

    Parameters
    ----------
    field : callable f(t, x) -> Tensor of shape (batch, d)
        The vector field.  A piecewise field (``field.pieces``, ``field.piece(l)``; see
        :mod:`solvers.fields`) is integrated one piece at a time: fixed steps never straddle a
        boundary, adaptive solvers restart at each boundary.
    x0 : Tensor, shape (batch, d) or (d,)
        Initial states.  A 1-D ``x0`` (scipy's and torchdiffeq's common case) is solved as a
        batch of one (the field is called with shape (1, d)) and ``y`` comes back as (n_t, d).
        Initial states are finite, of dtype float32 or float64 (float16, bfloat16 and integer
        dtypes are refused: the error analysis this toolkit does needs at least single precision).
    t_span : (t0, t1), optional
        Defaults to the span of a piecewise field.
    t_eval : sequence or 1-D tensor of times, optional
        Sorted (non-decreasing) times in ``t_span`` at which to return the state, as scipy's
        ``t_eval`` and torchdiffeq's ``t``.  Fixed-step methods: every time must be a node
        t0 + k h of the step grid (to 1e-12 relative); any other time is a ValueError naming it
        and the grid, raised before any work when ``steps`` is given.  Adaptive and reference
        methods: adaptive (torchdiffeq) ones use the piecewise cubic Hermite interpolant of the
        accepted steps (:mod:`solvers.dense`, fourth order: error h^4/384 max|y^(4)| per step,
        plus the solver's own error), at two extra field evaluations per step, not counted in
        ``nfev``; reference (scipy) ones use scipy's own dense output (``dense_output=True``,
        of the method's interpolation order, e.g. 7 for DOP853).
        Needs ``record="all"``.
    dense : bool
        Also return ``Solution.sol``, the callable interpolant ``sol(t)`` over every recorded step
        (the same interpolant as above; for fixed-step methods the Hermite one).  Needs ``record="all"``.
    method : str or a fixed-step method object
        Fixed steps: ``"euler"``, ``"heun"``, ``"midpoint"``, ``"ralston"``, ``"ssprk3"``,
        ``"rk4"`` (the objects of :data:`solvers.FIXED_METHODS`), or a method object such as
        ``GeneralisedEuler(eps, delta)`` or an ``ExplicitRK`` tableau.  Adaptive (torchdiffeq):
        ``"dopri5"``, ``"dopri8"``, ``"bosh3"``, ``"fehlberg2"``, ``"adaptive_heun"``.  Float64
        reference (scipy.integrate.solve_ivp): ``"DOP853"``, ``"RK45"``, ``"Radau"``, ``"LSODA"``,
        ``"BDF"``: everything in float64, so the field must take float64 states.
    steps : int, optional
        Number of fixed steps, h = (t1 - t0) / steps.  For a piecewise field with L pieces it must
        be a multiple of L (default L: one step per piece).
    eps, delta : float
        Skip and residual weights of the generalised Euler step
        x_{k+1} = eps x_k + delta f(t_k, x_k); defaults eps = 1, delta = h (plain Euler).
        Only for ``method="euler"``: the same as ``method=GeneralisedEuler(eps, delta)``.
    rtol, atol : float
        Tolerances of adaptive and reference methods; defaults 1e-7 / 1e-9 (torchdiffeq) and
        1e-12 / 1e-12 (reference).
    record : ``"all"`` or ``"end"``
        Keep every step (default) or only the two end points.
    max_steps, first_step :
        Limit on steps per piece and initial step for the adaptive methods.
    boundaries : ``"carry"``, ``"restart"`` or ``"jump"``
        How adaptive methods cross the piece boundaries of a piecewise field: restart there,
        starting each piece with the step last proposed in the one before (default), restart with
        a fresh initial-step search, or one solve with torchdiffeq's ``jump_t`` (see
        :mod:`solvers.adaptive`).
    compile : False, True or ``"native"``
        Run the steps in the field's compiled kernel (``field.generalised_euler(...,
        compile=...)``; for a ResNet's layer field True is the loop in TorchScript, the same bits
        as eager (:mod:`odenet.scripted`), ``"native"`` the loop in C++, within a few ulps per
        step of eager (:mod:`odenet.native`)).  Only for ``method="euler"`` (or a ``GeneralisedEuler``)
        on a field with its own generalised-Euler kernel; ValueError otherwise.

    Returns
    -------
    Solution
        ``t`` (steps + 1,), ``y`` (steps + 1, batch, d) and the solver statistics; with ``t_eval``,
        ``t`` is ``t_eval`` and ``y`` (len(t_eval), batch, d), ``step_piece`` None.  If the
        integration failed, only the times of ``t_eval`` it reached are returned.  A non-finite
        state ends the integration with ``status = -1`` and a message naming the step; the
        states up to the last finite one are kept.
    """
    if not callable(field):
        raise TypeError(f"field must be callable f(t, x); got {type(field).__name__}")
    single = isinstance(x0, torch.Tensor) and x0.ndim == 1
    if single:
        x0 = x0.unsqueeze(0)
    if not isinstance(dense, bool):
        raise TypeError(f"dense must be a bool; got {type(dense).__name__}")
    want_t = t_eval is not None
    if (want_t or dense) and record != "all":
        raise ValueError(f"t_eval and dense=True need record='all'; got record={record!r}")
    fixed = isinstance(method, (ExplicitRK, GeneralisedEuler)) or (isinstance(method, str) and method in FIXED_METHODS)
    span = t_span
    if span is None and is_piecewise(field):
        span = (field.pieces.t0, field.pieces.t1)
    times = None if t_eval is None else _check_t_eval(t_eval, span)
    if times is not None:
        L = field.pieces.pieces if is_piecewise(field) else 1
        n = L if steps is None and is_piecewise(field) else steps
        if fixed and span is not None and isinstance(n, int) and n > 0 and n % L == 0:  # else _solve_record refuses
            _match_nodes(times, TimeGrid(float(span[0]), float(span[1]), n, L).nodes(device="cpu"))
    sol, scipy_pieces = _solve_record(field, x0, t_span, scipy_dense=dense or want_t, method=method, steps=steps,
                                      eps=eps, delta=delta, rtol=rtol, atol=atol, record=record, max_steps=max_steps,
                                      first_step=first_step, boundaries=boundaries,
                                      compile=compile)
    interp: Callable[[torch.Tensor], torch.Tensor] | None = None
    if dense or (want_t and not fixed):
        n = len(sol.t) - 1
        if is_piecewise(field):
            assert sol.step_piece is not None  # recorded for every record="all" solve
            pieces = all_pieces(field)
            step_fields = [pieces[int(l)] for l in sol.step_piece[:n]]
        else:
            step_fields = [field] * n
        interp = (ScipyDense(scipy_pieces, tuple(x0.shape), sol.y.dtype, sol.y.device)
                  if sol.method in REFERENCE_METHODS else hermite_from_record(sol.t, sol.y, step_fields))
        if dense:  # a 1-D solve's sol(t) drops the batch of one, like its y
            sol.sol = (lambda t, _i=interp: _i(t).select(-2, 0)) if single else interp
    if times is not None:
        kept = times if sol.success else times[times <= sol.t[-1].item()]
        if fixed:
            sol.y = sol.y[_match_nodes(kept, sol.t)]
        else:
            assert interp is not None  # built above for every adaptive or reference solve with t_eval
            sol.y = interp(kept)
        sol.t = kept.to(sol.t.device)
        sol.step_piece = None
    if single:
        sol.y = sol.y[:, 0]
    return sol


def _check_t_eval(t_eval, span) -> torch.Tensor:
    try:
        t = torch.as_tensor(t_eval, dtype=torch.float64).detach().cpu()
    except (TypeError, ValueError, RuntimeError):
        raise TypeError(f"t_eval must be a 1-D sequence or tensor of times; got {type(t_eval).__name__}") from None
    if t.ndim != 1 or t.numel() == 0 or not torch.isfinite(t).all():
        raise ValueError(f"t_eval must be a non-empty 1-D array of finite times; got {t_eval!r}")
    if (t[1:] < t[:-1]).any():
        raise ValueError(f"t_eval must be sorted (non-decreasing); got {t.tolist()}")
    if span is not None:
        lo, hi = float(span[0]), float(span[1])
        if t[0] < lo or t[-1] > hi:
            raise ValueError(f"t_eval must lie in t_span [{lo}, {hi}]; got times from {t[0].item()} to {t[-1].item()}")
    return t


def _match_nodes(t_eval: torch.Tensor, nodes: torch.Tensor) -> torch.Tensor:
    """Index of the node equal (to 1e-12 relative) to each requested time; ValueError otherwise."""
    nodes = nodes.detach().cpu().to(torch.float64)
    idx = torch.searchsorted(nodes, t_eval).clamp(max=len(nodes) - 1)
    below = (idx - 1).clamp(min=0)
    idx = torch.where((nodes[below] - t_eval).abs() < (nodes[idx] - t_eval).abs(), below, idx)
    tol = 1e-12 * max(1.0, nodes.abs().max().item())
    off = (nodes[idx] - t_eval).abs() > tol
    if off.any():
        bad = t_eval[off][0].item()
        h = (nodes[-1] - nodes[0]).item() / max(1, len(nodes) - 1)
        raise ValueError(f"t_eval time {bad!r} is not a node of the fixed-step grid t0 + k*h "
                         f"(t0={nodes[0].item()}, h={h}, {len(nodes)} nodes); use times on the grid, "
                         f"change steps, or use an adaptive method for interpolated output")
    return idx


def _solve_record(field, x0: torch.Tensor, t_span, *, scipy_dense: bool = False, method, steps, eps, delta, rtol, atol, record, max_steps,
                  first_step, boundaries, compile: bool | str = False) -> tuple[Solution, list]:
    """:func:`solve` on a batch, returning every recorded step (no t_eval, no dense output), and
    with ``scipy_dense`` scipy's dense output of each piece of a reference solve as (a, b, OdeSolution)."""
    # --- every check first: bad input costs nothing and touches nothing ---------------------
    if not callable(field):
        raise TypeError(f"field must be callable f(t, x); got {type(field).__name__}")
    method_obj = method if isinstance(method, (ExplicitRK, GeneralisedEuler)) else None
    if method_obj is not None:
        if eps != 1.0 or delta is not None:
            raise ValueError(f"eps and delta are set by the method object {method_obj!r}; got eps={eps!r}, "
                             f"delta={delta!r}")
        method = method_obj.name
    else:
        check_choice("method", method, METHODS)
    fixed = method_obj is not None or method in FIXED_METHODS
    compile = check_compile_mode(compile)
    euler = isinstance(method_obj, GeneralisedEuler) or (method_obj is None and method == "euler")
    if compile and not (euler and has_euler_kernel(field)):
        raise ValueError(f"compile={compile!r} needs method='euler' on a field with its own generalised-Euler kernel "
                         f"(a ResNet's LayerField); got method={method_obj or method!r} on {type(field).__name__}")
    check_choice("record", record, ("all", "end"))
    check_state("x0", x0)
    t0, t1 = field_span(field, t_span)
    if method != "euler" and method_obj is None and (eps != 1.0 or delta is not None):
        raise ValueError(f"eps and delta apply to method='euler' only; got method={method!r}, "
                         f"eps={eps!r}, delta={delta!r}")
    if fixed:
        grid = fixed_grid(field, (t0, t1), steps)
        steps = grid.n
        eps = check_nonnegative("eps", eps)
        if delta is not None:
            check_positive("delta", delta)
        if record == "all":  # the (steps + 1, batch, d) record, estimated before it is allocated
            check_memory((steps + 1) * x0.numel() * x0.element_size(),
                         f"solve with record='all' over steps={steps} for x0 of shape {tuple(x0.shape)}", x0.device)
    else:
        if steps is not None:
            raise ValueError(f"steps applies to fixed-step methods only; got steps={steps!r} with method={method!r}")
        default_rtol, default_atol = (1e-7, 1e-9) if method in ADAPTIVE_METHODS else (1e-12, 1e-12)
        rtol = default_rtol if rtol is None else check_positive("rtol", rtol)
        atol = default_atol if atol is None else check_positive("atol", atol)
        if max_steps is not None:
            check_positive_int("max_steps", max_steps)
        if first_step is not None:
            check_positive("first_step", first_step)
        check_choice("boundaries", boundaries, BOUNDARIES)
    record_all = record == "all"
    if fixed:
        if method_obj is None:
            method_obj = GeneralisedEuler(eps, delta) if method == "euler" else FIXED_METHODS[method]
        # a field with its own generalised-Euler kernel needs no list of pieces
        pieces = None if isinstance(method_obj, GeneralisedEuler) and has_euler_kernel(field) else \
            split_pieces(field, t0, t1)[1]
        return _solve_fixed(method_obj, field, pieces, grid, x0, record_all, compile), []
    piece_grid, pieces = split_pieces(field, t0, t1)

    if method in ADAPTIVE_METHODS:
        times, states, step_piece, stats, error = integrate_adaptive(
            method, pieces, piece_grid, x0, rtol, atol, record_all, max_steps, first_step, boundaries)
        y = torch.stack(states)
    else:
        times, y, step_piece, stats, error = integrate_reference(method, pieces, piece_grid, x0, rtol, atol, record_all,
                                                                     scipy_dense)
    t = torch.tensor(times, dtype=torch.float64, device=x0.device)
    n = stats["n_accepted"]
    status = SUCCESS if error is None else FAILED
    message = _REACHED if error is None else error
    solution = Solution(t=t, y=y, nfev=stats["nfev"], njev=stats.get("njev", 0),
                        n_steps=n + (stats["n_rejected"] or 0), n_accepted=n, n_rejected=stats["n_rejected"],
                        status=status, message=message, method=method,
                        step_piece=torch.tensor(step_piece, dtype=torch.int64) if record_all else None)
    solution.nlu = stats.get("nlu", 0)
    return solution, stats.get("dense", [])


_REACHED = "The solver successfully reached the end of the integration interval."


def _solve_fixed(fm, field, pieces, grid: TimeGrid, x0, record_all, compile: bool | str = False) -> Solution:
    y, done, failed_at = integrate_fixed(fm, pieces, grid, x0, record_all, field, compile)
    if failed_at is not None and not record_all:
        # rare path: rerun recording every state to name the first non-finite step exactly
        y, _, failed_at = integrate_fixed(fm, pieces, grid, x0, True, field, compile)
    if failed_at is None:
        n_steps, status, message = done, SUCCESS, _REACHED
    else:
        n_steps, status = failed_at - 1, FAILED
        message = (f"non-finite state at step {failed_at} (t={grid.node(failed_at)}); "
                   f"kept the {failed_at} states before it")
        y = y[:failed_at]
    if record_all:
        t = grid.nodes(device=x0.device)[: n_steps + 1]
        step_piece = torch.arange(n_steps, device=x0.device) * grid.pieces // grid.n
    else:
        t = torch.tensor([grid.t0, grid.node(n_steps)], dtype=torch.float64, device=x0.device)
        y = torch.stack([x0, y if failed_at is None else y[-1]])
        step_piece = None
    return Solution(t=t, y=y, nfev=fm.stages * done, n_steps=n_steps, n_accepted=n_steps, n_rejected=0,
                    status=status, message=message, method=fm.name, step_piece=step_piece)
