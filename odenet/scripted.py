"""The compiled small-batch path of the generalised-Euler kernel (``compile=True``).

For a small batch the eager loop of :mod:`odenet.kernel` spends most of its time in Python:
about one interpreted frame and three operator calls per step.  Here the whole loop

    h_{k+1} = ε h_k + δ σ(W_l h_k + b_l),   l = k // r,   k = start … start + S - 1,

runs in TorchScript's interpreter, without Python frames, calling the *same* ATen operations
with the same arguments as the kernel's tight path (``addmm``/``baddbmm`` into a scratch
buffer, σ in place, one fused ``add(alpha=δ)`` or ``mul`` + ``add_`` into preallocated rows),
so the two give the same bits (tested with ``torch.equal``).  TorchScript rather than
``torch.compile``: Inductor generates its own kernels (a fused tanh, another summation order),
so its results differ in the last bits, and compiling the 100-step loop took minutes; scripting
takes milliseconds, once per process.

Activations: those of :data:`odenet.activations.ACTIVATIONS` (tanh, relu, softplus,
identity), passed as an integer code so that one scripted function serves all of them and both
record modes (the branch costs the interpreter nothing measurable next to an operator call).
A user-defined :class:`~odenet.activations.Activation` cannot be scripted: ValueError.
"""
from __future__ import annotations

import functools
import warnings

import torch

from .activations import ACTIVATIONS, Activation

#: activation name -> the code the scripted loop branches on
SCRIPTED_ACTIVATIONS = {"tanh": 0, "relu": 1, "softplus": 2, "identity": 3}


def activation_code(act: Activation) -> int:
    """The scripted loop's code of ``act``; ValueError for an activation it cannot run."""
    if act.name not in SCRIPTED_ACTIVATIONS or ACTIVATIONS.get(act.name) is not act:
        raise ValueError(f"compile=True supports the built-in activations {sorted(SCRIPTED_ACTIVATIONS)}; "
                         f"got activation {act.name!r} ({act!r}); use compile=False for it")
    return SCRIPTED_ACTIVATIONS[act.name]


def _euler_loop(Ws: list[torch.Tensor], bs: list[torch.Tensor], h0: torch.Tensor, eps: float, delta: float,
                refine: int, start: int, steps: int, activation: int, keep: bool) -> torch.Tensor:
    # the kernel's tight path, operation for operation (see odenet.kernel._run)
    hbuf = torch.empty([steps + 1 if keep else 2] + list(h0.shape), dtype=h0.dtype, device=h0.device)
    hbuf[0] = h0
    rows = hbuf.unbind(0)
    h = rows[0]
    z = torch.empty_like(h)
    batched = h.dim() == 3
    for i in range(steps):
        l = (start + i) // refine
        out = rows[i + 1] if keep else rows[(i + 1) % 2]
        if batched:
            torch.baddbmm(bs[l], Ws[l], h, out=z)
        else:
            torch.addmm(bs[l], Ws[l], h, out=z)
        if activation == 0:
            s = z.tanh_()
        elif activation == 1:
            s = z.relu_()
        elif activation == 2:
            s = torch.nn.functional.softplus(z)
        else:
            s = z
        if eps == 1.0:
            torch.add(h, s, alpha=delta, out=out)
        else:
            torch.mul(h, eps, out=out).add_(s, alpha=delta)
        h = out
    return hbuf if keep else h


@functools.cache
def scripted_euler_loop() -> torch.jit.ScriptFunction:
    """The TorchScript function of the loop, scripted once per process (milliseconds).

    ``(Ws, bs, h0, eps, delta, refine, start, steps, activation, keep) -> states``: per-layer
    W_l (m, m) or (K, m, m) and b_l as a column (m, 1) or (K, m, 1), h0 batch-last (m, B) or
    (K, m, B); returns every state (steps + 1, …, m, B) if ``keep`` else the last (…, m, B).
    """
    with warnings.catch_warnings():  # torch >= 2.10 deprecates TorchScript; it is still the tool here
        warnings.filterwarnings("ignore", message=r".*torch\.jit\.script.* is deprecated", category=DeprecationWarning)
        return torch.jit.script(_euler_loop)
