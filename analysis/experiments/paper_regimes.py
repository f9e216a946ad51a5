"""The regime table of the tunnel-effect reproduction, defined once.

:mod:`analysis.experiments.paper` (``make reproduce``), ``odenet tunnel`` and the tests import the runs from
here, so a regime name means the same network, data and training everywhere:

- :data:`ONE_D`: width-one fits of x² on [-1, 1] (identity input, linear output, MSE, batch 10);
- :data:`CIRCLES`, :data:`XOR`, :data:`INJECTION`: binary classification in the plane (sigmoid
  output, BCE, batch 128); with BatchNorm the pre-BN block bias is frozen (its gradient is zero
  in exact arithmetic, see :mod:`odenet.ensemble`);
- :data:`CLI_NAMES`: the short names of ``odenet tunnel --regime`` for the circles runs.

The theory behind the expectations is in docs/theory.md (§7 the tunnel effect, §10 which
claims are theorems, §11 the experiments).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from odenet import Dataset, ResNet

# Learning rate 0.01 (Adam) and these batch sizes are the paper's public code.
BATCH_1D = 10
BATCH_2D = 128


def channel_regime(eps: float, delta: float) -> str:
    """The (ε, δ) regime by the channel ratio r = δ/ε: MLP (ε = 0), skip-dominant (r < 1/2),
    residual-dominant (r > 2), balanced otherwise."""
    if eps == 0:
        return "MLP"
    r = delta / eps
    return "skip-dominant" if r < 0.5 else "residual-dominant" if r > 2 else "balanced"


@dataclass(frozen=True)
class OneDRun:
    """Width-one fit of x² on [-1, 1]: identity input, no BatchNorm, linear output, MSE."""

    name: str
    eps: float
    delta: float
    depth: int
    epochs: int
    block_weights: tuple | None = None  # chosen starting weights w_l (the paper's ±5 run)

    @property
    def regime(self) -> str:
        """The run's regime by its channel ratio δ/ε: :func:`channel_regime` (ε, δ)."""
        return channel_regime(self.eps, self.delta)

    def model(self, seed: int) -> ResNet:
        """The untrained network of member ``seed``."""
        return ResNet(1, 1, 1, self.depth, eps=self.eps, delta=self.delta, seed=seed)

    @property
    def overrides(self) -> dict | None:
        """Starting weights forced on every member (training's ``overrides``), or None."""
        if self.block_weights is None:
            return None
        return {"field.weight": torch.tensor(self.block_weights, dtype=torch.float64)[:, None, None]}


@dataclass(frozen=True)
class TwoDRun:
    """Binary classification in the plane: sigmoid output, BCE."""

    name: str
    dataset: str  # "circles" or "xor"
    regime: str
    eps: float
    delta: float
    depth: int
    width: int
    epochs: int
    batchnorm: bool = True
    input_map: str = "activated"
    inner_radius: float = 0.4  # circles only: radius of the enclosed disc

    def model(self, seed: int, batchnorm: bool | None = None) -> ResNet:
        """The untrained network of member ``seed`` (``batchnorm`` overrides the regime's)."""
        bn = self.batchnorm if batchnorm is None else batchnorm
        return ResNet(2, self.width, 1, self.depth, eps=self.eps, delta=self.delta, input_map=self.input_map,
                      batchnorm=bn, output="sigmoid", seed=seed)

    def freeze(self, batchnorm: bool | None = None) -> list[str]:
        """Parameters held fixed in training: the pre-BN bias when BatchNorm is on."""
        return ["field.bias"] if (self.batchnorm if batchnorm is None else batchnorm) else []

    def data(self, seed: int) -> Dataset:
        """The run's data set (odenet.datasets) drawn with ``seed``."""
        from odenet.datasets import circles, xor

        return circles(seed=seed, inner_radius=self.inner_radius) if self.dataset == "circles" else xor(seed=seed)


ONE_D = (
    OneDRun("mlp_L1", 0.0, 1.0, 1, 100),
    OneDRun("resnet_L1", 1.0, 1.0, 1, 300),
    OneDRun("resnet_L2", 1.0, 1.0, 2, 200),
    OneDRun("resnet_e20_d20_L2", 20.0, 20.0, 2, 200),
    OneDRun("skip_d0.3_w-5+5", 1.0, 0.3, 2, 300, block_weights=(-5.0, 5.0)),
    OneDRun("skip_e2_L2", 2.0, 1.0, 2, 200),
    OneDRun("residual_d10_L2", 1.0, 10.0, 2, 300),
    OneDRun("mlp_L2", 0.0, 1.0, 2, 300),
    OneDRun("near_mlp_e0.01_L2", 0.01, 1.0, 2, 300),
)

# The neural-ODE regime runs without BatchNorm: folded into W_l, eval-mode BN rescales the
# weights by γ/√var, and on this data δ‖W_eff‖ reaches 4.6 > ε, so the blocks fold and the
# network leaves the ODE regime.  The paper's setting with BatchNorm is a second regime.
CIRCLES = (
    TwoDRun("circles_neural_ode", "circles", "neural-ODE", 1.0, 0.1, 20, 2, 100, batchnorm=False),
    TwoDRun("circles_neural_ode_bn", "circles", "neural-ODE + BatchNorm", 1.0, 0.1, 20, 2, 100),
    TwoDRun("circles_mlp", "circles", "MLP", 0.1, 1.0, 6, 2, 300),
    TwoDRun("circles_standard", "circles", "standard ResNet", 1.0, 1.0, 10, 2, 300),
    TwoDRun("circles_augmented", "circles", "augmented MLP", 0.0, 1.0, 1, 3, 300),
)

XOR = (
    TwoDRun("xor_mlp", "xor", "MLP", 0.0, 1.0, 6, 2, 300),
    TwoDRun("xor_augmented", "xor", "augmented MLP", 0.0, 1.0, 2, 3, 300),
    TwoDRun("xor_resnet", "xor", "standard ResNet", 1.0, 1.0, 10, 2, 300),
)

INJECTION = TwoDRun("injection", "circles", "injected critical point", 1.0, 0.2, 5, 2, 200, batchnorm=False,
                    input_map="identity", inner_radius=0.3)

TWO_D = {spec.name: spec for spec in CIRCLES + XOR + (INJECTION,)}

# `odenet tunnel --regime NAME`: the circles runs under their short names.
CLI_NAMES = {"neural-ode": "circles_neural_ode", "neural-ode-bn": "circles_neural_ode_bn", "mlp": "circles_mlp",
             "standard": "circles_standard", "augmented": "circles_augmented"}


def circles_regime(name: str) -> TwoDRun:
    """The circles run called ``name``: a short CLI name (:data:`CLI_NAMES`) or a run name."""
    key = CLI_NAMES.get(name, name)
    runs = {s.name: s for s in CIRCLES}
    if key not in runs:
        raise ValueError(f"regime must be one of {sorted(CLI_NAMES)} or {sorted(runs)}; got {name!r}")
    return runs[key]


def plane_window(x: torch.Tensor) -> tuple[float, float, float, float]:
    """The square window (-r, r)² with r = 1.25 max |x_i| over the points (N, 2): where tunnels,
    level sets and critical points of a 2D run are looked for."""
    r = 1.25 * float(x.abs().max())
    return (-r, r, -r, r)
