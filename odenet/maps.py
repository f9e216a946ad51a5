"""The input and output maps of the residual family, shared by :class:`odenet.ResNet` and
:class:`odenet.NeuralODE` so that both build, initialise and apply them the same way:

    A(x) = x | W_in x + b_in | σ(W_in x + b_in)          (input_map: identity, affine, activated)
    Φ(h) = w_out^T h + b_out,  through a sigmoid if output == "sigmoid"

and the initialisation of every weight and bias, uniform on [-1/√fan_in, 1/√fan_in] (nn.Linear's
bounds) drawn in float64 on the CPU from a generator, so that a seed fixes the weights on any device.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from .activations import Activation

INPUT_MAPS = ("identity", "affine", "activated")
OUTPUTS = ("linear", "sigmoid")


@torch.no_grad()
def uniform_(p: torch.Tensor, fan_in: int, generator: torch.Generator | None) -> None:
    """Overwrite ``p`` with Uniform(-1/√fan_in, 1/√fan_in) draws (float64 on the CPU, then cast)."""
    bound = 1.0 / math.sqrt(fan_in)
    p.copy_(torch.rand(p.shape, generator=generator, dtype=torch.float64) * 2 * bound - bound)


def check_input(x: object, n_in: int, dtype: torch.dtype) -> torch.Tensor:
    """``x`` a tensor of shape (batch, ``n_in``) and the model's ``dtype``: TypeError / ValueError
    naming the expected and the received shape and dtype (shape and dtype comparisons only, no
    device synchronisation)."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor of shape (batch, {n_in}) and dtype {dtype}; got {type(x).__name__}")
    if x.ndim != 2 or x.shape[1] != n_in or x.dtype != dtype:
        raise ValueError(f"x must have shape (batch, {n_in}) and dtype {dtype} for this model (n_in={n_in}); "
                         f"got shape {tuple(x.shape)} and dtype {x.dtype}")
    return x


def apply_input_map(x: torch.Tensor, inp: nn.Linear | None, input_map: str, activation: Activation) -> torch.Tensor:
    """h_0 = A(x): x (inp None), W_in x + b_in, or σ(W_in x + b_in) for ``input_map="activated"``."""
    if inp is None:
        return x
    z = inp(x)
    return activation.fn(z) if input_map == "activated" else z


def apply_output_map(h: torch.Tensor, out: nn.Linear, output: str) -> torch.Tensor:
    """Φ = w_out^T h + b_out, through a sigmoid if ``output == "sigmoid"``."""
    y = out(h)
    return torch.sigmoid(y) if output == "sigmoid" else y
