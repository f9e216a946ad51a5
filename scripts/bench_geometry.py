"""Benchmark: singular-value map of the Jacobian ∂h_L/∂x over a 200 × 200 grid of the input plane
through a 20-block width-2 ResNet (ε = 1, δ = 0.1, tanh), in one process:

- ours:     analysis.jacobian_map (forward variational recursion, batched over the grid);
- baseline: a per-point loop of torch.autograd.functional.jacobian followed by svdvals (the
            approach of the paper's published code).  The loop over 40 000 points is slow, so it
            is timed on a random subsample of ``--sample`` points and scaled per point;
- forward:  the plain forward pass model(x) over the same grid (no Jacobian).

Prints medians over ``--repeats`` runs and the ratios.  Usage:

    .venv/bin/python scripts/bench_geometry.py [--grid 200] [--depth 20] [--sample 400] [--repeats 7] [--threads N]
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from analysis import jacobian_map
from odenet import ResNet


def median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--grid", type=int, default=200)
    p.add_argument("--depth", type=int, default=20)
    p.add_argument("--sample", type=int, default=400)
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    model = ResNet.neural_ode(2, 2, 1, depth=a.depth, T=2.0, seed=a.seed).eval()
    box = ((-2.0, 2.0), (-2.0, 2.0))
    ax = torch.linspace(-2.0, 2.0, a.grid, dtype=torch.float64)
    X = torch.cartesian_prod(ax, ax)
    N = X.shape[0]

    ours = median_time(lambda: jacobian_map(model, box, a.grid), a.repeats)
    with torch.no_grad():
        fwd = median_time(lambda: model(X), a.repeats)

    def h_L(v):
        return model.blocks(model.embed(v[None]))[0]

    idx = torch.randperm(N, generator=torch.Generator().manual_seed(a.seed))[: a.sample]
    sub = X[idx]

    def loop():
        return torch.stack([torch.linalg.svdvals(torch.autograd.functional.jacobian(h_L, x)) for x in sub])

    per_point = median_time(loop, max(1, a.repeats // 3)) / a.sample
    base = per_point * N
    # same numbers from both sides
    jm = jacobian_map(model, box, a.grid)
    ref = loop()
    ours_sv = torch.stack([jm.sigma_max.T.reshape(-1), jm.sigma_min.T.reshape(-1)], 1)[idx]
    err = float((ours_sv - ref).abs().max())

    print(f"grid {a.grid}x{a.grid} = {N} points, {a.depth} blocks, width 2, threads {torch.get_num_threads()}")
    print(f"ours (jacobian_map, batched recursion): {ours * 1e3:9.2f} ms")
    print(f"plain forward pass model(x):            {fwd * 1e3:9.2f} ms")
    print(f"per-point autograd loop (scaled from {a.sample} points, {per_point * 1e6:.0f} us/point): {base:9.2f} s")
    print(f"speed-up loop / ours:    {base / ours:9.0f}x   (target >= 500x)")
    print(f"cost ours / forward:     {ours / fwd:9.2f}x   (target <= 3x)")
    print(f"max |sigma_ours - sigma_loop| on the subsample: {err:.2e}")


if __name__ == "__main__":
    main()
