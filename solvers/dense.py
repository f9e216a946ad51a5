"""Dense output: the piecewise cubic Hermite interpolant of a recorded solution.

On a step [t_k, t_{k+1}] of length h with states y_k, y_{k+1} and slopes f_k = f(t_k, y_k),
f_{k+1} = f(t_{k+1}, y_{k+1}) (the smooth field of the step's piece, so a piecewise field's jumps
at piece boundaries are respected), with s = (t - t_k) / h:

    p(t) = h00(s) y_k + h h10(s) f_k + h01(s) y_{k+1} + h h11(s) f_{k+1},
    h00 = 2s^3 - 3s^2 + 1, h10 = s^3 - 2s^2 + s, h01 = -2s^3 + 3s^2, h11 = s^3 - s^2.

Order: with exact end values it interpolates a smooth solution with error at most
h^4 / 384 * max |y^(4)| on the step (fourth order); with a solver's states the error adds the
solver's own error at the step ends.  Building it costs one field evaluation per recorded state.
"""
from __future__ import annotations

import numpy as np
import torch


class HermiteInterpolant:
    """Callable ``sol(t)``: the state at time(s) ``t`` in [t[0], t[-1]].

    ``sol(t)`` with a float returns (batch, d); with a 1-D tensor or sequence of times, (n, batch, d).
    """

    def __init__(self, t: torch.Tensor, y: torch.Tensor, slopes_left: torch.Tensor, slopes_right: torch.Tensor):
        # t (n+1,), y (n+1, batch, d); slopes_left[k] = f at (t_k, y_k), slopes_right[k] = f at
        # (t_{k+1}, y_{k+1}), both from the field of step k's piece: shape (n, batch, d)
        self.t, self.y = t, y
        self.slopes_left, self.slopes_right = slopes_left, slopes_right

    @property
    def t_min(self) -> float:
        """First time of the record: sol(t) is defined on [t_min, t_max]."""
        return float(self.t[0])

    @property
    def t_max(self) -> float:
        """Last time of the record."""
        return float(self.t[-1])

    def __call__(self, t) -> torch.Tensor:
        scalar = not isinstance(t, (torch.Tensor, list, tuple)) or (isinstance(t, torch.Tensor) and t.ndim == 0)
        tq = torch.as_tensor(t, dtype=torch.float64).reshape(-1).to(self.t.device)
        if not torch.isfinite(tq).all() or (tq < self.t[0]).any() or (tq > self.t[-1]).any():
            raise ValueError(f"t must lie in [{self.t_min}, {self.t_max}]; got {t!r}")
        k = (torch.searchsorted(self.t, tq, right=True) - 1).clamp(0, len(self.t) - 2)
        h = self.t[k + 1] - self.t[k]
        s = ((tq - self.t[k]) / h).to(self.y.dtype)[:, None, None]
        hh = h.to(self.y.dtype)[:, None, None]
        s2, s3 = s * s, s * s * s
        out = ((2 * s3 - 3 * s2 + 1) * self.y[k] + hh * (s3 - 2 * s2 + s) * self.slopes_left[k]
               + (-2 * s3 + 3 * s2) * self.y[k + 1] + hh * (s3 - s2) * self.slopes_right[k])
        return out[0] if scalar else out


def hermite_from_record(t: torch.Tensor, y: torch.Tensor, step_fields: list) -> HermiteInterpolant:
    """The interpolant of a record ``t`` (n+1,), ``y`` (n+1, batch, d) whose step k was taken
    with the smooth field ``step_fields[k]``."""
    if len(t) < 2:
        raise ValueError(f"dense output needs at least one recorded step; got {len(t)} time(s)")
    left, right = [], []
    for k, f in enumerate(step_fields):
        left.append(f(t[k].item(), y[k]))
        right.append(f(t[k + 1].item(), y[k + 1]))
    return HermiteInterpolant(t, y, torch.stack(left).to(y.dtype), torch.stack(right).to(y.dtype))


class ScipyDense:
    """Callable ``sol(t)`` over scipy's dense output of each piece, ``pieces = [(a, b, OdeSolution)]``,
    reshaped to the batch ``shape`` (batch, d); same call convention as :class:`HermiteInterpolant`."""

    def __init__(self, pieces: list, shape: tuple, dtype: torch.dtype, device):
        self.pieces, self.shape, self.dtype, self.device = pieces, shape, dtype, device

    def __call__(self, t) -> torch.Tensor:
        scalar = not isinstance(t, (torch.Tensor, list, tuple)) or (isinstance(t, torch.Tensor) and t.ndim == 0)
        tq = torch.as_tensor(t, dtype=torch.float64).reshape(-1).cpu().numpy()
        lo, hi = self.pieces[0][0], self.pieces[-1][1]
        if not np.isfinite(tq).all() or (tq < lo).any() or (tq > hi).any():
            raise ValueError(f"t must lie in [{lo}, {hi}]; got {t!r}")
        starts = np.array([a for a, _, _ in self.pieces])
        which = np.clip(np.searchsorted(starts, tq, side="right") - 1, 0, len(self.pieces) - 1)
        out = np.stack([self.pieces[w][2](ti) for w, ti in zip(which, tq)])
        y = torch.from_numpy(out).view((len(tq),) + tuple(self.shape)).to(self.dtype).to(self.device)
        return y[0] if scalar else y
