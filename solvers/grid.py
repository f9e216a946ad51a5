"""The uniform time grid and exact layer lookup.

A grid splits [t0, t1] into ``n`` equal steps.  Its nodes are

    t_k = t0 + k (t1 - t0) / n,      k = 0, ..., n,

computed from the integer k (never by accumulating a float step), and the step size is the
single number h = (t1 - t0) / n, never a difference of two nodes.  A grid with ``pieces`` pieces
(the layers of a ResNet) groups the steps into ``pieces`` runs of ``n / pieces`` steps; the piece
of step k is ``k * pieces // n``, an integer computation.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .validation import check_positive_int, check_real


@dataclass(frozen=True)
class TimeGrid:
    """Uniform grid of ``n`` steps on ``[t0, t1]``, grouped into ``pieces`` equal pieces.

    ``pieces`` must divide ``n``; each piece has ``steps_per_piece = n // pieces`` steps.
    """

    t0: float
    t1: float
    n: int
    pieces: int = 1

    def __post_init__(self) -> None:
        check_real("t0", self.t0)
        check_real("t1", self.t1)
        if not self.t1 > self.t0:
            raise ValueError(f"t1 must be greater than t0; got t0={self.t0!r}, t1={self.t1!r}")
        check_positive_int("n", self.n)
        check_positive_int("pieces", self.pieces)
        if self.n % self.pieces:
            raise ValueError(
                f"n must be a multiple of pieces so that no step straddles a piece boundary; "
                f"got n={self.n}, pieces={self.pieces}"
            )

    @property
    def h(self) -> float:
        """Step size (t1 - t0) / n."""
        return (self.t1 - self.t0) / self.n

    @property
    def steps_per_piece(self) -> int:
        """Steps in each piece, n / pieces."""
        return self.n // self.pieces

    def node(self, k: int) -> float:
        """t_k = t0 + k (t1 - t0) / n, with t_0 = t0 and t_n = t1 exactly."""
        if k == self.n:
            return float(self.t1)
        return self.t0 + k * (self.t1 - self.t0) / self.n

    def nodes(self, dtype: torch.dtype = torch.float64, device: torch.device | str | None = None) -> torch.Tensor:
        """All n + 1 nodes as a tensor, each computed by :meth:`node`."""
        return torch.tensor([self.node(k) for k in range(self.n + 1)], dtype=dtype, device=device)

    def boundary(self, piece: int) -> float:
        """Start time of ``piece`` (``piece == pieces`` gives t1): node(piece * steps_per_piece)."""
        return self.node(piece * self.steps_per_piece)

    def piece_of_step(self, k: int) -> int:
        """The piece that step k (from t_k to t_{k+1}) belongs to: k * pieces // n."""
        return k * self.pieces // self.n

    def piece_of_time(self, t: float | torch.Tensor) -> int:
        """The piece whose half-open interval [boundary(l), boundary(l+1)) holds t.

        t = t1 belongs to the last piece.  The result is exact with respect to the boundaries
        returned by :meth:`boundary`: an estimate from floor() is corrected by comparing t with
        the float boundaries themselves, so t = boundary(l) always gives l.
        """
        t = float(t)  # a 0-dim tensor too
        if not (self.t0 <= t <= self.t1):
            raise ValueError(f"t must lie in [{self.t0}, {self.t1}]; got t={t!r}")
        guess = math.floor((t - self.t0) / (self.t1 - self.t0) * self.pieces)
        piece = min(max(guess, 0), self.pieces - 1)
        while piece > 0 and t < self.boundary(piece):
            piece -= 1
        while piece < self.pieces - 1 and t >= self.boundary(piece + 1):
            piece += 1
        return piece

    def refine(self, m: int) -> "TimeGrid":
        """The same pieces with m times as many steps (each step split into m)."""
        check_positive_int("m", m)
        return TimeGrid(self.t0, self.t1, self.n * m, self.pieces)
