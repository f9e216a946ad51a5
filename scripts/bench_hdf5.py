"""Benchmark: writing and reading a trace with analysis.io against torch.save /
torch.load(weights_only=True) of the same tensors, both sides in one process, interleaved.

    python scripts/bench_hdf5.py [--grid 201] [--depth 20] [--repeats 5] [--threads 1]

The record is the trace of a width-2, depth-L tanh ResNet over a grid × grid window of the plane
(states, layer and cumulative Jacobians, log|det|, singular values).  Sides:

- write: ``hdf5.save`` with the default (no compression; fletcher32 checksums on every chunk),
  with ``gzip=4``, and ``torch.save`` of the tensors;
- read: ``hdf5.load`` (every checksum verified) of both files, and ``torch.load``;
- the price of verification alone: h5py reading every array of the checksummed file (chunked,
  fletcher32 verified) against reading the same arrays stored contiguous without checksums.

Prints the median wall times, the ratios to torch.save / torch.load and the file sizes.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import tempfile
import time

import h5py
import torch

from analysis import hdf5
from analysis.geometry.tracing import trace
from odenet import ResNet


def interleaved_medians(sides: dict, repeats: int) -> dict[str, float]:
    """Median wall time of each side; the sides run in turn within each repeat (so that a change of
    machine load hits them alike), after one warm-up round."""
    for fn in sides.values():
        fn()
    times: dict[str, list[float]] = {k: [] for k in sides}
    for _ in range(repeats):
        for k, fn in sides.items():
            t0 = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in times.items()}


def read_all(path: str) -> None:
    """Read every dataset of ``path`` with h5py (HDF5 verifies fletcher32 where present)."""
    names: list[str] = []
    with h5py.File(path, "r") as f:
        f.visititems(lambda name, o: names.append(name) if isinstance(o, h5py.Dataset) else None)
        for name in names:
            f[name][()]


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
        ours, gz, theirs = (os.path.join(tmp, n) for n in ("trace.h5", "gzip4.h5", "trace.pt"))
        plain = os.path.join(tmp, "plain.h5")  # the same arrays, contiguous, no checksum
        with h5py.File(plain, "w") as f:
            for k, v in tensors.items():
                f.create_dataset(k, data=v.numpy())
        w = interleaved_medians({
            "ours": lambda: hdf5.save(ours, tr, overwrite=True),
            "gzip4": lambda: hdf5.save(gz, tr, overwrite=True, gzip=4),
            "torch": lambda: torch.save(tensors, theirs),
        }, args.repeats)
        r = interleaved_medians({
            "ours": lambda: hdf5.load(ours),
            "gzip4": lambda: hdf5.load(gz),
            "torch": lambda: torch.load(theirs, weights_only=True),
            "h5py checked": lambda: read_all(ours),
            "h5py plain": lambda: read_all(plain),
        }, args.repeats)
        for path in (ours, gz):
            back = hdf5.load(path)
            assert all(torch.equal(getattr(back, k), v) for k, v in tensors.items())
        size = {k: os.path.getsize(p) for k, p in (("ours", ours), ("gzip4", gz), ("torch", theirs))}

    print(f"trace of a width-2 depth-{args.depth} ResNet on a {args.grid}x{args.grid} grid: "
          f"{raw / 2**20:.1f} MiB of arrays, {args.threads} thread(s), medians of {args.repeats} interleaved repeats")
    print(f"{'':>6} {'hdf5 default':>14} {'hdf5 gzip=4':>14} {'torch':>12} {'default/torch':>14} {'gzip4/torch':>12}")
    for name, d, scale, unit in (("write", w, 1e3, "ms"), ("read", r, 1e3, "ms"), ("size", size, 2.0**-20, "MiB")):
        print(f"{name:>6} {d['ours'] * scale:>10.1f} {unit:<3} {d['gzip4'] * scale:>10.1f} {unit:<3} "
              f"{d['torch'] * scale:>8.1f} {unit:<3} {d['ours'] / d['torch']:>13.2f}x {d['gzip4'] / d['torch']:>11.2f}x")
    print(f"verification: h5py reads every array in {r['h5py checked'] * 1e3:.1f} ms with fletcher32 checked "
          f"(chunked) against {r['h5py plain'] * 1e3:.1f} ms contiguous without checksums: "
          f"{r['h5py checked'] / r['h5py plain']:.2f}x")


if __name__ == "__main__":
    main()
