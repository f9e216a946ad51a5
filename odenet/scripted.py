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

One function is scripted per (activation, record mode, member axis, ε = 1), lazily, from one
source template, so that the loop body holds no branch on its arguments (the interpreter pays
for each instruction it runs per step).  Activations: those of
:data:`odenet.activations.ACTIVATIONS` (tanh, relu, softplus, identity), each applied as its
``apply_`` does; a user-defined :class:`~odenet.activations.Activation` cannot be scripted:
ValueError.
"""
from __future__ import annotations

import functools

import torch

from .activations import ACTIVATIONS, Activation

#: σ(z) as the tight path applies it (``Activation.apply_``: in place where σ allows)
SCRIPTED_ACTIVATIONS = {"tanh": "z.tanh_()", "relu": "z.relu_()", "softplus": "torch.nn.functional.softplus(z)",
                        "identity": "z"}

# The kernel's tight path (odenet.kernel._run), operation for operation.  Placeholders: the number
# of state rows kept and the row a step writes (every state, or two alternating rows), the affine
# map (addmm, or baddbmm over a member axis), σ, and the update (one fused axpy when ε = 1).
_LOOP = """
def loop(Ws: List[Tensor], bs: List[Tensor], h0: Tensor, eps: float, delta: float, refine: int, start: int,
         steps: int) -> Tensor:
    hbuf = torch.empty([{rows}] + list(h0.shape), dtype=h0.dtype, device=h0.device)
    hbuf[0] = h0
    rows = hbuf.unbind(0)
    h = rows[0]
    z = torch.empty_like(h)
    for i in range(steps):
        out = rows[{next_row}]
        l = (start + i) // refine
        torch.{affine}(bs[l], Ws[l], h, out=z)
        s = {activate}
        {update}
        h = out
    return {result}
"""


def check_scriptable(act: Activation) -> str:
    """The name of ``act`` if the scripted loop runs it; ValueError otherwise."""
    if act.name not in SCRIPTED_ACTIVATIONS or ACTIVATIONS.get(act.name) is not act:
        raise ValueError(f"compile=True runs the built-in activations {sorted(SCRIPTED_ACTIVATIONS)} only; got a "
                         f"user-defined activation named {act.name!r}; use compile=False for it")
    return act.name


@functools.cache
def scripted_euler_loop(activation: str, keep: bool, batched: bool, unit_eps: bool) -> torch.jit.ScriptFunction:
    """The loop in TorchScript for one activation (a key of :data:`SCRIPTED_ACTIVATIONS`), record
    mode (``keep``: every state), layout (``batched``: a leading member axis) and ε = 1 or not;
    scripted on first use (tens of milliseconds) and kept for the process.

    ``loop(Ws, bs, h0, eps, delta, refine, start, steps)``: per-layer W_l (m, m) or (K, m, m) and
    b_l as a column (m, 1) or (K, m, 1), h0 batch-last (m, B) or (K, m, B); returns every state
    (steps + 1, …, m, B) if ``keep`` else the last (…, m, B).
    """
    source = _LOOP.format(
        rows="steps + 1" if keep else "2", next_row="i + 1" if keep else "(i + 1) % 2",
        affine="baddbmm" if batched else "addmm", activate=SCRIPTED_ACTIVATIONS[activation],
        update=("torch.add(h, s, alpha=delta, out=out)" if unit_eps else
                "torch.mul(h, eps, out=out).add_(s, alpha=delta)"),
        result="hbuf" if keep else "h")
    return torch.jit.CompilationUnit(source).loop
