"""Vector fields with layer-indexed weights.

- :class:`LayerField`: f(t, x) = σ(W_l x + b_l) for t in the l-th of L equal pieces of [0, T]
  (piecewise constant weights: the blocks of a ResNet), optionally with a BatchNorm between the
  affine map and σ, as the paper's code has.
- :class:`SmoothField`: f(t, x) = σ(W(t) x + b(t)) with W, b linear in t between K + 1 knots
  s_k = k T / K (pieces at the knots, so fixed steps keep their full order).

Both follow the piecewise-field protocol of :mod:`solvers.fields`.
"""
from __future__ import annotations

from typing import Callable, cast

import torch
import torch.nn.functional as F
from torch import nn

from solvers import PiecewiseField, TimeGrid
from solvers.fields import Field
from solvers.validation import check_positive, check_positive_int

from .activations import Activation, get_activation
from solvers.methods import has_storage

from .kernel import Compile, generalised_euler, layer_operands


class _Block:
    """The smooth field of one layer: x ↦ σ(BN(W x + b)); t is ignored."""

    __slots__ = ("weight", "bias", "act", "bn")

    def __init__(self, weight, bias, act: Activation, bn):
        self.weight, self.bias, self.act, self.bn = weight, bias, act, bn

    def __call__(self, t, x):
        # mm then an in-place add: for tall, narrow batches (65536 x 2) addmm's broadcast bias
        # took 2.4x as long on a Xeon (scripts/device_benchmarks.sh); this is never slower.
        z = torch.matmul(x, self.weight.mT).add_(self.bias)
        if self.bn is not None:
            z = self.bn(z)
        return self.act.apply_(z)  # z is fresh: σ in place


class LayerField(nn.Module):
    """f(t, x) = σ(BN_l(W_l x + b_l)) on the l-th piece [l T/L, (l+1) T/L) of [0, T].

    Parameters ``weight`` (L, m, m) and ``bias`` (L, m); ``batchnorm`` adds one BatchNorm1d(m) per
    layer.  The layer of a time t is found from the grid's integer boundaries
    (:meth:`solvers.TimeGrid.piece_of_time`); solvers never need it, since they ask for
    :meth:`piece` directly.
    """

    def __init__(self, width: int, depth: int, T: float = 1.0, activation: str = "tanh",
                 batchnorm: bool = False, *, dtype: torch.dtype = torch.float64, device=None):
        super().__init__()
        check_positive_int("width", width)
        check_positive_int("depth", depth)
        T = check_positive("T", T)
        self.activation = get_activation(activation)
        self.pieces = TimeGrid(0.0, T, depth, depth)
        self.weight = nn.Parameter(torch.zeros(depth, width, width, dtype=dtype, device=device))
        self.bias = nn.Parameter(torch.zeros(depth, width, dtype=dtype, device=device))
        self.bn = (nn.ModuleList(nn.BatchNorm1d(width, dtype=dtype, device=device) for _ in range(depth))
                   if batchnorm else None)

    @property
    def width(self) -> int:
        """Width m of the state: weight has shape (L, m, m)."""
        return self.weight.shape[1]

    @property
    def depth(self) -> int:
        """Number of layers (pieces) L."""
        return self.weight.shape[0]

    @property
    def T(self) -> float:
        """Time horizon T: the field lives on [0, T]."""
        return self.pieces.t1

    def piece(self, l: int) -> _Block:
        """The smooth field of layer l, x ↦ σ(BN_l(W_l x + b_l)) (t ignored), x of shape (batch, m)."""
        return _Block(self.weight[l], self.bias[l], self.activation, None if self.bn is None else self.bn[l])

    def all_pieces(self) -> list[_Block]:
        """[piece(0), ..., piece(L-1)], with the per-layer views made by one unbind (indexing a
        parameter L times costs more than the blocks of a small network)."""
        bns = [None] * self.depth if self.bn is None else list(self.bn)
        return [_Block(W, b, self.activation, bn)
                for W, b, bn in zip(self.weight.unbind(0), self.bias.unbind(0), bns)]

    def forward(self, t: float | torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """f(t, x) = σ(BN_l(W_l x + b_l)), l the piece of t; x of shape (batch, m)."""
        return self.piece(self.pieces.piece_of_time(t))(t, x)

    def generalised_euler(self, x0: torch.Tensor, eps: float, delta: float, steps: int,
                          record: str = "end", compile: Compile = False) -> torch.Tensor:
        """``steps`` (a multiple r of L) steps of x_{k+1} = ε x_k + δ f(t_k, x_k), layer k // r, by
        :func:`odenet.kernel.generalised_euler`: every state (steps + 1, batch, m) for
        ``record="all"``, else the last (batch, m).  The solvers' hook (:mod:`solvers.fields`).
        ``compile=True``: the loop in TorchScript, the same bits (:mod:`odenet.scripted`);
        ``compile="native"``: the loop in C++, within a few ulps per step (:mod:`odenet.native`)."""
        states = generalised_euler(self.weight, self.bias, self.activation, x0, eps, delta,
                                   refine=steps // self.depth, record=record,
                                   norm=None if self.bn is None else self._norm,
                                   layers=None if compile == "native" else self._layers(),  # C++ splits W itself
                                   compile=compile).states
        # batch-first memory, as the input: what follows (a readout GEMM) then rounds alike
        # whether the states came from the forward pass or from a solve
        return states.contiguous()

    def _norm(self, z: torch.Tensor, l: int) -> torch.Tensor:
        assert self.bn is not None  # passed to the kernel only with BatchNorm
        return self.bn[l](z)

    def _layers(self) -> tuple[tuple, tuple] | None:
        """Per-layer views of the parameters (:func:`odenet.kernel.layer_operands`), kept while the
        parameters are the same tensors: views follow in-place writes, and a replaced tensor
        (``.to``, ``.data =``, a copy of the module) has another address and is split anew.
        None inside a torch.func transform (functional_call may swap in wrapped tensors)."""
        if not (has_storage(self.weight) and has_storage(self.bias)):
            return None
        key = (self.weight.data_ptr(), self.bias.data_ptr(), self.weight.shape, self.bias.shape,
               self.weight.dtype, self.weight.device)
        cached = self.__dict__.get("_layer_views")
        if cached is None or cached[0] != key:
            with torch.no_grad():
                cached = (key, layer_operands(self.weight, self.bias))
            self.__dict__["_layer_views"] = cached
        return cached[1]

    def __getstate__(self):
        state = super().__getstate__()
        state.pop("_layer_views", None)  # views of the parameters: never pickled or deep-copied
        return state

    def effective_weights(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(W_eff, b_eff) of shape (L, m, m), (L, m) with eval-mode BatchNorm folded in:

            W_eff = diag(s) W,   b_eff = s (b - μ) + β,   s = γ / sqrt(var + eps_bn).

        Without BatchNorm these are the weights themselves.
        """
        if self.bn is None:
            return self.weight, self.bias
        bns = cast(list[nn.BatchNorm1d], list(self.bn))
        scale = torch.stack([bn.weight / torch.sqrt(cast(torch.Tensor, bn.running_var) + bn.eps) for bn in bns])
        shift = torch.stack([bn.bias - cast(torch.Tensor, bn.running_mean) * s for bn, s in zip(bns, scale)])
        return scale[:, :, None] * self.weight, scale * self.bias + shift


class SmoothField(nn.Module):
    """f(t, x) = σ(W(t) x + b(t)) with W(t), b(t) linear between knots s_k = k T / K.

    ``knot_weight`` (K + 1, m, m), ``knot_bias`` (K + 1, m).  The field is continuous in t and
    smooth on each knot interval (its pieces).
    """

    def __init__(self, knot_weight: torch.Tensor, knot_bias: torch.Tensor, T: float = 1.0,
                 activation: str = "tanh"):
        super().__init__()
        if knot_weight.ndim != 3 or knot_weight.shape[1] != knot_weight.shape[2] or knot_weight.shape[0] < 2:
            raise ValueError(f"knot_weight must have shape (K+1, m, m) with K >= 1; got {tuple(knot_weight.shape)}")
        if knot_bias.shape != knot_weight.shape[:2]:
            raise ValueError(f"knot_bias must have shape {tuple(knot_weight.shape[:2])}; got {tuple(knot_bias.shape)}")
        T = check_positive("T", T)
        K = knot_weight.shape[0] - 1
        self.activation = get_activation(activation)
        self.pieces = TimeGrid(0.0, T, K, K)
        self.knot_weight = nn.Parameter(knot_weight.clone())
        self.knot_bias = nn.Parameter(knot_bias.clone())

    def piece(self, k: int) -> Field:
        """f_k(t, x) = σ(W(t) x + b(t)) with W, b interpolated linearly between knots k and k + 1
        (valid on the closed piece [s_k, s_{k+1}] and beyond); x of shape (batch, m)."""
        s0, s1 = self.pieces.boundary(k), self.pieces.boundary(k + 1)
        W0, W1 = self.knot_weight[k], self.knot_weight[k + 1]
        b0, b1 = self.knot_bias[k], self.knot_bias[k + 1]
        act = self.activation

        def f(t, x):
            if isinstance(t, torch.Tensor) and t.requires_grad:
                # an adaptive solver's times depend on the state through its step sizes: keep t in
                # the graph, or backprop through the solver misses ∂f/∂t · ∂t/∂θ
                u = ((t - s0) / (s1 - s0)).to(W0.dtype)
            else:
                u = (float(t) - s0) / (s1 - s0)
            return act.fn(F.linear(x, torch.lerp(W0, W1, u), torch.lerp(b0, b1, u)))

        return f

    def forward(self, t: float | torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """f(t, x) = σ(W(t) x + b(t)) for x of shape (batch, m)."""
        return self.piece(self.pieces.piece_of_time(t))(t, x)

    def sample(self, depth: int) -> tuple[torch.Tensor, torch.Tensor]:
        """W(t_l), b(t_l) at the layer times t_l = l T / depth, l = 0..depth-1: the weights of the
        depth-L ResNet that discretises this field."""
        check_positive_int("depth", depth)
        grid = TimeGrid(0.0, self.pieces.t1, depth, 1)
        Ws, bs = [], []
        for l in range(depth):
            t = grid.node(l)
            k = self.pieces.piece_of_time(t)
            u = (t - self.pieces.boundary(k)) / (self.pieces.boundary(k + 1) - self.pieces.boundary(k))
            Ws.append(torch.lerp(self.knot_weight[k], self.knot_weight[k + 1], u))
            bs.append(torch.lerp(self.knot_bias[k], self.knot_bias[k + 1], u))
        return torch.stack(Ws).detach(), torch.stack(bs).detach()


class DampedField(nn.Module):
    """g(t, x) = -γ x + a f(t, x): the associated ODE of a ResNet (docs/theory.md §2).

    Euler with step h on g is x + h g = (1 - γ h) x + a h f, the block x ↦ ε x + δ f with
    ε = 1 - γ h and δ = a h.  Piecewise exactly where f is.
    """

    field: PiecewiseField
    pieces: TimeGrid

    def __init__(self, field: nn.Module, gamma: float, gain: float):
        super().__init__()
        self.field = cast(PiecewiseField, field)  # a module: registered as a submodule
        self.gamma = float(gamma)
        self.gain = float(gain)
        self.pieces = cast(TimeGrid, field.pieces)

    @property
    def generalised_euler(self) -> Callable[..., torch.Tensor] | None:
        """The inner field's kernel (None if it has none), for the iteration on g:

            ε' x + δ' g(x) = (ε' - δ' γ) x + (δ' a) f(x),

        so that Euler with the layer step on the associated ODE runs the network's own kernel."""
        inner = getattr(self.field, "generalised_euler", None)
        if not callable(inner):
            return None
        gamma, gain = self.gamma, self.gain

        def run(x0: torch.Tensor, eps: float, delta: float, steps: int, record: str = "end", **kw) -> torch.Tensor:
            return inner(x0, eps - delta * gamma, delta * gain, steps, record, **kw)  # kw: compile=

        return run

    def piece(self, l: int) -> Field:
        """g_l(t, x) = -γ x + a f_l(t, x) on piece l, x of shape (batch, d)."""
        f = self.field.piece(l)
        gamma, gain = self.gamma, self.gain
        if gamma == 0:
            return lambda t, x: gain * f(t, x)
        return lambda t, x: torch.add(gain * f(t, x), x, alpha=-gamma)

    def forward(self, t: float | torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """g(t, x) = -γ x + a f(t, x), x of shape (batch, d)."""
        return self.piece(self.pieces.piece_of_time(t))(t, x)
