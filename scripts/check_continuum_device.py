"""Device check of the continuum diagnostics: the same studies on CPU and CUDA agree.

    PYTHONPATH=. python3 scripts/check_continuum_device.py      (needs a CUDA device)

References are dopri8 (torchdiffeq, on the device): the scipy references of solvers evaluate
the field on CPU copies of the state and refuse a CUDA field.
"""
import sys
import time

import numpy as np
import torch

from analysis.continuum.convergence import refinement_study, depth_study, work_precision
from analysis.continuum.depth_regularity import reverse_euler, weight_regularity, solver_swap
from analysis.continuum.depth_weights import smooth_weights, iid_weights, load_weights
from odenet import ResNet, SmoothField
print("cuda", torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else "")
dev = torch.device("cuda")
g = torch.Generator().manual_seed(0)
x = torch.randn(256, 4, dtype=torch.float64, generator=g)
sf = SmoothField(torch.randn(5, 4, 4, dtype=torch.float64, generator=g) / 2, torch.randn(5, 4, dtype=torch.float64, generator=g))
def both(fn):
    t = time.time()
    a = fn("cpu")
    tc = time.time() - t
    t = time.time()
    b = fn(dev)
    tg = time.time() - t
    return a, b, tc, tg
ok = True
def check(name, a, b, tol=1e-9):
    global ok
    a, b = np.asarray(a, float), np.asarray(b, float)
    good = np.allclose(a, b, rtol=tol, atol=1e-13, equal_nan=True)
    ok &= good
    print(f"{name:<28} {'OK ' if good else 'BAD'} max rel diff {np.nanmax(np.abs(a-b)/np.maximum(np.abs(a),1e-300)):.1e}")
a, b, tc, tg = both(lambda d: depth_study(sf.to(d), x.to(d), (8, 16, 32, 64), reference="dopri8"))
check("depth_study err_sup", a.err_sup, b.err_sup)
print("  order", a.order, b.order, f"cpu {tc:.2f}s gpu {tg:.2f}s")
a, b, tc, tg = both(lambda d: refinement_study(sf.to(d), x.to(d), method="rk4", steps=(8, 16, 32, 64), reference="dopri8"))
check("refinement rk4 err_sup", a.err_sup, b.err_sup)
def mk(d, L=16, kind="smooth"):
    net = ResNet(4, 4, 1, L, eps=0.9, delta=1 / L, T=1.0, seed=0, activation="softplus")
    W, bb = smooth_weights(L, 4, seed=1, bias_std=0.5) if kind == "smooth" else iid_weights(L, 4, seed=1, bias_std=0.5)
    return load_weights(net, W, bb).to(d)
a, b, *_ = both(lambda d: refinement_study(mk(d), x.to(d), steps=(16, 32, 64, 128), reference="dopri8"))
check("resnet refinement", a.err_sup, b.err_sup)
a, b, *_ = both(lambda d: reverse_euler(mk(d), x.to(d)))
check("reverse_euler", a.layer_err_rms, b.layer_err_rms)
a, b, *_ = both(lambda d: weight_regularity(mk(d, 64, "iid")))
check("weight_regularity", a.increments, b.increments)
for reading in ("piecewise", "linear"):
    a, b, *_ = both(lambda d: solver_swap(mk(d), x.to(d), (x[:, 0] > 0).long().to(d), methods=("euler", "rk4", "dopri5"), reading=reading))
    check(f"solver_swap {reading}", a.change_rms, b.change_rms, tol=1e-6)
    check(f"  accuracy {reading}", a.accuracy, b.accuracy)
a, b, *_ = both(lambda d: work_precision(sf.to(d), x.to(d), steps=(8, 16, 32), adaptive_methods=("dopri5",), tolerances=(1e-5, 1e-7), reference="dopri8"))
check("work_precision err (fixed)", a.err_sup[:12], b.err_sup[:12])
print("nfev adaptive cpu/gpu", a.nfev[12:], b.nfev[12:])
# a larger batch on the GPU: time a deep refinement study
xb = torch.randn(65536, 4, dtype=torch.float64, generator=g)
for d in ("cpu", dev):
    t = time.time()
    s = depth_study(sf.to(d), xb.to(d), (64, 128, 256, 512), reference=None)
    if d != "cpu":
        torch.cuda.synchronize()
    print(f"depth_study Richardson, batch 65536, L up to 512 on {d}: {time.time()-t:.2f}s order {s.order:.4f}")
print("ALL OK" if ok else "SOME BAD")
sys.exit(0 if ok else 1)
