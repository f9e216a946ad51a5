"""marion2024 — Marion, Wu, Sander, Biau, *Implicit regularization of deep residual networks
towards neural ODEs* (ICLR 2024).

    h_{k+1} = h_k + (1/L) V_k GELU(W_k h_k),  k = 0..L-1,  h_0 = x ∈ R^d,  V_k (d, M), W_k (M, d),

d = 16, M = 32, n = 100 Gaussian inputs x_i, targets y_i = tanh(B x_i) (B a random teacher with
N(0, 1/d) entries), loss ½ mean_i |h_L(x_i) - y_i|².  Start: V_k = 0 and W_k = W (tied, N(0, 1/d));
full-batch gradient descent with lr = 0.01 L (each weight moves by O(1) per step whatever L).
The paper proves that the trained weights stay a discretisation of smooth functions of k/L:

- max_k |V_{k+1} - V_k|_F and max_k |W_{k+1} - W_k|_F ~ L^{-1} after 50 iterations;
- the distance of the trained weights to a deep reference network's at the same layer times,
  max_k |V^L_k - V^ref_{k L_ref / L}|_F, ~ L^{-1};
- long training (L = 64): the loss decays exponentially and the weights stay smooth in k.

Training is batched over seeds (one leading axis, as an ensemble): seed s draws its own data,
teacher and W.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from analysis.experiments.literature.estimators import power_law_slope
from analysis.experiments.literature.records import ClaimRow, StudyResult, slope_row

NAME = "marion2024"
SOURCE = "Marion, Wu, Sander, Biau, ICLR 2024"
D, M, N_DATA = 16, 32, 100


def problem(seeds: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(x (S, n, d), y (S, n, d), W (S, M, d)) for ``seeds`` independent problems."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(seeds, N_DATA, D, generator=g, dtype=torch.float64)
    B = torch.randn(seeds, D, D, generator=g, dtype=torch.float64) / D ** 0.5
    W = torch.randn(seeds, M, D, generator=g, dtype=torch.float64) / D ** 0.5
    return x, torch.tanh(x @ B.transpose(1, 2)), W


def train(L: int, x: torch.Tensor, y: torch.Tensor, W0: torch.Tensor, iterations: int, lr_per_depth: float = 0.01
          ) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
    """Gradient descent from V = 0, W_k = W0 (module docstring); returns (V (S, L, d, M),
    W (S, L, M, d), losses (iterations + 1, S))."""
    S = x.shape[0]
    V = torch.zeros(S, L, D, M, dtype=torch.float64, requires_grad=True)
    W = W0[:, None].expand(S, L, M, D).clone().requires_grad_(True)
    losses = []
    for it in range(iterations + 1):
        h = x
        for k in range(L):
            h = h + F.gelu(h @ W[:, k].transpose(1, 2)) @ V[:, k].transpose(1, 2) / L
        loss = 0.5 * (h - y).square().sum(-1).mean(-1)   # (S,)
        losses.append(loss.detach().numpy())
        if it == iterations:
            break
        gV, gW = torch.autograd.grad(loss.sum(), (V, W))
        with torch.no_grad():
            V -= lr_per_depth * L * gV
            W -= lr_per_depth * L * gW
    return V.detach(), W.detach(), np.array(losses)


def max_increment(P: torch.Tensor) -> np.ndarray:
    """max_k |P_{k+1} - P_k|_F per seed, P (S, L, a, b)."""
    return (P[:, 1:] - P[:, :-1]).flatten(2).norm(dim=2).amax(1).numpy()


def run(*, quick: bool = False, seeds: int | None = None, seed: int = 0) -> StudyResult:
    """Depths L ∈ {4, ..., 64} (quick) or {4, ..., 128}, reference 256 (quick 128), ``seeds``
    problems (default 3 quick, 5 full); long run L = 64 for 300 (quick) or 2000 iterations."""
    S = seeds or (3 if quick else 5)
    depths = [4, 8, 16, 32, 64] if quick else [4, 8, 16, 32, 64, 128]
    L_ref = 128 if quick else 256
    x, y, W0 = problem(S, seed)
    Vr, Wr, _ = train(L_ref, x, y, W0, 50)
    incV, incW, distV, distW = (np.zeros((len(depths), S)) for _ in range(4))
    for i, L in enumerate(depths):
        V, W, _ = train(L, x, y, W0, 50)
        incV[i], incW[i] = max_increment(V), max_increment(W)
        idx = torch.arange(L) * (L_ref // L)
        distV[i] = (V - Vr[:, idx]).flatten(2).norm(dim=2).amax(1).numpy()
        distW[i] = (W - Wr[:, idx]).flatten(2).norm(dim=2).amax(1).numpy()
    fits = {k: power_law_slope(depths, np.median(v, 1)) for k, v in
            dict(incV=incV, incW=incW, distV=distV, distW=distW).items()}
    long_iters = 300 if quick else 2000
    V64, W64, losses = train(64, x, y, W0, long_iters)
    t = np.arange(long_iters + 1)
    half = t >= long_iters // 2
    logl = np.log(np.median(losses, 1))
    rate = np.polyfit(t[half], logl[half], 1)[0]
    r2 = np.corrcoef(t[half], logl[half])[0, 1] ** 2
    smooth64 = max_increment(V64) * 64 / (V64.flatten(2).norm(dim=2).amax(1).numpy())
    ref_note = (f"the reference's own O(1/{L_ref}) error makes the distance fall faster than 1/L as L nears "
                f"{L_ref}")
    claims = [
        slope_row(NAME, SOURCE, "after 50 steps, max_k |V_{k+1} - V_k| ~ L^-1", fits["incV"], -1.0, 0.15),
        slope_row(NAME, SOURCE, "after 50 steps, max_k |W_{k+1} - W_k| ~ L^-1 (W tied at start)", fits["incW"], -1.0,
                  0.15),
        slope_row(NAME, SOURCE, f"distance of V to a depth-{L_ref} reference at the same layer times ~ L^-1",
                  fits["distV"], -1.0, 0.15, ref_note),
        slope_row(NAME, SOURCE, f"distance of W to a depth-{L_ref} reference at the same layer times ~ L^-1",
                  fits["distW"], -1.0, 0.15, ref_note),
        ClaimRow(NAME, f"long training (L = 64, {long_iters} steps): the loss decays exponentially", SOURCE,
                 "log loss linear in the step (r² > 0.95), rate < 0",
                 f"rate {rate:.3g} per step, r² = {r2:.3f} on the second half; loss {np.median(losses[0]):.3g} → "
                 f"{np.median(losses[-1]):.3g}", "consistent" if rate < 0 and r2 > 0.95 else "contradicts",
                 "" if rate < 0 and r2 > 0.95 else "median over seeds"),
        ClaimRow(NAME, "long training: the weights stay smooth in k", SOURCE,
                 "L · max_k |V_{k+1} - V_k| / max_k |V_k| bounded (< 10)",
                 f"{float(np.max(smooth64)):.3g} (worst seed)",
                 "consistent" if np.max(smooth64) < 10 else "contradicts"),
    ]
    data = dict(L=np.array(depths), increment_V=incV, increment_W=incW, distance_V=distV, distance_W=distW,
                long_loss=losses, long_increments_V=(V64[:, 1:] - V64[:, :-1]).flatten(2).norm(dim=2).numpy(),
                long_V_norm=V64.flatten(2).norm(dim=2).numpy())
    from analysis.plots.literature import marion2024_figure

    return StudyResult(NAME, SOURCE, data, claims, figures={NAME: marion2024_figure(data)},
                       scaled=(f"L ∈ {depths}, reference depth {L_ref}, {S} seeds; long run {long_iters} steps "
                               "(published 10⁴); targets from a random tanh teacher"),
                       config=dict(d=D, M=M, n=N_DATA, depths=depths, reference=L_ref, seeds=S, lr="0.01 L",
                                   long_iterations=long_iters))
