"""Fixed-step explicit Runge-Kutta methods: Euler (with skip and residual weights), Heun,
midpoint and classical RK4.

Each method advances x_k at t_k by one step of size h = (t1 - t0) / n:

    euler     x_{k+1} = eps x_k + delta f(t_k, x_k)                 (eps = 1, delta = h: Euler)
    heun      x_{k+1} = x_k + h/2 (k1 + k2),        k2 = f(t_{k+1}, x_k + h k1)
    midpoint  x_{k+1} = x_k + h k2,                 k2 = f(t_k + h/2, x_k + h/2 k1)
    rk4       x_{k+1} = x_k + h/6 (k1 + 2 k2 + 2 k3 + k4)

with k1 = f(t_k, x_k).  Orders 1, 2, 2, 4; field evaluations per step 1, 2, 2, 4.

The generalised Euler step is the forward pass of a ResNet block, so it is written for speed:
it writes into a preallocated buffer (no temporaries besides the field's output) whenever no
gradient is being recorded.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from .fields import all_pieces
from .grid import TimeGrid


@dataclass(frozen=True)
class FixedMethod:
    name: str
    order: int
    stages: int
    step: Callable  # step(f, t, h, x, out, eps, delta) -> x_next


_is_transformed = torch._C._functorch.is_functorch_wrapped_tensor


def _can_write(out, s) -> bool:
    """out= is allowed unless autograd records s or s lives inside a torch.func transform."""
    return out is not None and not s.requires_grad and not _is_transformed(s)


def _axpy(x, s, a, out):
    """x + a s, written into ``out`` where allowed."""
    if _can_write(out, s):
        return torch.add(x, s, alpha=a, out=out)
    return torch.add(x, s, alpha=a)


def _euler(f, t, h, x, out, eps, delta):
    z = f(t, x)
    if eps == 1:
        return _axpy(x, z, delta, out)
    if not _can_write(out, z):
        return torch.add(x * eps, z, alpha=delta)
    torch.mul(x, eps, out=out)
    return out.add_(z, alpha=delta)


def _heun(f, t, h, x, out, eps, delta):
    k1 = f(t, x)
    k2 = f(t + h, x + h * k1)
    return _axpy(x, k1 + k2, h / 2, out)


def _midpoint(f, t, h, x, out, eps, delta):
    k1 = f(t, x)
    k2 = f(t + h / 2, x + (h / 2) * k1)
    return _axpy(x, k2, h, out)


def _rk4(f, t, h, x, out, eps, delta):
    k1 = f(t, x)
    k2 = f(t + h / 2, x + (h / 2) * k1)
    k3 = f(t + h / 2, x + (h / 2) * k2)
    k4 = f(t + h, x + h * k3)
    return _axpy(x, k1 + 2 * k2 + 2 * k3 + k4, h / 6, out)


FIXED_METHODS = {
    m.name: m
    for m in (
        FixedMethod("euler", 1, 1, _euler),
        FixedMethod("heun", 2, 2, _heun),
        FixedMethod("midpoint", 2, 2, _midpoint),
        FixedMethod("rk4", 4, 4, _rk4),
    )
}

# Non-finite states are absorbing for these methods (inf/nan in x_k stays inf/nan in x_{k+1},
# since eps * inf = inf or nan and 0 * inf = nan), so checking every few steps loses nothing.
_CHECK_EVERY = 32


def euler_iteration(field, x0: torch.Tensor, eps: float, delta: float, steps: int | None = None,
                    record_all: bool = False) -> torch.Tensor:
    """The generalised Euler map x_{k+1} = eps x_k + delta f(t_k, x_k) of a piecewise field,
    without argument checks: the forward pass of a ResNet.

    Returns the states (steps + 1, batch, d) if ``record_all`` else the final state (batch, d).
    ``steps`` defaults to one per piece.
    """
    grid_ = field.pieces
    grid = TimeGrid(grid_.t0, grid_.t1, steps or grid_.pieces, grid_.pieces)
    return integrate_fixed(FIXED_METHODS["euler"], all_pieces(field), grid, x0, eps, delta, record_all)[0]


def integrate_fixed(method: FixedMethod, pieces: list, grid: TimeGrid, x0: torch.Tensor,
                    eps: float, delta: float, record_all: bool):
    """Run ``grid.n`` steps; returns (states, n_done, failed_at).

    ``states`` is (n+1, batch, d) when ``record_all`` else the last state (batch, d).  ``failed_at`` is the first step index k whose state x_k is non-finite, or None.
    """
    n, m = grid.n, grid.steps_per_piece
    h = grid.h
    step = method.step
    # Steps write into this buffer unless autograd is recording (out= is not differentiable).
    buffer = torch.empty((n + 1 if record_all else 2,) + x0.shape, dtype=x0.dtype, device=x0.device)
    states = [x0]
    x = x0
    for k in range(n):
        out = buffer[k + 1] if record_all else buffer[(k + 1) % 2]
        x = step(pieces[k // m], grid.node(k), h, x, out, eps, delta)
        if record_all:
            states.append(x)
        if (k + 1) % _CHECK_EVERY == 0 and not _is_transformed(x) and not torch.isfinite(x).all():
            break
    done = k + 1
    if record_all:
        if not (x.requires_grad or _is_transformed(x)):
            buffer[0] = x0
            y = buffer[: done + 1]
        else:
            y = torch.stack(states)
    else:
        y = x
    return y, done, _first_nonfinite(y, record_all, done)


def _first_nonfinite(y, record_all, done):
    if _is_transformed(y):
        return None  # inside torch.func transforms data-dependent checks are not allowed
    if not record_all:
        return None if torch.isfinite(y).all() else done
    if torch.isfinite(y[-1]).all():
        return None
    finite = torch.isfinite(y.reshape(len(y), -1)).all(dim=1)
    return int((~finite).nonzero()[0])
