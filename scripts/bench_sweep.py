"""Benchmark: K circle runs trained as one vectorised ensemble against one-by-one training.

    .venv/bin/python scripts/bench_sweep.py [--runs 64] [--epochs 50] [--repeats 3]

Both sides train K = --runs ResNets of the paper's circles architecture (width 2, L = 10,
ε = δ = 1, activated input, BatchNorm, sigmoid output, BCE, Adam lr 0.01, batch 128, best
validation epoch kept), one seed per run, in this process:

- baseline ("what users write today"): an nn.Module per run (odenet.ResNet), a plain torch loop
  (Adam, mini-batches, train and validation loss after each epoch, best state kept), trained one
  after another;
- ensemble: :func:`odenet.ensemble.train_ensemble` over the K seeds at once.

The two sides run interleaved (baseline, ensemble, baseline, ...) so that load on a shared machine
hits both alike; medians over --repeats of the wall time and of the process CPU time
(time.process_time: on a loaded machine with one torch thread it measures the work, not the wait)
are printed with the ratios baseline / ensemble.
"""
from __future__ import annotations

import argparse
import copy
import statistics
import time

import torch
import torch.nn.functional as F

from odenet import ResNet
from odenet.datasets import make_dataset
from odenet.ensemble import train_ensemble


def architecture(seed: int) -> ResNet:
    return ResNet(2, 2, 1, 10, eps=1.0, delta=1.0, activation="tanh", input_map="activated",
                  batchnorm=True, output="sigmoid", seed=seed)


def one_by_one(data, seeds, epochs: int, batch_size: int, lr: float) -> list[float]:
    """The baseline: a model per seed, a plain training loop, one run after another."""
    best = []
    for s in seeds:
        model = architecture(s)
        opt = torch.optim.Adam(model.parameters(), lr=lr)
        gen = torch.Generator().manual_seed(s + 1)
        n = len(data.x_train)
        best_val, best_state = float("inf"), None
        for _ in range(epochs):
            model.train()
            perm = torch.randperm(n, generator=gen)
            for i in range(0, n, batch_size):
                idx = perm[i:i + batch_size]
                opt.zero_grad()
                F.binary_cross_entropy_with_logits(model.logits(data.x_train[idx]), data.y_train[idx]).backward()
                opt.step()
            model.eval()
            with torch.no_grad():
                # the training loss is evaluated each epoch as train_ensemble does (equal work), unused here
                _train_loss = F.binary_cross_entropy_with_logits(model.logits(data.x_train), data.y_train).item()
                val = F.binary_cross_entropy_with_logits(model.logits(data.x_val), data.y_val).item()
            if val < best_val:
                best_val, best_state = val, copy.deepcopy(model.state_dict())
        model.load_state_dict(best_state)
        best.append(best_val)
    return best


def ensemble(data, seeds, epochs: int, batch_size: int, lr: float) -> list[float]:
    res = train_ensemble(architecture, data, seeds=seeds, epochs=epochs, lr=lr, batch_size=batch_size,
                         loss="bce", progress=False)
    return [m.best_val_loss for m in res.members]


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=64)
    ap.add_argument("--epochs", type=int, default=50)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    data = make_dataset("circles", seed=0)
    seeds = list(range(args.runs))
    print(f"{args.runs} circle runs (width 2, L = 10, BatchNorm, {args.epochs} epochs, batch {args.batch_size}, "
          f"{len(data.x_train)} training points), torch threads {torch.get_num_threads()}")
    wall = {"one-by-one": [], "ensemble": []}
    cpu = {"one-by-one": [], "ensemble": []}
    for r in range(args.repeats):
        for name, fn in (("one-by-one", one_by_one), ("ensemble", ensemble)):
            t0, c0 = time.perf_counter(), time.process_time()
            fn(data, seeds, args.epochs, args.batch_size, 0.01)
            wall[name].append(time.perf_counter() - t0)
            cpu[name].append(time.process_time() - c0)
            print(f"  repeat {r}: {name:>10} wall {wall[name][-1]:8.2f} s  cpu {cpu[name][-1]:8.2f} s", flush=True)
    for label, t in (("wall", wall), ("cpu", cpu)):
        med = {k: statistics.median(v) for k, v in t.items()}
        for k, v in med.items():
            print(f"{label:>4} {k:>10}: median {v:8.2f} s over {args.repeats} ({v / args.runs * 1e3:.1f} ms per run)")
        print(f"{label:>4} ratio one-by-one / ensemble: {med['one-by-one'] / med['ensemble']:.1f}x")


if __name__ == "__main__":
    main()
