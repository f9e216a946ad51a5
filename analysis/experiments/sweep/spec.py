"""The sweep file (TOML): its schema, its validation, and its expansion into runs.

A sweep file has these tables (docs/sweeps.md has a full example)::

    [sweep]     name (a plain file name), seed (draws the [random] samples), ensemble_size
    [dataset]   name = "circles" (the default) | "square" | "xor", and that data set's keyword
                arguments
    [model]     the architecture's defaults: width, depth, eps, delta | ratio, T, activation,
                input_map, batchnorm, output
    [train]     epochs, lr, batch_size, loss, select, seed
    [analyses]  certificate, critical_points, tunnel, bounds: true/false or a table of options
    [grid]      parameter = [v1, v2, ...] | {linspace = [a, b, n]} | {logspace = [a, b, n]}
                | {range = [start, stop, step]}: the Cartesian product of all of them
    [random]    samples = N, parameter = {low = a, high = b, log = false, integer = false}
                | {choices = [...]}: N independent draws, crossed with the grid

The swept parameters are the model's (``ratio`` = δ/ε sets δ = ratio·ε), ``seed``, ``epochs``,
``lr`` and ``batch_size``.  Every run is a complete, canonical config (dataset, model, train,
analyses); its id is the first 16 hex digits of SHA-256 of that config's canonical JSON, so the
same run has the same id in every sweep and on every machine.

Everything is validated before any run starts: unknown keys, empty ranges and bad values raise
:class:`SweepSpecError` (a ValueError) naming the key and what is allowed.
"""
from __future__ import annotations

import hashlib
import inspect
import itertools
import json
import math
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np

from solvers.validation import available_memory, check_seed, format_bytes as human_bytes

from analysis.experiments.sweep.analyses import REGRESSION_DATASETS, check_available
from analysis.experiments.sweep.limits import task_memory

if TYPE_CHECKING:
    from odenet.datasets import Dataset

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

SPEC_VERSION = 1
#: Default most runs of one sweep (``--max-runs``).
MAX_RUNS = 100_000


class SweepSpecError(ValueError):
    """A sweep file that cannot run: the message names the key, the value and what is allowed."""


# --- value checks -----------------------------------------------------------------------------
def _is_int(v) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def _is_real(v) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)


def _pos_int(key, v):
    if not _is_int(v) or v < 1:
        raise SweepSpecError(f"{key} must be a positive integer; got {v!r}")
    return int(v)


def _pos_real(key, v):
    if not _is_real(v) or not math.isfinite(v) or v <= 0:
        raise SweepSpecError(f"{key} must be a finite number > 0; got {v!r}")
    return float(v)


def _nonneg_real(key, v):
    if not _is_real(v) or not math.isfinite(v) or v < 0:
        raise SweepSpecError(f"{key} must be a finite number >= 0; got {v!r}")
    return float(v)


def _seed(key, v):
    """A seed, checked by the project's one seed rule (solvers' check_seed)."""
    try:
        return check_seed(key, v)
    except (TypeError, ValueError) as exc:
        raise SweepSpecError(str(exc)) from None


def check_name(name: Any) -> str:
    """The sweep's ``name`` (also the default output name): a plain file name, so that the sweep
    writes only beside itself: no folder separator, not ``.`` or ``..``, not absolute, not
    empty, not hidden (leading dot), no NUL.  Returns it; SweepSpecError otherwise."""
    rule = ("a plain file name (no '/' or '\\', not '.' or '..', not absolute, not empty, no leading dot); "
            "choose the folder with --out")
    if not isinstance(name, str):
        raise SweepSpecError(f"sweep.name must be a string, {rule}; got {name!r}")
    if (not name or name in (".", "..") or name.startswith(".") or "/" in name or "\\" in name or "\0" in name
            or os.path.isabs(name) or Path(name).name != name):
        raise SweepSpecError(f"sweep.name must be {rule}; got {name!r}")
    return name


def _bool(key, v):
    if not isinstance(v, bool):
        raise SweepSpecError(f"{key} must be true or false; got {v!r}")
    return v


def _label(key, v):
    if not _is_int(v) or v not in (0, 1):
        raise SweepSpecError(f"{key} must be a class label, 0 or 1; got {v!r}")
    return int(v)


def _point(key, v):
    if (not isinstance(v, (list, tuple)) or not v
            or not all(_is_real(c) and math.isfinite(c) for c in v)):
        raise SweepSpecError(f"{key} must be a list of finite numbers (a point of the input plane); got {v!r}")
    return [float(c) for c in v]


def _choice(options: Callable[[], tuple] | tuple):
    def check(key, v):
        allowed = options() if callable(options) else options
        if v not in allowed:
            raise SweepSpecError(f"{key} must be one of {list(allowed)}; got {v!r}")
        return v
    return check


def _activations():
    from odenet import ACTIVATIONS
    return tuple(sorted(ACTIVATIONS))


def _datasets():
    from odenet.datasets import DATASETS
    return tuple(sorted(DATASETS))


#: model parameters: name -> (check, default)
MODEL_KEYS: dict[str, tuple[Callable, Any]] = {
    "width": (_pos_int, 2),
    "depth": (_pos_int, 10),
    "eps": (_nonneg_real, 1.0),
    "delta": (_pos_real, 1.0),
    "ratio": (_pos_real, None),
    "T": (_pos_real, None),
    "activation": (_choice(_activations), "tanh"),
    "input_map": (_choice(("identity", "affine", "activated")), "activated"),
    "batchnorm": (_bool, False),
    "output": (_choice(("linear", "sigmoid")), None),
}
#: training settings: name -> (check, default)
TRAIN_KEYS: dict[str, tuple[Callable, Any]] = {
    "epochs": (_pos_int, 50),
    "lr": (_pos_real, 0.01),
    "batch_size": (_pos_int, 128),
    "loss": (_choice(("mse", "bce")), None),
    "select": (_choice(("best_val", "last")), "best_val"),
    "seed": (_seed, 0),
}
SWEPT_KEYS = tuple(MODEL_KEYS) + ("seed", "epochs", "lr", "batch_size")
SWEEP_KEYS = {"name": None, "seed": 0, "ensemble_size": 64}
#: analyses and their options: name -> {option: (check, default)}
ANALYSES: dict[str, dict[str, tuple[Callable, Any]]] = {
    "certificate": {},
    "critical_points": {"resolution": (_pos_int, 41), "padding": (_nonneg_real, 0.1),
                        "accept_tol": (_pos_real, 1e-9)},
    "tunnel": {"resolution": (_pos_int, 101), "padding": (_nonneg_real, 0.25), "level": (_pos_real, None),
               "inner_label": (_label, None), "centre": (_point, None)},
    "bounds": {},
}
#: options added after the first sweep files were written: stored in a run's config only when
#: given, so that the run ids (and so the outputs) of those files stay what they were
LATER_OPTIONS = {"tunnel": ("inner_label", "centre")}
#: the data set of a sweep file without ``dataset.name``
DEFAULT_DATASET = "circles"
TABLES = ("sweep", "dataset", "model", "train", "analyses", "grid", "random")


def _check_keys(where: str, table: Any, allowed) -> dict:
    if not isinstance(table, dict):
        raise SweepSpecError(f"[{where}] must be a table; got {table!r}")
    unknown = [k for k in table if k not in allowed]
    if unknown and where == "sweep file":
        raise SweepSpecError(f"unknown table [{unknown[0]}] in the sweep file; allowed tables: {list(allowed)}")
    if unknown:
        raise SweepSpecError(f"unknown key {where}.{unknown[0]} in the sweep file; allowed in [{where}]: "
                             f"{sorted(allowed)}")
    return table


# --- parameter ranges ---------------------------------------------------------------------------
def _axis(key: str, v) -> tuple[str, Any]:
    """Validate one grid entry without expanding it: (kind, payload) with kind list, range,
    linspace or logspace (a single value is a list of one)."""
    payload: Sequence[Any]  # a list of values, a range, or [a, b, n] of linspace/logspace
    if isinstance(v, list):
        kind, payload = "list", v
    elif isinstance(v, dict):
        _check_keys(key, v, ("linspace", "logspace", "range"))
        if len(v) != 1:
            raise SweepSpecError(f"{key} must have exactly one of linspace, logspace, range; got {sorted(v)}")
        kind, args = next(iter(v.items()))
        if not isinstance(args, list) or len(args) != 3 or not all(_is_real(a) for a in args):
            raise SweepSpecError(f"{key}.{kind} must be three numbers [a, b, n] (range: [start, stop, step]); "
                                 f"got {args!r}")
        if kind == "range":
            if not all(_is_int(x) for x in args) or args[2] == 0:
                raise SweepSpecError(f"{key}.range must be integers [start, stop, step] with step != 0; got {args}")
            payload = range(*(int(x) for x in args))
        else:
            if not _is_int(args[2]) or args[2] < 0:
                raise SweepSpecError(f"{key}.{kind}: the count n must be a non-negative integer; got {args[2]!r}")
            payload = args
    else:
        kind, payload = "list", [v]
    if _axis_len(kind, payload) == 0:
        raise SweepSpecError(f"{key} is an empty range: give at least one value")
    return kind, payload


def _axis_len(kind: str, payload) -> int:
    """The number of values of a validated axis, by arithmetic (len of a range is O(1))."""
    return int(payload[2]) if kind in ("linspace", "logspace") else len(payload)


def _axis_values(kind: str, payload) -> list:
    """The values of a validated axis (call only after the run count was checked)."""
    if kind in ("list", "range"):
        return list(payload)
    a, b, c = payload
    values = (np.linspace(a, b, c) if kind == "linspace" else np.logspace(a, b, c)).tolist()
    # whole numbers as ints, so that integer parameters (width, depth) can be spaced too;
    # real parameters are converted back to float by their checks (run ids unchanged)
    return [int(x) if x.is_integer() else x for x in values]


def count_runs(grid_counts: dict[str, int], samples: int) -> int:
    """Runs of a sweep, by arithmetic: the product of the grid axes' lengths times the number of
    random draws (1 without [random]); an upper bound, since repeated values give one run."""
    return math.prod(grid_counts.values()) * max(1, samples)


def check_run_count(grid_counts: dict[str, int], samples: int, max_runs: int) -> int:
    """SweepSpecError if the sweep has more than ``max_runs`` runs (counted, never listed)."""
    n = count_runs(grid_counts, samples)
    if n > max_runs:
        factors = [f"grid.{k} {c}" for k, c in grid_counts.items()] + ([f"random.samples {samples}"] if samples else [])
        raise SweepSpecError(f"the sweep has {n} runs ({' x '.join(factors)}), more than max_runs "
                             f"(--max-runs) = {max_runs}; narrow the grid or raise --max-runs")
    return n


def _sampler(key: str, v) -> Callable[[np.random.Generator], Any]:
    if not isinstance(v, dict):
        raise SweepSpecError(f"{key} must be a table {{low, high, log, integer}} or {{choices = [...]}}; got {v!r}")
    if "choices" in v:
        _check_keys(key, v, ("choices",))
        choices = v["choices"]
        if not isinstance(choices, list) or not choices:
            raise SweepSpecError(f"{key}.choices is an empty range: give at least one value")
        return lambda rng: choices[int(rng.integers(len(choices)))]
    _check_keys(key, v, ("low", "high", "log", "integer"))
    for k in ("low", "high"):
        if k not in v or not _is_real(v[k]) or not math.isfinite(v[k]):
            raise SweepSpecError(f"{key}.{k} must be a finite number; got {v.get(k)!r}")
    low, high = v["low"], v["high"]
    log, integer = _bool(f"{key}.log", v.get("log", False)), _bool(f"{key}.integer", v.get("integer", False))
    if not low < high and not (integer and low == high):
        raise SweepSpecError(f"{key} is an empty range: low={low} must be < high={high}")
    if log and low <= 0:
        raise SweepSpecError(f"{key}: log=true needs low > 0; got low={low}")
    if integer:
        if not (_is_int(low) and _is_int(high)) or log:
            raise SweepSpecError(f"{key}: integer=true needs integer low, high and log=false; got {v}")
        if not (-2**63 <= low and high < 2**63):  # 64-bit draws (swept seeds are checked per draw after)
            raise SweepSpecError(f"{key}: integer low and high must lie in [-2**63, 2**63 - 1]; got {v}")
        return lambda rng: int(rng.integers(low, high + 1))
    if log:
        return lambda rng: float(math.exp(rng.uniform(math.log(low), math.log(high))))
    return lambda rng: float(rng.uniform(low, high))


# --- runs ---------------------------------------------------------------------------------------
def canonical_json(obj: Any) -> str:
    """JSON with sorted keys and no whitespace: the text that run ids and sweep ids hash."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False)


def config_id(obj: Any) -> str:
    """First 16 hex digits of SHA-256(canonical_json(obj))."""
    return hashlib.sha256(canonical_json(obj).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Run:
    """One run: ``config`` = {dataset, model, train, analyses} (complete and canonical), its
    ``run_id`` and the swept values ``params`` (name -> value) that the summary table shows."""

    run_id: str
    config: dict
    params: dict

    @property
    def group_key(self) -> str:
        """Runs with equal keys share dataset, architecture and training settings up to the seed:
        they can be trained together as one ensemble."""
        train = {k: v for k, v in self.config["train"].items() if k != "seed"}
        return config_id([self.config["dataset"], self.config["model"], train, self.config["analyses"]])


@dataclass
class SweepSpec:
    """A validated sweep: the normalised file contents and its runs (in expansion order)."""

    name: str
    seed: int
    ensemble_size: int
    dataset: dict
    model: dict
    train: dict
    analyses: dict
    grid: dict
    random: dict
    runs: list = field(default_factory=list)
    source: str | None = None

    @property
    def normalised(self) -> dict:
        """Everything that decides the runs (not the file's formatting or comments)."""
        return dict(version=SPEC_VERSION, name=self.name, seed=self.seed, dataset=self.dataset,
                    model=self.model, train=self.train, analyses=self.analyses, grid=self.grid,
                    random=self.random, runs=[r.run_id for r in self.runs])

    @property
    def sweep_id(self) -> str:
        """config_id of :attr:`normalised`: two sweep files with equal ids write the same runs."""
        return config_id(self.normalised)

    @property
    def swept(self) -> list[str]:
        """The names of the parameters that vary (grid and random), in file order."""
        return list(self.grid) + [k for k in self.random if k != "samples" and k not in self.grid]


def _check_model(where: str, model: dict, n_in: int) -> dict:
    """Fill defaults, resolve ratio -> delta, and validate one run's architecture."""
    m = dict(model)
    if m.get("ratio") is not None:
        if m["eps"] == 0:
            raise SweepSpecError(f"{where}: ratio = delta/eps needs eps > 0; got eps=0 (give delta instead)")
        m["delta"] = m["ratio"] * m["eps"]
    m.pop("ratio", None)
    if m["input_map"] == "identity" and m["width"] != n_in:
        raise SweepSpecError(f"{where}: input_map='identity' needs width == the data's dimension {n_in}; "
                             f"got width={m['width']} (use 'affine' or 'activated')")
    return m


def load_spec(source: str | os.PathLike | dict, *, max_runs: int = MAX_RUNS) -> SweepSpec:
    """Read (a path to a TOML file, or an already parsed dict), validate and expand a sweep.

    Raises :class:`SweepSpecError` naming the offending key before anything runs, and before
    anything large is built: a sweep of more than ``max_runs`` runs is refused from the count
    of its axes (never listed), a data set or a task whose estimated memory exceeds the memory
    available now (:mod:`analysis.experiments.sweep.limits`) is refused with the estimate.
    """
    if isinstance(max_runs, bool) or not _is_int(max_runs) or max_runs < 1:
        raise SweepSpecError(f"max_runs (--max-runs) must be a positive integer; got {max_runs!r}")
    src = None
    if isinstance(source, dict):
        raw = source
    else:
        src = os.fspath(source)
        try:
            with open(src, "rb") as fh:
                raw = tomllib.load(fh)
        except tomllib.TOMLDecodeError as exc:
            raise SweepSpecError(f"{src}: not valid TOML: {exc}") from None
        except OSError as exc:
            raise SweepSpecError(f"cannot read the sweep file {src!r}: {exc.strerror}") from None
    _check_keys("sweep file", raw, TABLES)
    sweep = _check_keys("sweep", raw.get("sweep", {}), SWEEP_KEYS)
    name = check_name(sweep.get("name", Path(src).stem if src else "sweep"))
    seed = _seed("sweep.seed", sweep.get("seed", 0))
    ensemble_size = _pos_int("sweep.ensemble_size", sweep.get("ensemble_size", 64))

    # data set: name and the keyword arguments its function accepts
    from odenet.datasets import DATASETS, data_memory, make_dataset

    if not isinstance(raw.get("dataset", {}), dict):
        raise SweepSpecError("[dataset] must be a table")
    ds: dict[str, Any] = {"name": DEFAULT_DATASET} | dict(raw.get("dataset", {}))
    _choice(_datasets)("dataset.name", ds["name"])
    ds_params = inspect.signature(DATASETS[ds["name"]]).parameters
    _check_keys("dataset", ds, ["name", *ds_params])
    # defaults written out: a value given or left to its default gives the same run id
    ds = {"name": ds["name"]} | {k: p.default for k, p in ds_params.items() if p.default is not p.empty} | ds

    # the swept axes, counted before anything is expanded
    grid_raw = _check_keys("grid", raw.get("grid", {}), SWEPT_KEYS)
    random_raw = _check_keys("random", raw.get("random", {}), SWEPT_KEYS + ("samples",))
    axes = {k: _axis(f"grid.{k}", v) for k, v in grid_raw.items()}
    samples = _pos_int("random.samples", random_raw["samples"]) if "samples" in random_raw else 0
    check_run_count({k: _axis_len(*a) for k, a in axes.items()}, samples, max_runs)
    available = available_memory()
    if _is_int(ds.get("n")) and available and data_memory(ds["n"]) > available:
        raise SweepSpecError(f"dataset.n = {ds['n']} needs about {human_bytes(data_memory(ds['n']))}, more than "
                             f"the {human_bytes(available)} of memory available")
    try:
        data = make_dataset(**ds)
    except (TypeError, ValueError) as exc:
        raise SweepSpecError(f"[dataset]: {exc}") from None
    is_classification = ds["name"] not in REGRESSION_DATASETS

    model = _check_keys("model", raw.get("model", {}), MODEL_KEYS)
    model = {k: model[k] if k in model else d for k, (_, d) in MODEL_KEYS.items()}
    if model["output"] is None:
        model["output"] = "sigmoid" if is_classification else "linear"
    train = _check_keys("train", raw.get("train", {}), TRAIN_KEYS)
    train = {k: train[k] if k in train else d for k, (_, d) in TRAIN_KEYS.items()}
    if train["loss"] is None:
        train["loss"] = "bce" if is_classification else "mse"
    for k, v in model.items():
        if v is not None:
            model[k] = MODEL_KEYS[k][0](f"model.{k}", v)
    for k, v in train.items():
        train[k] = TRAIN_KEYS[k][0](f"train.{k}", v)
    if model["ratio"] is not None and "delta" in raw.get("model", {}):
        raise SweepSpecError("model.delta and model.ratio both given: give one (ratio sets delta = ratio * eps)")
    if train["loss"] == "bce" and model["output"] != "sigmoid":
        raise SweepSpecError(f"train.loss = 'bce' needs model.output = 'sigmoid'; got {model['output']!r}")
    if train["loss"] == "bce" and not is_classification:
        raise SweepSpecError(f"train.loss = 'bce' needs class labels; dataset {ds['name']!r} is a regression")

    analyses_raw = _check_keys("analyses", raw.get("analyses", {}), ANALYSES)
    analyses = {}
    for a, opts in analyses_raw.items():
        if isinstance(opts, bool):
            opts = {} if opts else None
        elif isinstance(opts, dict):
            _check_keys(f"analyses.{a}", opts, ANALYSES[a])
        else:
            raise SweepSpecError(f"analyses.{a} must be true, false or a table of options "
                                 f"{sorted(ANALYSES[a])}; got {opts!r}")
        if opts is None:
            continue
        full = {}
        for k, (check, default) in ANALYSES[a].items():
            v = opts.get(k, default)
            if v is None and k in LATER_OPTIONS.get(a, ()):
                continue
            full[k] = None if v is None else check(f"analyses.{a}.{k}", v)
        analyses[a] = full

    for a in analyses:
        try:
            check_available(a, data, model, analyses[a])
        except ValueError as exc:
            raise SweepSpecError(f"analyses.{a}: {exc}") from None

    # swept parameters
    grid = {k: _axis_values(*a) for k, a in axes.items()}
    samplers = {k: _sampler(f"random.{k}", v) for k, v in random_raw.items() if k != "samples"}
    both = sorted(set(grid) & set(samplers))
    if both:
        raise SweepSpecError(f"grid.{both[0]} and random.{both[0]} both given: sweep {both[0]} in one of them")
    if samplers and "samples" not in random_raw:
        raise SweepSpecError("random.samples is required with [random] ranges (the number of draws)")
    swept = set(grid) | set(samplers)
    if "ratio" in swept and ("delta" in swept or "delta" in raw.get("model", {})):
        raise SweepSpecError("delta and ratio both given: sweep ratio (delta = ratio * eps) or delta, not both")
    for k, values in grid.items():
        check = MODEL_KEYS[k][0] if k in MODEL_KEYS else TRAIN_KEYS[k][0]
        grid[k] = [check(f"grid.{k}[{i}]", v) for i, v in enumerate(values)]

    rng = np.random.default_rng(seed)
    draws = [{k: s(rng) for k, s in samplers.items()} for _ in range(samples)] or [{}]
    runs, seen = [], set()
    names = list(grid)
    for combo in itertools.product(*(grid[k] for k in names)):
        for i, draw in enumerate(draws):
            params = dict(zip(names, combo)) | draw
            m, t = dict(model), dict(train)
            for k, v in params.items():
                where = f"grid.{k}" if k in grid else f"random.{k} (sample {i})"
                check = MODEL_KEYS[k][0] if k in MODEL_KEYS else TRAIN_KEYS[k][0]
                v = check(where, v)
                params[k] = v
                (m if k in MODEL_KEYS else t)[k] = v
            if "delta" in params:
                m["ratio"] = None
            m = _check_model(f"run {params}", m, data.n_in)
            cfg = dict(dataset=ds, model=m, train=t, analyses=analyses)
            rid = config_id(cfg)
            if rid in seen:
                continue  # a repeated grid value gives the same run once
            seen.add(rid)
            runs.append(Run(rid, cfg, params))
    spec = SweepSpec(name, seed, ensemble_size, ds, model, train, analyses,
                     {k: list(v) for k, v in grid.items()}, dict(random_raw), runs, src)
    check_memory(spec, data, available=available)
    _check_architectures(spec, data.n_in)
    level = analyses.get("tunnel", {}).get("level")
    if level is not None and level >= 1 and any(r.config["model"]["output"] == "sigmoid" for r in runs):
        raise SweepSpecError(f"analyses.tunnel.level must be in (0, 1) for a sigmoid output (a probability); "
                             f"got {level}")
    return spec


def check_memory(spec: SweepSpec, data: Dataset, *, ensemble_size: int | None = None, available: int | None = None) -> None:
    """Refuse (SweepSpecError) a task, up to ``ensemble_size`` runs trained together (default: the
    file's), whose estimated memory (:func:`analysis.experiments.sweep.limits.task_memory`) exceeds
    ``available`` bytes (default: the memory available now), before any model is built.  ``data``:
    the sweep's data set (its ``n_in`` and number of training points enter the estimate)."""
    available = available_memory() if available is None else available
    size = spec.ensemble_size if ensemble_size is None else ensemble_size
    if not available:
        return
    groups: dict[str, list[Run]] = {}
    for r in spec.runs:
        groups.setdefault(r.group_key, []).append(r)
    n_data = len(data.x_train)
    for members in groups.values():
        cfg = members[0].config
        m = min(size, len(members))
        need = task_memory(data.n_in, n_data, cfg["model"], cfg["train"], m)
        if need > available:
            model = {k: cfg["model"][k] for k in ("width", "depth", "batchnorm")}
            where = f"run {members[0].params}" if members[0].params else "[model]"
            raise SweepSpecError(
                f"{where}: training {m} run(s) of model {model} with batch_size "
                f"{cfg['train']['batch_size']} together needs about {human_bytes(need)}, more than the "
                f"{human_bytes(available)} of memory available; reduce model.depth / model.width, "
                f"or the ensemble size (sweep.ensemble_size, --ensemble-size; now {size})")


def _check_architectures(spec: SweepSpec, n_in: int) -> None:
    """Build one model per distinct architecture: whatever ResNet refuses is refused here."""
    from odenet import ResNet

    done = set()
    for r in spec.runs:
        key = canonical_json(r.config["model"])
        if key in done:
            continue
        done.add(key)
        try:
            ResNet(n_in, **{k: v for k, v in r.config["model"].items()}, seed=0)
        except (TypeError, ValueError) as exc:
            raise SweepSpecError(f"run {r.params}: the model is refused: {exc}") from None
