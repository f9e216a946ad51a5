"""The (ε, δ) residual family (docs/theory.md §1–2).

    h_0     = A(x)                                   identity, affine W_in x + b_in, or σ(W_in x + b_in)
    h_{l+1} = ε h_l + δ σ(W_l h_l + b_l),  l = 0..L-1
    Φ(x)    = w_out^T h_L + b_out                    (optionally through a sigmoid)

The blocks are the generalised Euler iteration of the one kernel, :func:`odenet.kernel.generalised_euler`,
on the model's own :class:`~odenet.fields.LayerField`, which ``solvers.solve(method="euler")`` on
that field runs too: the forward pass *is* the Euler solve, by construction.
"""
from __future__ import annotations

import math
import numbers
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

import solvers
from solvers.validation import (FLOAT_DTYPES, check_choice, check_finite, check_memory, check_nonnegative,
                               check_positive, check_positive_int, check_seed)

from .activations import Activation, get_activation
from .fields import DampedField, LayerField
from .kernel import Compile, check_compile
from .maps import INPUT_MAPS, OUTPUTS, apply_input_map, apply_output_map, check_input, uniform_

if TYPE_CHECKING:  # neural_ode imports this module
    from .neural_ode import NeuralODE

_DTYPE_NAMES = {"float32": torch.float32, "float64": torch.float64}
# config key -> (what it must be, test); n_in, width, n_out, depth are required
_CONFIG_KEYS = {
    "n_in": ("an integer >= 1", lambda v: _is_int(v) and v >= 1),
    "width": ("an integer >= 1", lambda v: _is_int(v) and v >= 1),
    "n_out": ("an integer >= 1", lambda v: _is_int(v) and v >= 1),
    "depth": ("an integer >= 1", lambda v: _is_int(v) and v >= 1),
    "eps": ("a real number", lambda v: _is_real(v)),
    "delta": ("a real number", lambda v: _is_real(v)),
    "T": ("a real number or None", lambda v: v is None or _is_real(v)),
    "activation": ("a string", lambda v: isinstance(v, str)),
    "input_map": (f"one of {list(INPUT_MAPS)}", lambda v: v in INPUT_MAPS),
    "output": (f"one of {list(OUTPUTS)}", lambda v: v in OUTPUTS),
    "batchnorm": ("a bool", lambda v: isinstance(v, (bool, np.bool_))),
    "seed": ("a non-negative integer or None", lambda v: v is None or (_is_int(v) and v >= 0)),
    "dtype": (f"one of {list(_DTYPE_NAMES)}", lambda v: isinstance(v, str) and v in _DTYPE_NAMES),
}
_REQUIRED = ("n_in", "width", "n_out", "depth")


def _is_int(v) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, (bool, np.bool_))


def _is_real(v) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, (bool, np.bool_))


class ResNet(nn.Module):
    """A narrow (ε, δ) ResNet R^n → R^q of width m and depth L.

    Parameters
    ----------
    n_in, width, n_out, depth : int
        Input dimension n, width m, output dimension q, number of blocks L.
    eps : float
        Skip weight ε ≥ 0 (ε = 0: an MLP of constant width).
    delta : float
        Residual weight δ > 0.
    activation : str
        σ: ``"tanh"`` (the paper's), ``"relu"``, ``"softplus"``, ``"identity"``.
    input_map : str
        ``"identity"`` (needs n = m), ``"affine"`` or ``"activated"``.
    batchnorm : bool
        A BatchNorm between W_l h + b_l and σ in every block (fold it with
        :meth:`fold_batchnorm` in eval mode).
    output : str
        ``"linear"`` or ``"sigmoid"``.
    T : float, optional
        Time horizon of the associated ODE; the layer step is h = T / L.  Default T = L δ,
        so that h = δ and the ODE gain a = δ / h is 1.
    seed, generator :
        Initialisation: every weight and bias uniform on [-1/√fan_in, 1/√fan_in], as nn.Linear.
        A seed is an integer in [0, 2**63).
    dtype, device :
        float64 by default.

    A model whose parameters (:meth:`parameter_count`) would not fit in the available memory is
    refused before anything is allocated, with the estimate in the message.
    """

    def __init__(self, n_in: int, width: int, n_out: int = 1, depth: int = 1, *, eps: float = 1.0,
                 delta: float = 1.0, activation: str = "tanh", input_map: str = "identity",
                 batchnorm: bool = False, output: str = "linear", T: float | None = None,
                 seed: int | None = None, generator: torch.Generator | None = None,
                 dtype: torch.dtype = torch.float64, device=None):
        super().__init__()
        check_positive_int("n_in", n_in)
        check_positive_int("width", width)
        check_positive_int("n_out", n_out)
        check_positive_int("depth", depth)
        eps = check_nonnegative("eps", eps)
        delta = check_positive("delta", delta)
        get_activation(activation)
        check_choice("input_map", input_map, INPUT_MAPS)
        check_choice("output", output, OUTPUTS)
        if input_map == "identity" and n_in != width:
            raise ValueError(f"input_map='identity' needs n_in == width; got n_in={n_in}, width={width} "
                             f"(use input_map='affine' or 'activated')")
        if dtype not in FLOAT_DTYPES:
            raise ValueError(f"dtype must be torch.float32 or torch.float64; got {dtype}")
        seed = None if seed is None else check_seed("seed", seed)
        T = depth * delta if T is None else check_positive("T", T)
        count = self.parameter_count(n_in, width, n_out, depth, input_map=input_map, batchnorm=batchnorm)
        # the parameters, plus the float64 draw and its scaled copy of the largest one (reset_parameters)
        check_memory(count * dtype.itemsize + 2 * depth * width * width * 8,
                     f"ResNet(n_in={n_in}, width={width}, n_out={n_out}, depth={depth}) with {count} parameters",
                     device)
        self.eps, self.delta = eps, delta
        self.input_map, self.output = input_map, output
        self.seed = seed
        self.field = LayerField(width, depth, T, activation, batchnorm, dtype=dtype, device=device)
        self.inp = None if input_map == "identity" else nn.Linear(n_in, width, dtype=dtype, device=device)
        self.out = nn.Linear(width, n_out, dtype=dtype, device=device)
        if generator is None and seed is not None:
            generator = torch.Generator().manual_seed(seed)
        self.reset_parameters(generator)

    # --- construction -------------------------------------------------------------------------
    @torch.no_grad()
    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Uniform(-1/√fan_in, 1/√fan_in) for every weight and bias, drawn on the CPU in a fixed
        order (input map, output map, blocks) so that a seed fixes them on any device, and the
        input and output maps of a seed do not depend on the depth."""
        def fill(p: torch.Tensor, fan_in: int):
            uniform_(p, fan_in, generator)

        if self.inp is not None:
            fill(self.inp.weight, self.n_in)
            fill(self.inp.bias, self.n_in)
        fill(self.out.weight, self.width)
        fill(self.out.bias, self.width)
        fill(self.field.weight, self.width)
        fill(self.field.bias, self.width)

    @classmethod
    def neural_ode(cls, n_in: int, width: int, n_out: int = 1, depth: int = 10, T: float = 1.0, **kw: Any) -> "ResNet":
        """Skip-dominant regime: ε = 1, δ = T / L (Euler steps of x' = σ(W(t) x + b(t)))."""
        check_positive_int("depth", depth)  # before T / depth
        check_positive("T", T)
        return cls(n_in, width, n_out, depth, eps=1.0, delta=T / depth, T=T, **kw)

    @classmethod
    def mlp(cls, n_in: int, width: int, n_out: int = 1, depth: int = 1, delta: float = 1.0, **kw: Any) -> "ResNet":
        """Residual-dominant limit ε = 0: an MLP of constant width."""
        return cls(n_in, width, n_out, depth, eps=0.0, delta=delta, **kw)

    @classmethod
    def standard(cls, n_in: int, width: int, n_out: int = 1, depth: int = 1, **kw: Any) -> "ResNet":
        """The standard ResNet ε = δ = 1."""
        return cls(n_in, width, n_out, depth, eps=1.0, delta=1.0, **kw)

    @classmethod
    def with_ratio(cls, n_in: int, width: int, n_out: int = 1, depth: int = 1, ratio: float = 1.0,
                   eps: float = 1.0, **kw: Any) -> "ResNet":
        """Channel ratio r = δ / ε: δ = r ε (ε > 0)."""
        check_positive("ratio", ratio)
        check_positive("eps", eps)
        return cls(n_in, width, n_out, depth, eps=eps, delta=ratio * eps, **kw)

    @staticmethod
    def parameter_count(n_in: int, width: int, n_out: int = 1, depth: int = 1, *, input_map: str = "identity",
                        batchnorm: bool = False) -> int:
        """Number of parameters and BatchNorm statistics: L (m² + m) blocks, m n + m for a
        non-identity input map, q m + q for the readout, 4 L m for BatchNorm (γ, β, running mean
        and variance)."""
        count = depth * (width * width + width) + n_out * width + n_out
        if input_map != "identity":
            count += width * n_in + width
        if batchnorm:
            count += 4 * depth * width
        return count

    # --- shape --------------------------------------------------------------------------------
    @property
    def n_in(self) -> int:
        """Input dimension n."""
        return self.field.width if self.inp is None else self.inp.in_features

    @property
    def width(self) -> int:
        """Width m of the hidden state h_l."""
        return self.field.width

    @property
    def n_out(self) -> int:
        """Output dimension q."""
        return self.out.out_features

    @property
    def depth(self) -> int:
        """Number of blocks L."""
        return self.field.depth

    @property
    def T(self) -> float:
        """Time horizon T of the associated ODE (layer l sits at t_l = l T / L)."""
        return self.field.T

    @property
    def h(self) -> float:
        """Layer step h = T / L."""
        return self.field.pieces.h

    @property
    def ratio(self) -> float:
        """Channel ratio r = δ / ε (inf for ε = 0)."""
        return math.inf if self.eps == 0 else self.delta / self.eps

    @property
    def activation(self) -> Activation:
        """The activation σ of the blocks."""
        return self.field.activation

    @property
    def batchnorm(self) -> bool:
        """Whether each block has a BatchNorm between W_l h + b_l and σ."""
        return self.field.bn is not None

    @property
    def config(self) -> dict:
        """Everything needed to rebuild the architecture (weights aside)."""
        return dict(n_in=self.n_in, width=self.width, n_out=self.n_out, depth=self.depth, eps=self.eps,
                    delta=self.delta, activation=self.activation.name, input_map=self.input_map,
                    batchnorm=self.batchnorm, output=self.output, T=self.T, seed=self.seed,
                    dtype=str(self.field.weight.dtype).removeprefix("torch."))

    @classmethod
    def from_config(cls, config: dict, device: torch.device | str | None = None) -> "ResNet":
        """A model with this architecture (weights from the initialisation of ``config['seed']``).

        ``config`` is a :attr:`config` dict: n_in, width, n_out, depth required; eps, delta, T,
        activation, input_map, batchnorm, output, seed, dtype ("float32" or "float64") optional.
        Missing, unknown and ill-typed keys are refused together in one ValueError, before the
        model is built."""
        if not isinstance(config, dict):
            raise TypeError(f"config must be a dict (ResNet.config); got {type(config).__name__}")
        missing = [k for k in _REQUIRED if k not in config]
        unknown = sorted(str(k) for k in config if k not in _CONFIG_KEYS)
        wrong = [f"{k}={v!r} (must be {_CONFIG_KEYS[k][0]})" for k, v in config.items()
                 if k in _CONFIG_KEYS and not _CONFIG_KEYS[k][1](v)]
        if missing or unknown or wrong:
            problems = ([f"missing {missing}"] if missing else []) + ([f"unknown {unknown}"] if unknown else []) \
                + ([f"ill-typed {', '.join(wrong)}"] if wrong else [])
            raise ValueError(f"config is not a ResNet config: {'; '.join(problems)}; the keys are "
                             f"{list(_CONFIG_KEYS)} ({', '.join(_REQUIRED)} required)")
        cfg = dict(config)
        cfg["dtype"] = _DTYPE_NAMES[cfg.get("dtype", "float64")]
        n_in, width, n_out, depth = (cfg.pop(k) for k in ("n_in", "width", "n_out", "depth"))
        return cls(n_in, width, n_out, depth, device=device, **cfg)

    # --- evaluation ---------------------------------------------------------------------------
    def check_input(self, x: object) -> torch.Tensor:
        """``x`` of shape (batch, n_in) and the model's dtype: the prologue of every evaluation
        (shape and dtype comparisons only, no device synchronisation)."""
        return check_input(x, self.n_in, self.out.weight.dtype)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """h_0 = A(x) for x of shape (batch, n_in) and the model's dtype (else a ValueError naming
        both shapes and dtypes)."""
        self.check_input(x)
        return apply_input_map(x, self.inp, self.input_map, self.activation)

    def readout(self, h: torch.Tensor) -> torch.Tensor:
        """Φ = w_out^T h_L + b_out, through a sigmoid if ``output == "sigmoid"``."""
        return apply_output_map(h, self.out, self.output)

    def blocks(self, h0: torch.Tensor, refine: int = 1, compile: Compile = False) -> torch.Tensor:
        """h_L from h_0: the generalised Euler iteration, refined by ``refine`` sub-steps per layer
        (see :meth:`refined_weights`).  ``compile=True`` runs the loop in TorchScript (faster for
        small batches, the same bits; see :mod:`odenet.scripted`), ``compile="native"`` in C++
        (faster still, within a few ulps per step; see :mod:`odenet.native`)."""
        eps, delta = self.refined_weights(refine)
        return self.field.generalised_euler(h0, eps, delta, self.depth * refine, "end", compile=compile)

    def forward(self, x: torch.Tensor, compile: Compile = False) -> torch.Tensor:
        """Φ(x) = readout(h_L), h_0 = A(x); ``compile``: see :meth:`blocks`."""
        check_compile(compile, self.activation, self.field.weight)
        return self.readout(self.blocks(self.embed(x), compile=compile))

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """w_out^T h_L + b_out without the output sigmoid."""
        return self.out(self.blocks(self.embed(x)))

    def states(self, x: torch.Tensor, refine: int = 1, compile: Compile = False) -> torch.Tensor:
        """All block states h_0, ..., h_{L m}: shape (L m + 1, batch, width); ``compile``: see
        :meth:`blocks`."""
        check_compile(compile, self.activation, self.field.weight)
        eps, delta = self.refined_weights(refine)
        return self.field.generalised_euler(self.embed(x), eps, delta, self.depth * refine, "all", compile=compile)

    def solve(self, x: torch.Tensor, refine: int = 1, **kw: Any) -> solvers.Solution:
        """The block iteration h_0 = A(x), ..., h_{L m} as a :class:`solvers.Solution`: L m steps of
        method="euler" with (ε_m, δ_m) of :meth:`refined_weights` (m = ``refine``; m = 1: the
        model's ε, δ); the same code path as :meth:`forward`.  ``kw`` (``record``, ...) go to
        :func:`solvers.solve`; the step count and weights are the model's, so ``steps``, ``eps``,
        ``delta`` and ``method`` are refused (a bare ``steps=2 L`` would run 2 L steps of the full δ)."""
        fixed = sorted({"steps", "eps", "delta", "method"} & kw.keys())
        if fixed:
            raise ValueError(f"ResNet.solve sets {fixed} from the model; pass refine=m for m Euler sub-steps "
                             f"per layer, or call solvers.solve(model.field, ...) directly")
        eps, delta = self.refined_weights(refine)
        return solvers.solve(self.field, self.embed(x), method="euler", steps=self.depth * refine, eps=eps,
                             delta=delta, **kw)

    # --- the associated ODE -------------------------------------------------------------------
    @property
    def gamma(self) -> float:
        """Damping γ = (1 - ε) / h of the associated ODE."""
        return (1.0 - self.eps) / self.h

    @property
    def gain(self) -> float:
        """Gain a = δ / h of the associated ODE."""
        return self.delta / self.h

    def ode(self) -> DampedField:
        """The associated ODE x' = -γ x + a σ(W(t) x + b(t)) on [0, T] (docs/theory.md §2)."""
        return DampedField(self.field, self.gamma, self.gain)

    def refined_weights(self, m: int) -> tuple[float, float]:
        """(ε_m, δ_m) of m Euler sub-steps of size h/m on the associated ODE:

            ε_m = 1 - (1 - ε)/m,   δ_m = δ/m      (m = 1 gives ε, δ exactly).
        """
        check_positive_int("refine", m)
        if m == 1:
            return self.eps, self.delta
        return 1.0 - (1.0 - self.eps) / m, self.delta / m

    def flow(self, x: torch.Tensor, method: str = "dopri5", **kw: Any) -> torch.Tensor:
        """Φ with the blocks replaced by the time-T flow of the associated ODE (restarts at the
        layer boundaries)."""
        sol = solvers.solve(self.ode(), self.embed(x), method=method, record="end", **kw)
        if not sol.success:
            raise RuntimeError(f"flow integration failed: {sol.message}")
        return self.readout(sol.y[-1].to(x.dtype))

    # --- BatchNorm ----------------------------------------------------------------------------
    def fold_batchnorm(self) -> "ResNet":
        """An equal model without BatchNorm: eval-mode BN folded into W_l, b_l
        (see :meth:`LayerField.effective_weights`)."""
        cfg = dict(self.config, batchnorm=False)
        folded = ResNet.from_config(cfg, device=self.field.weight.device)
        with torch.no_grad():
            W, b = self.field.effective_weights()
            folded.field.weight.copy_(W)
            folded.field.bias.copy_(b)
            if self.inp is not None and folded.inp is not None:
                folded.inp.load_state_dict(self.inp.state_dict())
            folded.out.load_state_dict(self.out.state_dict())
        return folded.eval()

    def set_block(self, l: int, weight: torch.Tensor | float | None = None,
                  bias: torch.Tensor | float | None = None) -> "ResNet":
        """Overwrite block l's W_l and/or b_l (in place; values broadcast to (m, m) and (m,), so a
        scalar fills the block); returns self.  Both are checked (shape, finite) before either is
        written."""
        if isinstance(l, bool) or not isinstance(l, numbers.Integral) or not (0 <= l < self.depth):
            raise ValueError(f"l must be an integer block index in [0, {self.depth - 1}]; got {l!r}")
        new = {}
        for name, value, p in (("weight", weight, self.field.weight), ("bias", bias, self.field.bias)):
            if value is None:
                continue
            v = torch.as_tensor(value, dtype=p.dtype, device=p.device)
            try:
                new[name] = v.expand(p.shape[1:])
            except RuntimeError:
                raise ValueError(f"{name} must have shape {tuple(p.shape[1:])} (or broadcast to it); "
                                 f"got shape {tuple(v.shape)}") from None
            check_finite(name, v)
        with torch.no_grad():
            for name, v in new.items():
                getattr(self.field, name)[l] = v
        return self

    def extra_repr(self) -> str:
        return (f"n_in={self.n_in}, width={self.width}, n_out={self.n_out}, depth={self.depth}, eps={self.eps}, "
                f"delta={self.delta}, activation={self.activation.name!r}, input_map={self.input_map!r}, "
                f"output={self.output!r}, T={self.T}")

    def to_ode(self, **solver: Any) -> NeuralODE:
        """The :class:`odenet.NeuralODE` z' = σ(W(t) z + b(t)) on [0, T] with this network's weights
        (layer field of L pieces, same input and output maps), for ε = 1 and δ = T/L, without
        BatchNorm (fold it first).  ``solver`` goes to :meth:`NeuralODE.set_solver`; the default
        ``method="euler", steps=L`` reproduces this network bit for bit, ``method="dopri5"`` gives
        its flow.  ``to_ode().to_resnet(L)`` gives the weights back exactly."""
        from .neural_ode import NeuralODE

        return NeuralODE.from_resnet(self, **solver)
