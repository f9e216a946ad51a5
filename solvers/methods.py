"""Fixed-step methods as objects: the explicit Runge-Kutta family from Butcher tableaux, and the
generalised Euler step x_{k+1} = eps x_k + delta f(t_k, x_k) of a residual block.

Every method has ``name``, ``order`` (global order of accuracy), ``stages`` (field evaluations
per step) and ``step(f, t, h, x, out)``, which advances x at time t by one step of size h and
may write the result into ``out`` (a preallocated tensor shaped like x) where that is allowed
(see :func:`can_write`).  An explicit RK method with tableau (A, b, c) takes

    k_i = f(t + c_i h, x + h Σ_{j<i} a_ij k_j),   x_{k+1} = x_k + h Σ_i b_i k_i.

Adding a method is one line: an :class:`ExplicitRK` with its tableau in :data:`FIXED_METHODS`.
"""
from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import TypeGuard

import torch

from .fields import Field
from .validation import check_nonnegative, check_positive


def has_storage(x: torch.Tensor) -> bool:
    """False for a tensor without storage of its own: the wrapper a torch.func transform (vmap,
    jacfwd, grad) passes to a function, where out= has no batching rule and data-dependent
    checks are refused.  Public tensor API only."""
    try:
        x.untyped_storage()
    except (RuntimeError, NotImplementedError):
        return False
    return True


def can_write(out: torch.Tensor | None, x: torch.Tensor) -> TypeGuard[torch.Tensor]:
    """Whether a step may write into ``out``: not while autograd records ``x`` (out= is not
    differentiable), and not inside a torch.func transform (:func:`has_storage`)."""
    return out is not None and not x.requires_grad and has_storage(x)


def axpy(x: torch.Tensor, s: torch.Tensor, a: float, out: torch.Tensor | None) -> torch.Tensor:
    """x + a s in one fused kernel (shapes of x), into ``out`` where allowed (:func:`can_write`)."""
    if can_write(out, s):
        return torch.add(x, s, alpha=a, out=out)
    return torch.add(x, s, alpha=a)


@dataclass(frozen=True)
class ExplicitRK:
    """An explicit Runge-Kutta method given by its Butcher tableau.

    ``a`` is the strictly lower triangular matrix as rows (row i has i entries), ``b`` the
    weights, ``c`` the nodes (c_i = Σ_j a_ij, checked).  Entries may be Fractions or floats.
    """

    name: str
    order: int
    a: tuple
    b: tuple
    c: tuple

    def __post_init__(self) -> None:
        s = len(self.b)
        if len(self.c) != s or len(self.a) != s or any(len(row) != i for i, row in enumerate(self.a)):
            raise ValueError(f"tableau of {self.name!r} must be explicit with {s} stages")
        for i, row in enumerate(self.a):
            if abs(float(sum(row, Fraction(0))) - float(self.c[i])) > 1e-15:
                raise ValueError(f"tableau of {self.name!r}: c[{i}] must equal the sum of row {i} of a")

    @property
    def stages(self) -> int:
        """Number of stages s: field evaluations per step."""
        return len(self.b)

    def step(self, f: Field, t: float, h: float, x: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
        """One step x_{k+1} = x_k + h Σ_i b_i k_i, k_i = f(t + c_i h, x_k + h Σ_{j<i} a_ij k_j), for x of
        shape (batch, d); written into ``out`` where allowed (:func:`can_write`)."""
        k = [f(t, x)]
        for i in range(1, self.stages):
            xi = x
            for a_ij, kj in zip(self.a[i], k):
                if a_ij:
                    xi = torch.add(xi, kj, alpha=h * float(a_ij))
            k.append(f(t + float(self.c[i]) * h, xi))
        nonzero = [(Fraction(bi), ki) for bi, ki in zip(self.b, k) if bi]
        if len(nonzero) == 1:  # Euler, midpoint: one fused axpy
            bi, ki = nonzero[0]
            return axpy(x, ki, h * float(bi), out)
        # common weight factored out as h·w Σ (b_i / w) k_i, so that Heun is x + h/2 (k1 + k2)
        w = min(abs(bi) for bi, _ in nonzero)
        incr = None
        for bi, ki in nonzero:
            r = float(bi / w)
            incr = (ki if r == 1 else ki * r) if incr is None else (incr.add(ki) if r == 1 else incr.add(ki, alpha=r))
        assert incr is not None  # two or more nonzero weights here
        return axpy(x, incr, h * float(w), out)


class GeneralisedEuler:
    """x_{k+1} = eps x_k + delta f(t_k, x_k): a residual block; eps = 1, delta = h is Euler.

    ``delta=None`` means delta = h (the step of the grid).  Order 1 as a method for x' = f when
    eps = 1 and delta = h (otherwise it is the Euler step of x' = -γ x + a f with γ = (1 - eps)/h,
    a = delta/h: see :class:`odenet.DampedField`).  A field that offers its own kernel
    (``field.generalised_euler``, see :mod:`solvers.fields`) is integrated by that kernel.
    """

    name = "euler"
    order = 1
    stages = 1

    def __init__(self, eps: float = 1.0, delta: float | None = None):
        self.eps = check_nonnegative("eps", eps)
        self.delta = None if delta is None else check_positive("delta", delta)

    def weights(self, h: float) -> tuple[float, float]:
        """(eps, delta) on a grid of step h."""
        return self.eps, h if self.delta is None else self.delta

    def step(self, f: Field, t: float, h: float, x: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
        """One step x_{k+1} = eps x_k + delta f(t_k, x_k) (delta = h unless set), x of shape (batch, d);
        written into ``out`` where allowed (:func:`can_write`)."""
        eps, delta = self.weights(h)
        z = f(t, x)
        if eps == 1:
            return axpy(x, z, delta, out)
        if not can_write(out, z):
            return torch.add(x * eps, z, alpha=delta)
        torch.mul(x, eps, out=out)
        return out.add_(z, alpha=delta)

    def __eq__(self, other) -> bool:
        return isinstance(other, GeneralisedEuler) and (self.eps, self.delta) == (other.eps, other.delta)

    def __hash__(self) -> int:
        return hash((GeneralisedEuler, self.eps, self.delta))

    def __repr__(self) -> str:
        return f"GeneralisedEuler(eps={self.eps!r}, delta={self.delta!r})"


Q = Fraction
#: the registry of fixed-step methods, by name
FIXED_METHODS = {m.name: m for m in (
    GeneralisedEuler(),
    ExplicitRK("heun", 2, a=((), (1,)), b=(Q(1, 2), Q(1, 2)), c=(0, 1)),
    ExplicitRK("midpoint", 2, a=((), (Q(1, 2),)), b=(0, 1), c=(0, Q(1, 2))),
    ExplicitRK("ralston", 2, a=((), (Q(2, 3),)), b=(Q(1, 4), Q(3, 4)), c=(0, Q(2, 3))),
    ExplicitRK("ssprk3", 3, a=((), (1,), (Q(1, 4), Q(1, 4))), b=(Q(1, 6), Q(1, 6), Q(2, 3)), c=(0, 1, Q(1, 2))),
    ExplicitRK("rk4", 4, a=((), (Q(1, 2),), (0, Q(1, 2)), (0, 0, 1)), b=(Q(1, 6), Q(1, 3), Q(1, 3), Q(1, 6)),
               c=(0, Q(1, 2), Q(1, 2), 1)),
)}


def get_method(method: str | ExplicitRK | GeneralisedEuler) -> ExplicitRK | GeneralisedEuler:
    """The fixed-step method object named ``method`` (or ``method`` itself if it is one)."""
    if isinstance(method, (ExplicitRK, GeneralisedEuler)):
        return method
    if method not in FIXED_METHODS:
        raise ValueError(f"method must be one of {sorted(FIXED_METHODS)}; got {method!r}")
    return FIXED_METHODS[method]
