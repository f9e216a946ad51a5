"""Reproducible training: Adam on mini-batches, a seed that fixes everything, best-epoch selection
on a validation split (never the test split), optional retries until a validation threshold.

One run with seed s:

- initialisation: ``model.reset_parameters(torch.Generator().manual_seed(s))`` (the same weights as
  ``ResNet(..., seed=s)``), BatchNorm layers reset, then the manual ``overrides``;
- data order: epoch e visits the training points in the order of ``torch.randperm`` drawn from a
  second generator seeded with :func:`order_seed` (s), in mini-batches of ``batch_size`` (the last
  one shorter);
- each step minimises the batch mean of the loss with Adam(lr, betas=(0.9, 0.999), eps=1e-8):

      mse:  ℓ = mean (Φ(x) - y)²
      bce:  ℓ = mean [softplus(z) - y z],  z the logit (``model.logits`` for a sigmoid output,
            which is  -y log σ(z) - (1 - y) log(1 - σ(z)) computed stably);

- after every epoch the whole training and validation sets are evaluated in eval mode; with
  ``select="best_val"`` the weights of the epoch of least validation loss are kept (epoch 0, the
  initial weights, included).

The same seed gives identical weights (bit for bit on the same machine and thread count).
"""
from __future__ import annotations

import copy
import inspect
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence, Union, cast

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from solvers.validation import check_choice, check_finite, check_positive, check_positive_int, check_seed

from .datasets import Split

#: what train and train_ensemble accept as data: a Split or Dataset, (x, y) or (x_train, y_train, x_val, y_val)
Data = Union[Split, Sequence[Any]]
#: manual weights set after initialisation: parameter name -> value, or a callable f(model)
Overrides = Union[Mapping[str, Any], Callable[[nn.Module], Any], None]

LOSSES = ("mse", "bce")
SELECTS = ("best_val", "last")


@dataclass
class TrainResult:
    """The record of one training (of the selected seed when retries happened).

    Fields (E = epochs; histories have E + 1 entries, entry 0 before any step)
    ------
    model : nn.Module
        The trained model, holding the selected weights (eval mode).
    train_loss : ndarray (E+1,)
        Loss on the whole training split after each epoch (eval mode).
    val_loss : ndarray (E+1,)
        Loss on the validation split after each epoch (NaN without validation data).
    batch_loss : ndarray (E+1,)
        Mean of the mini-batch losses seen during each epoch, weighted by batch size (train mode;
        entry 0 is NaN).
    train_accuracy, val_accuracy : ndarray (E+1,)
        Fraction of correct labels (logit > 0 ⇔ class 1) for ``loss="bce"``; NaN for mse.
    best_epoch : int
        The epoch (0..E) whose weights were kept: argmin of val_loss for ``select="best_val"``,
        E for ``select="last"``.
    seed : int
        The seed of the kept run.
    seeds_tried : list[int]
        Every seed trained, in order (more than one only with ``retry_threshold``).
    best_val_per_seed : list[float]
        The best validation loss of each seed tried.
    metrics : dict[str, float]
        The kept model's train/val/test loss and accuracy (test reported, never used to select).
    config : dict
        The training settings (epochs, lr, batch_size, loss, select, ...).
    """

    model: nn.Module
    train_loss: np.ndarray
    val_loss: np.ndarray
    batch_loss: np.ndarray
    train_accuracy: np.ndarray
    val_accuracy: np.ndarray
    best_epoch: int
    seed: int
    seeds_tried: list = field(default_factory=list)
    best_val_per_seed: list = field(default_factory=list)
    metrics: dict = field(default_factory=dict)
    config: dict = field(default_factory=dict)

    @property
    def epochs(self) -> int:
        """Epochs trained (train_loss also holds the loss before the first epoch)."""
        return len(self.train_loss) - 1

    @property
    def best_val_loss(self) -> float:
        """Validation loss at the kept epoch ``best_epoch``."""
        return float(self.val_loss[self.best_epoch])


# --- seeds, initialisation --------------------------------------------------------------------
def order_seed(seed: int) -> int:
    """The seed of the data-order generator of a run with seed s: a SeedSequence([s, 1]) word,
    independent of the initialisation stream (which uses s itself)."""
    return int(np.random.SeedSequence([int(seed), 1]).generate_state(1, np.uint64)[0])


def _can_reinit(model: nn.Module) -> bool:
    fn = getattr(model, "reset_parameters", None)
    return fn is not None and "generator" in inspect.signature(fn).parameters


def initialise(model: nn.Module, seed: int, overrides: Overrides = None) -> nn.Module:
    """Reset ``model`` in place to the initialisation of ``seed`` and apply ``overrides``.

    ``model.reset_parameters(generator)`` draws the weights from
    ``torch.Generator().manual_seed(seed)``; BatchNorm layers are reset (γ = 1, β = 0, running
    mean 0, variance 1).  ``overrides`` is a mapping parameter name -> value (e.g.
    ``{"field.weight": W}``, see ``model.named_parameters()``) or a callable ``f(model)``
    that edits the weights in place (e.g. ``lambda m: m.set_block(0, -5.0)``).
    """
    if not _can_reinit(model):
        raise TypeError(f"model {type(model).__name__} has no reset_parameters(generator=...); pass a "
                        f"factory seed -> model or reinit=False")
    cast(Any, model).reset_parameters(torch.Generator().manual_seed(seed))  # checked by _can_reinit
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.reset_parameters()
    apply_overrides(model, overrides)
    return model


def apply_overrides(model: nn.Module, overrides: Overrides) -> None:
    """Write ``overrides`` (mapping name -> value, or callable f(model)) into the model."""
    if overrides is None:
        return
    if callable(overrides):
        with torch.no_grad():
            overrides(model)
        return
    params = dict(model.named_parameters())
    with torch.no_grad():
        for name, value in overrides.items():
            if name not in params:
                raise ValueError(f"overrides: no parameter named {name!r}; the model has {sorted(params)}")
            p = params[name]
            v = torch.as_tensor(value, dtype=p.dtype, device=p.device)
            try:
                p.copy_(v.expand_as(p))
            except RuntimeError:
                raise ValueError(f"overrides[{name!r}] has shape {tuple(v.shape)}, the parameter "
                                 f"{tuple(p.shape)}") from None


def check_overrides_and_freeze(model: nn.Module, overrides: Overrides, freeze: Sequence[str] | None) -> list[str]:
    """Check ``overrides`` and ``freeze`` against ``model.named_parameters()`` before any training:
    ``overrides`` is None, a callable f(model), or a mapping whose every key names a parameter;
    every name in ``freeze`` names a parameter.  Returns ``freeze`` as a list.  TypeError for an
    ``overrides`` of another type, ValueError naming an unknown name and the model's names."""
    names = [n for n, _ in model.named_parameters()]
    if overrides is not None and not callable(overrides):
        if not isinstance(overrides, Mapping):
            raise TypeError(f"overrides must be a mapping name -> value or a callable; got {type(overrides).__name__}")
        for k in overrides:
            if k not in names:
                raise ValueError(f"overrides: no parameter named {k!r}; the model has {names}")
    freeze = list(freeze or ())
    for k in freeze:
        if k not in names:
            raise ValueError(f"freeze: no parameter named {k!r}; the model has {names}")
    return freeze


# --- data --------------------------------------------------------------------------------------
def as_split(data: Data, val_split: float | None = None, dtype: torch.dtype = torch.float64) -> Split:
    """A :class:`Split` from a :class:`odenet.datasets.Dataset`, an (x, y) pair, or
    (x_train, y_train, x_val, y_val).  For an (x, y) pair, ``val_split`` carves that fraction off as
    validation data with a fixed permutation (seed 0), the same for every training seed.

    Checked before anything else: every array finite (the error names the array and counts the
    NaN/inf entries), inputs and targets 2-D (a 1-D array of length N is read as (N, 1)) and of
    equal lengths, at least one training point."""
    if hasattr(data, "x_train"):
        if val_split is not None:
            raise ValueError("val_split is for (x, y) data; a Dataset has its own validation split")
        names: tuple[str, ...] = ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test")
        parts = [getattr(data, n) for n in names]
    elif isinstance(data, (tuple, list)) and len(data) in (2, 4):
        names = ("x", "y") if len(data) == 2 else ("x_train", "y_train", "x_val", "y_val")
        parts = [torch.as_tensor(t, dtype=dtype) for t in data]
        parts = [p[:, None] if p.ndim == 1 else p for p in parts]
    else:
        raise TypeError(f"data must be a Dataset, (x, y) or (x_train, y_train, x_val, y_val); "
                        f"got {type(data).__name__}")
    parts = [p.to(dtype) for p in parts]
    for i in range(0, len(parts), 2):
        (nx, ny), (x, y) = names[i:i + 2], parts[i:i + 2]
        if x.ndim != 2 or y.ndim != 2:
            raise ValueError(f"inputs and targets must be 2-D (n, d); got {nx} of shape {tuple(x.shape)}, "
                             f"{ny} of shape {tuple(y.shape)}")
        if len(x) != len(y):
            raise ValueError(f"inputs and targets differ in length: {nx} has {len(x)} points, {ny} has {len(y)}")
    for name, p in zip(names, parts):
        check_finite(name, p)
    if len(parts) == 2:
        x, y = parts
        empty = x[:0], y[:0]
        if val_split:
            if not 0 < val_split < 1:
                raise ValueError(f"val_split must be in (0, 1); got {val_split}")
            perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
            n_val = round(val_split * len(x))
            parts = [x[perm[n_val:]], y[perm[n_val:]], x[perm[:n_val]], y[perm[:n_val]]]
        else:
            parts = [x, y, *empty]
    if len(parts) == 4:
        parts += [parts[0][:0], parts[1][:0]]
    if len(parts[0]) == 0:
        raise ValueError("data has no training points")
    return Split(*parts)


def check_model_data(model: nn.Module, split: Split, loss: str) -> None:
    """The model fits the data and the loss, checked before any epoch.

    - inputs of the model's width (``model.n_in`` where it has one);
    - targets of shape (N, q) with q the model's outputs (``model.n_out``, else the output width
      of ``model(x_train[:1])``): no silent broadcasting of (N, 1) against (N, q);
    - ``loss="bce"`` needs probabilities or logits: a model whose ``output`` is ``"linear"`` is
      refused (use ``output="sigmoid"`` or ``loss="mse"``).
    """
    n_in = getattr(model, "n_in", None)
    if isinstance(n_in, int) and split.x_train.shape[1] != n_in:
        raise ValueError(f"the inputs have {split.x_train.shape[1]} features (x_train of shape "
                         f"{tuple(split.x_train.shape)}) but the model has n_in={n_in}")
    n_out = getattr(model, "n_out", None)
    if not isinstance(n_out, int):
        was = model.training
        model.eval()
        try:
            with torch.no_grad():
                n_out = model(split.x_train[:1]).shape[-1]
        finally:
            model.train(was)
    for part in ("train", "val", "test"):
        y = getattr(split, f"y_{part}")
        if len(y) and y.shape[1] != n_out:
            raise ValueError(f"y_{part} has shape {tuple(y.shape)} but the model has {n_out} output(s): targets "
                             f"must have shape (N, {n_out}) (a 1-D target of length N is read as (N, 1)); "
                             f"they are not broadcast")
    if loss == "bce" and getattr(model, "output", None) == "linear":
        raise ValueError("loss='bce' needs a model whose output is a probability: the model's output is "
                         "'linear'; use output='sigmoid' (trained on its logits) or loss='mse'")


# --- losses -----------------------------------------------------------------------------------
def _uses_logits(model: nn.Module, loss: str) -> bool:
    return loss == "bce" and getattr(model, "output", None) == "sigmoid" and hasattr(model, "logits")


def loss_value(pred: torch.Tensor, y: torch.Tensor, loss: str, logits: bool) -> torch.Tensor:
    """Batch-mean loss: mse mean (Φ - y)²; bce on logits mean [softplus(z) - y z] (stable form of
    the binary cross-entropy), on probabilities mean [-y log p - (1 - y) log(1 - p)]."""
    if loss == "mse":
        return F.mse_loss(pred, y)
    if logits:
        return F.binary_cross_entropy_with_logits(pred, y)
    return F.binary_cross_entropy(pred, y)


def _predict(model, x, loss):
    return model.logits(x) if _uses_logits(model, loss) else model(x)


def _accuracy(pred, y, loss, logits) -> float:
    if loss != "bce" or len(y) == 0:
        return float("nan")
    cls = (pred > 0) if logits else (pred >= 0.5)
    return (cls.to(y.dtype) == y).to(torch.float64).mean().item()


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, loss: str = "mse") -> tuple[float, float]:
    """(loss, accuracy) of ``model`` in eval mode on (x, y); NaN for empty data (accuracy NaN for mse)."""
    if len(x) == 0:
        return float("nan"), float("nan")
    was = model.training
    model.eval()
    try:
        logits = _uses_logits(model, loss)
        pred = _predict(model, x, loss)
        return loss_value(pred, y, loss, logits).item(), _accuracy(pred, y, loss, logits)
    finally:
        model.train(was)


def check_train_args(epochs: int, lr: float, batch_size: int, loss: str, select: str, split: Split) -> None:
    """The training options of :func:`train` and :func:`odenet.train_ensemble`, checked before any
    epoch: epochs, batch_size integers >= 1, lr > 0, loss in LOSSES, select in SELECTS, and
    select="best_val" only with validation data in ``split``."""
    check_positive_int("epochs", epochs)
    check_positive("lr", lr)
    check_positive_int("batch_size", batch_size)
    check_choice("loss", loss, LOSSES)
    check_choice("select", select, SELECTS)
    if select == "best_val" and len(split.x_val) == 0:
        raise ValueError("select='best_val' needs validation data: give a Dataset with val_fraction > 0, "
                         "val_split=... for (x, y) data, or select='last'")
    if loss == "bce":
        y = split.y_train
        if not torch.all((y == 0) | (y == 1)):
            raise ValueError("loss='bce' needs labels in {0, 1}")


# --- one run ------------------------------------------------------------------------------------
def _fit(model, split: Split, seed, epochs, lr, batch_size, loss, select, freeze, progress, desc):
    """Train ``model`` in place from its current weights; returns (history dict, best state)."""
    logits = _uses_logits(model, loss)
    frozen = set(freeze)
    params = [p for n, p in model.named_parameters() if n not in frozen and p.requires_grad]
    opt = torch.optim.Adam(params, lr=lr)
    gen = torch.Generator().manual_seed(order_seed(seed))
    n = len(split.x_train)
    hist = {k: np.full(epochs + 1, np.nan) for k in ("train_loss", "val_loss", "batch_loss",
                                                     "train_accuracy", "val_accuracy")}

    def record(e):
        hist["train_loss"][e], hist["train_accuracy"][e] = evaluate(model, split.x_train, split.y_train, loss)
        hist["val_loss"][e], hist["val_accuracy"][e] = evaluate(model, split.x_val, split.y_val, loss)

    record(0)
    best_epoch, best_val = 0, hist["val_loss"][0]
    best_state = copy.deepcopy(model.state_dict())
    bar = progress_bar(epochs, progress, desc)
    model.train()
    for e in range(1, epochs + 1):
        perm = torch.randperm(n, generator=gen)
        total = 0.0
        for i in range(0, n, batch_size):
            idx = perm[i:i + batch_size]
            opt.zero_grad(set_to_none=True)
            value = loss_value(_predict(model, split.x_train[idx], loss), split.y_train[idx], loss, logits)
            value.backward()
            opt.step()
            total += value.item() * len(idx)
        hist["batch_loss"][e] = total / n
        record(e)
        if select == "best_val" and hist["val_loss"][e] < best_val:
            best_epoch, best_val = e, hist["val_loss"][e]
            best_state = copy.deepcopy(model.state_dict())
        bar.set_postfix(train=f"{hist['train_loss'][e]:.4g}", val=f"{hist['val_loss'][e]:.4g}", refresh=False)
        bar.update()
    bar.close()
    if select == "last":
        best_epoch, best_state = epochs, copy.deepcopy(model.state_dict())
    model.load_state_dict(best_state)
    model.eval()
    return hist, best_epoch


def progress_bar(total: int, progress: bool, desc: str) -> Any:
    """A tqdm bar over ``total`` steps labelled ``desc``, disabled unless ``progress``
    (tqdm imported on first use)."""
    from tqdm.auto import tqdm

    return tqdm(total=total, disable=not progress, desc=desc, leave=False)


def final_metrics(model: nn.Module, split: Split, loss: str) -> dict[str, float]:
    """{part}_loss and {part}_accuracy of ``model`` on the train, val and test parts of ``split``
    (:func:`evaluate`: NaN on an empty part)."""
    m = {}
    for part in ("train", "val", "test"):
        m[f"{part}_loss"], m[f"{part}_accuracy"] = evaluate(model, getattr(split, f"x_{part}"),
                                                            getattr(split, f"y_{part}"), loss)
    return m


def train(model: nn.Module | Callable[[int], nn.Module], data: Data, *, epochs: int, lr: float = 0.01,
          batch_size: int = 10, loss: str = "mse", seed: int = 0, val_split: float | None = None,
          select: str = "best_val", retry_threshold: float | None = None, max_tries: int = 1,
          overrides: Overrides = None, freeze: Sequence[str] = (), reinit: bool = True,
          progress: bool = True) -> TrainResult:
    """Train with Adam on mini-batches (module docstring: the loss, seeds and selection).

    Parameters
    ----------
    model : nn.Module or callable seed -> nn.Module
        Trained in place.  A module is re-initialised from ``seed`` (``reinit=True``, needs
        ``reset_parameters(generator=...)`` as :class:`odenet.ResNet` has); with ``reinit=False``
        its current weights are the start of every try.  A factory builds the model of each seed.
    data : Dataset, (x, y) or (x_train, y_train, x_val, y_val)
        Finite; targets of shape (N, n_out) (or (N,) for n_out = 1); see :func:`as_split` and
        :func:`check_model_data` for what is refused before any epoch.
    epochs, lr, batch_size : passes over the training data, Adam's step size, mini-batch size.
    loss : ``"mse"`` or ``"bce"`` (on logits for a sigmoid-output ResNet; a linear-output ResNet
        is refused with bce).
    seed : fixes initialisation and data order; an integer in [0, 2**63).
    val_split : fraction of (x, y) data kept for validation (Datasets bring their own split).
    select : ``"best_val"`` keeps the epoch of least validation loss, ``"last"`` the final one.
    retry_threshold, max_tries : if the best validation loss exceeds ``retry_threshold``, train
        again with seed + 1, seed + 2, ... (at most ``max_tries`` seeds in all); the first seed
        that reaches the threshold is kept, else the one of least validation loss.  Every seed
        tried is recorded in ``seeds_tried``.
    overrides : mapping name -> value or callable f(model): manual weights set after initialisation.
    freeze : parameter names (``model.named_parameters()``) that are not trained.
    progress : a tqdm bar per try.
    """
    seed = check_seed("seed", seed)
    max_tries = check_positive_int("max_tries", max_tries)
    if retry_threshold is not None:
        check_positive("retry_threshold", retry_threshold)
    split = as_split(data, val_split)
    check_train_args(epochs, lr, batch_size, loss, select, split)
    if retry_threshold is not None and len(split.x_val) == 0:
        raise ValueError("retry_threshold needs validation data")
    factory = None if isinstance(model, nn.Module) else model
    if factory is None and reinit and not _can_reinit(cast(nn.Module, model)):
        raise TypeError(f"model {type(model).__name__} has no reset_parameters(generator=...); pass a "
                        f"factory seed -> model or reinit=False")
    # the model of the first seed: the module itself, or the factory's for that seed
    probe: nn.Module = factory(seed) if factory is not None else cast(nn.Module, model)
    check_model_data(probe, split, loss)
    freeze = check_overrides_and_freeze(probe, overrides, freeze)
    start_state = None if (factory is not None or reinit) else copy.deepcopy(probe.state_dict())

    config = dict(epochs=epochs, lr=lr, batch_size=batch_size, loss=loss, select=select,
                  retry_threshold=retry_threshold, max_tries=max_tries, freeze=list(freeze),
                  reinit=reinit, val_split=val_split)
    tries = []
    for k in range(max_tries):
        s = seed + k
        m = factory(s) if factory is not None and k > 0 else probe
        if factory is None:
            if start_state is None:
                initialise(m, s, overrides)
            else:
                m.load_state_dict(start_state)
                apply_overrides(m, overrides)
        else:
            apply_overrides(m, overrides)
        flags = {n: p.requires_grad for n, p in m.named_parameters()}
        try:
            for n, p in m.named_parameters():
                if n in freeze:
                    p.requires_grad_(False)
            hist, best_epoch = _fit(m, split, s, epochs, lr, batch_size, loss, select, freeze, progress,
                                    f"train seed {s}")
        finally:
            for n, p in m.named_parameters():
                p.requires_grad_(flags[n])
        best_val = float(hist["val_loss"][best_epoch])
        state = copy.deepcopy(m.state_dict())
        tries.append((s, best_val, hist, best_epoch, state, m))
        if retry_threshold is None or best_val <= retry_threshold:
            break
    done = [t for t in tries if retry_threshold is not None and t[1] <= retry_threshold]
    kept = done[0] if done else min(tries, key=lambda t: np.nan_to_num(t[1], nan=np.inf))
    s, best_val, hist, best_epoch, state, m = kept
    if factory is None:
        m = probe
    m.load_state_dict(state)
    m.eval()
    return TrainResult(m, hist["train_loss"], hist["val_loss"], hist["batch_loss"], hist["train_accuracy"],
                       hist["val_accuracy"], best_epoch, s, [t[0] for t in tries], [t[1] for t in tries],
                       final_metrics(m, split, loss), config)
