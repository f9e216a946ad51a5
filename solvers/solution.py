"""The record every solve returns, named as scipy's OdeResult and time-first as torchdiffeq."""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

#: status codes, as scipy.integrate.solve_ivp
SUCCESS = 0
FAILED = -1


@dataclass
class Solution:
    """Result of :func:`solvers.solve`.

    Attributes
    ----------
    t : Tensor, shape (n_steps + 1,)
        Times of the recorded states (float64).  With ``record="end"`` only the two end points.
    y : Tensor, shape (len(t), batch, d)
        States at those times; ``y[0]`` is the initial state.
    nfev : int
        Number of evaluations of the vector field (one call on the whole batch counts once).
    njev : int
        Number of Jacobian evaluations (0: explicit methods use none).
    n_steps, n_accepted, n_rejected : int or None
        Steps taken, accepted and rejected; ``n_rejected`` is None where the backend does not
        report it (scipy's solve_ivp).
    status : int
        0 if the end of the interval was reached, -1 if the integration failed (a non-finite state).
    message : str
        Human-readable reason for the status.
    method : str
        Name of the method used.
    step_piece : Tensor of int64, shape (n_steps,) or None
        The piece (layer) each recorded step belongs to, for piecewise fields.
    """

    t: torch.Tensor
    y: torch.Tensor
    nfev: int
    n_steps: int
    n_accepted: int
    n_rejected: int | None
    status: int
    message: str
    method: str
    njev: int = 0
    step_piece: torch.Tensor | None = None
    extras: dict = field(default_factory=dict)

    @property
    def success(self) -> bool:
        return self.status >= 0

    @property
    def y_final(self) -> torch.Tensor:
        """The last recorded state, shape (batch, d)."""
        return self.y[-1]

    def __repr__(self) -> str:
        return (
            f"Solution(method={self.method!r}, status={self.status}, message={self.message!r}, "
            f"y.shape={tuple(self.y.shape)}, nfev={self.nfev}, n_steps={self.n_steps}, "
            f"n_accepted={self.n_accepted}, n_rejected={self.n_rejected})"
        )
