"""Benchmark: writing and reading a trace with analysis.hdf5 (gzip 4 + shuffle, and without
compression) against torch.save / torch.load(weights_only=True) of the same tensors, in one
process.

    python scripts/bench_hdf5.py [--grid 201] [--depth 20] [--repeats 5]

The record is the trace of a width-2, depth-L tanh ResNet over a grid × grid window of the plane
(states, layer and cumulative Jacobians, log|det|, singular values).  Prints median wall times,
the ratios ours / torch.save and the file sizes.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import tempfile
import time

import torch

from analysis import hdf5
from analysis.tracing import trace
from odenet import ResNet


def median_time(fn, repeats: int) -> float:
    fn()  # warm-up (page cache, imports)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--grid", type=int, default=201)
    ap.add_argument("--depth", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    net = ResNet.neural_ode(2, 2, 1, depth=args.depth, T=2.0, seed=0).eval()
    pts = hdf5.parse_grid(f"-2:2:{args.grid},-2:2:{args.grid}").points
    with torch.no_grad():
        tr = trace(net, pts)
    tensors = {k: v for k, v in dataclasses.asdict(tr).items() if isinstance(v, torch.Tensor)}
    raw = sum(v.numel() * v.element_size() for v in tensors.values())

    with tempfile.TemporaryDirectory(dir=".") as tmp:
        ours, theirs = os.path.join(tmp, "trace.h5"), os.path.join(tmp, "trace.pt")
        w_ours = median_time(lambda: hdf5.save(ours, tr, overwrite=True), args.repeats)
        raw_h5 = os.path.join(tmp, "raw.h5")
        w_raw = median_time(lambda: hdf5.save(raw_h5, tr, overwrite=True, gzip=None), args.repeats)
        r_raw = median_time(lambda: hdf5.load(raw_h5), args.repeats)
        s_raw = os.path.getsize(raw_h5)
        w_pt = median_time(lambda: torch.save(tensors, theirs), args.repeats)
        r_ours = median_time(lambda: hdf5.load(ours), args.repeats)
        r_pt = median_time(lambda: torch.load(theirs, weights_only=True), args.repeats)
        back = hdf5.load(ours)
        assert all(torch.equal(getattr(back, k), v) for k, v in tensors.items())
        s_ours, s_pt = os.path.getsize(ours), os.path.getsize(theirs)

    print(f"trace of a width-2 depth-{args.depth} ResNet on a {args.grid}x{args.grid} grid: "
          f"{raw / 2**20:.1f} MiB of arrays, {args.threads} thread(s), medians of {args.repeats}")
    print(f"{'':>6} {'hdf5 gzip 4':>12} {'hdf5 gzip=None':>15} {'torch.save':>12} {'gzip4/torch':>12} "
          f"{'None/torch':>11}")
    for name, a, b, c, unit, scale in (("write", w_ours, w_raw, w_pt, "ms", 1e3), ("read", r_ours, r_raw, r_pt, "ms", 1e3),
                                       ("size", s_ours, s_raw, s_pt, "MiB", 2.0**-20)):
        print(f"{name:>6} {a * scale:>9.1f} {unit:<3}{b * scale:>12.1f} {unit:<3}{c * scale:>9.1f} {unit:<3}"
              f"{a / c:>11.2f}x {b / c:>10.2f}x")


if __name__ == "__main__":
    main()
