"""Benchmark: singular-value map of the Jacobian ∂h_L/∂x over a grid of the input plane through a
20-block width-2 ResNet (ε = 1, δ = 0.1, tanh), float64, in one process:

- ours:     ``analysis.jacobian_map`` (the one kernel with tangents, record="end", batched over
            the grid);
- native:   ``jacobian_map(..., compile="native")`` (the same recursion as one C++ loop over
            cache-sized chunks of the grid, odenet.native);
- forward:  the plain forward pass ``model(x)`` over the same grid (no Jacobian), and
            ``model(x, compile="native")``, the forward pass's own C++ loop;
- trace:    ``analysis.trace`` over the same grid (every state and Jacobian kept), and with
            ``compile="native"``;
- baseline: a per-point loop of ``torch.autograd.functional.jacobian`` followed by ``svdvals``
            (the approach of the paper's published code), timed on a random subsample of
            ``--sample`` points and scaled per point.

ours, forward and trace are interleaved repeat by repeat; medians; the load average is printed.
With ``--memory`` the peak memory of ``trace`` is measured against the size of its output, in a
fresh Python process per measurement: peak = (the process's maximum resident set size after the
trace, ``resource.getrusage``) - (its resident set size just before, /proc/self/statm), after a
warm-up trace on a few points so that libraries are loaded; large tensors are mmap'd by the
allocator and returned on free, so the resident set follows the tensors.

    python scripts/bench_geometry.py [--grid 200] [--depth 20] [--sample 400] [--repeats 7] [--threads N] [--memory]
    python scripts/bench_geometry.py --ops [--grid 200] [--repeats 31] [--threads N]

``--ops`` times, interleaved, each ATen call of one step of the kernel (odenet.kernel) at the
grid's size, with and without tangents, to show where ``jacobian_map`` / forward comes from:
the forward step (``addmm``, ``tanh_``, ``add``), the tangent step's extra calls (σ' = 1 - s²
by ``addcmul``, ``mm(W, J)``, the ``addcmul`` update of J), the least any tangent update costs
(reading J and writing J_{k+1} once: ``copy_``), and the tried alternative of one GEMM over the
stacked [h | J] (``mm`` then the bias on the state part).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import torch

from analysis import jacobian_map, trace
from odenet import ResNet


def median_times(fns: dict, repeats: int) -> dict:
    for fn in fns.values():
        fn()
    times = {k: [] for k in fns}
    for _ in range(repeats):
        for k, fn in fns.items():
            t = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - t)
    return {k: statistics.median(v) for k, v in times.items()}


def _model(depth, seed):
    return ResNet.neural_ode(2, 2, 1, depth=depth, T=2.0, seed=seed).eval()


def _grid(n):
    ax = torch.linspace(-2.0, 2.0, n, dtype=torch.float64)
    return torch.cartesian_prod(ax, ax)


def memory_child(grid: int, depth: int, refine: int) -> None:
    """In a fresh process: print the peak resident memory of one trace and its output size (JSON)."""
    import resource

    model = _model(depth, 0)
    X = _grid(grid)
    trace(model, X[:16], refine=refine)  # warm-up: libraries and kernels loaded

    def rss():
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    before = rss()
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    tr = trace(model, X, refine=refine)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    storages = {}
    for v in vars(tr).values():
        if isinstance(v, torch.Tensor):
            storages[v.untyped_storage().data_ptr()] = v.untyped_storage().nbytes()
    print(json.dumps(dict(peak=peak - before, output=sum(storages.values()), peak_before=peak_before - before)))


def step_ops(grid: int, repeats: int) -> None:
    """The per-call times of one kernel step at batch grid², width 2, float64 (see ``--ops``)."""
    B, m, n = grid * grid, 2, 2
    g = torch.Generator().manual_seed(0)
    W = torch.randn(m, m, generator=g, dtype=torch.float64)
    b = torch.randn(m, 1, generator=g, dtype=torch.float64)
    HJ = torch.randn(m, (1 + n) * B, generator=g, dtype=torch.float64) * 0.5  # stacked [h | J], batch-last
    h, J = HJ[:, :B].contiguous(), HJ[:, B:].contiguous().view(m, n, B)
    z, s, ds, out = (torch.empty_like(h) for _ in range(4))
    WJ, Jn, Z = torch.empty_like(J), torch.empty_like(J), torch.empty_like(HJ)
    one = torch.ones((), dtype=torch.float64)
    ops = {
        "addmm(b, W, h)": lambda: torch.addmm(b, W, h, out=z),
        "tanh_": lambda: s.copy_(z).tanh_(),  # copy_ is timed apart and subtracted
        "add(h, s, alpha)": lambda: torch.add(h, s, alpha=0.1, out=out),
        "addcmul: ds = 1 - s^2": lambda: torch.addcmul(one, s, s, value=-1, out=ds),
        "mm(W, J)": lambda: torch.mm(W, J.view(m, n * B), out=WJ.view(m, n * B)),
        "addcmul: J + d ds*WJ": lambda: torch.addcmul(J, WJ, ds[:, None, :], value=0.1, out=Jn),
        "copy_ of the state": lambda: s.copy_(z),
        "copy_ of J (least J traffic)": lambda: Jn.copy_(J),
        "stacked mm(W, [h|J])": lambda: torch.mm(W, HJ, out=Z),
        "stacked: bias on state part": lambda: Z[:, :B].add_(b),
    }
    t = {k: v * 1e6 for k, v in median_times(ops, repeats).items()}
    t["tanh_"] -= t["copy_ of the state"]
    print(f"one kernel step at batch {B}, width 2, float64, medians of {repeats} interleaved repeats (us):")
    for k, v in t.items():
        print(f"  {k:>30}: {v:8.1f}")
    fwd = t["addmm(b, W, h)"] + t["tanh_"] + t["add(h, s, alpha)"]
    tan = fwd + t["addcmul: ds = 1 - s^2"] + t["mm(W, J)"] + t["addcmul: J + d ds*WJ"]
    least = fwd + t["copy_ of J (least J traffic)"]
    stacked = tan - t["addmm(b, W, h)"] - t["mm(W, J)"] + t["stacked mm(W, [h|J])"] + t["stacked: bias on state part"]
    print(f"forward step {fwd:.1f} us; tangent step {tan:.1f} us: {tan / fwd:.2f}x; with the stacked GEMM "
          f"{stacked:.1f} us: {stacked / fwd:.2f}x; any tangent step >= forward + one pass over J: {least / fwd:.2f}x")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--grid", type=int, default=200)
    p.add_argument("--depth", type=int, default=20)
    p.add_argument("--sample", type=int, default=400)
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--memory", action="store_true", help="measure trace's peak memory (fresh processes)")
    p.add_argument("--memory-child", type=int, default=None, help=argparse.SUPPRESS)
    p.add_argument("--ops", action="store_true", help="only the per-call times of one kernel step")
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    if a.memory_child is not None:
        memory_child(a.grid, a.depth, a.memory_child)
        return
    print(f"load average before: {os.getloadavg()}")
    if a.ops:
        step_ops(a.grid, a.repeats)
        print(f"load average after: {os.getloadavg()}")
        return
    model = _model(a.depth, a.seed)
    box = ((-2.0, 2.0), (-2.0, 2.0))
    X = _grid(a.grid)
    N = X.shape[0]
    with torch.no_grad():
        t = median_times(dict(ours=lambda: jacobian_map(model, box, a.grid), forward=lambda: model(X),
                              trace=lambda: trace(model, X, layer_jacobians=False),
                              native=lambda: jacobian_map(model, box, a.grid, compile="native"),
                              native_forward=lambda: model(X, compile="native"),
                              trace_native=lambda: trace(model, X, layer_jacobians=False, compile="native")),
                         a.repeats)

    def h_L(v):
        return model.blocks(model.embed(v[None]))[0]

    idx = torch.randperm(N, generator=torch.Generator().manual_seed(a.seed))[: a.sample]
    sub = X[idx]

    def loop():
        return torch.stack([torch.linalg.svdvals(torch.autograd.functional.jacobian(h_L, x)) for x in sub])

    per_point = median_times(dict(loop=loop), max(1, a.repeats // 3))["loop"] / a.sample
    base = per_point * N
    jm = jacobian_map(model, box, a.grid)
    ref = loop()
    ours_sv = torch.stack([jm.sigma_max.T.reshape(-1), jm.sigma_min.T.reshape(-1)], 1)[idx]
    err = float((ours_sv - ref).abs().max())
    jn = jacobian_map(model, box, a.grid, compile="native")
    err_native = max(float((getattr(jn, k) - getattr(jm, k)).abs().max()) for k in ("sigma_min", "sigma_max"))

    print(f"grid {a.grid}x{a.grid} = {N} points, {a.depth} blocks, width 2, threads {torch.get_num_threads()}, "
          f"medians of {a.repeats} interleaved repeats")
    print(f"ours (jacobian_map):                    {t['ours'] * 1e3:9.2f} ms")
    print(f"plain forward pass model(x):            {t['forward'] * 1e3:9.2f} ms")
    print(f"trace (states and Jacobians kept):      {t['trace'] * 1e3:9.2f} ms")
    print(f"per-point autograd loop (scaled from {a.sample} points, {per_point * 1e6:.0f} us/point): {base:9.2f} s")
    print(f"ours, compile='native':                 {t['native'] * 1e3:9.2f} ms")
    print(f"forward model(x, compile='native'):     {t['native_forward'] * 1e3:9.2f} ms")
    print(f"trace(..., compile='native'):           {t['trace_native'] * 1e3:9.2f} ms")
    print(f"speed-up loop / ours:    {base / t['ours']:9.0f}x   (target >= 2000x)")
    print(f"cost ours / forward:     {t['ours'] / t['forward']:9.2f}x   (target <= 1.3x)")
    print(f"cost native / forward:   {t['native'] / t['forward']:9.2f}x   (target <= 1.3x)")
    print(f"cost native / native forward: {t['native'] / t['native_forward']:9.2f}x   (like for like)")
    print(f"max |sigma_native - sigma_ours| over the grid: {err_native:.2e}")
    print(f"cost trace / ours:       {t['trace'] / t['ours']:9.2f}x")
    print(f"max |sigma_ours - sigma_loop| on the subsample: {err:.2e}")
    if a.memory:
        for refine in (1, 5):
            out = subprocess.run([sys.executable, __file__, "--grid", str(a.grid), "--depth", str(a.depth),
                                  "--memory-child", str(refine)] + (["--threads", str(a.threads)] if a.threads else []),
                                 capture_output=True, text=True, check=True, env=dict(os.environ))
            r = json.loads(out.stdout.strip().splitlines()[-1])
            print(f"trace refine={refine}: peak {r['peak'] / 2**20:.1f} MiB for an output of {r['output'] / 2**20:.1f} "
                  f"MiB: {r['peak'] / r['output']:.2f}x   (target <= 1.3x)")
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
