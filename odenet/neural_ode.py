"""Neural ODEs as trainable models: continuous depth end to end (Chen et al. 2018; augmented
neural ODEs, Dupont et al. 2019).

A :class:`NeuralODE` maps R^n → R^q by

    z(0) = (A(x), 0_k) ∈ R^{m+k}                       input map A of the ResNet family, k zero channels
    z'(t) = f_θ(t, z(t)),  t ∈ [0, T]                   the field (below)
    Φ(x) = w_out^T z(T)_{1..m} + b_out                   the first m channels read out (sigmoid optional)

with the input and output maps, activations, dtypes and seeded initialisation of
:class:`odenet.ResNet` (:mod:`odenet.maps`).  Fields f_θ on the state width d = m + k:

- ``"layer"``: σ(W_l z + b_l) on the l-th of L equal pieces of [0, T] (:class:`LayerField`,
  piecewise constant in t: the blocks of a ResNet of depth L, which it shares its weights with);
- ``"smooth"``: σ(W(t) z + b(t)) with W, b linear between K + 1 knots (:class:`SmoothField`);
- ``"mlp"``: the time-dependent MLP W_2 σ(W_1 z + t u + c) + b_2 (:class:`TimeMLPField`).

Solvers (``method``): fixed steps (``"euler"``, ``"heun"``, ``"midpoint"``, ``"rk4"``, ``steps`` in
all) and adaptive torchdiffeq methods (``"dopri5"``, ... at ``rtol``/``atol``).  A piecewise field
is integrated piece by piece, restarting the solver at every boundary t_l = l T / L, so no step
straddles a jump of the field, in the forward and in the backward (adjoint) direction.

Gradients (``gradient``):

- ``"backprop"`` differentiates the solver's own operations (fixed steps and the accepted and
  rejected adaptive steps, step-size control included): the exact gradient of the computed
  output, at the memory cost of every stage of every step.
- ``"adjoint"`` solves the adjoint ODE backwards with torchdiffeq's ``odeint_adjoint`` (memory
  independent of the number of steps).  With the loss ℓ(z(T)) and a(t) = ∂ℓ/∂z(t),

      a(T) = ∂ℓ/∂z(T),     a'(t) = -a(t)^T ∂f/∂z(t, z(t)),
      dℓ/dθ = ∫_0^T a(t)^T ∂f/∂θ(t, z(t)) dt,    dℓ/dz(0) = a(0),

  integrated from T back to 0 together with z(t) itself (re-solved backwards).  For a piecewise
  field the adjoint is restarted at every boundary: piece l is one ``odeint_adjoint`` call on
  [t_l, t_{l+1}], and the chain of calls hands a(t_{l+1}) from piece l+1 to piece l, so the
  integral splits into Σ_l ∫_{t_l}^{t_{l+1}} with f_l smooth on each (a is continuous across the
  boundaries, since z is).  The computed gradient approximates the exact one to the solver's
  tolerance (it is not the gradient of the computed output, as backprop's is).

After every forward pass that records a graph, ``nfev_forward`` holds its number of field
evaluations and ``nfev_backward`` those of its backward pass (evaluations of the augmented
adjoint system for ``"adjoint"``; 0 for ``"backprop"``, which replays the recorded evaluations as
vector-Jacobian products instead of evaluating f); ``nfev_log`` keeps (forward, backward) per step.
Forward passes without a graph (evaluation) set ``nfev_eval``.
"""
from __future__ import annotations

import math
import numbers
from typing import TYPE_CHECKING, Any, cast

import torch
import torchdiffeq
from torch import nn

import solvers
from solvers import TimeGrid
from solvers.validation import all_finite, check_choice, check_positive, check_positive_int, check_state

from .activations import Activation, get_activation
from .fields import LayerField, SmoothField
from .maps import INPUT_MAPS, OUTPUTS, apply_input_map, apply_output_map, check_input, uniform_

if TYPE_CHECKING:  # resnet imports this module
    from .resnet import ResNet

FIELDS = ("layer", "smooth", "mlp")
GRADIENTS = ("backprop", "adjoint")
#: torchdiffeq's name of each fixed-step method, for the adjoint mode (its "rk4" is Kutta's 3/8
#: rule, of order 4 like the classical one that ``solvers`` runs for backprop).
_TORCHDIFFEQ_FIXED = {"euler": "euler", "heun": "heun2", "midpoint": "midpoint", "rk4": "rk4"}


class TimeMLPField(nn.Module):
    """f(t, z) = W_2 σ(W_1 z + t u + c) + b_2: a one-hidden-layer MLP in (z, t), smooth in t.

    Parameters ``w1`` (H, d), ``u`` (H,), ``c`` (H,), ``w2`` (d, H), ``b2`` (d,).  A piecewise
    field of one piece on [0, T] (the solvers' protocol, :mod:`solvers.fields`).
    """

    def __init__(self, width: int, hidden: int, T: float = 1.0, activation: str = "tanh", *,
                 dtype: torch.dtype = torch.float64, device=None):
        super().__init__()
        check_positive_int("width", width)
        check_positive_int("hidden", hidden)
        self.activation = get_activation(activation)
        self.pieces = TimeGrid(0.0, check_positive("T", T), 1, 1)
        kw = dict(dtype=dtype, device=device)
        self.w1 = nn.Parameter(torch.zeros(hidden, width, **kw))
        self.u = nn.Parameter(torch.zeros(hidden, **kw))
        self.c = nn.Parameter(torch.zeros(hidden, **kw))
        self.w2 = nn.Parameter(torch.zeros(width, hidden, **kw))
        self.b2 = nn.Parameter(torch.zeros(width, **kw))

    @property
    def width(self) -> int:
        """State width d: w1 has shape (H, d)."""
        return self.w1.shape[1]

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Uniform(±1/√fan_in) with fan_in = d + 1 for the hidden layer (z and t), H for the output."""
        for p in (self.w1, self.u, self.c):
            uniform_(p, self.width + 1, generator)
        for p in (self.w2, self.b2):
            uniform_(p, self.w1.shape[0], generator)

    def piece(self, l: int) -> TimeMLPField:
        """The field itself: one piece, smooth in t."""
        return self

    def forward(self, t: float | torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """f(t, z) = W_2 σ(W_1 z + t u + c) + b_2 for z of shape (batch, d)."""
        hidden = torch.addmm(torch.as_tensor(t, dtype=z.dtype, device=z.device) * self.u + self.c, z, self.w1.mT)
        return torch.addmm(self.b2, self.activation.fn(hidden), self.w2.mT)


class _Reversed(nn.Module):
    """g(s, z) = -f(T - s, z) on [0, T]: the field whose forward flow is f's flow backwards in time;
    piece l of g is piece L-1-l of f."""

    def __init__(self, field):
        super().__init__()
        self.field = field
        self.pieces = field.pieces

    def piece(self, l: int):
        f, T = self.field.piece(self.pieces.pieces - 1 - l), self.pieces.t1
        return lambda s, z: -f(T - s, z)

    def forward(self, s, z):
        return self.piece(self.pieces.piece_of_time(s))(s, z)


class _NfevRecord:
    """Field evaluations of one forward pass and of its backward pass."""

    __slots__ = ("forward", "backward", "in_forward")

    def __init__(self):
        self.forward, self.backward, self.in_forward = 0, 0, True


class _Counted:
    """One piece of the field, counting its evaluations into a record (forward while the forward
    pass runs, backward after it)."""

    def __init__(self, f, record: _NfevRecord):
        self.f, self.record = f, record

    def __call__(self, t, z):
        if self.record.in_forward:
            self.record.forward += 1
        else:
            self.record.backward += 1
        # no gradient with respect to t is ever asked for: a plain time spares fields that read float(t)
        return self.f(t.detach() if isinstance(t, torch.Tensor) else t, z)


class NeuralODE(nn.Module):
    """A neural ODE R^n → R^q: input map, the time-T flow of a field on R^{m+k}, output map
    (module docstring: the formulas, the solvers and the two gradients).

    Parameters
    ----------
    n_in, width, n_out : int
        Input dimension n, width m of the state read out, output dimension q.
    field : ``"layer"``, ``"smooth"`` or ``"mlp"``
        The vector field (module docstring).
    pieces : int
        Pieces L of the layer field, knot intervals K of the smooth field (ignored by "mlp").
    hidden : int
        Hidden width H of the MLP field.
    T : float
        Time horizon.
    augment : int
        k ≥ 0 zero channels appended to the state (augmented neural ODE), dropped at the readout.
    activation, input_map, output, seed, generator, dtype, device :
        As :class:`odenet.ResNet`; ``field="layer", augment=0`` draws the very weights of
        ``ResNet.neural_ode(n_in, width, n_out, depth=pieces, T=T, seed=seed, ...)``.
    method, steps, rtol, atol, gradient :
        The solver and the gradient (:meth:`set_solver`).
    """

    kind: str
    augment: int
    input_map: str
    output: str
    activation: Activation
    seed: int | None
    field: LayerField | SmoothField | TimeMLPField
    inp: nn.Linear | None
    out: nn.Linear
    method: str
    steps: int | None
    rtol: float
    atol: float
    gradient: str
    nfev_eval: int
    _width: int

    def __init__(self, n_in: int, width: int, n_out: int = 1, *, field: str = "layer", pieces: int = 10,
                 hidden: int = 16, T: float = 1.0, augment: int = 0, activation: str = "tanh",
                 input_map: str = "identity", output: str = "linear", method: str = "dopri5",
                 steps: int | None = None, rtol: float = 1e-7, atol: float = 1e-9, gradient: str = "backprop",
                 seed: int | None = None, generator: torch.Generator | None = None,
                 dtype: torch.dtype = torch.float64, device=None):
        super().__init__()
        check_positive_int("n_in", n_in)
        check_positive_int("width", width)
        check_positive_int("n_out", n_out)
        check_choice("field", field, FIELDS)
        check_positive_int("pieces", pieces)
        check_positive_int("hidden", hidden)
        T = check_positive("T", T)
        if isinstance(augment, bool) or not isinstance(augment, numbers.Integral):
            raise TypeError(f"augment must be an integer >= 0; got {augment!r} of type {type(augment).__name__}")
        if augment < 0:
            raise ValueError(f"augment must be an integer >= 0 (the number of zero channels); got {augment!r}")
        act = get_activation(activation)
        check_choice("input_map", input_map, INPUT_MAPS)
        check_choice("output", output, OUTPUTS)
        if input_map == "identity" and n_in != width:
            raise ValueError(f"input_map='identity' needs n_in == width; got n_in={n_in}, width={width} "
                             f"(use input_map='affine' or 'activated')")
        if dtype not in (torch.float32, torch.float64):
            raise ValueError(f"dtype must be torch.float32 or torch.float64; got {dtype}")
        self.kind, self.augment = field, int(augment)
        self.input_map, self.output, self.activation = input_map, output, act
        self.seed = seed
        self._width = width
        d = width + self.augment
        kw = dict(dtype=dtype, device=device)
        if field == "layer":
            self.field = LayerField(d, pieces, T, act.name, **kw)
        elif field == "smooth":
            zeros = torch.zeros(pieces + 1, d, d, **kw)
            self.field = SmoothField(zeros, zeros[:, :, 0], T, act.name)
        else:
            self.field = TimeMLPField(d, hidden, T, act.name, **kw)
        self.inp = None if input_map == "identity" else nn.Linear(n_in, width, **kw)
        self.out = nn.Linear(width, n_out, **kw)
        self.set_solver(method=method, steps=steps, rtol=rtol, atol=atol, gradient=gradient)
        self.nfev_eval = 0
        self._log: list[_NfevRecord] = []
        self._last: _NfevRecord | None = None
        if generator is None and seed is not None:
            generator = torch.Generator().manual_seed(seed)
        self.reset_parameters(generator)

    # --- construction -------------------------------------------------------------------------
    def set_solver(self, *, method: str | None = None, steps: int | None = None, rtol: float | None = None,
                   atol: float | None = None, gradient: str | None = None) -> "NeuralODE":
        """Change the solver options (None keeps the current value; ``steps`` given as None with a
        new fixed method defaults to one step per piece); returns self.

        ``method``: a fixed-step method of :data:`solvers.FIXED_METHODS` (``steps`` a multiple of the
        field's pieces) or an adaptive one of :data:`solvers.ADAPTIVE_METHODS` (``rtol``, ``atol`` > 0).
        ``gradient``: ``"backprop"`` or ``"adjoint"``.  Everything is checked before anything is set.
        """
        if steps is None and method in (None, getattr(self, "method", None)):
            steps = getattr(self, "steps", None)
        method = getattr(self, "method", None) if method is None else method
        gradient = getattr(self, "gradient", None) if gradient is None else gradient
        rtol = getattr(self, "rtol", None) if rtol is None else rtol
        atol = getattr(self, "atol", None) if atol is None else atol
        method = check_choice("method", method, tuple(solvers.FIXED_METHODS) + tuple(solvers.ADAPTIVE_METHODS))
        gradient = check_choice("gradient", gradient, GRADIENTS)
        if gradient == "adjoint" and method in solvers.FIXED_METHODS and method not in _TORCHDIFFEQ_FIXED:
            raise ValueError(f"gradient='adjoint' with a fixed-step method runs torchdiffeq's steppers, which "
                             f"offer {sorted(_TORCHDIFFEQ_FIXED)}; got method={method!r} (use "
                             f"gradient='backprop' for it)")
        rtol, atol = check_positive("rtol", rtol), check_positive("atol", atol)
        L = self.field.pieces.pieces
        if method in solvers.FIXED_METHODS:
            if steps is None:
                if self.kind == "mlp":
                    raise ValueError(f"steps is required for method={method!r} with the MLP field (one piece)")
                steps = L
            check_positive_int("steps", steps)
            if steps % L:
                raise ValueError(f"steps must be a multiple of the field's {L} pieces (no step may straddle a "
                                 f"boundary); got steps={steps}")
        elif steps is not None:
            raise ValueError(f"steps applies to fixed-step methods only; got steps={steps!r} with method={method!r}")
        self.method, self.steps, self.rtol, self.atol, self.gradient = method, steps, rtol, atol, gradient
        return self

    @torch.no_grad()
    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Uniform(-1/√fan_in, 1/√fan_in) for every weight and bias, in the order of
        :meth:`ResNet.reset_parameters` (input map, output map, field), fan_in the state width
        d = m + k for the layer and smooth fields."""
        if self.inp is not None:
            uniform_(self.inp.weight, self.n_in, generator)
            uniform_(self.inp.bias, self.n_in, generator)
        uniform_(self.out.weight, self.width, generator)
        uniform_(self.out.bias, self.width, generator)
        if isinstance(self.field, TimeMLPField):
            self.field.reset_parameters(generator)
        else:
            for p in self.field.parameters():
                uniform_(p, self.state_width, generator)

    # --- shape and options ----------------------------------------------------------------------
    @property
    def n_in(self) -> int:
        """Input dimension n."""
        return self._width if self.inp is None else self.inp.in_features

    @property
    def width(self) -> int:
        """Width m of the state read out (the augmented state has :attr:`state_width` = m + k)."""
        return self._width

    @property
    def state_width(self) -> int:
        """Width d = m + k of the integrated (augmented) state."""
        return self._width + self.augment

    @property
    def n_out(self) -> int:
        """Output dimension q."""
        return self.out.out_features

    @property
    def T(self) -> float:
        """Time horizon T: the flow runs over [0, T]."""
        return self.field.pieces.t1

    @property
    def pieces(self) -> int:
        """Pieces of the field: L (layer), K (smooth), 1 (mlp)."""
        return self.field.pieces.pieces

    @property
    def dtype(self) -> torch.dtype:
        """The dtype of the parameters (float32 or float64); inputs must have it."""
        return self.out.weight.dtype

    @property
    def nfev_forward(self) -> int:
        """Field evaluations of the last forward pass that recorded a graph."""
        return 0 if self._last is None else self._last.forward

    @property
    def nfev_backward(self) -> int:
        """Field evaluations of the backward pass of that forward pass (0 until it has run)."""
        return 0 if self._last is None else self._last.backward

    @property
    def nfev_log(self) -> list[tuple[int, int]]:
        """(forward, backward) field evaluations of every forward pass that recorded a graph."""
        return [(r.forward, r.backward) for r in self._log]

    @property
    def config(self) -> dict:
        """The architecture and solver options (weights aside)."""
        cfg = dict(n_in=self.n_in, width=self.width, n_out=self.n_out, field=self.kind, pieces=self.pieces,
                   T=self.T, augment=self.augment, activation=self.activation.name, input_map=self.input_map,
                   output=self.output, method=self.method, steps=self.steps, rtol=self.rtol, atol=self.atol,
                   gradient=self.gradient, seed=self.seed, dtype=str(self.dtype).removeprefix("torch."))
        if isinstance(self.field, TimeMLPField):
            cfg["hidden"] = self.field.w1.shape[0]
        return cfg

    # --- evaluation ---------------------------------------------------------------------------
    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """z(0) = (A(x), 0_k), shape (batch, m + k); ``x`` of shape (batch, n_in) and the model's dtype."""
        h = apply_input_map(check_input(x, self.n_in, self.dtype), self.inp, self.input_map, self.activation)
        if self.augment:
            h = torch.cat([h, h.new_zeros(h.shape[0], self.augment)], dim=1)
        return h

    def readout(self, z: torch.Tensor) -> torch.Tensor:
        """Φ = w_out^T z_{1..m} + b_out (sigmoid for ``output="sigmoid"``): the k augmented channels dropped."""
        return apply_output_map(z[:, : self.width], self.out, self.output)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_state("x", x)
        return self.readout(self.integrate(self.embed(x)))

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """w_out^T z(T)_{1..m} + b_out without the output sigmoid."""
        check_state("x", x)
        return self.out(self.integrate(self.embed(x))[:, : self.width])

    def integrate(self, z0: torch.Tensor, *, reverse: bool = False) -> torch.Tensor:
        """z(T) from z(0) = ``z0`` (batch, m + k) with the model's solver and gradient mode; with
        ``reverse`` the flow backwards, z(0) from z(T) = ``z0`` (the field g(s, z) = -f(T - s, z) on
        [0, T], restarted at the same boundaries).  Updates the nfev attributes (module docstring).

        Raises RuntimeError when the solver fails (a non-finite state, too many steps)."""
        record = _NfevRecord()
        field = _Reversed(self.field) if reverse else self.field
        if self.gradient == "adjoint" and torch.is_grad_enabled():
            z = self._integrate_adjoint(field, z0, record)
        else:
            # restart at every boundary, as the adjoint pass does: both modes integrate the same
            # pieces from the same initial step
            adaptive: dict[str, Any] = ({} if self.steps is not None else
                                        dict(rtol=self.rtol, atol=self.atol, boundaries="restart"))
            sol = solvers.solve(field, z0, method=self.method, steps=self.steps, record="end", **adaptive)
            if not sol.success:
                raise RuntimeError(f"NeuralODE: the {self.method} integration failed: {sol.message}")
            z, record.forward = sol.y[-1], sol.nfev
        record.in_forward = False
        if torch.is_grad_enabled() and z.requires_grad:
            self._log.append(record)
            self._last = record
        else:
            self.nfev_eval = record.forward
        return z

    def _integrate_adjoint(self, field, z0, record):
        """One ``odeint_adjoint`` call per piece [t_l, t_{l+1}]: the adjoint restarts at every
        boundary in the backward pass as the state does in the forward pass."""
        grid = field.pieces
        params = tuple(p for p in self.field.parameters() if p.requires_grad)
        z = z0
        if self.method in solvers.FIXED_METHODS:
            m = self.steps // grid.pieces
            fine = TimeGrid(grid.t0, grid.t1, self.steps, grid.pieces)
        for l in range(grid.pieces):
            f = _Counted(field.piece(l), record)
            if self.method in solvers.FIXED_METHODS:
                # the piece's own nodes (each computed from its integer index) as the fixed grid, handed
                # over by grid_constructor so that only the end state is returned and saved (passing
                # them as output times would keep all m + 1 states for the backward pass)
                nodes = torch.tensor([fine.node(l * m + j) for j in range(m + 1)], dtype=z.dtype, device=z.device)
                t = nodes[[0, -1]]
                opts = {"grid_constructor": lambda f_, y_, t_, nodes=nodes: nodes if t_[0] < t_[-1] else nodes.flip(0)}
                z = torchdiffeq.odeint_adjoint(f, z, t, method=_TORCHDIFFEQ_FIXED[self.method], options=opts,
                                               adjoint_params=params)[-1]
            else:
                a, b = grid.boundary(l), grid.boundary(l + 1)
                t = torch.tensor([a, b], dtype=torch.float64, device=z.device)
                # step_t: the last step lands on the piece's end, as solvers.solve does; the adjoint
                # pass runs from b to a and lands on a.
                opts = {"step_t": torch.tensor([b], dtype=torch.float64)}
                adj_opts = {"step_t": torch.tensor([a], dtype=torch.float64)}
                try:
                    z = torchdiffeq.odeint_adjoint(f, z, t, rtol=self.rtol, atol=self.atol, method=self.method,
                                                   options=opts, adjoint_options=adj_opts, adjoint_params=params)[-1]
                except AssertionError as exc:  # torchdiffeq signals step-size underflow by assert
                    raise RuntimeError(f"NeuralODE: the {self.method} integration failed in piece {l} "
                                       f"(t in [{a}, {b}]): {exc}") from exc
            if not all_finite(z.detach()):
                raise RuntimeError(f"NeuralODE: non-finite state at the end of piece {l} (t={grid.boundary(l + 1)})")
        return z

    # --- conversions --------------------------------------------------------------------------
    def to_resnet(self, depth: int) -> ResNet:
        """The ResNet h_{l+1} = h_l + (T/L) σ(W_l h_l + b_l) of depth L = ``depth`` (ε = 1, δ = T/L)
        whose block l has the field's weights at the layer time t_l = l T / L:

        - layer field (L' pieces): W_l = W_{p(l)}, p(l) = floor(l L' / L) the piece of t_l (in
          integers, as the solvers' steps find their piece), so ``depth = L'`` gives the same
          weights exactly and ``depth = r L'`` repeats each piece r times;
        - smooth field: W_l = W(t_l), b_l = b(t_l) (:meth:`SmoothField.sample`), the Euler
          discretisation whose error against the flow is O(T/L);
        - the MLP field is not of the form σ(W z + b) and has no ResNet: TypeError.

        With ``augment = k`` the ResNet has width m + k, an input map padded with k zero rows
        (identity becomes the affine map [I; 0]) and an output map with k zero columns; an
        ``"activated"`` input map needs σ(0) = 0.  The model in eval mode, on the same device and dtype.
        """
        from .resnet import ResNet

        check_positive_int("depth", depth)
        if self.kind == "mlp":
            raise TypeError("to_resnet needs field='layer' or 'smooth': the MLP field W_2 σ(W_1 z + t u + c) + b_2 "
                            "is not a ResNet block σ(W h + b)")
        k, m, d = self.augment, self.width, self.state_width
        dev = self.out.weight.device
        if k and self.input_map == "activated" and self.activation.fn(torch.zeros(1, dtype=self.dtype)).item() != 0:
            raise ValueError(f"to_resnet with augment={k} and input_map='activated' needs σ(0) = 0 (zero channels "
                             f"stay zero); activation {self.activation.name!r} has σ(0) != 0")
        input_map = "affine" if (k and self.input_map == "identity") else self.input_map
        same_seed = self.kind == "layer" and k == 0 and depth == self.pieces
        net = ResNet.neural_ode(self.n_in, d, self.n_out, depth=depth, T=self.T, activation=self.activation.name,
                                input_map=input_map, output=self.output, dtype=self.dtype, device=dev,
                                generator=torch.Generator().manual_seed(0))
        net.seed = self.seed if same_seed else None
        with torch.no_grad():
            if self.kind == "layer":
                # the piece of t_l = l T / depth is floor(l L' / depth), in integers: the float
                # t_l can round below a boundary j T / L' that it equals exactly (T = 0.3, L' = 10,
                # depth = 30, l = 12), and would then repeat the previous piece
                L = self.pieces
                idx = [l * L // depth for l in range(depth)]
                layers = cast(LayerField, self.field)
                W, b = layers.weight[idx], layers.bias[idx]
            else:
                W, b = cast(SmoothField, self.field).sample(depth)
            net.field.weight.copy_(W)
            net.field.bias.copy_(b)
            if net.inp is not None:
                net.inp.weight.zero_()
                net.inp.bias.zero_()
                if self.inp is None:
                    net.inp.weight[:m].copy_(torch.eye(m, dtype=self.dtype))
                else:
                    net.inp.weight[:m].copy_(self.inp.weight)
                    net.inp.bias[:m].copy_(self.inp.bias)
            net.out.weight.zero_()
            net.out.weight[:, :m].copy_(self.out.weight)
            net.out.bias.copy_(self.out.bias)
        return net.eval()

    @classmethod
    def from_resnet(cls, net: ResNet, **solver: Any) -> NeuralODE:
        """The layer-field neural ODE with ``net``'s weights (see :meth:`odenet.ResNet.to_ode`)."""
        if net.batchnorm:
            raise ValueError("from_resnet needs a ResNet without BatchNorm; fold it first "
                             "(net.eval().fold_batchnorm())")
        if net.eps != 1 or not math.isclose(net.delta, net.h, rel_tol=1e-12):
            raise ValueError(f"a ResNet is the Euler discretisation of x' = σ(W(t) x + b(t)) only for ε = 1 and "
                             f"δ = T/L (gain δ/h = 1, as ResNet.neural_ode builds); got eps={net.eps}, "
                             f"delta={net.delta}, T/L={net.h}")
        if "method" not in solver:
            solver = dict(method="euler", steps=net.depth, **solver)
        ode = cls(net.n_in, net.width, net.n_out, field="layer", pieces=net.depth, T=net.T,
                  activation=net.activation.name, input_map=net.input_map, output=net.output,
                  dtype=net.field.weight.dtype, device=net.field.weight.device,
                  generator=torch.Generator().manual_seed(0), **solver)
        ode.seed = net.seed
        with torch.no_grad():
            layers = cast(LayerField, ode.field)
            layers.weight.copy_(net.field.weight)
            layers.bias.copy_(net.field.bias)
            if net.inp is not None and ode.inp is not None:
                ode.inp.load_state_dict(net.inp.state_dict())
            ode.out.load_state_dict(net.out.state_dict())
        return ode.train(net.training)

    def extra_repr(self) -> str:
        solver = (f"method={self.method!r}, steps={self.steps}" if self.steps is not None
                  else f"method={self.method!r}, rtol={self.rtol}, atol={self.atol}")
        return (f"n_in={self.n_in}, width={self.width}, n_out={self.n_out}, field={self.kind!r}, "
                f"pieces={self.pieces}, T={self.T}, augment={self.augment}, {solver}, gradient={self.gradient!r}")
