"""Train K ResNets of one architecture at once, each with its own seed, with the results of
training them one by one with :func:`odenet.train`.

The K members' parameters are stacked along a leading axis (W: (K, L, m, m), ...) and the forward
pass is written with batched kernels: member k sees its own mini-batch x_k (K, B, n) and

    h_0 = A_k(x_k),   h_{l+1} = ε h_l + δ σ(BN_kl(W_kl h_l + b_kl)),   Φ_k = w_k^T h_L + b_k

(one baddbmm per affine map; the blocks are the one generalised-Euler kernel,
:func:`odenet.kernel.generalised_euler`, with its member axis).  The loss is Σ_k ℓ_k, so the gradient with respect to member k's parameters is
∇ℓ_k; Adam is elementwise, so one Adam over the stacked tensors is K independent Adams (one step
count, as every member takes the same number of steps).  Member k draws its initialisation and
its data order from its own seed exactly as :func:`odenet.train` does, so the ensemble agrees with
K single runs to rounding: 1e-10 in float64 over the tests' 80 steps.

Two limits of "to rounding".  (1) With BatchNorm the pre-BN bias b_l has an identically zero
gradient (BN subtracts the batch mean); its computed gradient is rounding noise that Adam
normalises into steps of size up to lr, different for any two kernels: freeze it
(``freeze=["field.bias"]``; BN's β does its job).  (2) Training is chaotic over long runs,
especially with BatchNorm: rounding-level differences between kernels (or thread counts) grow,
to O(0.1) in the weights after 300 epochs of the circles' standard ResNet.  The same path (single
or ensemble, same machine and thread count) is bitwise reproducible.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Callable, Sequence, cast

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from solvers.validation import check_memory, check_seed

from .kernel import generalised_euler
from .neural_ode import NeuralODE
from .resnet import ResNet
from .datasets import Split
from .training import (Data, Overrides, TrainResult, apply_overrides, as_split, check_model_data, check_overrides_and_freeze,
                       check_train_args, initialise, order_seed, progress_bar)


@dataclass
class EnsembleResult:
    """K trainings at once.

    Fields (K members, E epochs)
    ------
    members : list[TrainResult]
        One record per member, as :func:`odenet.train` returns it (model with selected weights).
    seeds : list[int]
        The members' seeds.
    train_loss, val_loss, batch_loss, train_accuracy, val_accuracy : ndarray (K, E+1)
        The members' histories stacked.
    best_epoch : ndarray (K,) int
    config : dict
    """

    members: list
    seeds: list
    train_loss: np.ndarray
    val_loss: np.ndarray
    batch_loss: np.ndarray
    train_accuracy: np.ndarray
    val_accuracy: np.ndarray
    best_epoch: np.ndarray
    config: dict = field(default_factory=dict)

    @property
    def models(self) -> list:
        """The trained model of each member, in the order of ``seeds``."""
        return [m.model for m in self.members]

    def __len__(self) -> int:
        return len(self.members)


# --- the batched forward pass -----------------------------------------------------------------
def _affine(h: torch.Tensor, W: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """z_k = h_k W_k^T + b_k for h (K, B, p), W (K, r, p), b (K, r) -> (K, B, r): one baddbmm
    (measured 3x faster on the CPU than unrolling width-2 products into elementwise multiply-adds)."""
    return torch.baddbmm(b[:, None, :], h, W.transpose(1, 2))


class _Batched:
    """Stacked parameters and buffers of K ResNets sharing ``template``'s architecture."""

    def __init__(self, template: ResNet, models: list[ResNet]):
        self.t = template
        self.K = len(models)
        pm = [dict(m.named_parameters()) for m in models]
        bm = [dict(m.named_buffers()) for m in models]
        self.params = {n: torch.stack([d[n].detach() for d in pm]).clone() for n in pm[0]}
        self.buffers = {n: torch.stack([d[n] for d in bm]).clone() for n, b in bm[0].items() if b.is_floating_point()}
        self.bn = template.field.bn
        self.activation = template.activation
        self.act = template.activation.fn
        self.logits_out = template.output == "sigmoid"

    def forward(self, x: torch.Tensor, training: bool, logits: bool) -> torch.Tensor:
        """Outputs (K, B, q) for inputs (K, B, n); logits (no sigmoid) if ``logits``."""
        P, t = self.params, self.t
        h = x
        if t.inp is not None:
            h = _affine(x, P["inp.weight"], P["inp.bias"])
            if t.input_map == "activated":
                h = self.act(h)
        norm = None if self.bn is None else (lambda z, l: self._batchnorm(z, l, training))
        h = generalised_euler(P["field.weight"], P["field.bias"], self.activation, h, t.eps, t.delta,
                              norm=norm).states
        y = _affine(h, P["out.weight"], P["out.bias"])
        return torch.sigmoid(y) if (self.logits_out and not logits) else y

    def _batchnorm(self, z, l, training):
        """nn.BatchNorm1d per member and channel: (K, B, m) seen as B samples of K m channels, so one
        fused F.batch_norm kernel does all members (batch statistics and the running-statistics
        update with momentum and the unbiased variance, exactly as the module does)."""
        bn = self.bn[l]
        pre = f"field.bn.{l}."
        K, B, m = z.shape
        flat = z.transpose(0, 1).reshape(B, K * m)
        out = F.batch_norm(flat, self.buffers[pre + "running_mean"].view(-1),
                           self.buffers[pre + "running_var"].view(-1), self.params[pre + "weight"].reshape(-1),
                           self.params[pre + "bias"].reshape(-1), training, bn.momentum, bn.eps)
        return out.reshape(B, K, m).transpose(0, 1)

    def load_into(self, models, params, buffers):
        with torch.no_grad():
            for k, m in enumerate(models):
                pd, bd = dict(m.named_parameters()), dict(m.named_buffers())
                for n, v in params.items():
                    pd[n].copy_(v[k])
                for n, v in buffers.items():
                    bd[n].copy_(v[k])


def _member_losses(out, y, loss):
    """Per-member batch-mean loss (K,) of outputs (K, B, q) against targets (K, B, q) or (B, q)."""
    if loss == "mse":
        return ((out - y) ** 2).mean((1, 2))
    return F.binary_cross_entropy_with_logits(out, y.expand_as(out), reduction="none").mean((1, 2))


def _as_resnet(ode: NeuralODE) -> ResNet:
    """The ResNet that a NeuralODE is, bit for bit: one Euler step per piece of a layer field without
    augmentation (``ode.to_resnet(L)``; same parameter names, same seeded initialisation).  Any other
    NeuralODE is refused: m > 1 sub-steps per piece tie the weights of m blocks, and adaptive or
    higher-order steps are no ResNet, neither of which the member-axis kernel expresses."""
    if not isinstance(ode, NeuralODE):
        raise TypeError(f"all members must be NeuralODEs like member 0; got {type(ode).__name__}")
    if not (ode.kind == "layer" and ode.augment == 0 and ode.method == "euler" and ode.steps == ode.pieces):
        raise TypeError(f"train_ensemble trains a NeuralODE only where it is a ResNet: field='layer', augment=0, "
                        f"method='euler', steps=pieces (one Euler step per piece); got field={ode.kind!r}, "
                        f"augment={ode.augment}, method={ode.method!r}, steps={ode.steps}, pieces={ode.pieces}. "
                        f"Train those with odenet.train, one seed at a time")
    return ode.to_resnet(ode.pieces)


def _check_models(models):
    t = models[0]
    if not isinstance(t, ResNet):
        raise TypeError(f"train_ensemble trains odenet.ResNet models (and NeuralODEs that are ResNets); "
                        f"got {type(t).__name__}")
    key = {k: v for k, v in t.config.items() if k != "seed"}
    for i, m in enumerate(models):
        if not isinstance(m, ResNet) or {k: v for k, v in m.config.items() if k != "seed"} != key:
            raise ValueError(f"all members must share one architecture; member {i} differs from member 0")
    if t.batchnorm is False and any(True for _ in t.buffers()):
        raise ValueError("unexpected buffers in a ResNet without BatchNorm")


def train_ensemble(models: ResNet | Sequence[ResNet] | Callable[[int], ResNet], data: Data, *, seeds: Sequence[int],
                   epochs: int, lr: float = 0.01, batch_size: int = 10, loss: str = "mse",
                   val_split: float | None = None, select: str = "best_val", overrides: Overrides = None,
                   freeze: Sequence[str] = (), reinit: bool = True, progress: bool = True) -> EnsembleResult:
    """Train K = len(seeds) ResNets at once; member k equals ``odenet.train(model_k, data,
    seed=seeds[k], ...)`` with the same settings (see :func:`odenet.train` for each argument).

    ``models``: one ResNet (a template, deep-copied per seed), K ResNets of one architecture, or a
    factory seed -> ResNet.  With ``reinit`` (default) member k is initialised from seeds[k].
    A :class:`odenet.NeuralODE` that is a ResNet (layer field, no augmentation, ``method="euler"``,
    ``steps`` = its pieces) is trained as ``to_resnet(L)`` and gets the trained weights back; other
    NeuralODEs (sub-steps tie weights; adaptive steps are no ResNet) are refused with a TypeError.
    Retries (``retry_threshold``) are not offered here: train more seeds and pick among them.
    """
    seeds = [check_seed(f"seeds[{k}]", s) for k, s in enumerate(seeds)]
    if len(seeds) == 0:
        raise ValueError("seeds must name at least one seed")
    split = as_split(data, val_split)
    check_train_args(epochs, lr, batch_size, loss, select, split)
    if isinstance(models, nn.Module):
        # K copies of the template, then stacked: the members, the stack, its gradient, Adam's two
        # moments and the best-epoch copy hold the parameters 6 times over
        size = sum(t.numel() * t.element_size() for t in (*models.parameters(), *models.buffers()))
        check_memory(6 * len(seeds) * size, f"an ensemble of {len(seeds)} members of {size} bytes each")
        members = [copy.deepcopy(models) for _ in seeds]
    elif callable(models):
        members = [models(s) for s in seeds]
    else:
        members = list(models)
        if len(members) != len(seeds):
            raise ValueError(f"got {len(members)} models for {len(seeds)} seeds")
    odes = None
    if isinstance(members[0], NeuralODE):
        odes, members = members, [_as_resnet(cast(NeuralODE, m)) for m in members]
    _check_models(members)
    check_model_data(members[0], split, loss)
    freeze = check_overrides_and_freeze(members[0], overrides, freeze)
    from_factory = callable(models) and not isinstance(models, nn.Module)
    for m, s in zip(members, seeds):
        if reinit and not from_factory:
            initialise(m, s, overrides)
        else:
            apply_overrides(m, overrides)
    config = dict(epochs=epochs, lr=lr, batch_size=batch_size, loss=loss, select=select, retry_threshold=None,
                  max_tries=1, freeze=list(freeze), reinit=reinit, val_split=val_split)
    hist, best_epoch, metrics = _fit_batched(members, split, seeds, epochs, lr, batch_size, loss, select, freeze,
                                             progress)
    if odes is not None:  # the trained weights back into the NeuralODEs, which the results then hold
        for ode, net in zip(odes, members):
            ode.load_state_dict(net.state_dict())
        members = odes
    results = []
    for k, (m, s) in enumerate(zip(members, seeds)):
        m.eval()
        h = {n: v[k].copy() for n, v in hist.items()}
        e = int(best_epoch[k])
        results.append(TrainResult(m, h["train_loss"], h["val_loss"], h["batch_loss"], h["train_accuracy"],
                                   h["val_accuracy"], e, s, [s], [float(h["val_loss"][e])],
                                   metrics[k], dict(config)))
    return EnsembleResult(results, seeds, hist["train_loss"], hist["val_loss"], hist["batch_loss"],
                          hist["train_accuracy"], hist["val_accuracy"], best_epoch, config)


def _fit_batched(members, split: Split, seeds, epochs, lr, batch_size, loss, select, freeze, progress):
    K = len(members)
    net = _Batched(members[0], members)
    logits = loss == "bce"
    trainable = {n: p for n, p in net.params.items() if n not in set(freeze)}
    for p in trainable.values():
        p.requires_grad_(True)
    # foreach: one multi-tensor kernel per Adam operation instead of one per stacked tensor (same numbers)
    opt = torch.optim.Adam(list(trainable.values()), lr=lr, foreach=True)
    gens = [torch.Generator().manual_seed(order_seed(s)) for s in seeds]
    xt, yt = split.x_train, split.y_train
    n = len(xt)
    hist = {k: np.full((K, epochs + 1), np.nan) for k in ("train_loss", "val_loss", "batch_loss",
                                                        "train_accuracy", "val_accuracy")}

    @torch.no_grad()
    def evaluate(x, y):
        if len(x) == 0:
            return np.full(K, np.nan), np.full(K, np.nan)
        out = net.forward(x.expand(K, *x.shape), False, logits)
        lv = _member_losses(out, y, loss).numpy()
        if loss != "bce":
            return lv, np.full(K, np.nan)
        acc = ((out > 0).to(y.dtype) == y).to(torch.float64).mean((1, 2)).numpy()
        return lv, acc

    def record(e):
        hist["train_loss"][:, e], hist["train_accuracy"][:, e] = evaluate(xt, yt)
        hist["val_loss"][:, e], hist["val_accuracy"][:, e] = evaluate(split.x_val, split.y_val)

    record(0)
    best_epoch = np.zeros(K, dtype=int)
    best_val = hist["val_loss"][:, 0].copy()
    best_p = {n: v.detach().clone() for n, v in net.params.items()}
    best_b = {n: v.clone() for n, v in net.buffers.items()}
    bar = progress_bar(epochs, progress, f"ensemble of {K}")
    for e in range(1, epochs + 1):
        perms = torch.stack([torch.randperm(n, generator=g) for g in gens])  # (K, n)
        total = torch.zeros(K, dtype=torch.float64)
        for i in range(0, n, batch_size):
            idx = perms[:, i:i + batch_size]
            opt.zero_grad(set_to_none=True)
            lk = _member_losses(net.forward(xt[idx], True, logits), yt[idx], loss)
            lk.sum().backward()
            opt.step()
            total += lk.detach() * idx.shape[1]
        hist["batch_loss"][:, e] = (total / n).numpy()
        record(e)
        if select == "best_val":
            better = hist["val_loss"][:, e] < best_val
            if better.any():
                mask = torch.from_numpy(better)
                best_val[better] = hist["val_loss"][better, e]
                best_epoch[better] = e
                with torch.no_grad():
                    for name, v in net.params.items():
                        best_p[name][mask] = v[mask]
                    for name, v in net.buffers.items():
                        best_b[name][mask] = v[mask]
        post = dict(train=f"{hist['train_loss'][:, e].mean():.4g}")
        if len(split.x_val):
            post["val"] = f"{hist['val_loss'][:, e].mean():.4g}"
        bar.set_postfix(refresh=False, **post)
        bar.update()
    bar.close()
    if select == "last":
        best_epoch[:] = epochs
        best_p = {n: v.detach() for n, v in net.params.items()}
        best_b = net.buffers
    net.load_into(members, best_p, best_b)
    with torch.no_grad():  # the kept weights, evaluated for all members at once
        for name, v in net.params.items():
            v.copy_(best_p[name])
        for name, v in net.buffers.items():
            v.copy_(best_b[name])
    metrics: list[dict[str, float]] = [{} for _ in range(K)]
    for part in ("train", "val", "test"):
        lv, acc = evaluate(getattr(split, f"x_{part}"), getattr(split, f"y_{part}"))
        for k in range(K):
            metrics[k][f"{part}_loss"], metrics[k][f"{part}_accuracy"] = float(lv[k]), float(acc[k])
    return hist, best_epoch, metrics
