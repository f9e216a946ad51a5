"""Adaptive embedded Runge-Kutta methods through torchdiffeq.

A piecewise field is integrated in one of three ways (``boundaries``):

- ``"carry"`` (default): one piece at a time, restarting the solver at each boundary so that no
  step straddles a jump of the field (torchdiffeq's ``step_t`` makes the last step of a piece
  land on the boundary exactly), and starting each piece with the step size the controller last
  proposed in the piece before (no fresh two-evaluation initial-step search per piece);
- ``"restart"``: the same with a fresh initial-step search in every piece;
- ``"jump"``: one solve over the whole span with torchdiffeq's ``jump_t`` at the interior
  boundaries (steps are clipped to land on them and the field is re-evaluated on the far side).
  Caveat, measured with torchdiffeq 0.2.5: it advances to the next jump only when it clips a step
  onto one, so after a step that happens to end on a jump it steps over all later jumps (fewer
  evaluations, much larger errors than rtol; see scripts/bench_solvers.py --adaptive).

Every accepted step is recorded through torchdiffeq's ``callback_accept_step`` hook, rejected
steps are counted through ``callback_reject_step``, and proposals are seen by ``callback_step``.
"""
from __future__ import annotations

from typing import Any

import torch
import torchdiffeq

from .grid import TimeGrid
from .validation import all_finite

ADAPTIVE_METHODS = ("dopri5", "dopri8", "bosh3", "fehlberg2", "adaptive_heun")
BOUNDARIES = ("carry", "restart", "jump")


class _Recorder:
    """Wraps one smooth piece for torchdiffeq: counts evaluations and records accepted steps."""

    def __init__(self, f, record: bool):
        self.f = f
        self.record = record
        self.nfev = 0
        self.accepted: list[tuple[float, torch.Tensor]] = []
        self.n_accepted = 0
        self.n_rejected = 0
        self.proposed: float | None = None  # the last step size proposed by the controller

    def __call__(self, t, x):
        self.nfev += 1
        return self.f(t, x)

    def callback_step(self, t0, y0, dt):
        self.proposed = float(dt.detach())

    def callback_accept_step(self, t0, y0, dt):
        self.n_accepted += 1
        if self.record:
            self.accepted.append((float(t0.detach()), y0.detach().clone()))

    def callback_reject_step(self, t0, y0, dt):
        self.n_rejected += 1


def integrate_adaptive(method: str, pieces: list, grid: TimeGrid, x0: torch.Tensor, rtol: float,
                       atol: float, record_all: bool, max_steps: int | None, first_step: float | None,
                       boundaries: str = "carry") -> tuple[list[float], list[torch.Tensor], list[int], dict[str, Any],
                                                        str | None]:
    """Integrate piece by piece (or, with ``boundaries="jump"``, over the whole span at once).
    Returns (t list, y list, step_piece list, stats dict, error).

    On failure the states up to the last completed piece boundary are returned (with
    ``record_all=False``: x0 and the state at that boundary).
    """
    if boundaries == "jump" and grid.pieces > 1:
        return _integrate_jump(method, pieces, grid, x0, rtol, atol, record_all, max_steps, first_step)
    times, states, step_piece = [grid.t0], [x0], []
    stats = dict(nfev=0, n_accepted=0, n_rejected=0)
    x, t_x, error, carried = x0, grid.t0, None, None
    for l, f in enumerate(pieces):
        a, b = grid.boundary(l), grid.boundary(l + 1)
        rec = _Recorder(f, record_all)
        options: dict[str, Any] = {"step_t": torch.tensor([b], dtype=torch.float64)}
        if max_steps is not None:
            options["max_num_steps"] = max_steps
        if first_step is not None:
            options["first_step"] = first_step
        # the step the controller proposed last in the piece before; one longer than the piece is
        # capped just past it, so that step_t clips it onto b exactly (a cap at b - a itself can
        # fall an ulp short of b and cost a sliver step)
        if boundaries == "carry" and l > 0 and carried is not None:
            options["first_step"] = carried if carried < b - a else 1.001 * (b - a)
        t = torch.tensor([a, b], dtype=torch.float64, device=x.device)
        try:
            x_end = torchdiffeq.odeint(rec, x, t, rtol=rtol, atol=atol, method=method, options=options)[-1]
        except (AssertionError, RuntimeError) as exc:  # torchdiffeq signals dt underflow and step limits by assert
            error = f"integration failed in piece {l} (t in [{a}, {b}]): {exc}"
        for key in stats:
            stats[key] += getattr(rec, key)
        carried = rec.proposed
        if error:
            break
        if record_all:
            # accepted[i] is the start of step i; its end is the next start, or b for the last.
            for t_start, _ in rec.accepted[1:]:
                times.append(t_start)
            states.extend(y for _, y in rec.accepted[1:])
            step_piece.extend([l] * rec.n_accepted)
            times.append(b)
            states.append(x_end)
        x, t_x = x_end, b
        if not all_finite(x):
            error = f"non-finite state at the end of piece {l} (t={b})"
            break
    if not record_all:
        times, states = [grid.t0, t_x], [x0, x]
    return times, states, step_piece, stats, error


def _integrate_jump(method, pieces, grid: TimeGrid, x0, rtol, atol, record_all, max_steps, first_step):
    """One torchdiffeq solve over [t0, t1] with ``jump_t`` at the interior piece boundaries."""
    def field(t, x):  # torchdiffeq may evaluate past t1 (its last step overshoots, then interpolates)
        tf = min(max(float(t), grid.t0), grid.t1)
        return pieces[grid.piece_of_time(tf)](t, x)

    rec = _Recorder(field, record_all)
    options = {"jump_t": torch.tensor([grid.boundary(l) for l in range(1, grid.pieces)], dtype=torch.float64)}
    if max_steps is not None:
        options["max_num_steps"] = max_steps * grid.pieces
    if first_step is not None:
        options["first_step"] = first_step
    t = torch.tensor([grid.t0, grid.t1], dtype=torch.float64, device=x0.device)
    error, x_end = None, x0
    try:
        x_end = torchdiffeq.odeint(rec, x0, t, rtol=rtol, atol=atol, method=method, options=options)[-1]
    except (AssertionError, RuntimeError) as exc:
        error = f"integration failed (jump_t path): {exc}"
    stats = dict(nfev=rec.nfev, n_accepted=rec.n_accepted, n_rejected=rec.n_rejected)
    if error is None and not all_finite(x_end):
        error = f"non-finite state at t={grid.t1}"
    if error is not None or not record_all:
        # torchdiffeq gives no state on failure: only x0 is known
        return ([grid.t0], [x0], [], stats, error) if error else ([grid.t0, grid.t1], [x0, x_end], [], stats, None)
    times = [grid.t0] + [t0 for t0, _ in rec.accepted[1:]] + [grid.t1]
    states = [x0] + [y for _, y in rec.accepted[1:]] + [x_end]
    step_piece = [grid.piece_of_time(t0) for t0, _ in rec.accepted]
    return times, states, step_piece, stats, None
