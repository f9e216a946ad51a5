"""The `odenet` command line.

Each subcommand is a ``_cmd_<name>(args)`` function registered in :func:`build_parser`; it
imports what it needs lazily (odenet's one allowed import of analysis happens here, inside the
commands).
"""
from __future__ import annotations

import argparse
import sys


def _cmd_demo(args) -> int:
    """Euler refinement of a random ResNet towards its ODE flow: a first real result."""
    import torch

    from odenet import ResNet

    net = ResNet(args.width, args.width, 1, args.depth, eps=1.0, delta=args.T / args.depth, T=args.T, seed=args.seed)
    x = torch.randn(256, args.width, dtype=torch.float64, generator=torch.Generator().manual_seed(args.seed))
    with torch.no_grad():
        ref = net.flow(x, method="DOP853", rtol=1e-12, atol=1e-12)
        print(f"ResNet (eps=1, delta={args.T / args.depth:g}, L={args.depth}, width={args.width}, seed={args.seed})")
        print(f"{'sub-steps m':>12} {'max |Phi_m - Phi_flow|':>24} {'ratio':>8}")
        prev = None
        for m in (1, 2, 4, 8, 16, 32):
            err = (net.readout(net.blocks(net.embed(x), refine=m)) - ref).abs().max().item()
            ratio = f"{prev / err:8.3f}" if prev else ""
            print(f"{m:>12} {err:>24.3e} {ratio}")
            prev = err
    print("first-order convergence: the error halves with each doubling of m (ratio -> 2)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="odenet", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("demo", help="Euler refinement of a ResNet towards its neural-ODE flow")
    p.add_argument("--width", type=int, default=2)
    p.add_argument("--depth", type=int, default=10)
    p.add_argument("--T", type=float, default=2.0)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except ValueError as exc:
        print(f"odenet {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
