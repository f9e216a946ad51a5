"""Activations σ with their derivative σ' and Lipschitz constant K = sup |σ'|."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class Activation:
    """An activation σ.

    ``apply_`` may overwrite its argument (used on fresh pre-activations for speed);
    ``derivative(z)`` is σ'(z); ``lipschitz`` is K = sup_z |σ'(z)|.
    """

    name: str
    fn: Callable[[torch.Tensor], torch.Tensor]
    apply_: Callable[[torch.Tensor], torch.Tensor]
    derivative: Callable[[torch.Tensor], torch.Tensor]
    lipschitz: float

    def __call__(self, z: torch.Tensor) -> torch.Tensor:
        return self.fn(z)


def _tanh_derivative(z):
    s = torch.tanh(z)
    return 1 - s * s


ACTIVATIONS: dict[str, Activation] = {
    a.name: a
    for a in (
        Activation("tanh", torch.tanh, torch.Tensor.tanh_, _tanh_derivative, 1.0),
        Activation("relu", torch.relu, torch.Tensor.relu_, lambda z: (z > 0).to(z.dtype), 1.0),
        Activation("softplus", F.softplus, F.softplus, torch.sigmoid, 1.0),
        Activation("identity", lambda z: z, lambda z: z, torch.ones_like, 1.0),
    )
}


def get_activation(name: str | Activation) -> Activation:
    """The activation called ``name`` (tanh, relu, softplus, identity)."""
    if isinstance(name, Activation):
        return name
    if name not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}; got {name!r}")
    return ACTIVATIONS[name]
