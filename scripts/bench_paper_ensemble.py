"""The reproduction's ensemble speed-up: one regime's n seeds trained at once
(odenet.train_ensemble, as `make reproduce` does) against n sequential odenet.train calls with the
same settings, in one process, one thread; median wall and CPU times over repeats and their ratio.

    PYTHONPATH=. python scripts/bench_paper_ensemble.py [--regime circles_standard] [--seeds 16]
                                                        [--epochs 10] [--repeats 3]
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from analysis.experiments.paper import train_two_d
from analysis.experiments.paper_regimes import BATCH_2D, TWO_D
from odenet import train


def _timed(fn) -> tuple[float, float]:
    w0, c0 = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - w0, time.process_time() - c0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--regime", default="circles_standard", choices=sorted(TWO_D))
    parser.add_argument("--seeds", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    if args.seeds < 1 or args.epochs < 1 or args.repeats < 1:
        parser.error("--seeds, --epochs and --repeats must be >= 1")
    torch.set_num_threads(1)  # as the reproduction
    spec = TWO_D[args.regime]
    data = spec.data(0)
    seeds = list(range(args.seeds))

    def ensemble():
        train_two_d(spec, data, seeds, args.epochs)

    def sequential():
        for s in seeds:
            train(spec.model(s), data, epochs=args.epochs, batch_size=BATCH_2D, loss="bce", seed=s,
                  freeze=spec.freeze(), progress=False)

    ens, seq = [], []
    for _ in range(args.repeats):  # interleaved, so a change of machine load hits both sides
        ens.append(_timed(ensemble))
        seq.append(_timed(sequential))
    med = lambda xs, i: statistics.median(x[i] for x in xs)  # noqa: E731
    print(f"{args.regime}: {args.seeds} seeds x {args.epochs} epochs, median of {args.repeats} (wall s / CPU s)")
    print(f"  ensemble   {med(ens, 0):8.2f} / {med(ens, 1):8.2f}")
    print(f"  sequential {med(seq, 0):8.2f} / {med(seq, 1):8.2f}")
    print(f"  speed-up   {med(seq, 0) / med(ens, 0):8.2f} (wall), {med(seq, 1) / med(ens, 1):.2f} (CPU)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
