"""One continuum-limit study end to end (docs/continuum-limit.md): does a ResNet approach its
neural ODE as it deepens?

1. a field smooth in t (odenet.SmoothField): depth-L ResNets (Euler, weights W(t_l)) against the
   DOP853 flow, the observed order with its 95% interval, plus RK4 refinement and work-precision;
2. networks with weights smooth in depth vs i.i.d. across layers (same scaling δ = 1/L): the
   solver-swap change (RK4 on the continuous-depth reading) and the weight-increment exponent β;
3. reverse-Euler reconstruction for smooth (δ = 1/L) and i.i.d. (δ = 1/√L) weights;
4. initialisation scaling regimes (1/L, 1/√L) × (i.i.d., smooth).

Writes every record to one HDF5 file and a 2×2 figure.

    python scripts/continuum_limit_study.py --out continuum.h5 --figure docs/continuum-limit.png
"""
from __future__ import annotations

import argparse
import math

import torch

from analysis import hdf5
from analysis.continuum.convergence import depth_study, refinement_study, work_precision
from analysis.continuum.depth_regularity import regularity_exponents, reverse_euler_study, swap_study
from analysis.continuum.depth_weights import iid_weights, load_weights, smooth_weights
from analysis.continuum.init_scaling import init_scaling_study
from analysis.plots import continuum as plots, pyplot
from odenet import ResNet, SmoothField

WIDTH = 4


def network(depth: int, kind: str, delta: float, activation: str, seed: int) -> ResNet:
    """ε = 1, horizon 1, blocks smooth in depth (one GP path) or i.i.d.; one fixed readout."""
    net = ResNet(WIDTH, WIDTH, 1, depth, eps=1.0, delta=delta, T=1.0, activation=activation, seed=seed)
    if kind == "smooth":
        W, b = smooth_weights(depth, WIDTH, std=1.0, bias_std=0.5, seed=seed)
    else:
        W, b = iid_weights(depth, WIDTH, std=1.0, bias_std=0.5, seed=1000 * seed + depth)
    with torch.no_grad():
        net.out.weight.fill_(1 / WIDTH)
        net.out.bias.zero_()
    return load_weights(net, W, b)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="continuum.h5")
    ap.add_argument("--figure", default="continuum-limit.png")
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--overwrite", action="store_true")
    args = ap.parse_args(argv)
    g = torch.Generator().manual_seed(args.seed)
    x = torch.randn(64, WIDTH, dtype=torch.float64, generator=g)

    # 1. a smooth field: the depth-L ResNet against its flow
    field = SmoothField(torch.randn(5, WIDTH, WIDTH, dtype=torch.float64, generator=g) / math.sqrt(WIDTH),
                        torch.randn(5, WIDTH, dtype=torch.float64, generator=g), T=1.0)
    depths = (8, 16, 32, 64, 128, 256, 512)
    resnets = depth_study(field, x, depths)
    rk4 = refinement_study(field, x, method="rk4", steps=(32, 64, 128, 256, 512))
    wp = work_precision(field, x, steps=(8, 16, 32, 64, 128), adaptive_methods=("dopri5", "bosh3"),
                        tolerances=(1e-4, 1e-6, 1e-8, 1e-10))
    for s in (resnets, rk4):
        f = s.fit_sup
        print(f"{s.kind:>10} {s.method:>5}: order {f.order:.3f}, 95% [{f.ci_low:.3f}, {f.ci_high:.3f}]; "
              f"err_sup {s.err_sup[0]:.2e} -> {s.err_sup[-1]:.2e}")
    print("work-precision slopes:", {k: round(v, 2) for k, v in wp.slopes.items()})

    # 2. smooth vs i.i.d. weights, δ = 1/L: solver swap on the continuous-depth reading, regularity
    family = (16, 64, 256, 1024)
    swaps = {kind: swap_study([network(L, kind, 1 / L, "softplus", args.seed) for L in family], x,
                              method="rk4", reading="linear") for kind in ("smooth", "iid")}
    regs = {kind: regularity_exponents([network(L, kind, 1 / L, "softplus", args.seed) for L in family])
            for kind in ("smooth", "iid")}
    for kind in swaps:
        print(f"swap {kind:>6}: change {swaps[kind].value_rms[0]:.2e} -> {swaps[kind].value_rms[-1]:.2e}, "
              f"exponent {swaps[kind].fit_rms.order:+.2f}; weight increments beta = {regs[kind].beta:.2f}")

    # 3. reverse-Euler reconstruction: smooth (1/L) vs i.i.d. in its own scaling (1/sqrt(L))
    deep = (32, 128, 512, 2048)
    rev = {"smooth, δ=1/L": reverse_euler_study([network(L, "smooth", 1 / L, "tanh", args.seed) for L in deep], x),
           "iid, δ=1/√L": reverse_euler_study([network(L, "iid", L ** -0.5, "tanh", args.seed) for L in deep], x)}
    for k, s in rev.items():
        print(f"reverse Euler {k}: {s.value_rms[0]:.2e} -> {s.value_rms[-1]:.2e}, exponent {s.fit_rms.order:+.2f}")

    # 4. initialisation scaling
    init = init_scaling_study((4, 16, 64, 256, 1024), width=16, n_samples=4, seed=args.seed)
    for i, w in enumerate(init.weights):
        for j, sc in enumerate(init.scalings):
            print(f"init {w:>6}, δ = {sc:<9}: |h_L - h_0| ~ L^{init.residual_exponent[i, j]:+.2f}")

    records = {"depth_study": resnets, "rk4_refinement": rk4, "work_precision": wp,
               "swap_smooth": swaps["smooth"], "swap_iid": swaps["iid"],
               "regularity_smooth": regs["smooth"], "regularity_iid": regs["iid"],
               "reverse_smooth": rev["smooth, δ=1/L"], "reverse_iid": rev["iid, δ=1/√L"], "init_scaling": init}
    hdf5.save(args.out, records, overwrite=args.overwrite, seed=args.seed)
    print(f"wrote {args.out}")

    plt = pyplot()
    fig, axes = plt.subplots(2, 2, figsize=(10.0, 7.6), constrained_layout=True)
    plots.plot_convergence([resnets, rk4], ax=axes[0, 0], title="(1) ResNet depth L and RK4 vs the flow")
    plots.plot_work_precision(wp, ax=axes[0, 1], title="(1) work-precision on the same field")
    plots.plot_depth_series([swaps["smooth"], swaps["iid"], rev["smooth, δ=1/L"], rev["iid, δ=1/√L"]], ax=axes[1, 0],
                       labels=["swap, smooth", "swap, i.i.d.", "reverse Euler, smooth", "reverse Euler, i.i.d. 1/√L"],
                       slopes=(-1.0, 0.0), title="(2, 3) solver swap and reverse-Euler reconstruction")
    plots.plot_init_scaling(init, ax=axes[1, 1], title="(4) residual norm at initialisation")
    plots.save(fig, args.figure, dpi=64)
    print(f"wrote {args.figure}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
