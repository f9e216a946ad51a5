"""Benchmark: odenet's Euler iteration against a raw PyTorch loop and torchdiffeq's fixed-grid
Euler, on the same piecewise-constant tanh field, in one process (inference, torch.no_grad()).

    python scripts/bench_solvers.py [--repeats 15] [--quick] [--threads N] [--device cpu|cuda]

For each (batch, width) it prints the median wall time of each side and the ratios
ours / baseline (below 1 means ours is faster).
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch
import torchdiffeq

import solvers
from odenet import LayerField


def median_times(fns: dict, repeats: int, sync) -> dict:
    """Median wall time of each function; the sides are interleaved repeat by repeat so that a
    change in machine load hits them alike."""
    for fn in fns.values():  # warm-up
        fn()
    sync()
    times = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            sync()
            times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(t) for name, t in times.items()}


def run(batch: int, width: int, L: int, repeats: int, dtype=torch.float32, device="cpu") -> dict:
    T = 1.0
    g = torch.Generator().manual_seed(0)
    field = LayerField(width, L, T, dtype=dtype).requires_grad_(False)
    field.weight.copy_(torch.randn(L, width, width, generator=g, dtype=dtype) / width ** 0.5)
    field.bias.copy_(torch.randn(L, width, generator=g, dtype=dtype))
    field.to(device)
    x0 = torch.randn(batch, width, generator=g, dtype=dtype).to(device)
    W, b, h = field.weight, field.bias, T / L

    def ours():
        return solvers.solve(field, x0, method="euler", record="end").y[-1]

    def raw_loop():  # what users write by hand
        x = x0
        for l in range(L):
            x = x + h * torch.tanh(x @ W[l].T + b[l])
        return x

    def tdq_func(t, x):  # torchdiffeq needs the layer looked up from a float time
        l = min(int(round(float(t) / h)), L - 1)
        return torch.tanh(x @ W[l].T + b[l])

    t_grid = torch.linspace(0, T, L + 1, dtype=dtype, device=device)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)

    def torchdiffeq_euler():
        return torchdiffeq.odeint(tdq_func, x0, t_grid, method="euler")[-1]

    with torch.no_grad():
        diff_raw = (ours() - raw_loop()).abs().max().item()
        diff_tdq = (ours() - torchdiffeq_euler()).abs().max().item()
        t = median_times(dict(ours=ours, raw=raw_loop, tdq=torchdiffeq_euler), repeats, sync)
    return dict(batch=batch, width=width, L=L, **t, diff_raw=diff_raw, diff_tdq=diff_tdq)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--quick", action="store_true", help="small sizes only, 3 repeats")
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    dtype = getattr(torch, args.dtype)
    sizes = [(256, 2), (256, 32)] if args.quick else [(256, 2), (256, 32), (65536, 2), (65536, 32)]
    repeats = 3 if args.quick else args.repeats
    where = torch.cuda.get_device_name() if args.device == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"torch {torch.__version__}, {where}, dtype {args.dtype}, L = 100, median of {repeats} interleaved repeats")
    print(f"{'batch':>6} {'width':>5} {'ours ms':>9} {'raw ms':>9} {'tdq ms':>9} {'ours/raw':>9} {'ours/tdq':>9}"
          f" {'max|ours-raw|':>14} {'max|ours-tdq|':>14}")
    for batch, width in sizes:
        r = run(batch, width, 100, repeats, dtype, args.device)
        print(f"{batch:>6} {width:>5} {1e3 * r['ours']:>9.3f} {1e3 * r['raw']:>9.3f} {1e3 * r['tdq']:>9.3f} "
              f"{r['ours'] / r['raw']:>9.3f} {r['ours'] / r['tdq']:>9.3f} {r['diff_raw']:>14.2e} {r['diff_tdq']:>14.2e}")


if __name__ == "__main__":
    main()
