"""Is a (trained) ResNet a discretised ODE?  Three checks on any :class:`odenet.ResNet`:

(a) **solver swap** (Ott et al., ICLR 2021): evaluate the network's associated ODE
    x' = -γ x + a σ(W(t) x + b(t)) with other methods and step sizes and report the change of the
    output Φ and of the accuracy.  W(t) is read from the blocks piecewise (the associated ODE)
    or linearly between layers (:func:`continuous_depth_ode`).  A network that discretises its
    ODE changes by O(h) (it is the Euler solution); i.i.d. layers on the linear reading change
    by O(1) whatever the depth.
(b) **weight regularity across depth** (Cohen et al., ICML 2021): with ‖·‖ the Frobenius (or
    spectral) norm of the BatchNorm-folded block weights,

        max norm        max_l ‖W_l‖                       ~ L^{-α}
        increments      ΔW_l = ‖W_{l+1} - W_l‖, max_l ΔW_l ~ L^{-β}
        quadratic var.  QV = Σ_l ΔW_l²,   rms increment (QV / (L-1))^{1/2} ~ L^{-β}

    with the exponents fitted by least squares on log-log data over a family of depths.
    Weights W_l = W(l/L) + L^{-β} ξ_l (ξ i.i.d.) give β for β < 1; smooth weights give β = 1.
(c) **reverse-Euler reconstruction** (Sander et al., NeurIPS 2022): from h_L, run the blocks
    backwards with the explicit step x̂_l = (x̂_{l+1} - δ f_l(x̂_{l+1})) / ε and report
    ‖x̂_l - h_l‖.  Each step errs by δ (f_l(h_{l+1}) - f_l(h_l)) / ε = O(δ² Lip f_l |f_l|), so the
    total error is O(δ² L): O(1/L) in the ODE regime δ = T/L, O(1) when δ = T/√L (the scaling
    that i.i.d. weights need for a non-trivial limit, Marion et al.).

All integrations go through :func:`solvers.solve`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Sequence

import numpy as np
import torch
from numpy.typing import ArrayLike

import solvers
from solvers import TimeGrid
from solvers.validation import check_choice, check_positive, check_positive_int, check_state

from analysis.continuum.convergence import OrderFit, error_norms, fit_order

if TYPE_CHECKING:
    from odenet import DampedField, ResNet

__all__ = ["WeightRegularity", "RegularityExponents", "ReverseEuler", "SolverSwap", "DepthSeries",
           "weight_regularity", "regularity_exponents", "reverse_euler", "reverse_euler_study", "solver_swap",
           "swap_study", "depth_exponent", "classification_accuracy", "continuous_depth_ode", "READINGS"]


# --------------------------------------------------------------------------------------------
# records
@dataclass
class DepthSeries:
    """A distance measured on networks of depths L_1 < ... < L_n, in the sup and rms norms:
    ``depths`` (n,), ``value_sup``/``value_rms`` (n,), and ``fit_sup``/``fit_rms`` the
    least-squares slope s of log value = log C + s log L (None if a value is zero)."""

    quantity: str
    depths: np.ndarray
    value_sup: np.ndarray
    value_rms: np.ndarray
    fit_sup: OrderFit | None
    fit_rms: OrderFit | None


@dataclass
class WeightRegularity:
    """Regularity of one network's block weights across depth (module docstring, (b)).

    ``norms`` (L,): ‖W_l‖; ``increments`` (L-1,): ‖W_{l+1} - W_l‖; scalars ``max_norm``,
    ``max_increment``, ``total_variation`` Σ ΔW_l, ``quadratic_variation`` Σ ΔW_l²,
    ``rms_increment`` (QV / (L-1))^{1/2}."""

    depth: int
    norm: str
    norms: np.ndarray
    increments: np.ndarray
    max_norm: float
    max_increment: float
    total_variation: float
    quadratic_variation: float
    rms_increment: float


@dataclass
class RegularityExponents:
    """Weight regularity over a family of depths ``depths`` (n,), with the fitted power laws
    (slopes s of log q on log L; the exponents are α = -s(max_norm), β = -s(increment)).

    Arrays (n,): ``max_norm``, ``max_increment``, ``rms_increment``, ``quadratic_variation``.
    """

    depths: np.ndarray
    norm: str
    max_norm: np.ndarray
    max_increment: np.ndarray
    rms_increment: np.ndarray
    quadratic_variation: np.ndarray
    fit_max_norm: OrderFit
    fit_max_increment: OrderFit
    fit_rms_increment: OrderFit
    fit_quadratic_variation: OrderFit

    @property
    def alpha(self) -> float:
        """α in max_l ‖W_l‖ ~ L^{-α}."""
        return -self.fit_max_norm.order

    @property
    def beta(self) -> float:
        """β in the rms increment (QV/(L-1))^{1/2} ~ L^{-β} (the least noisy estimate)."""
        return -self.fit_rms_increment.order

    @property
    def beta_max(self) -> float:
        """β in max_l ‖W_{l+1} - W_l‖ ~ L^{-β}."""
        return -self.fit_max_increment.order


@dataclass
class ReverseEuler:
    """Reverse-Euler reconstruction of one network: ``layer_err_sup``/``layer_err_rms`` (L+1,)
    the distance ‖x̂_l - h_l‖ at every layer l (0 at l = L), ``err_sup``/``err_rms`` at l = 0."""

    depth: int
    err_sup: float
    err_rms: float
    layer_err_sup: np.ndarray
    layer_err_rms: np.ndarray


@dataclass
class SolverSwap:
    """The network evaluated with other solvers on its associated ODE, one row per run:
    ``methods`` (run,) names, ``refine`` (run,) sub-steps per layer (0 for adaptive methods),
    ``nfev`` (run,), ``change_sup``/``change_rms`` (run,) the distance ‖Φ_swap - Φ‖ of the
    outputs to the network's own, ``accuracy`` (run,) of the swapped model and
    ``base_accuracy`` of the network (NaN without labels)."""

    depth: int
    methods: list
    refine: np.ndarray
    nfev: np.ndarray
    change_sup: np.ndarray
    change_rms: np.ndarray
    accuracy: np.ndarray
    base_accuracy: float


# --------------------------------------------------------------------------------------------
# helpers
def depth_exponent(depths: ArrayLike, values: ArrayLike, confidence: float = 0.95) -> OrderFit:
    """Slope s of log value = log C + s log L by least squares, with its t interval
    (:func:`analysis.continuum.convergence.fit_order` with h = L)."""
    return fit_order(depths, values, confidence)


def _check_depths(name: str, depths) -> np.ndarray:
    depths = [int(d) for d in depths]
    if len(depths) < 3:
        raise ValueError(f"{name} must hold at least 3 depths for an exponent fit; got {depths}")
    if any(b <= a for a, b in zip(depths, depths[1:])):
        raise ValueError(f"{name} must be strictly increasing; got {depths}")
    return np.asarray(depths, dtype=np.int64)


def _check_nets(nets) -> list:
    from odenet import ResNet

    nets = list(nets)
    for i, n in enumerate(nets):
        if not isinstance(n, ResNet):
            raise TypeError(f"nets[{i}] must be an odenet.ResNet; got {type(n).__name__}")
    _check_depths("the networks' depths", [n.depth for n in nets])
    return nets


def _maybe_fit(depths, values):
    values = np.asarray(values, dtype=np.float64)
    if not (np.isfinite(values).all() and (values > 0).all()):
        return None
    return depth_exponent(depths, values)


def classification_accuracy(outputs: torch.Tensor, labels: torch.Tensor, threshold: float = 0.0) -> float:
    """Fraction of correct predictions: with one output, class 1 iff Φ > ``threshold`` (0 for a
    logit, 1/2 for a sigmoid output); with several outputs, the argmax."""
    labels = labels.reshape(-1)
    if outputs.shape[1] == 1:
        pred = (outputs[:, 0] > threshold).to(labels.dtype)
        return float((pred == labels).double().mean())
    return float((outputs.argmax(1) == labels).double().mean())


# --------------------------------------------------------------------------------------------
# (b) weight regularity
def weight_regularity(net_or_weight: ResNet | torch.Tensor, norm: str = "fro") -> WeightRegularity:
    """Norms and increments of the block weights W_l (L, m, m) of a ResNet (BatchNorm folded) or
    of a weight tensor; ``norm`` is ``"fro"`` (Frobenius) or ``"spectral"`` (largest singular
    value).  See the module docstring for the quantities."""
    check_choice("norm", norm, ("fro", "spectral"))
    W = net_or_weight.field.effective_weights()[0] if hasattr(net_or_weight, "field") else net_or_weight
    if not isinstance(W, torch.Tensor) or W.ndim != 3 or W.shape[1] != W.shape[2]:
        raise ValueError(f"weights must be a ResNet or a tensor of shape (L, m, m); got "
                         f"{tuple(W.shape) if isinstance(W, torch.Tensor) else type(W).__name__}")
    if W.shape[0] < 2:
        raise ValueError(f"weight regularity needs depth >= 2; got depth {W.shape[0]}")
    W = W.detach().to(torch.float64)
    ord_ = "fro" if norm == "fro" else 2
    norms = torch.linalg.matrix_norm(W, ord=ord_).cpu().numpy()
    inc = torch.linalg.matrix_norm(W[1:] - W[:-1], ord=ord_).cpu().numpy()
    qv = float((inc ** 2).sum())
    return WeightRegularity(depth=int(W.shape[0]), norm=norm, norms=norms, increments=inc, max_norm=float(norms.max()),
                            max_increment=float(inc.max()), total_variation=float(inc.sum()),
                            quadratic_variation=qv, rms_increment=math.sqrt(qv / (W.shape[0] - 1)))


def regularity_exponents(nets: Sequence, norm: str = "fro") -> RegularityExponents:
    """:func:`weight_regularity` over networks (or weight tensors) of strictly increasing depths
    (at least 3), with the power laws fitted against L (module docstring, (b))."""
    regs = [weight_regularity(n, norm) for n in nets]
    depths = _check_depths("the networks' depths", [r.depth for r in regs])
    q = {k: np.array([getattr(r, k) for r in regs]) for k in
         ("max_norm", "max_increment", "rms_increment", "quadratic_variation")}
    fit = {k: depth_exponent(depths, v) for k, v in q.items()}
    return RegularityExponents(depths=depths, norm=norm, max_norm=q["max_norm"], max_increment=q["max_increment"],
                               rms_increment=q["rms_increment"], quadratic_variation=q["quadratic_variation"],
                               fit_max_norm=fit["max_norm"], fit_max_increment=fit["max_increment"],
                               fit_rms_increment=fit["rms_increment"],
                               fit_quadratic_variation=fit["quadratic_variation"])


# --------------------------------------------------------------------------------------------
# (c) reverse-Euler reconstruction
class _ReversedBlocks:
    """The blocks in reverse order on the time-reversed grid: piece l is -f_{L-1-l}, so that the
    generalised Euler step with ε' = 1/ε, δ' = δ/ε is x ← (x - δ f_{L-1-l}(x)) / ε."""

    def __init__(self, field):
        self.field = field
        self.pieces = TimeGrid(0.0, field.pieces.t1, field.pieces.pieces, field.pieces.pieces)
        self._L = field.pieces.pieces

    def piece(self, l: int):
        f = self.field.piece(self._L - 1 - l)
        return lambda t, x: -f(t, x)

    def __call__(self, t, x):
        return self.piece(self.pieces.piece_of_time(t))(t, x)


def reverse_euler(net: ResNet, x: torch.Tensor) -> ReverseEuler:
    """Reconstruct the hidden states from h_L by x̂_L = h_L, x̂_l = (x̂_{l+1} - δ f_l(x̂_{l+1})) / ε
    and measure ‖x̂_l - h_l‖ (sup and rms over the inputs) at every layer.  Needs ε > 0."""
    if net.eps <= 0:
        raise ValueError(f"reverse Euler divides by the skip weight: eps must be > 0; got eps={net.eps}")
    check_state("x", x)
    with torch.no_grad():
        fwd = solvers.solve(net.field, net.embed(x), method="euler", eps=net.eps, delta=net.delta)
        if not fwd.success:
            raise RuntimeError(f"forward pass failed: {fwd.message}")
        back = solvers.solve(_ReversedBlocks(net.field), fwd.y[-1], method="euler", eps=1.0 / net.eps,
                             delta=net.delta / net.eps)
        if not back.success:
            raise RuntimeError(f"reverse pass failed: {back.message}")
        rec = back.y.flip(0)  # rec[l] reconstructs h_l
        e = (rec - fwd.y).abs()
        layer_sup = e.reshape(len(e), -1).amax(1).cpu().numpy()
        layer_rms = e.square().sum(-1).mean(-1).sqrt().cpu().numpy()
    return ReverseEuler(depth=net.depth, err_sup=float(layer_sup[0]), err_rms=float(layer_rms[0]),
                        layer_err_sup=layer_sup, layer_err_rms=layer_rms)


def reverse_euler_study(nets: Sequence, x: torch.Tensor) -> DepthSeries:
    """:func:`reverse_euler` error at l = 0 over networks of strictly increasing depths, with
    the slope s of error ~ L^s (s ≈ -1 in the ODE regime, s ≈ 0 where reconstruction fails)."""
    nets = _check_nets(nets)
    rs = [reverse_euler(n, x) for n in nets]
    depths = np.array([n.depth for n in nets])
    sup, rms = np.array([r.err_sup for r in rs]), np.array([r.err_rms for r in rs])
    return DepthSeries("reverse_euler", depths, sup, rms, _maybe_fit(depths, sup), _maybe_fit(depths, rms))


# --------------------------------------------------------------------------------------------
# (a) solver swap
READINGS = ("piecewise", "linear")


def continuous_depth_ode(net: ResNet, reading: str = "piecewise") -> DampedField:
    """The network's ODE x' = -γ x + a σ(W(t) x + b(t)) on [0, T] with W(t) read from the blocks:

    - ``"piecewise"``: W(t) = W_l on [t_l, t_{l+1}) (the associated ODE, :meth:`odenet.ResNet.ode`);
    - ``"linear"``: W(t) linear between W(t_l) = W_l at t_l = l h, constant on the last layer
      (an :class:`odenet.SmoothField` with knots t_0..t_L, W_L := W_{L-1}).  Euler with L steps
      on either reading is the network; higher-order methods see the weights between layers.
    BatchNorm is folded into the weights.
    """
    from odenet import DampedField, SmoothField

    check_choice("reading", reading, READINGS)
    if reading == "piecewise":
        return net.ode()
    W, b = (t.detach() for t in net.field.effective_weights())
    smooth = SmoothField(torch.cat([W, W[-1:]]), torch.cat([b, b[-1:]]), T=net.T, activation=net.activation.name)
    return DampedField(smooth, net.gamma, net.gain)


def _swapped_output(net, h0, method, m, rtol, atol, reading):
    ode = continuous_depth_ode(net, reading)
    if method in solvers.FIXED_METHODS:
        sol = solvers.solve(ode, h0, method=method, steps=net.depth * m, record="end")
    else:
        sol = solvers.solve(ode, h0, method=method, rtol=rtol, atol=atol, record="end")
    if not sol.success:
        raise RuntimeError(f"solver swap with {method} failed: {sol.message}")
    return net.readout(sol.y[-1].to(h0.dtype)), sol.nfev


def solver_swap(net: ResNet, x: torch.Tensor, labels: torch.Tensor | None = None, *,
                methods: Sequence[str] = ("euler", "heun", "midpoint", "rk4", "dopri5"),
                refinements: Sequence[int] = (1, 2, 4), reading: str = "piecewise", rtol: float = 1e-8,
                atol: float = 1e-8, metric: Callable[[torch.Tensor, torch.Tensor], float] | None = None) -> SolverSwap:
    """Outputs of the network with its blocks replaced by other solvers of its ODE, with W(t) read
    from the blocks as ``reading`` says (:func:`continuous_depth_ode`: ``"piecewise"`` or
    ``"linear"``).

    Fixed-step methods run with m sub-steps per layer for each m in ``refinements`` (steps L m,
    restarting at layer boundaries; euler with m = 1 is the network itself); adaptive methods
    once at ``rtol``/``atol``.  change = ‖Φ_swap(x) - Φ(x)‖ (sup, rms); ``metric(outputs,
    labels)`` (default :func:`classification_accuracy` at 1/2 for a sigmoid output, 0 for a
    linear one) gives the accuracy when ``labels`` is given.
    """
    all_methods = tuple(solvers.FIXED_METHODS) + solvers.ADAPTIVE_METHODS + solvers.REFERENCE_METHODS
    for name in methods:
        check_choice("methods", name, all_methods)
    refinements = [check_positive_int("refinements", r) for r in refinements]
    check_choice("reading", reading, READINGS)
    check_positive("rtol", rtol)
    check_positive("atol", atol)
    check_state("x", x)
    if labels is not None and len(labels) != len(x):
        raise ValueError(f"labels must have one entry per input ({len(x)}); got {len(labels)}")
    if metric is None:
        threshold = 0.5 if net.output == "sigmoid" else 0.0
        metric = lambda out, y: classification_accuracy(out, y, threshold)  # noqa: E731
    rows = []
    with torch.no_grad():
        h0 = net.embed(x)
        base = net(x)
        base_acc = metric(base, labels) if labels is not None else math.nan
        for method in methods:
            for m in (refinements if method in solvers.FIXED_METHODS else [0]):
                out, nfev = _swapped_output(net, h0, method, m, rtol, atol, reading)
                acc = metric(out, labels) if labels is not None else math.nan
                rows.append((method, m, nfev, *error_norms(out, base), acc))
    return SolverSwap(depth=net.depth, methods=[r[0] for r in rows], refine=np.array([r[1] for r in rows]),
                      nfev=np.array([r[2] for r in rows]), change_sup=np.array([r[3] for r in rows]),
                      change_rms=np.array([r[4] for r in rows]), accuracy=np.array([r[5] for r in rows]),
                      base_accuracy=base_acc)


def swap_study(nets: Sequence, x: torch.Tensor, *, method: str = "rk4", refine: int = 1, reading: str = "piecewise",
               rtol: float = 1e-8, atol: float = 1e-8) -> DepthSeries:
    """The solver-swap change ‖Φ_swap - Φ‖ with one ``method`` (``refine`` sub-steps per layer)
    over networks of strictly increasing depths, with the slope s of change ~ L^s
    (s ≈ -1 for weights smooth in depth with δ = T/L; s ≈ 0 where the network is no ODE)."""
    nets = _check_nets(nets)
    rows = [solver_swap(n, x, methods=(method,), refinements=(refine,), reading=reading, rtol=rtol, atol=atol)
            for n in nets]
    depths = np.array([n.depth for n in nets])
    sup = np.array([r.change_sup[0] for r in rows])
    rms = np.array([r.change_rms[0] for r in rows])
    return DepthSeries(f"swap_{method}_{reading}", depths, sup, rms, _maybe_fit(depths, sup), _maybe_fit(depths, rms))
