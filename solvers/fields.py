"""What the solvers need to know about a vector field.

A vector field is any callable ``f(t, x)`` returning dx/dt for a batch ``x`` of shape
(batch, d); ``t`` is a Python float or a 0-dim tensor.

A *piecewise* field is smooth on each of the pieces of a :class:`~solvers.grid.TimeGrid` and may
jump at their boundaries (a ResNet's layer weights are piecewise constant in time).  It has

- ``pieces``: a :class:`TimeGrid` with one step per piece, i.e. ``TimeGrid(t0, t1, L, L)``;
- ``piece(l)``: the smooth field of piece ``l``, valid on the closed interval
  [boundary(l), boundary(l+1)] and beyond (so that no solver step straddles a jump);
- optionally ``all_pieces()``: the list of every piece at once, where that is cheaper;
- optionally ``generalised_euler(x0, eps, delta, steps, record)``: its own kernel for the
  iteration x_{k+1} = eps x_k + delta f(t_k, x_k) over ``steps`` equal steps (a multiple of the
  pieces), returning every state (steps + 1, batch, d) for ``record="all"`` or the last one
  (batch, d) for ``record="end"``, without checks; a field with a compiled loop also takes
  ``compile=True`` (``solve(..., compile=True)``).  Solvers use it for
  :class:`~solvers.methods.GeneralisedEuler`, so that a model whose forward pass is this
  iteration and a solve of its field share one code path.

Solvers integrate a piecewise field one piece at a time and never ask it to locate a time.
"""
from __future__ import annotations

from typing import Callable, Protocol, runtime_checkable

import torch

from .grid import TimeGrid

Field = Callable[[float, torch.Tensor], torch.Tensor]


@runtime_checkable
class PiecewiseField(Protocol):
    pieces: TimeGrid

    def piece(self, l: int) -> Field: ...

    def __call__(self, t, x: torch.Tensor) -> torch.Tensor: ...


def is_piecewise(field) -> bool:
    return hasattr(field, "pieces") and hasattr(field, "piece") and isinstance(field.pieces, TimeGrid)


def split_pieces(field, t0: float, t1: float) -> tuple[TimeGrid, list[Field]]:
    """The piece grid and the smooth fields of ``field`` on [t0, t1].

    A plain field is one piece.  A piecewise field must be integrated over exactly its own span.
    """
    if is_piecewise(field):
        grid = field.pieces
        if (grid.t0, grid.t1) != (t0, t1):
            raise ValueError(
                f"t_span must equal the piecewise field's span ({grid.t0}, {grid.t1}); got ({t0}, {t1})"
            )
        return grid, all_pieces(field)
    return TimeGrid(t0, t1, 1, 1), [field]


def all_pieces(field) -> list:
    """The smooth fields of every piece of a piecewise field, in order."""
    if hasattr(field, "all_pieces"):
        return field.all_pieces()
    return [field.piece(l) for l in range(field.pieces.pieces)]
