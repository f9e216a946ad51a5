"""Float64 reference solutions with scipy.integrate.solve_ivp (DOP853 by default).

The batch is flattened into one system of batch * d equations, integrated piece by piece
(restarting at every boundary of a piecewise field), in float64 whatever the input dtype.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
from scipy.integrate import solve_ivp

from .grid import TimeGrid

REFERENCE_METHODS = ("DOP853", "RK45", "Radau", "LSODA", "BDF")


def integrate_reference(method: str, pieces: list, grid: TimeGrid, x0: torch.Tensor, rtol: float,
                        atol: float, record_all: bool, dense: bool = False
                        ) -> tuple[list[float], torch.Tensor, list[int], dict[str, Any], str | None]:
    """Integrate piece by piece; with ``dense``, ``stats["dense"]`` holds scipy's dense output of
    each piece as (a, b, OdeSolution)."""
    shape = x0.shape
    _check_float64_field(pieces[0], grid.t0, x0)
    y = x0.detach().to(torch.float64).cpu().numpy().ravel()
    times, states, step_piece = [grid.t0], [y.copy()], []
    stats: dict[str, Any] = dict(nfev=0, njev=0, nlu=0, n_accepted=0, n_rejected=None, dense=[])
    error = None
    for l, f in enumerate(pieces):
        a, b = grid.boundary(l), grid.boundary(l + 1)

        def rhs(t, v, f=f):
            x = torch.from_numpy(v).view(shape).to(x0.device)  # the field's weights live there
            with torch.no_grad():
                return f(t, x).detach().to(torch.float64).cpu().numpy().ravel()

        sol = solve_ivp(rhs, (a, b), y, method=method, rtol=rtol, atol=atol, dense_output=dense)
        if dense and sol.sol is not None:
            stats["dense"].append((a, b, sol.sol))
        stats["nfev"] += int(sol.nfev)
        stats["njev"] += int(sol.njev)
        stats["nlu"] += int(sol.nlu)
        n = len(sol.t) - 1
        stats["n_accepted"] += n
        if record_all:
            times.extend(sol.t[1:-1].tolist() + [b])
            states.extend(sol.y[:, i] for i in range(1, n + 1))
            step_piece.extend([l] * n)
        y = sol.y[:, -1]
        error = None
        if sol.status < 0:
            error = f"scipy {method} failed in piece {l}: {sol.message}"
        elif not np.isfinite(y).all():
            error = f"non-finite state at the end of piece {l} (t={b})"
        if error:
            break
    if not record_all:  # the two end points: t1, or where a failed solve stopped
        times, states = [grid.t0, grid.t1 if error is None else float(sol.t[-1])], [states[0], y]
    ys = torch.from_numpy(np.stack(states)).view((len(states),) + tuple(shape))
    return times, ys, step_piece, stats, error


def _check_float64_field(f, t0: float, x0: torch.Tensor) -> None:
    """A reference evaluates the field in float64: refuse, before any work, a field that cannot
    take float64 states (a float32 model), rather than fail inside scipy."""
    try:
        with torch.no_grad():
            f(t0, x0.detach().to(torch.float64))
    except RuntimeError as exc:
        if "dtype" not in str(exc) and "Double" not in str(exc) and "Float" not in str(exc):
            raise
        raise ValueError("reference methods evaluate the field in float64, and this field does not take "
                         f"float64 states ({exc}); use a float64 model (model.double()) for a reference "
                         "solution, or an adaptive method such as 'dopri8'") from exc
