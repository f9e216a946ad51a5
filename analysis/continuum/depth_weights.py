"""Layer weights as functions of depth: smooth (a Gaussian process in t) or i.i.d. across layers.

The layer times are t_l = l T / L, l = 0..L-1 (the left ends of the layers, as
:meth:`odenet.SmoothField.sample`).

- :func:`smooth_weights`: every entry of W(t) (and b(t)) is an independent stationary Gaussian
  process with covariance std² exp(-(s - t)² / (2 ℓ²)), realised by K random Fourier features

      W_ij(t) = std sqrt(2/K) Σ_k a_ijk cos(ω_k t + φ_k),  ω_k ~ N(0, ℓ⁻²), φ_k ~ U[0, 2π), a ~ N(0, 1).

  The function does not depend on L: one seed gives one W(t), sampled at every depth, so a
  family of depths discretises one ODE.
- :func:`iid_weights`: W_l independent N(0, std²) entries.
- :func:`load_weights`: copy (W, b) into a ResNet's blocks.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch

from solvers.validation import check_positive, check_positive_int

if TYPE_CHECKING:
    from odenet import ResNet

__all__ = ["smooth_weights", "iid_weights", "load_weights", "layer_times"]


def _generator(seed: int | None, generator: torch.Generator | None) -> torch.Generator:
    if generator is not None:
        return generator
    if seed is None:
        raise ValueError("a seed or a generator is required (every random choice is seeded); got neither")
    return torch.Generator().manual_seed(int(seed))


def layer_times(depth: int, T: float = 1.0) -> torch.Tensor:
    """t_l = l T / L for l = 0..L-1 (float64), each computed from the integer l."""
    depth = check_positive_int("depth", depth)
    T = check_positive("T", T)
    return torch.tensor([l * T / depth for l in range(depth)], dtype=torch.float64)


def smooth_weights(depth: int, width: int, *, T: float = 1.0, lengthscale: float = 0.3, std: float | None = None,
                   bias_std: float = 0.0, n_features: int = 64, seed: int | None = None,
                   generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(W (L, m, m), b (L, m)) sampled at t_l = l T / L from one Gaussian-process path in t
    (squared-exponential kernel of length scale ℓ, random Fourier features; see the module).

    ``std`` defaults to 1/√m (so that |W x| ≈ |x|); ``bias_std = 0`` gives zero biases.
    """
    depth = check_positive_int("depth", depth)
    width = check_positive_int("width", width)
    lengthscale = check_positive("lengthscale", lengthscale)
    n_features = check_positive_int("n_features", n_features)
    std = 1.0 / math.sqrt(width) if std is None else check_positive("std", std)
    bias_std = float(bias_std)
    if bias_std < 0:
        raise ValueError(f"bias_std must be >= 0; got {bias_std!r}")
    g = _generator(seed, generator)
    omega = torch.randn(n_features, generator=g, dtype=torch.float64) / lengthscale
    phase = torch.rand(n_features, generator=g, dtype=torch.float64) * 2 * math.pi
    amp = torch.randn(n_features, width * width + width, generator=g, dtype=torch.float64)
    basis = torch.cos(layer_times(depth, T)[:, None] * omega + phase) * math.sqrt(2.0 / n_features)  # (L, K)
    path = basis @ amp  # (L, m*m + m), unit variance per entry
    W = std * path[:, : width * width].reshape(depth, width, width)
    b = bias_std * path[:, width * width:]
    return W, b


def iid_weights(depth: int, width: int, *, std: float | None = None, bias_std: float = 0.0, seed: int | None = None,
                generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(W (L, m, m), b (L, m)) with independent N(0, std²) entries in every layer (std default
    1/√m) and N(0, bias_std²) biases."""
    depth = check_positive_int("depth", depth)
    width = check_positive_int("width", width)
    std = 1.0 / math.sqrt(width) if std is None else check_positive("std", std)
    if bias_std < 0:
        raise ValueError(f"bias_std must be >= 0; got {bias_std!r}")
    g = _generator(seed, generator)
    W = std * torch.randn(depth, width, width, generator=g, dtype=torch.float64)
    b = bias_std * torch.randn(depth, width, generator=g, dtype=torch.float64)
    return W, b


def load_weights(net: ResNet, weight: torch.Tensor, bias: torch.Tensor | None = None) -> ResNet:
    """Copy W (L, m, m) and b (L, m) into the blocks of ``net`` (an :class:`odenet.ResNet` of the
    same depth and width); returns ``net``."""
    W = net.field.weight
    if tuple(weight.shape) != tuple(W.shape):
        raise ValueError(f"weight must have the network's block shape {tuple(W.shape)}; got {tuple(weight.shape)}")
    if bias is not None and tuple(bias.shape) != tuple(net.field.bias.shape):
        raise ValueError(f"bias must have shape {tuple(net.field.bias.shape)}; got {tuple(bias.shape)}")
    with torch.no_grad():
        W.copy_(weight)
        if bias is not None:
            net.field.bias.copy_(bias)
    return net
