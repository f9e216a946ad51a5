"""The fixed-step integration loop: n steps of a method object (:mod:`solvers.methods`) on a
uniform grid whose steps never straddle a piece boundary of a piecewise field.

A field that carries its own generalised-Euler kernel (``field.generalised_euler``, the layer
field of a ResNet) is integrated by that kernel when the method is :class:`GeneralisedEuler`:
the forward pass of a ResNet and ``solve(method="euler")`` on its field are then one code path.
"""
from __future__ import annotations

from typing import Any

import torch

from .fields import all_pieces
from .grid import TimeGrid
from .methods import FIXED_METHODS, ExplicitRK, GeneralisedEuler, has_storage
from .validation import all_finite

__all__ = ["FIXED_METHODS", "euler_iteration", "integrate_fixed", "has_euler_kernel"]


def has_euler_kernel(field: Any) -> bool:
    """Whether ``field`` integrates the generalised Euler iteration itself (see :mod:`solvers.fields`)."""
    return callable(getattr(field, "generalised_euler", None))


def euler_iteration(field: Any, x0: torch.Tensor, eps: float, delta: float, steps: int | None = None,
                    record_all: bool = False) -> torch.Tensor:
    """The generalised Euler map x_{k+1} = eps x_k + delta f(t_k, x_k) of a piecewise field,
    without argument checks.  Returns the states (steps + 1, batch, d) if ``record_all`` else the
    final state (batch, d).  ``steps`` defaults to one per piece."""
    grid_ = field.pieces
    steps = steps or grid_.pieces
    if has_euler_kernel(field):
        return field.generalised_euler(x0, eps, delta, steps, "all" if record_all else "end")
    grid = TimeGrid(grid_.t0, grid_.t1, steps, grid_.pieces)
    return integrate_fixed(GeneralisedEuler(eps, delta), all_pieces(field), grid, x0, record_all)[0]


def integrate_fixed(method: ExplicitRK | GeneralisedEuler, pieces: list | None, grid: TimeGrid, x0: torch.Tensor, record_all: bool,
                    field: Any = None, compile: bool | str = False) -> tuple[torch.Tensor, int, int | None]:
    """Run ``grid.n`` steps of ``method``; returns (states, n_done, failed_at).

    ``states`` is (n+1, batch, d) when ``record_all`` else the last state (batch, d).
    ``failed_at`` is the first step index k whose state x_k is non-finite, or None.  Non-finite
    values are absorbing for these methods (inf/nan in x_k stays inf/nan in x_{k+1}, as
    eps·inf is inf or nan), so finiteness is checked once, at the end.  ``field``, if it has
    its own kernel and ``method`` is the generalised Euler step, runs the steps instead (its
    compiled loop with ``compile=True`` or ``"native"``, which the caller has checked the field has).
    """
    n, m, h = grid.n, grid.steps_per_piece, grid.h
    if field is not None and isinstance(method, GeneralisedEuler) and has_euler_kernel(field):
        eps, delta = method.weights(h)
        record = "all" if record_all else "end"
        y = field.generalised_euler(x0, eps, delta, n, record, compile=compile) if compile else \
            field.generalised_euler(x0, eps, delta, n, record)
        return y, n, _first_nonfinite(y, record_all, n)
    assert pieces is not None, "integrate_fixed needs the field's pieces unless the field runs its own kernel"
    step = method.step
    # Steps write into this buffer unless autograd records or a torch.func transform wraps x.
    buffer = torch.empty((n + 1 if record_all else 2,) + x0.shape, dtype=x0.dtype, device=x0.device)
    states = [x0]
    x = x0
    for k in range(n):
        x = step(pieces[k // m], grid.node(k), h, x, buffer[k + 1] if record_all else buffer[(k + 1) % 2])
        if record_all:
            states.append(x)
    if record_all:
        if all(has_storage(s) and not s.requires_grad and s.data_ptr() == buffer[i].data_ptr()
               for i, s in enumerate(states[1:], 1)):
            buffer[0] = x0  # every step wrote into its row
            y = buffer
        else:
            y = torch.stack(states)
    else:
        y = x
    return y, n, _first_nonfinite(y, record_all, n)


def _first_nonfinite(y, record_all, done):
    if not has_storage(y):
        return None  # inside torch.func transforms data-dependent checks are not allowed
    if not record_all:
        return None if all_finite(y) else done
    if all_finite(y[-1]):
        return None
    finite = torch.isfinite(y.reshape(len(y), -1)).all(dim=1)
    return int((~finite).nonzero()[0])
