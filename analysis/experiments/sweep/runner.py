"""What a worker does with one task: train its runs (together as an ensemble when they share an
architecture, else one by one) and analyse each trained model.

A task is a plain dict (picklable, for processes and Dask alike)::

    {"runs": [(run_id, config), ...], "ensemble": bool, "threads": int | None, "log": path | None}

and :func:`run_task` returns one :class:`RunOutput` per run, in order.  Workers never touch the
sweep's files: results go back to the client, which alone writes them.  ``log`` (local executors
only) is a file to which each run's start is appended, one line ``start <run_id> <pid>``, so
that tests can count what was computed.
"""
from __future__ import annotations

import functools
import os
import platform
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

import numpy as np
import torch

from analysis.experiments.sweep.analyses import analyse
from analysis.experiments.sweep.spec import canonical_json

if TYPE_CHECKING:
    from odenet import ResNet
    from odenet.datasets import Dataset

HISTORY = ("train_loss", "val_loss", "batch_loss", "train_accuracy", "val_accuracy")


@dataclass
class RunOutput:
    """One finished run: ``row`` (scalars for the summary table), ``arrays`` (histories and analysis
    arrays), the trained model as ``model_config`` + ``state`` (numpy arrays: cheap to ship from a
    worker), and ``seconds`` (this run's share of its task's wall time)."""

    run_id: str
    config: dict
    row: dict
    arrays: dict
    model_config: dict
    state: dict
    seconds: float
    worker: str = ""
    extra: dict = field(default_factory=dict)

    def model(self) -> ResNet:
        """The trained ResNet (eval mode), rebuilt from config and state."""
        from odenet import ResNet

        m = ResNet.from_config(self.model_config)
        m.load_state_dict({k: torch.as_tensor(v) for k, v in self.state.items()})
        return m.eval()


@functools.lru_cache(maxsize=8)
def _dataset(key: str):
    import json

    from odenet.datasets import make_dataset

    return make_dataset(**json.loads(key))


def dataset_of(config: dict) -> Dataset:
    """The run's data set (built once per process and data-set config: they are deterministic)."""
    return _dataset(canonical_json(config["dataset"]))


def build_model(config: dict, seed: int, n_in: int) -> ResNet:
    """The run's ResNet ``ResNet(n_in, **config["model"], seed=seed)``, initialised from ``seed``
    (n_out = 1)."""
    from odenet import ResNet

    return ResNet(n_in, **config["model"], seed=seed)


def _log(path, line: str) -> None:
    if path:
        from analysis.experiments.sweep.store import append_line

        append_line(path, line)


def run_task(task: dict) -> list[RunOutput]:
    """Train and analyse the task's runs (module docstring): one :class:`RunOutput` per run, in
    the task's order.  Runs with ``threads`` torch threads when the task sets it (restored after).
    Writes no file but the task's ``log``; an exception of training or analysis propagates."""
    threads = torch.get_num_threads()
    if task.get("threads"):
        torch.set_num_threads(int(task["threads"]))
    try:
        return _run(task)
    finally:  # a worker thread inside the caller's process (Dask processes=False) leaves it as it was
        torch.set_num_threads(threads)


def _run(task: dict) -> list[RunOutput]:
    from odenet import train, train_ensemble

    runs = task["runs"]
    t0 = time.perf_counter()
    for rid, _ in runs:
        _log(task.get("log"), f"start {rid} {os.getpid()}")
    cfg0 = runs[0][1]
    data = dataset_of(cfg0)
    tr = cfg0["train"]
    kw = dict(epochs=tr["epochs"], lr=tr["lr"], batch_size=tr["batch_size"], loss=tr["loss"], select=tr["select"],
              progress=False)
    seeds = [c["train"]["seed"] for _, c in runs]
    if task.get("ensemble", True) and len(runs) > 1:
        def factory(s: int) -> ResNet:
            return build_model(cfg0, s, data.n_in)

        results = train_ensemble(factory, data, seeds=seeds, **kw).members
    else:
        def model_of(c: dict) -> Callable[[int], ResNet]:
            return lambda s: build_model(c, s, data.n_in)

        results = [train(model_of(c), data, seed=c["train"]["seed"], **kw) for _, c in runs]
    share = (time.perf_counter() - t0) / len(runs)
    outputs = []
    for (rid, cfg), res in zip(runs, results):
        t1 = time.perf_counter()
        model = res.model.eval()
        row = dict(best_epoch=int(res.best_epoch))
        row.update({k: float(v) for k, v in res.metrics.items()})
        arrays = {k: np.asarray(getattr(res, k), dtype=np.float64) for k in HISTORY}
        for name, options in cfg["analyses"].items():
            r, a = analyse(name, model, data, options)
            row.update(r)
            arrays.update(a)
        state = {k: v.detach().cpu().numpy().copy() for k, v in model.state_dict().items()}
        outputs.append(RunOutput(rid, cfg, row, arrays, model.config, state,
                                 share + time.perf_counter() - t1, f"{platform.node()}:{os.getpid()}"))
    return outputs
