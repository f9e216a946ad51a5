"""One entry point over all methods: :func:`solve`."""
from __future__ import annotations

import torch

from ._validate import check_choice, check_positive, check_positive_int, check_real, check_state, check_nonnegative
from .adaptive import ADAPTIVE_METHODS, integrate_adaptive
from .fields import is_piecewise, split_pieces
from .fixed import FIXED_METHODS, integrate_fixed
from .grid import TimeGrid
from .reference import REFERENCE_METHODS, integrate_reference
from .solution import FAILED, SUCCESS, Solution

METHODS = tuple(FIXED_METHODS) + ADAPTIVE_METHODS + tuple(REFERENCE_METHODS)


def solve(field, x0: torch.Tensor, t_span: tuple[float, float] | None = None, *, method: str = "euler",
          steps: int | None = None, eps: float = 1.0, delta: float | None = None,
          rtol: float | None = None, atol: float | None = None, record: str = "all",
          max_steps: int | None = None, first_step: float | None = None) -> Solution:
    """Integrate x' = f(t, x) from x(t0) = x0 over ``t_span = (t0, t1)``.

    Parameters
    ----------
    field : callable f(t, x) -> Tensor of shape (batch, d)
        The vector field.  A piecewise field (``field.pieces``, ``field.piece(l)``; see
        :mod:`solvers.fields`) is integrated one piece at a time: fixed steps never straddle a
        boundary, adaptive solvers restart at each boundary.
    x0 : Tensor, shape (batch, d)
        Initial states, float32 or float64, finite.
    t_span : (t0, t1), optional
        Defaults to the span of a piecewise field.
    method : str
        Fixed steps: ``"euler"``, ``"heun"``, ``"midpoint"``, ``"rk4"``.  Adaptive (torchdiffeq):
        ``"dopri5"``, ``"dopri8"``, ``"bosh3"``, ``"fehlberg2"``, ``"adaptive_heun"``.  Float64
        reference (scipy.integrate.solve_ivp): ``"DOP853"``, ``"RK45"``, ``"Radau"``, ``"LSODA"``,
        ``"BDF"``.
    steps : int, optional
        Number of fixed steps, h = (t1 - t0) / steps.  For a piecewise field with L pieces it must
        be a multiple of L (default L: one step per piece).
    eps, delta : float
        Skip and residual weights of the generalised Euler step
        x_{k+1} = eps x_k + delta f(t_k, x_k); defaults eps = 1, delta = h (plain Euler).
        Only for ``method="euler"``.
    rtol, atol : float
        Tolerances of adaptive and reference methods; defaults 1e-7 / 1e-9 (torchdiffeq) and
        1e-12 / 1e-12 (reference).
    record : ``"all"`` or ``"end"``
        Keep every step (default) or only the two end points.
    max_steps, first_step :
        Limit on steps per piece and initial step for the adaptive methods.

    Returns
    -------
    Solution
        ``t`` (steps + 1,), ``y`` (steps + 1, batch, d) and the solver statistics.  A non-finite
        state ends the integration with ``status = -1`` and a message naming the step; the
        states up to the last finite one are kept.
    """
    check_choice("method", method, METHODS)
    check_choice("record", record, ("all", "end"))
    check_state("x0", x0)
    if t_span is None:
        if not is_piecewise(field):
            raise ValueError("t_span is required for a field that is not piecewise; got t_span=None")
        t_span = (field.pieces.t0, field.pieces.t1)
    if not (isinstance(t_span, (tuple, list)) and len(t_span) == 2):
        raise ValueError(f"t_span must be a pair (t0, t1); got {t_span!r}")
    t0, t1 = check_real("t_span[0]", t_span[0]), check_real("t_span[1]", t_span[1])
    if not t1 > t0:
        raise ValueError(f"t_span must satisfy t1 > t0; got t_span={tuple(t_span)!r}")
    if not callable(field):
        raise TypeError(f"field must be callable f(t, x); got {type(field).__name__}")
    record_all = record == "all"
    piece_grid, pieces = split_pieces(field, t0, t1)
    L = piece_grid.pieces

    if method != "euler" and (eps != 1.0 or delta is not None):
        raise ValueError(f"eps and delta apply to method='euler' only; got method={method!r}, eps={eps!r}, delta={delta!r}")

    if method in FIXED_METHODS:
        if steps is None:
            if not is_piecewise(field):
                raise ValueError("steps is required for fixed-step methods on a field that is not piecewise")
            steps = L
        check_positive_int("steps", steps)
        if steps % L:
            raise ValueError(f"steps must be a multiple of the field's {L} pieces; got steps={steps}")
        grid = TimeGrid(t0, t1, steps, L)
        eps = check_nonnegative("eps", eps)
        delta = grid.h if delta is None else check_positive("delta", delta)
        fm = FIXED_METHODS[method]
        y, done, failed_at = integrate_fixed(fm, pieces, grid, x0, eps, delta, record_all)
        if not record_all:
            y = torch.stack([x0, y])
        if failed_at is not None and not record_all:
            # locate the first non-finite step exactly (rare path: rerun and record)
            y_all, _, failed_at = integrate_fixed(fm, pieces, grid, x0, eps, delta, True)
            y = torch.stack([x0, y_all[failed_at - 1]])
        n_steps = done if failed_at is None else failed_at - 1
        if record_all:
            if failed_at is not None:
                y = y[:failed_at]
            t = grid.nodes(device=x0.device)[: len(y)]
        else:
            t = torch.tensor([t0, grid.node(n_steps)], dtype=torch.float64, device=x0.device)
        step_piece = torch.arange(n_steps, device=x0.device) * L // steps if record_all else None
        status, message = SUCCESS, "The solver successfully reached the end of the integration interval."
        if failed_at is not None:
            status = FAILED
            message = f"non-finite state at step {failed_at} (t={grid.node(failed_at)}); kept the {failed_at} states before it"
        return Solution(t=t, y=y, nfev=fm.stages * done, n_steps=n_steps, n_accepted=n_steps, n_rejected=0,
                        status=status, message=message, method=method, step_piece=step_piece)

    if steps is not None:
        raise ValueError(f"steps applies to fixed-step methods only; got steps={steps!r} with method={method!r}")
    if method in ADAPTIVE_METHODS:
        rtol = 1e-7 if rtol is None else check_positive("rtol", rtol)
        atol = 1e-9 if atol is None else check_positive("atol", atol)
        if max_steps is not None:
            check_positive_int("max_steps", max_steps)
        times, states, step_piece, stats, error = integrate_adaptive(
            method, pieces, piece_grid, x0, rtol, atol, record_all, max_steps, first_step)
        y = torch.stack(states)
    else:
        rtol = 1e-12 if rtol is None else check_positive("rtol", rtol)
        atol = 1e-12 if atol is None else check_positive("atol", atol)
        times, y, step_piece, stats, error = integrate_reference(method, pieces, piece_grid, x0, rtol, atol, record_all)
    t = torch.tensor(times, dtype=torch.float64, device=x0.device)
    n = stats["n_accepted"]
    status = SUCCESS if error is None else FAILED
    message = "The solver successfully reached the end of the integration interval." if error is None else error
    return Solution(t=t, y=y, nfev=stats["nfev"], n_steps=n + (stats["n_rejected"] or 0),
                    n_accepted=n, n_rejected=stats["n_rejected"], status=status, message=message, method=method,
                    step_piece=torch.tensor(step_piece, dtype=torch.int64) if record_all else None)
