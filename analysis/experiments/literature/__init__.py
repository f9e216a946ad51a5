"""Published continuum-limit and invertibility experiments as runnable, checked studies.

Each study is a function ``run(*, quick: bool, seeds: int | None, seed: int) -> StudyResult``
in its own module; :data:`STUDIES` maps its name to the function, the source citation and a
one-line description.  :func:`run_studies` runs some of them and writes, inside ``out``:

    literature.h5                one group per study (:class:`StudyRecord`: arrays, claims, times)
    figures/literature_*.png     the figures
    literature.md                the claims table of every study in literature.h5:
                                 claim | source | expected | measured | verdict

Re-running a study replaces its group and figures and leaves the other studies' as they were.
docs/literature.md describes each study and what was scaled down.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Callable, Sequence

from analysis.experiments.literature import (anode2019, cohen2021, iresnet2019, marion2024, marion2025, morse2024,
                                             sander2022)
from analysis.experiments.literature.records import ClaimRow, StudyRecord, StudyResult

__all__ = ["Study", "STUDIES", "study_names", "run_study", "run_studies", "claims_markdown", "ClaimRow",
           "StudyResult", "StudyRecord"]


@dataclass(frozen=True)
class Study:
    """A registered study: ``name``, ``source`` (citation), ``description`` (one line) and the
    ``module`` of analysis.experiments.literature whose ``run`` function computes it."""

    name: str
    source: str
    description: str
    module: ModuleType

    @property
    def run(self) -> Callable[..., StudyResult]:
        """The study's ``run(*, quick=False, seeds=None, seed=0) -> StudyResult``."""
        return self.module.run


STUDIES: dict[str, Study] = {s.name: s for s in (
    Study("iresnet2019", "Behrmann, Grathwohl, Chen, Duvenaud, Jacobsen, Invertible residual networks, ICML 2019",
          "fixed-point inversion rate, bi-Lipschitz bounds and the power-series log-det of certified blocks",
          iresnet2019),
    Study("sander2022", "Sander, Ablin, Peyré, Do residual neural networks discretize neural ODEs?, NeurIPS 2022",
          "trained linear ResNets' weight increments ~ 1/N; reverse-Euler reconstruction error ~ 1/N (Heun 1/N²)",
          sander2022),
    Study("marion2025", "Marion, Fermanian, Biau, Vert, Scaling ResNets in the large-depth regime, JMLR 2025",
          "at initialisation: explode / non-trivial / identity against the scaling L^-β for i.i.d., smooth and "
          "fractional-noise weights", marion2025),
    Study("morse2024", "Kuehn & Kuntz, Analysis of the geometric structure of neural networks and neural ODEs via "
          "Morse functions, arXiv 2405.09351",
          "critical points by architecture: none for narrow, non-degenerate for augmented, degenerate for bottleneck",
          morse2024),
    Study("marion2024", "Marion, Wu, Sander, Biau, Implicit regularization of deep residual networks towards "
          "neural ODEs, ICLR 2024",
          "trained weights stay smooth in depth: increments and distance to a deep reference ~ 1/L; long training",
          marion2024),
    Study("anode2019", "Dupont, Doucet, Teh, Augmented neural ODEs, NeurIPS 2019",
          "1-D flip impossible for a neural ODE (MSE >= 1), solved when augmented; annuli accuracy and nfev; "
          "forward-backward reconstruction of every trained flow", anode2019),
    Study("cohen2021", "Cohen, Cont, Rossier, Xu, Scaling properties of deep residual networks, ICML 2021",
          "how trained fully connected ResNet weights scale with depth (tanh, ReLU): exponents, increments, "
          "quadratic and p-variation", cohen2021),
)}


def study_names() -> list[str]:
    """The registered study names, in the order they are run by ``all``."""
    return list(STUDIES)


def _check_names(names) -> list[str]:
    if isinstance(names, str):
        names = [names]
    names = list(names)
    if names == ["all"]:
        return study_names()
    unknown = [n for n in names if n not in STUDIES]
    if not names or unknown:
        raise ValueError(f"names must be 'all' or a non-empty list of studies among {study_names()}; got {names!r}")
    return list(dict.fromkeys(names))


def _check_seeds(seeds):
    if seeds is not None and (isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 2):
        raise ValueError(f"seeds must be None (each study's default) or an int >= 2 (draws per verdict); got {seeds!r}")
    return seeds


def run_study(name: str, *, quick: bool = False, seeds: int | None = None, seed: int = 0) -> tuple[StudyResult, float, float]:
    """Run one study (a name of :data:`STUDIES`) on one thread under torch seed ``seed``, restoring
    the caller's thread count and random state; returns (result, wall seconds, CPU seconds of this
    process).  Raises ValueError for an unknown name or ``seeds`` neither None nor an int ≥ 2 (before
    any work)."""
    if not isinstance(name, str) or name not in STUDIES:
        raise ValueError(f"name must be one study among {study_names()} (run_studies runs several or 'all'); "
                         f"got {name!r}")
    _check_seeds(seeds)
    import torch

    # small matrices: intra-op threads only add scheduling cost on a busy machine; the caller's
    # thread count and global random state are restored
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    w0, c0 = time.perf_counter(), time.process_time()
    try:
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            result = STUDIES[name].run(quick=quick, seeds=seeds, seed=seed)
    finally:
        torch.set_num_threads(threads)
    result.config = {**result.config, "quick": quick, "seeds": seeds, "seed": seed}
    return result, time.perf_counter() - w0, time.process_time() - c0


def claims_markdown(rows: Sequence[ClaimRow]) -> str:
    """The claims table: | study | claim | source | expected | measured | verdict | note |."""
    def cell(s: str) -> str:
        return str(s).replace("|", "\\|").replace("\n", " ")

    head = ["| study | claim | source | expected | measured | verdict | note |", "|---|---|---|---|---|---|---|"]
    body = [f"| {r.study} | {cell(r.claim)} | {cell(r.source)} | {cell(r.expected)} | {cell(r.measured)} | "
            f"**{r.verdict}** | {cell(r.note)} |" for r in rows]
    return "\n".join(head + body) + "\n"


def _document(records: dict[str, StudyRecord]) -> str:
    rows = [r for name in study_names() if name in records for r in records[name].rows()]
    n_bad = sum(r.verdict == "contradicts" for r in rows)
    lines = ["# Literature studies: claims against measurements", "",
             f"{len(rows)} claims from {len(records)} studies; {n_bad} contradicted.  "
             "Generated by `scripts/reproduce_literature.py` (see docs/literature.md).", ""]
    lines.append(claims_markdown(rows))
    lines += ["## Settings", ""]
    for name in study_names():
        if name in records:
            r = records[name]
            mode = "quick" if r.config.get("quick") else "full"
            lines.append(f"- **{name}** ({mode}; {r.wall_seconds:.0f} s wall, {r.cpu_seconds:.0f} s CPU): {r.scaled}")
    return "\n".join(lines) + "\n"


def run_studies(names: Sequence[str] | str = "all", out: str | os.PathLike = "results", *, quick: bool = False,
                seeds: int | None = None, seed: int = 0, progress: bool = True) -> list[ClaimRow]:
    """Run the studies ``names`` (``"all"`` or a list of :data:`STUDIES` keys) and write
    ``out``/literature.h5, ``out``/figures/literature_<study>*.png and ``out``/literature.md
    (module docstring).  ``seeds``: draws per verdict (None: each study's default); ``seed``: the
    base seed.  Each study's files are written as soon as it finishes, atomically and under the
    lock of ``out``/literature.md: a failure or an interruption leaves the studies already written
    (and any earlier results) whole.  Returns the claims rows of the studies run."""
    import analysis.io as hdf5
    from analysis.io.atomic import atomic_path, atomic_write_text, exclusive_lock

    names = _check_names(names)
    _check_seeds(seeds)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be an int >= 0; got {seed!r}")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"out must be a folder; got {str(out)!r}, which is a file")
    if not out.resolve().parent.is_dir():
        raise ValueError(f"out's parent folder {str(out.resolve().parent)!r} does not exist")
    from tqdm.auto import tqdm

    import matplotlib.pyplot as plt

    h5, md = out / "literature.h5", out / "literature.md"
    rows = []
    bar = tqdm(names, desc="literature", unit="study", disable=not progress)
    for name in bar:
        bar.set_postfix_str(name)
        r, wall, cpu = run_study(name, quick=quick, seeds=seeds, seed=seed)
        # each study is written as soon as it is done: an interrupted "all" keeps the finished ones
        (out / "figures").mkdir(parents=True, exist_ok=True)
        with exclusive_lock(md):
            for stem, fig in r.figures.items():
                with atomic_path(out / "figures" / f"literature_{stem}.png") as tmp:
                    fig.savefig(tmp, dpi=110, format="png")
                plt.close(fig)
            rec = {r.name: StudyRecord.of(r, wall, cpu)}
            config = dict(quick=quick, seeds=seeds, seed=seed)
            if h5.exists():
                hdf5.append(h5, rec, replace=True, seed=seed, config=config)
            else:
                hdf5.save(h5, rec, seed=seed, config=config)
            stored = {g: hdf5.load(h5, g) for g, t in hdf5.list_records(h5).items() if t == "StudyRecord"}
            atomic_write_text(md, _document(stored))
        rows += r.claims
    bar.close()
    return rows
