"""The record every solve returns, named as scipy's OdeResult and time-first as torchdiffeq."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

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
    y : Tensor, shape (len(t), batch, d), or (len(t), d) for a 1-D initial state
        States at those times; ``y[0]`` is the initial state (unless ``t_eval`` starts later).
    nfev : int
        Number of evaluations of the vector field (one call on the whole batch counts once).
    njev, nlu : int
        Number of Jacobian evaluations and LU decompositions (scipy's names; 0 for explicit methods,
        scipy's counts for the implicit reference methods).
    n_steps, n_accepted, n_rejected : int or None
        Steps taken, accepted and rejected; ``n_rejected`` is None where the backend does not
        report it (scipy's solve_ivp).  The same counts under diffrax's names:
        :attr:`num_steps`, :attr:`num_accepted_steps`, :attr:`num_rejected_steps`.
    sol : callable or None
        With ``solve(..., dense=True)``: ``sol(t)``, the cubic Hermite interpolant of the
        recorded steps (:class:`solvers.dense.HermiteInterpolant`), as scipy's ``sol``.
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
    def __post_init__(self) -> None:
        # instance attributes, not dataclass fields, so that records saved before them
        # (analysis.hdf5) keep their schema: set by solve (an interpolant is not data to save)
        self.nlu: int = 0
        self.sol: Callable[[torch.Tensor], torch.Tensor] | None = None

    @property
    def success(self) -> bool:
        """scipy's ``success``: True unless the integration failed."""
        return self.status >= 0

    @property
    def num_steps(self) -> int:
        """diffrax's name for :attr:`n_steps` (accepted + rejected)."""
        return self.n_steps

    @property
    def num_accepted_steps(self) -> int:
        """diffrax's name for :attr:`n_accepted`."""
        return self.n_accepted

    @property
    def num_rejected_steps(self) -> int | None:
        """diffrax's name for :attr:`n_rejected` (None where the backend does not report it)."""
        return self.n_rejected

    def to_xarray(self, *, time_units: str = "1", state_units: str = "1") -> Any:
        """An ``xarray.Dataset`` with variable ``y`` on dims (time, batch, state) (or (time, state)
        for a 1-D solve), coordinate ``time`` and ``units``/``long_name`` attributes (``"1"``:
        dimensionless, the default); the statistics are dataset attributes.  Needs xarray."""
        try:
            import xarray as xr
        except ImportError:
            raise ImportError("Solution.to_xarray needs xarray: pip install xarray") from None
        dims = ("time", "batch", "state") if self.y.ndim == 3 else ("time", "state")
        y = xr.DataArray(self.y.detach().cpu().numpy(), dims=dims,
                         attrs={"units": state_units, "long_name": "state of the ODE solution"})
        time = xr.DataArray(self.t.detach().cpu().numpy(), dims=("time",),
                            attrs={"units": time_units, "long_name": "time (depth) of the ODE", "axis": "T"})
        attrs = {"method": self.method, "status": self.status, "message": self.message, "nfev": self.nfev,
                 "njev": self.njev, "nlu": self.nlu, "num_steps": self.num_steps,
                 "num_accepted_steps": self.num_accepted_steps}
        if self.n_rejected is not None:
            attrs["num_rejected_steps"] = self.n_rejected
        return xr.Dataset({"y": y}, coords={"time": time}, attrs=attrs)

    def __repr__(self) -> str:
        return (
            f"Solution(method={self.method!r}, status={self.status}, message={self.message!r}, "
            f"y.shape={tuple(self.y.shape)}, nfev={self.nfev}, njev={self.njev}, nlu={self.nlu}, n_steps={self.n_steps}, "
            f"n_accepted={self.n_accepted}, n_rejected={self.n_rejected})"
        )
