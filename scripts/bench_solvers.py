"""Benchmark: odenet's generalised-Euler kernel against hand-written PyTorch loops, torchdiffeq
and (if installed) JAX, on the same piecewise-constant tanh field, in one process (inference).

    python scripts/bench_solvers.py [--repeats 15] [--quick] [--threads N] [--device cpu|cuda]
    python scripts/bench_solvers.py --adaptive         # nfev at matched accuracy vs torchdiffeq
    python scripts/bench_solvers.py --floor            # what each ATen call of a step costs

JAX is not a dependency: without it the JAX column is skipped (and the script says so).  To
include it, run the script with a Python that has JAX and the project's environment on its path.

Fixed steps, L = 100 layers, for each (batch, width, dtype) the median wall time over interleaved
repeats of

- ``solve``:   ``solvers.solve(field, x0, method="euler", record="end")`` (ours);
- ``compiled``: the same with ``compile=True`` (ours: the loop in TorchScript, the same bits);
- ``native``:  the same with ``compile="native"`` (ours: the loop in C++, within a few ulps);
- ``comp_kernel``, ``native_kernel``: the field's kernel itself with ``compile=True`` and
  ``"native"`` (``field.generalised_euler``), without ``solve``'s checks and ``Solution``;
- ``forward``: ``ResNet.forward`` of a ResNet with that field (ours: blocks and readout);
- ``raw``:     the loop users write, ``x = x + h * tanh(x @ W[l].T + b[l])``;
- ``tuned``:   the tuned eager loop of issue 13, ``addmm(out=)``, ``tanh_``, ``add(alpha=, out=)``;
- ``tdq``:     torchdiffeq's fixed-grid Euler (its field looks the layer up from the float time);
- ``jax``:     a jitted ``lax.fori_loop`` of the same step, if JAX is importable.

The forward pass is compared with raw/tuned loops that also apply the readout.  Ratios are
ours / baseline (below 1: ours is faster).  The compiled path's one-off cost (scripting the
loop, then the two profiling runs of TorchScript's executor) is timed separately, once per
process, before the first case; so is the native loop's (building the extension, or loading it
from torch's extensions cache when it was built before).  The load average is printed before and after.
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

import torch
import torchdiffeq

import solvers
from odenet import ResNet
from odenet.native import native_module
from odenet.scripted import scripted_euler_loop


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


def jax_side(W, b, x0, h, L):
    """A jitted lax.fori_loop of the Euler step, or None without JAX."""
    try:
        import jax
        import jax.numpy as jnp
    except ImportError:
        return None
    if x0.dtype == torch.float64:
        jax.config.update("jax_enable_x64", True)
    Wj, bj, xj = (jnp.asarray(t.cpu().numpy()) for t in (W, b, x0))

    @jax.jit
    def loop(x):
        def body(l, x):
            return x + h * jnp.tanh(x @ Wj[l].T + bj[l])
        return jax.lax.fori_loop(0, L, body, x)

    t0 = time.perf_counter()
    loop(xj).block_until_ready()
    compile_s = time.perf_counter() - t0
    return (lambda: loop(xj).block_until_ready()), compile_s


def run(batch: int, width: int, L: int, repeats: int, dtype=torch.float32, device="cpu") -> dict:
    T = 1.0
    g = torch.Generator().manual_seed(0)
    model = ResNet(width, width, 1, L, eps=1.0, delta=T / L, T=T, dtype=dtype).requires_grad_(False)
    field = model.field
    field.weight.copy_(torch.randn(L, width, width, generator=g, dtype=dtype) / width ** 0.5)
    field.bias.copy_(torch.randn(L, width, generator=g, dtype=dtype))
    model.to(device)
    x0 = torch.randn(batch, width, generator=g, dtype=dtype).to(device)
    W, b, h = field.weight, field.bias, T / L
    wo, bo = model.out.weight, model.out.bias

    def solve():
        return solvers.solve(field, x0, method="euler", record="end").y[-1]

    def compiled():
        return solvers.solve(field, x0, method="euler", record="end", compile=True).y[-1]

    def native():
        return solvers.solve(field, x0, method="euler", record="end", compile="native").y[-1]

    def comp_kernel():
        return field.generalised_euler(x0, 1.0, h, L, "end", compile=True)

    def native_kernel():
        return field.generalised_euler(x0, 1.0, h, L, "end", compile="native")

    def forward():
        return model(x0)

    def raw_loop():  # what users write by hand
        x = x0
        for l in range(L):
            x = x + h * torch.tanh(x @ W[l].T + b[l])
        return x

    z = torch.empty_like(x0)
    bufs = (torch.empty_like(x0), torch.empty_like(x0))

    def tuned_loop():  # the tuned eager loop of issue 13
        x = x0
        for l in range(L):
            torch.addmm(b[l], x, W[l].T, out=z).tanh_()
            x = torch.add(x, z, alpha=h, out=bufs[l % 2])
        return x

    def tdq_func(t, x):  # torchdiffeq needs the layer looked up from a float time
        l = min(int(round(float(t) / h)), L - 1)
        return torch.tanh(x @ W[l].T + b[l])

    t_grid = torch.linspace(0, T, L + 1, dtype=dtype, device=device)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)

    def tdq():
        return torchdiffeq.odeint(tdq_func, x0, t_grid, method="euler")[-1]

    sides = dict(solve=solve, compiled=compiled, native=native, comp_kernel=comp_kernel, native_kernel=native_kernel,
                 forward=forward, raw=raw_loop, tuned=tuned_loop, raw_fwd=lambda: raw_loop() @ wo.T + bo,
                 tuned_fwd=lambda: torch.addmm(bo, tuned_loop(), wo.T), tdq=tdq)
    jx = jax_side(W, b, x0, h, L) if device == "cpu" else None
    if jx is not None:
        sides["jax"] = jx[0]
    with torch.no_grad():
        diffs = {name: (solve() - f()).abs().max().item() for name, f in
                 (("raw", raw_loop), ("tuned", tuned_loop), ("tdq", tdq))}
        diffs["forward"] = (forward() - raw_loop() @ wo.T - bo).abs().max().item()
        diffs["compiled_bits"] = torch.equal(compiled(), solve())
        eager = solve()
        diffs["native_rel"] = ((native() - eager).abs().max() / eager.abs().max()).item()
        t = median_times(sides, repeats, sync)
    return dict(batch=batch, width=width, L=L, dtype=str(dtype).removeprefix("torch."), times=t, diffs=diffs,
                jax_compile_s=None if jx is None else jx[1])


def adaptive(depths=(20, 100), rtols=(1e-4, 1e-6, 1e-8, 1e-10), batch=64) -> None:
    """nfev and error against a float64 DOP853 reference (rtol = atol = 1e-12): ours (restart at
    each layer boundary, carrying the last accepted step across it) against torchdiffeq's dopri5
    with ``jump_t`` at the layer boundaries on the whole interval.  ``matched``: the fewest
    evaluations ``carry`` needs for an error no larger than torchdiffeq's, over the tolerances
    rtol × (1, 1.5, 2, 3, 5, 10) (atol = rtol' / 100), and the factor used."""
    print(f"\nadaptive dopri5, width 2, batch {batch}, float64; error = max |y - y_ref| at T")
    print(f"{'L':>4} {'rtol':>7} {'carry nfev':>10} {'carry err':>10} {'tdq jump nfev':>13} {'tdq jump err':>12} "
          f"{'restart nfev':>12} {'restart err':>11} {'our jump nfev':>13} {'our jump err':>12} "
          f"{'matched nfev (x rtol)':>21}")
    for L in depths:
        g = torch.Generator().manual_seed(1)
        model = ResNet(2, 2, 1, L, eps=1.0, delta=2.0 / L, T=2.0)
        with torch.no_grad():
            model.field.weight.copy_(torch.randn(L, 2, 2, generator=g, dtype=torch.float64) * 1.5)
            model.field.bias.copy_(torch.randn(L, 2, generator=g, dtype=torch.float64))
        x0 = torch.randn(batch, 2, generator=g, dtype=torch.float64)
        ode = model.ode()
        with torch.no_grad():
            ref = solvers.solve(ode, x0, method="DOP853", rtol=1e-12, atol=1e-12, record="end").y[-1]
            for rtol in rtols:
                atol = rtol * 1e-2
                rows = []
                for how in ("carry", "restart", "jump"):
                    sol = solvers.solve(ode, x0, method="dopri5", rtol=rtol, atol=atol, record="end",
                                        boundaries=how)
                    rows.append((sol.nfev, (sol.y[-1] - ref).abs().max().item()))
                counter = [0]

                def f(t, x):  # torchdiffeq may evaluate past T (it overshoots, then interpolates)
                    counter[0] += 1
                    return ode(min(float(t), 2.0), x)

                jumps = ode.pieces.nodes()[1:-1]
                y = torchdiffeq.odeint(f, x0, torch.tensor([0.0, 2.0], dtype=torch.float64), method="dopri5",
                                       rtol=rtol, atol=atol, options={"jump_t": jumps})[-1]
                jump = (counter[0], (y - ref).abs().max().item())
                matched = []  # (nfev, factor) of every carry solve at least as accurate as torchdiffeq's
                for factor in (1, 1.5, 2, 3, 5, 10):
                    sol = solvers.solve(ode, x0, method="dopri5", rtol=rtol * factor, atol=rtol * factor * 1e-2,
                                        record="end")
                    if (sol.y[-1] - ref).abs().max().item() <= jump[1]:
                        matched.append((sol.nfev, factor))
                best = f"{min(matched)[0]} (x{min(matched)[1]:g})" if matched else "-"
                print(f"{L:>4} {rtol:>7.0e} {rows[0][0]:>10} {rows[0][1]:>10.2e} {jump[0]:>13} {jump[1]:>12.2e} "
                      f"{rows[1][0]:>12} {rows[1][1]:>11.2e} {rows[2][0]:>13} {rows[2][1]:>12.2e} {best:>21}",
                      flush=True)


_FLOOR_LOOPS = {
    "addmm(out=)": "torch.addmm(b, W, h, out=z)",
    "mm(out=)": "torch.mm(W, h, out=z)",
    "tanh_": "z.tanh_()",
    "add(alpha=, out=)": "torch.add(h, z, alpha=0.01, out=o)",
    "empty loop": "pass",
}


def floor(batch: int = 256, width: int = 2, dtype=torch.float32, repeats: int = 15, L: int = 100) -> None:
    """The cost of each ATen call of one step, each in a TorchScript loop of L calls (no Python per
    call): a lower bound for any loop that makes these calls, compiled or not."""
    g = torch.Generator().manual_seed(0)
    W, b = torch.randn(width, width, generator=g, dtype=dtype), torch.randn(width, 1, generator=g, dtype=dtype)
    h = torch.randn(width, batch, generator=g, dtype=dtype)
    z, o = torch.empty_like(h), torch.empty_like(h)
    fns = {}
    for name, body in _FLOOR_LOOPS.items():
        src = (f"def loop(W: torch.Tensor, b: torch.Tensor, h: torch.Tensor, z: torch.Tensor, o: torch.Tensor, "
               f"n: int) -> torch.Tensor:\n    for _ in range(n):\n        {body}\n    return z\n")
        scripted = torch.jit.CompilationUnit(src).loop  # TorchScript compiled from the source text
        fns[name] = (lambda f=scripted: f(W, b, h, z, o.copy_(h), L))
    t = median_times(fns, repeats, lambda: None)
    print(f"per-call cost in a TorchScript loop, batch {batch}, width {width}, {str(dtype).removeprefix('torch.')}:")
    for name, s in t.items():
        print(f"  {name:>18}: {1e6 * s / L:6.2f} us")
    step = t["addmm(out=)"] + t["tanh_"] + t["add(alpha=, out=)"]
    print(f"  one step (addmm + tanh_ + add): {1e6 * step / L:.2f} us; with mm for addmm: "
          f"{1e6 * (step - t['addmm(out=)'] + t['mm(out=)']) / L:.2f} us")
    # mm alone needs the bias inside the GEMM: [W_l | b_l] [h; 1].  Does it round as addmm does?
    Ws = torch.randn(L, width, width, generator=g, dtype=dtype) / width ** 0.5
    bs = torch.randn(L, width, 1, generator=g, dtype=dtype)
    aug = torch.cat([Ws, bs], 2)
    x = h.clone()
    xa = torch.cat([h, torch.ones(1, batch, dtype=dtype)])
    for l in range(L):
        x = x + 0.01 * torch.addmm(bs[l], Ws[l], x).tanh_()
        xa[:width] += 0.01 * torch.mm(aug[l], xa).tanh_()
    print(f"  {L} steps with the augmented mm against addmm: max difference {(x - xa[:width]).abs().max().item():.1e}")


def compile_seconds() -> tuple[float, float]:
    """(scripting, scripting + the two profiling calls) in seconds of the loop the benchmark runs
    (tanh, record="end", no member axis, ε = 1), on a fresh cache: TorchScript's profiling
    executor optimises the graph on the third call."""
    scripted_euler_loop.cache_clear()
    model = ResNet(2, 2, 1, 100).requires_grad_(False)
    x0 = torch.randn(256, 2, dtype=torch.float64)
    t0 = time.perf_counter()
    scripted_euler_loop("tanh", False, False, True)
    script_s = time.perf_counter() - t0
    for _ in range(2):
        model.blocks(x0, compile=True)
    return script_s, time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=None, help="default 15 (3 with --quick)")
    parser.add_argument("--quick", action="store_true", help="the three batch-256 cases only, 3 repeats")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--adaptive", action="store_true", help="only the adaptive nfev comparison")
    parser.add_argument("--floor", action="store_true", help="only the per-call cost of a step's ATen calls")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.floor:
        print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; load average {os.getloadavg()}")
        for dtype in (torch.float32, torch.float64):
            floor(dtype=dtype, repeats=args.repeats or 15)
        print(f"load average after: {os.getloadavg()}")
        return
    if args.adaptive:
        print(f"load average {os.getloadavg()}")
        adaptive()
        return
    cases = [(256, 2, torch.float32), (256, 2, torch.float64), (256, 32, torch.float32),
             (65536, 2, torch.float32), (65536, 32, torch.float32)]
    if args.quick:
        cases = cases[:3]
    repeats = args.repeats or (3 if args.quick else 15)
    where = torch.cuda.get_device_name() if args.device == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    try:
        import jax  # noqa: F401
        has_jax = f"JAX {jax.__version__}"
    except ImportError:
        has_jax = "JAX not importable: the JAX column is skipped"
    print(f"torch {torch.__version__}, {where}, L = 100, median of {repeats} interleaved repeats; {has_jax}")
    print(f"load average before: {os.getloadavg()}")
    script_s, first_s = compile_seconds()
    print(f"compile=True one-off cost: scripting {script_s:.3f} s, with the two profiling calls {first_s:.3f} s")
    t0 = time.perf_counter()
    native_module()
    print(f"compile='native' one-off cost: build or load from the extensions cache {time.perf_counter() - t0:.2f} s")
    print(f"{'batch':>6} {'width':>5} {'dtype':>7} {'solve us/step':>13} {'solve/raw':>9} {'solve/tuned':>11} "
          f"{'fwd/raw':>8} {'fwd/tuned':>9} {'tdq/solve':>9} {'solve/jax':>9} {'comp us/step':>12} {'comp/solve':>10} "
          f"{'comp/raw':>8} {'comp/tuned':>10} {'comp/jax':>8} {'same bits':>9}  max|solve-raw|")
    for batch, width, dtype in cases:
        r = run(batch, width, 100, repeats, dtype, args.device)
        t = r["times"]
        jax_ratio = f"{t['solve'] / t['jax']:>9.2f}" if "jax" in t else f"{'-':>9}"
        comp_jax = f"{t['compiled'] / t['jax']:>8.2f}" if "jax" in t else f"{'-':>8}"
        print(f"{batch:>6} {width:>5} {r['dtype']:>7} {1e6 * t['solve'] / 100:>13.2f} {t['solve'] / t['raw']:>9.3f} "
              f"{t['solve'] / t['tuned']:>11.3f} {t['forward'] / t['raw_fwd']:>8.3f} "
              f"{t['forward'] / t['tuned_fwd']:>9.3f} {t['tdq'] / t['solve']:>9.2f} {jax_ratio} "
              f"{1e6 * t['compiled'] / 100:>12.2f} {t['compiled'] / t['solve']:>10.3f} {t['compiled'] / t['raw']:>8.3f} "
              f"{t['compiled'] / t['tuned']:>10.3f} {comp_jax} {r['diffs']['compiled_bits']!s:>9}  "
              f"{r['diffs']['raw']:.1e}", flush=True)
        if "jax" in t:
            print(f"{'':>20} jax: {1e6 * t['jax'] / 100:.2f} us/step, compile {r['jax_compile_s']:.2f} s")
        print(f"{'':>20} native: {1e6 * t['native'] / 100:.2f} us/step; native/compiled {t['native'] / t['compiled']:.3f}, "
              f"native/solve {t['native'] / t['solve']:.3f}, native/raw {t['native'] / t['raw']:.3f}, "
              f"native/tuned {t['native'] / t['tuned']:.3f}"
              + (f", native/jax {t['native'] / t['jax']:.2f}" if "jax" in t else "")
              + f"; max|native - solve| / max|solve| {r['diffs']['native_rel']:.1e}", flush=True)
        print(f"{'':>20} kernels alone: native {1e6 * t['native_kernel'] / 100:.2f} us/step, compiled "
              f"{1e6 * t['comp_kernel'] / 100:.2f} us/step, native/compiled {t['native_kernel'] / t['comp_kernel']:.3f}",
              flush=True)
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
