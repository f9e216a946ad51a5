"""Training a neural ODE: odenet.NeuralODE against torchdiffeq's odeint / odeint_adjoint written
directly, and the memory of the two gradient modes against the number of solver steps.

1. Time of one training epoch (Adam, mini-batches of the circles set, binary cross-entropy) of a
   width-2 neural ODE σ(W_l z + b_l) with L pieces, dopri5 at rtol = atol = 1e-6: ours
   (NeuralODE.logits) against the same model written directly with torchdiffeq (the input map,
   one odeint or odeint_adjoint call per piece with the same options, the output map).  Both
   sides start every repeat from the same weights and visit the batches in the same order; they
   run interleaved in one process; the figure is the median over repeats of ours / direct in CPU
   time of the process (robust to other jobs on a shared machine, with one thread) and in wall time.
2. Memory of one forward and backward pass against the number of fixed (rk4) steps, each
   configuration in a fresh child process: the bytes autograd saves for the backward pass (exact,
   through saved_tensors_hooks) and the peak resident set size above the process's size before
   the pass (sampled every millisecond from /proc/self/statm: Linux).  The adjoint keeps O(1)
   states, backprop every stage of every step.

    python scripts/bench_ode_training.py --repeats 9 --threads 1
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import torch
import torch.nn.functional as F
import torchdiffeq

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import odenet  # noqa: E402
from odenet import NeuralODE  # noqa: E402


def make_model(gradient: str, pieces: int, method: str = "dopri5", steps=None, tol: float = 1e-6) -> NeuralODE:
    solver = dict(method=method, steps=steps) if steps else dict(method=method, rtol=tol, atol=tol)
    return NeuralODE(2, 2, 1, field="layer", pieces=pieces, T=2.0, input_map="activated", output="sigmoid",
                     gradient=gradient, seed=0, **solver)


class Direct(torch.nn.Module):
    """The same network written directly on torchdiffeq: tanh(W_in x + b_in), one solve per piece
    [l T/L, (l+1) T/L] of z' = tanh(W_l z + b_l) (the last step landing on the piece's end, as ours),
    w^T z + b."""

    def __init__(self, model: NeuralODE, adjoint: bool):
        super().__init__()
        self.inp = torch.nn.Linear(2, 2, dtype=torch.float64)
        self.out = torch.nn.Linear(2, 1, dtype=torch.float64)
        self.W = torch.nn.Parameter(model.field.weight.detach().clone())
        self.b = torch.nn.Parameter(model.field.bias.detach().clone())
        self.inp.load_state_dict(model.inp.state_dict())
        self.out.load_state_dict(model.out.state_dict())
        self.adjoint, self.T, self.L = adjoint, model.T, model.pieces
        self.rtol, self.atol, self.method = model.rtol, model.atol, model.method

    def logits(self, x):
        z = torch.tanh(self.inp(x))
        for l in range(self.L):
            a, b = self.T * l / self.L, self.T * (l + 1) / self.L
            W, bias = self.W[l], self.b[l]

            def f(t, z, W=W, bias=bias):
                return torch.tanh(z @ W.T + bias)

            t = torch.tensor([a, b], dtype=torch.float64)
            opts = {"step_t": torch.tensor([b], dtype=torch.float64)}
            if self.adjoint:
                z = torchdiffeq.odeint_adjoint(f, z, t, rtol=self.rtol, atol=self.atol, method=self.method,
                                               options=opts, adjoint_options={"step_t": torch.tensor([a])},
                                               adjoint_params=(self.W, self.b))[-1]
            else:
                z = torchdiffeq.odeint(f, z, t, rtol=self.rtol, atol=self.atol, method=self.method, options=opts)[-1]
        return self.out(z)


def epoch(model, x, y, perm, batch_size, lr=0.01) -> tuple[float, float]:
    """One epoch of Adam on the batches of ``perm``; returns (CPU time of this process, wall time)."""
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    c0, t0 = time.process_time(), time.perf_counter()
    for i in range(0, len(x), batch_size):
        idx = perm[i:i + batch_size]
        opt.zero_grad(set_to_none=True)
        F.binary_cross_entropy_with_logits(model.logits(x[idx]), y[idx]).backward()
        opt.step()
    return time.process_time() - c0, time.perf_counter() - t0


def timing(args) -> None:
    data = odenet.circles(seed=0)
    x, y = data.x_train, data.y_train
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    print(f"one epoch: {len(x)} circles points, batches of {args.batch_size}, width 2, L = {args.pieces} pieces, "
          f"dopri5 rtol = atol = {args.tol:g}, {args.repeats} repeats, {torch.get_num_threads()} threads")
    print("| gradient | ours CPU (s) | direct CPU (s) | ours / direct, CPU time | ours / direct, wall time | "
          "nfev fwd / bwd (last step) |")
    print("|---|---|---|---|---|---|")
    for gradient in ("backprop", "adjoint"):
        template = make_model(gradient, args.pieces, tol=args.tol)
        start = {k: v.clone() for k, v in template.state_dict().items()}
        ours_t, direct_t = [], []
        for r in range(args.repeats + 1):  # the first round warms both sides up and is not counted
            template.load_state_dict(start)
            direct = Direct(template, gradient == "adjoint")
            t_ours = epoch(template, x, y, perm, args.batch_size)
            t_direct = epoch(direct, x, y, perm, args.batch_size)
            if r:
                ours_t.append(t_ours)
                direct_t.append(t_direct)
        cpu = [a[0] / b[0] for a, b in zip(ours_t, direct_t)]
        wall = [a[1] / b[1] for a, b in zip(ours_t, direct_t)]
        print(f"| {gradient} | {statistics.median(a[0] for a in ours_t):.3f} | "
              f"{statistics.median(b[0] for b in direct_t):.3f} | "
              f"{statistics.median(cpu):.3f} (min {min(cpu):.3f}, max {max(cpu):.3f}) | "
              f"{statistics.median(wall):.3f} (min {min(wall):.3f}, max {max(wall):.3f}) | "
              f"{template.nfev_forward} / {template.nfev_backward} |")


def memory_child(gradient: str, steps: int, batch: int, pieces: int) -> None:
    """One forward + backward pass; prints JSON: saved bytes and peak RSS above the start (bytes)."""
    torch.set_num_threads(1)
    model = make_model(gradient, pieces, method="rk4", steps=steps)
    x = torch.randn(batch, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    seen, saved = set(), [0]

    def pack(t):
        s = t.untyped_storage()
        if s.data_ptr() not in seen:
            seen.add(s.data_ptr())
            saved[0] += s.nbytes()
        return t

    page = os.sysconf("SC_PAGE_SIZE")

    def rss() -> int:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * page

    before, peak, done = rss(), [0], threading.Event()

    def sample():  # the resident set size every millisecond while the pass runs
        while not done.is_set():
            peak[0] = max(peak[0], rss())
            time.sleep(1e-3)

    sampler = threading.Thread(target=sample)
    sampler.start()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = model.logits(x).square().mean()
    loss.backward()
    done.set()
    sampler.join()
    print(json.dumps(dict(saved=saved[0], peak=max(peak[0] - before, 0), nfev=model.nfev_forward,
                          nfev_backward=model.nfev_backward)))


def memory(args) -> None:
    print(f"\nmemory of one forward + backward pass, rk4, batch {args.memory_batch}, width 2, L = {args.pieces}, "
          f"each in a fresh process")
    print("| gradient | steps | saved for backward (MiB) | peak RSS above start (MiB) | nfev fwd / bwd |")
    print("|---|---|---|---|---|")
    rows = {}
    for gradient in ("adjoint", "backprop"):
        for steps in (10, 100, 1000):
            out = subprocess.run([sys.executable, __file__, "--memory-child", gradient, str(steps),
                                  str(args.memory_batch), str(args.pieces)], capture_output=True, text=True, check=True)
            r = json.loads(out.stdout.strip().splitlines()[-1])
            rows[gradient, steps] = r
            print(f"| {gradient} | {steps} | {r['saved'] / 2**20:.3f} | {r['peak'] / 2**20:.1f} | "
                  f"{r['nfev']} / {r['nfev_backward']} |")
    for gradient in ("adjoint", "backprop"):
        s10, s1000 = rows[gradient, 10]["saved"], rows[gradient, 1000]["saved"]
        p10, p1000 = rows[gradient, 10]["peak"], rows[gradient, 1000]["peak"]
        print(f"{gradient}: 10 -> 1000 steps: saved x{s1000 / s10:.2f}, "
              f"peak RSS above start x{p1000 / max(p10, 1):.2f}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--pieces", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--tol", type=float, default=1e-6)
    p.add_argument("--memory-batch", type=int, default=4096)
    p.add_argument("--skip-memory", action="store_true")
    p.add_argument("--skip-timing", action="store_true")
    p.add_argument("--memory-child", nargs=4, metavar=("GRADIENT", "STEPS", "BATCH", "PIECES"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.memory_child:
        g, s, b, L = args.memory_child
        return memory_child(g, int(s), int(b), int(L))
    torch.set_num_threads(args.threads)
    if not args.skip_timing:
        timing(args)
    if not args.skip_memory:
        memory(args)


if __name__ == "__main__":
    main()
