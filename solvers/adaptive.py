"""Adaptive embedded Runge-Kutta methods through torchdiffeq.

A piecewise field is integrated one piece at a time, restarting the solver at each boundary,
so that no step straddles a jump of the field; torchdiffeq's ``step_t`` option makes the last
step of every piece land on the boundary exactly.  Every accepted step is recorded through
torchdiffeq's ``callback_accept_step`` hook, and rejected steps are counted through
``callback_reject_step``.
"""
from __future__ import annotations

import torch
import torchdiffeq

from .grid import TimeGrid

ADAPTIVE_METHODS = ("dopri5", "dopri8", "bosh3", "fehlberg2", "adaptive_heun")


class _Recorder:
    """Wraps one smooth piece for torchdiffeq: counts evaluations and records accepted steps."""

    def __init__(self, f, record: bool):
        self.f = f
        self.record = record
        self.nfev = 0
        self.accepted: list[tuple[float, torch.Tensor]] = []
        self.n_accepted = 0
        self.n_rejected = 0

    def __call__(self, t, x):
        self.nfev += 1
        return self.f(t, x)

    def callback_accept_step(self, t0, y0, dt):
        self.n_accepted += 1
        if self.record:
            self.accepted.append((float(t0.detach()), y0.detach().clone()))

    def callback_reject_step(self, t0, y0, dt):
        self.n_rejected += 1


def integrate_adaptive(method: str, pieces: list, grid: TimeGrid, x0: torch.Tensor, rtol: float,
                       atol: float, record_all: bool, max_steps: int | None, first_step: float | None):
    """Integrate piece by piece.  Returns (t list, y list, step_piece list, stats dict, error).

    On failure the states up to the last completed piece boundary are returned (with
    ``record_all=False``: x0 and the state at that boundary).
    """
    times, states, step_piece = [grid.t0], [x0], []
    stats = dict(nfev=0, n_accepted=0, n_rejected=0)
    x, t_x, error = x0, grid.t0, None
    for l, f in enumerate(pieces):
        a, b = grid.boundary(l), grid.boundary(l + 1)
        rec = _Recorder(f, record_all)
        options = {"step_t": torch.tensor([b], dtype=torch.float64)}
        if max_steps is not None:
            options["max_num_steps"] = max_steps
        if first_step is not None:
            options["first_step"] = first_step
        t = torch.tensor([a, b], dtype=torch.float64, device=x.device)
        try:
            x_end = torchdiffeq.odeint(rec, x, t, rtol=rtol, atol=atol, method=method, options=options)[-1]
        except (AssertionError, RuntimeError) as exc:  # torchdiffeq signals dt underflow and step limits by assert
            error = f"integration failed in piece {l} (t in [{a}, {b}]): {exc}"
        for key in stats:
            stats[key] += getattr(rec, key)
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
        if not torch.isfinite(x).all():
            error = f"non-finite state at the end of piece {l} (t={b})"
            break
    if not record_all:
        times, states = [grid.t0, t_x], [x0, x]
    return times, states, step_piece, stats, error
