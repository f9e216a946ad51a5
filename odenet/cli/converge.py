"""``odenet converge``: refinement studies and work-precision data for one field, printed as
tables, written to HDF5 (one group per method plus ``work_precision``) and optionally plotted
(the work is :mod:`analysis.continuum.convergence`).

Fields (``--field``):

- ``linear``: x' = A x with A = [[-0.1, 1], [-1, -0.1]] (width 2, a damped rotation); the
  reference is the closed form expm(A T) x0 (scipy.linalg.expm);
- ``smooth``: an :class:`odenet.SmoothField` of width ``--width`` with ``--knots`` random knots
  (seeded); Euler with L steps on it *is* the depth-L ResNet with weights W(t_l) (see
  :func:`analysis.continuum.convergence.depth_study`);
- a path to an HDF5 file holding one model (:func:`analysis.io.load_model`): the network's
  associated ODE on h_0 = embed(x); steps must be multiples of its depth.
"""
from __future__ import annotations

import argparse
import math
import sys
import warnings
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    import torch

    from analysis.continuum.convergence import ConvergenceStudy

LINEAR_A = ((-0.1, 1.0), (-1.0, -0.1))
MAX_STEPS = 2 ** 20
"""Largest step count per level: time, not memory, is the limit (record="end" keeps two states),
about 20 s per method at a million Python-level steps."""
STATE_COPIES = 32
"""Copies of the (batch, d) state a refinement study holds at once (stages of DOP853, the
reference, the error arrays): the memory estimate checked before the inputs are drawn."""


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Declare ``odenet converge`` and its options on the subcommand set ``sub``."""
    p = sub.add_parser("converge", help="convergence to the flow: observed orders, Richardson, work-precision",
                       description="Refinement studies of fixed-step methods (errors against the step, observed "
                                   "orders with confidence intervals, Richardson estimates) and a work-precision "
                                   "table of adaptive methods, for a linear field with a closed-form flow, a random "
                                   "smooth field, or a saved model's ODE. See docs/continuum-limit.md.")
    p.add_argument("--field", default="linear",
                   help="linear (x' = A x, closed-form flow), smooth (a random SmoothField) or a model file (.h5)")
    p.add_argument("--methods", default="euler,heun,rk4",
                   help="comma list of euler, heun, midpoint, rk4 (refinement studies) and adaptive methods "
                        "such as dopri5 (work-precision table)")
    p.add_argument("--depths", default="4:256", help="steps (layers) per level: a:b doubles from a to b, or a,b,c")
    p.add_argument("--reference", default="auto",
                   help="auto (closed form for linear, else DOP853 at rtol=atol=1e-12), none (Richardson), or a method")
    p.add_argument("--tolerances", default="1e-3,1e-5,1e-7,1e-9", help="rtol = atol of the adaptive methods")
    p.add_argument("--T", type=float, default=1.0, help="time horizon of the linear and smooth fields")
    p.add_argument("--width", type=int, default=3, help="width of the smooth field")
    p.add_argument("--knots", type=int, default=4, help="knot intervals of the smooth field (steps: multiples)")
    p.add_argument("--batch", type=int, default=64, help="number of random inputs (seeded)")
    p.add_argument("--seed", type=int, default=0, help="an integer in [0, 2**63)")
    p.add_argument("--out", default=None, help="HDF5 file to write (one group per method, work_precision); "
                                               "its folder must exist")
    p.add_argument("--overwrite", action="store_true", help="replace OUT if it exists")
    p.add_argument("--plot", default=None, help="figure to write (.png, .pdf, .svg): log-log with reference slopes")
    p.add_argument("--quiet", action="store_true", help="print nothing")
    p.set_defaults(func=run)
    return p


def parse_depths(text: str) -> list[int]:
    """``"a:b"`` → a, 2a, 4a, ... ≤ b (powers-of-two refinement); ``"a,b,c"`` → the list."""
    try:
        if ":" in text:
            lo, hi = (int(v) for v in text.split(":"))
            if lo < 1 or hi < lo:
                raise ValueError
            out = [lo]
            while out[-1] * 2 <= hi:
                out.append(out[-1] * 2)
        else:
            out = [int(v) for v in text.split(",") if v.strip()]
            if not out or min(out) < 1:
                raise ValueError
    except ValueError:
        raise ValueError(f"--depths must be 'a:b' with 1 <= a <= b (doubling from a to b) or a comma list "
                         f"of integers >= 1; got {text!r}") from None
    if max(out) > MAX_STEPS:
        raise ValueError(f"--depths must stay at or below {MAX_STEPS} steps per level (2**20: the time limit "
                         f"of a study); got {text!r}, whose largest level is {max(out)}")
    return out


def parse_floats(name: str, text: str) -> list[float]:
    """``"a,b,c"`` → [a, b, c] as floats (empty items skipped); a ValueError naming the flag ``name``
    otherwise."""
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ValueError(f"{name} must be a comma list of numbers; got {text!r}") from None


def _linear_field() -> tuple[Callable, "torch.Tensor"]:
    import torch

    A = torch.tensor(LINEAR_A, dtype=torch.float64)
    return (lambda t, x: x @ A.T), A


def build_problem(args: argparse.Namespace) -> tuple:
    """(field, x0 (batch, d), t_span or None, reference, description) for the command's arguments:
    the field f(t, x) (or the loaded ResNet), the seeded inputs, the time span (None: the field's
    own), the reference (a closed-form tensor (batch, d), a method name, or None for Richardson)
    and the line printed above the tables."""
    import torch

    from odenet import SmoothField

    g = torch.Generator().manual_seed(args.seed)
    if args.field == "linear":
        import scipy.linalg

        _check_batch_memory(args.batch, 2)
        f, A = _linear_field()
        x0 = torch.randn(args.batch, 2, dtype=torch.float64, generator=g)
        exact = x0 @ torch.from_numpy(scipy.linalg.expm(A.numpy() * args.T)).T
        ref = exact if args.reference == "auto" else _reference_arg(args.reference)
        return f, x0, (0.0, args.T), ref, f"linear x' = A x, A = {LINEAR_A}, T = {args.T}"
    if args.field == "smooth":
        m, K = args.width, args.knots
        _check_batch_memory(args.batch, m, (K + 1) * (m * m + m))
        field = SmoothField(torch.randn(K + 1, m, m, dtype=torch.float64, generator=g) / math.sqrt(m),
                            torch.randn(K + 1, m, dtype=torch.float64, generator=g), T=args.T)
        x0 = torch.randn(args.batch, m, dtype=torch.float64, generator=g)
        ref = "DOP853" if args.reference == "auto" else _reference_arg(args.reference)
        return field, x0, None, ref, f"smooth field: width {m}, {K} knot intervals, T = {args.T}, seed {args.seed}"
    from analysis.io import load_model

    try:
        net = load_model(args.field)
    except OSError as exc:  # a missing or unreadable file: the command's error, status 2
        raise ValueError(f"--field must be linear, smooth or a readable model file; "
                         f"got {args.field!r} ({exc})") from None
    _check_batch_memory(args.batch, max(net.n_in, net.width))
    x = torch.randn(args.batch, net.n_in, dtype=torch.float64, generator=g).to(net.field.weight.dtype)
    ref = "DOP853" if args.reference == "auto" else _reference_arg(args.reference)
    description = f"model {args.field}: depth {net.depth}, width {net.width}, eps {net.eps}, delta {net.delta}"
    return net, x, None, ref, description


def _check_batch_memory(batch: int, d: int, extra: int = 0) -> None:
    from solvers.validation import check_memory

    check_memory((STATE_COPIES * batch * d + extra) * 8, f"--batch {batch} inputs of dimension {d}")


def _reference_arg(text: str) -> str | None:
    if text == "none":
        return None
    import solvers

    if text not in solvers.ADAPTIVE_METHODS + solvers.REFERENCE_METHODS:
        raise ValueError(f"--reference must be auto, none or one of "
                         f"{sorted(solvers.ADAPTIVE_METHODS + solvers.REFERENCE_METHODS)}; got {text!r}")
    return text


def _table(study: "ConvergenceStudy") -> str:
    rows = [f"{'steps':>7} {'h':>10} {'nfev':>7} {'err_sup':>11} {'err_rms':>11} {'Richardson':>10}"]
    for k in range(len(study.levels)):
        rich = study.richardson[k - 2] if k >= 2 else math.nan
        flag = "" if study.resolved[k] else "  (unresolved)"
        rows.append(f"{study.levels[k]:>7d} {study.h[k]:>10.3e} {study.nfev[k]:>7d} {study.err_sup[k]:>11.3e} "
                    f"{study.err_rms[k]:>11.3e} {rich:>10.3f}{flag}")
    fit = study.fit_sup
    if fit is not None:
        rows.append(f"observed order (sup): {fit.order:.3f}, {fit.confidence:.0%} interval "
                    f"[{fit.ci_low:.3f}, {fit.ci_high:.3f}] from {fit.n_points} levels")
    return "\n".join(rows)


def run(args: argparse.Namespace) -> int:
    """Validate every option, then print the tables and write ``--out`` / ``--plot``; exit status 0
    (bad options: ValueError, reported by :func:`odenet.cli.main` with status 2)."""
    import solvers
    from solvers.validation import check_output_path, check_seed

    from analysis.continuum.convergence import (ConvergenceStudy, ReferenceAccuracyWarning, WorkPrecision,
                                                refinement_study, work_precision)

    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    known = tuple(solvers.FIXED_METHODS) + solvers.ADAPTIVE_METHODS
    if not methods:
        raise ValueError(f"--methods must name at least one method among {sorted(known)}; got {args.methods!r}")
    for m in methods:
        if m not in known:
            raise ValueError(f"--methods must name methods among {sorted(known)}; got {m!r}")
    depths = parse_depths(args.depths)
    tolerances = parse_floats("--tolerances", args.tolerances)
    if args.out is None and args.plot is None and args.quiet:
        raise ValueError("nothing to do: --quiet without --out or --plot")
    if args.batch < 1:
        raise ValueError(f"--batch must be >= 1; got {args.batch}")
    if args.field in ("linear", "smooth") and not (math.isfinite(args.T) and args.T > 0):
        raise ValueError(f"--T must be finite and > 0; got {args.T}")
    if args.field == "smooth" and (args.width < 1 or args.knots < 1):
        raise ValueError(f"--width and --knots must be >= 1; got --width {args.width}, --knots {args.knots}")
    check_seed("--seed", args.seed)
    if args.out is not None:
        check_output_path("--out", args.out, overwrite=args.overwrite)
    if args.plot is not None:  # a figure is replaced like any file odenet writes; its folder must exist
        check_output_path("--plot", args.plot, overwrite=True)
    field, x0, t_span, ref, description = build_problem(args)
    say = (lambda *a: None) if args.quiet else print
    say(description)
    fixed = [m for m in methods if m in solvers.FIXED_METHODS]
    adaptive = [m for m in methods if m in solvers.ADAPTIVE_METHODS]
    records: dict[str, object] = {}  # one ConvergenceStudy per fixed method, then "work_precision"
    for m in fixed:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ReferenceAccuracyWarning)
            study = refinement_study(field, x0, t_span, method=m, steps=depths, reference=ref)
        for w in caught:
            print(f"odenet converge: warning ({m}): {w.message}", file=sys.stderr)
        records[m] = study
        ref_name = {"given": "closed form", "none": "none: Richardson self-convergence"}.get(study.reference,
                                                                                            study.reference)
        say(f"\n{m}  (reference: {ref_name}, estimated error {study.reference_error:.1e})")
        say(_table(study))
    if adaptive or len(fixed) > 1:
        wp_ref = ref if ref is not None else "DOP853"
        wp = work_precision(field, x0, t_span, fixed_methods=fixed, steps=depths, adaptive_methods=adaptive,
                            tolerances=tolerances, reference=wp_ref)
        records["work_precision"] = wp
        say("\nwork-precision: slope of log err on log nfev: "
            + ", ".join(f"{k} {v:.2f}" for k, v in wp.slopes.items()))
    if args.out is not None:
        from analysis.io import save

        config = dict(field=args.field, methods=methods, depths=depths, tolerances=tolerances, T=args.T,
                      width=args.width, knots=args.knots, batch=args.batch, reference=args.reference)
        save(args.out, records, overwrite=args.overwrite, seed=args.seed, config=config)
        say(f"\nwrote {args.out} (groups: {', '.join(records)})")
    if args.plot is not None:
        from analysis.plots import continuum as plots

        studies = [rec for m in fixed if isinstance(rec := records[m], ConvergenceStudy)]
        wp_record = records.get("work_precision")
        fig = plots.plot_convergence_summary(studies, wp_record if isinstance(wp_record, WorkPrecision) else None)
        plots.save(fig, args.plot)
        say(f"wrote {args.plot}")
    return 0


__all__ = ["add_parser", "run", "parse_depths", "parse_floats", "build_problem"]
