"""Small vector fields with closed-form flows, shared by the solver tests."""
import numpy as np
import torch
from scipy.linalg import expm

from solvers import TimeGrid

# x' = cos(t) A x has the flow x(t) = expm(sin(t) A) x0 (A commutes with itself).
A = np.array([[-0.3, 1.0], [-1.0, -0.2]])


def oscillating_linear(t, x):
    return float(np.cos(float(t))) * (x @ torch.as_tensor(A.T, dtype=x.dtype))


def oscillating_linear_flow(x0: torch.Tensor, t: float) -> torch.Tensor:
    return x0 @ torch.as_tensor(expm(np.sin(t) * A).T, dtype=x0.dtype)


class Counting:
    """Wraps a field (piecewise or not) and counts evaluations independently of the solver."""

    def __init__(self, field):
        self.field, self.calls = field, 0
        if hasattr(field, "pieces"):
            self.pieces = field.pieces

    def piece(self, l):
        f = self.field.piece(l)

        def counted(t, x):
            self.calls += 1
            return f(t, x)

        return counted

    def __call__(self, t, x):
        self.calls += 1
        return self.field(t, x)


class PiecewiseLinear:
    """x' = A_l x on the l-th of L pieces of [0, T]: flow = product of matrix exponentials."""

    def __init__(self, mats, T):
        self.mats = [np.asarray(m, dtype=float) for m in mats]
        self.pieces = TimeGrid(0.0, T, len(mats), len(mats))

    def piece(self, l):
        At = torch.as_tensor(self.mats[l].T)
        return lambda t, x: x @ At.to(x.dtype)

    def __call__(self, t, x):
        return self.piece(self.pieces.piece_of_time(t))(t, x)

    def flow(self, x0):
        x = x0.numpy()
        for l, M in enumerate(self.mats):
            x = x @ expm(self.pieces.h * M).T
        return torch.from_numpy(x)
