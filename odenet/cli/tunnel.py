"""``odenet tunnel``: train one circles regime of the reproduction for one or more seeds and report
the tunnels (:func:`analysis.experiments.paper.tunnel_study`: the same network, data, training and
analysis as ``odenet reproduce``; the regimes are those of
:mod:`analysis.experiments.paper_regimes`)."""
from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Declare ``odenet tunnel`` and its options on the subcommand set ``sub``."""
    p = sub.add_parser("tunnel", help="train a circles regime for one or more seeds and report the tunnels",
                       description="Train a circles regime of the reproduction (same network, data, epochs, "
                                   "BatchNorm and analysis as `odenet reproduce`) and report each seed's tunnel.")
    # the names are checked by the command (analysis.experiments.paper_regimes.CLI_NAMES, the table shared with
    # `reproduce`): importing analysis here would slow every other command down
    p.add_argument("--regime", default="neural-ode",
                   help="neural-ode (default), neural-ode-bn, mlp, standard, augmented, or a circles run name "
                        "of the reproduction such as circles_standard")
    p.add_argument("--seed", type=int, default=0, help="first training seed (initialisation and data order)")
    p.add_argument("--seeds", type=int, default=1, help="number of seeds, trained together as an ensemble")
    p.add_argument("--data-seed", type=int, default=0, help="seed of the circles data set")
    p.add_argument("--epochs", type=int, default=None, help="default: the reproduction's for the regime")
    p.add_argument("--batchnorm", action=argparse.BooleanOptionalAction, default=None,
                   help="BatchNorm in the blocks (default: the regime's, as in `reproduce`)")
    p.add_argument("--resolution", type=int, default=None, help="grid points per axis (default: the reproduction's)")
    p.add_argument("--out", default=None, metavar="FILE.h5", help="write every seed's records to this HDF5 file")
    p.add_argument("--figure", default=None, metavar="FILE.png",
                   help="write the level sets (one seed) or all seeds' decision boundaries")
    p.add_argument("--overwrite", action="store_true", help="replace --out / --figure if they exist")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Train, analyse and print one line per seed and the fractions with Wilson intervals; exit status 0."""
    from analysis.experiments.paper import tunnel_study
    from analysis.experiments.paper_claims import format_fraction
    from solvers.validation import check_positive_int, check_seed

    check_seed("--seed", args.seed)  # named as the flag, before the library names its argument
    check_seed("--data-seed", args.data_seed)
    check_positive_int("--seeds", args.seeds)
    study = tunnel_study(args.regime, seed=args.seed, seeds=args.seeds, data_seed=args.data_seed, epochs=args.epochs,
                         batchnorm=args.batchnorm, resolution=args.resolution, out=args.out, figure=args.figure,
                         overwrite=args.overwrite, progress=not args.quiet)
    spec, n = study.spec, len(study.seeds)
    print(f"{args.regime} (eps={spec.eps}, delta={spec.delta}, L={spec.depth}, width={spec.width}, "
          f"batchnorm={study.batchnorm}, seeds={study.seeds[0]}..{study.seeds[-1]}, data seed {args.data_seed})")
    for s, member, o, t, cert in zip(study.seeds, study.members, study.outcomes, study.tunnels, study.certificates):
        where = ("" if t is None else f", width {t.width:.3f}, area {t.area:.3f}, {len(t.tunnel_points)} of "
                 f"{len(study.data.x_test)} test points in the tunnel")
        print(f"{o.tunnel}: seed {s}{where}; test accuracy {o.accuracy:.3f}, best epoch {member.best_epoch}; "
              f"{o.critical_points} critical points; {cert.verdict}")
    k_tun = sum(o.tunnel == "tunnel" for o in study.outcomes)
    k_cert = sum(o.certified for o in study.outcomes)
    print(f"tunnel {format_fraction(k_tun, n)}; certified {format_fraction(k_cert, n)} (Wilson 95 % intervals)")
    for name in ("out", "figure"):
        if getattr(args, name):
            print(f"wrote {getattr(args, name)}")
    return 0
