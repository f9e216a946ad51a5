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

from typing import Any, Callable, Protocol, Sequence, TypeGuard, runtime_checkable

import torch

from .grid import TimeGrid
from .validation import check_positive_int, check_real

Field = Callable[[Any, torch.Tensor], torch.Tensor]
"""A vector field f(t, x) -> dx/dt of shape (batch, d) for x of shape (batch, d); t a float or a
0-dim tensor."""


@runtime_checkable
class PiecewiseField(Protocol):
    """A field smooth on each of the L pieces of ``pieces`` (module docstring: the protocol)."""

    pieces: TimeGrid

    def piece(self, l: int) -> Field:
        """The smooth field of piece ``l`` (0 <= l < L), valid on [boundary(l), boundary(l+1)]."""
        ...

    def __call__(self, t, x: torch.Tensor) -> torch.Tensor: ...


def is_piecewise(field: object) -> TypeGuard[PiecewiseField]:
    """Whether ``field`` follows the piecewise protocol: ``piece`` and a :class:`TimeGrid` ``pieces``."""
    return hasattr(field, "pieces") and hasattr(field, "piece") and isinstance(field.pieces, TimeGrid)


def field_span(field: Callable[..., torch.Tensor], t_span: Sequence[float] | None) -> tuple[float, float]:
    """The interval (t0, t1) of a solve of ``field``: ``t_span``, or the piecewise field's own
    span (field.pieces.t0, field.pieces.t1) when ``t_span`` is None.

    The one check of every solve and trace: ``t_span`` a pair of finite reals with t1 > t0, equal
    to the span of a piecewise field (its pieces are fixed in time); ValueError (TypeError for a
    non-real) naming the value otherwise.
    """
    if t_span is None:
        if not is_piecewise(field):
            raise ValueError("t_span is required for a field that is not piecewise; got t_span=None")
        return field.pieces.t0, field.pieces.t1
    if not (isinstance(t_span, (tuple, list)) and len(t_span) == 2):
        raise ValueError(f"t_span must be a pair (t0, t1); got {t_span!r}")
    t0, t1 = check_real("t_span[0]", t_span[0]), check_real("t_span[1]", t_span[1])
    if not t1 > t0:
        raise ValueError(f"t_span must satisfy t1 > t0; got t_span={tuple(t_span)!r}")
    if is_piecewise(field) and (field.pieces.t0, field.pieces.t1) != (t0, t1):
        raise ValueError(f"t_span must equal the piecewise field's span "
                         f"({field.pieces.t0}, {field.pieces.t1}); got ({t0}, {t1})")
    return t0, t1


def fixed_grid(field: Callable[..., torch.Tensor], t_span: Sequence[float] | None, steps: int | None) -> TimeGrid:
    """The grid of a fixed-step solve of ``field``: ``steps`` equal steps on
    (t0, t1) = :func:`field_span` (field, t_span), grouped into the field's L pieces (1 for a plain
    field), so that step k lies in piece k L // steps and no step straddles a boundary.

    ``steps`` defaults to L (one step per piece) for a piecewise field and is required otherwise;
    it must be a positive integer multiple of L.  ValueError/TypeError naming it otherwise.
    """
    t0, t1 = field_span(field, t_span)
    L = field.pieces.pieces if is_piecewise(field) else 1
    if steps is None:
        if not is_piecewise(field):
            raise ValueError("steps is required for fixed-step methods on a field that is not piecewise")
        steps = L
    check_positive_int("steps", steps)
    if steps % L:
        raise ValueError(f"steps must be a multiple of the field's {L} pieces; got steps={steps}")
    return TimeGrid(t0, t1, steps, L)


def split_pieces(field: Callable[..., torch.Tensor], t0: float, t1: float) -> tuple[TimeGrid, list[Field]]:
    """The piece grid (one step per piece) and the smooth fields of ``field`` on [t0, t1]:
    (field.pieces, [piece 0, ..., piece L-1]) for a piecewise field, which must be integrated over
    exactly its own span (:func:`field_span`), (TimeGrid(t0, t1, 1, 1), [field]) for a plain one."""
    t0, t1 = field_span(field, (t0, t1))
    if is_piecewise(field):
        return field.pieces, all_pieces(field)
    return TimeGrid(t0, t1, 1, 1), [field]


def all_pieces(field: PiecewiseField) -> list[Field]:
    """[piece(0), ..., piece(L-1)]: the smooth fields of every piece of a piecewise field, in
    order (its ``all_pieces()`` where it has one)."""
    if hasattr(field, "all_pieces"):
        return field.all_pieces()
    return [field.piece(l) for l in range(field.pieces.pieces)]
