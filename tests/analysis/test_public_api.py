"""Every public item of the ``analysis`` package (module, class, function, method, property), walked
with all its sub-packages, has a docstring and type hints on its parameters and return.

Public items are the modules walked, their ``__all__`` and every definition at module
level whose name does not start with ``_``, with the public methods and properties of public
classes; each is one parametrised case, so a failure names the item.  A dataclass without a
docstring gets one made up by ``dataclasses`` ("Name(field: type, ...)"), which counts as missing.
"""
from __future__ import annotations

import dataclasses
import importlib
import inspect
import pkgutil
from types import ModuleType
from typing import Any, Callable, Iterator

import pytest

#: walked whole, every submodule of every sub-package
PACKAGE = "analysis"


def _modules(package: str) -> Iterator[ModuleType]:
    root = importlib.import_module(package)
    yield root
    for info in pkgutil.walk_packages(root.__path__, prefix=package + "."):
        yield importlib.import_module(info.name)


def _defined_in(obj: Any, module: ModuleType) -> bool:
    return getattr(obj, "__module__", None) == module.__name__


def public_items() -> dict[str, Any]:
    """Qualified name -> object for every public item of the walked package."""
    items: dict[str, Any] = {}
    for module in _modules(PACKAGE):
        items[module.__name__] = module
        names = set(getattr(module, "__all__", ()))
        names |= {n for n, v in vars(module).items() if not n.startswith("_") and _defined_in(v, module)
                  and (inspect.isfunction(v) or inspect.isclass(v))}
        for name in sorted(names):
            obj = getattr(module, name)
            if not (inspect.isfunction(obj) or inspect.isclass(obj)):
                continue
            qualified = f"{obj.__module__}.{obj.__qualname__}"
            items[qualified] = obj
            if inspect.isclass(obj):
                for attr, value in vars(obj).items():
                    if attr.startswith("_") and attr != "__init__":
                        continue
                    if isinstance(value, (staticmethod, classmethod)):
                        value = value.__func__
                    # (not typing's own __init__ that Protocol classes carry)
                    if (inspect.isfunction(value) and value.__module__ == obj.__module__) \
                            or isinstance(value, property):
                        items[f"{qualified}.{attr}"] = value
    return items


def problems(obj: Any) -> list[str]:
    """What ``obj`` lacks: "docstring", "annotation of <param>", "return annotation"."""
    found = []
    target: Callable | None = obj.fget if isinstance(obj, property) else obj
    doc = inspect.getdoc(target) if not inspect.isclass(obj) else obj.__doc__
    generated = inspect.isclass(obj) and dataclasses.is_dataclass(obj) and (doc or "").startswith(obj.__name__ + "(")
    if not (doc or "").strip() or generated:
        # __init__ is documented by its class
        if getattr(target, "__name__", "") != "__init__":
            found.append("docstring")
    if inspect.isfunction(target):
        params = list(inspect.signature(target).parameters.values())
        if params and params[0].name in ("self", "cls"):
            params = params[1:]
        found += [f"annotation of {p.name}" for p in params if p.annotation is inspect.Parameter.empty]
        if target.__name__ != "__init__" and inspect.signature(target).return_annotation is inspect.Signature.empty:
            found.append("return annotation")
    return found


ITEMS = public_items()


@pytest.mark.parametrize("name", sorted(ITEMS))
def test_public_item_is_documented_and_typed(name: str) -> None:
    assert problems(ITEMS[name]) == [], f"{name} lacks: {', '.join(problems(ITEMS[name]))}"


def test_the_walk_finds_the_known_public_api() -> None:
    # the walk must reach the names users call, or the test above checks nothing
    for name in ("analysis.geometry.tracing.trace", "analysis.approximation.tunnel_effect.tunnel",
                 "analysis.geometry.critical.find_critical_points", "analysis.approximation.bounds.euler_ode_bound",
                 "analysis.continuum.convergence.refinement_study", "analysis.approximation.tunnel_effect.TunnelResult",
                 "analysis.approximation.tunnel_effect.TunnelResult.cell", "analysis.io.files.save",
                 "analysis.io.files.load", "analysis.io.atomic.atomic_path", "analysis.io.schema.Schema",
                 "analysis.experiments.sweep.spec.SweepSpec", "analysis.experiments.paper_claims",
                 "analysis.plots.continuum", "analysis", "analysis.plots.pyplot",
                 "analysis.plots.paper.probability_map", "analysis.plots.literature.marion_figure",
                 "analysis.experiments.paper.reproduce", "analysis.experiments.paper_regimes.OneDRun.regime",
                 "analysis.experiments.literature.Study.run", "analysis.experiments.literature.estimators.p_variation",
                 "analysis.experiments.literature.sander2022.reconstruction_error",
                 "analysis.experiments.sweep.analyses.analyse", "analysis.renamed.new_name"):
        assert name in ITEMS
    # every module of the package, sub-packages included, is walked
    assert {"analysis.plots.paper", "analysis.experiments.literature.morse2024", "analysis.renamed",
            "analysis.io.schema"} <= set(ITEMS)
    assert len(ITEMS) > 500


def test_the_check_fails_on_missing_docstrings_and_hints() -> None:
    def bare(x, y: int = 1):  # noqa: ANN001, ANN202
        return x

    def documented(x: float) -> float:
        """x."""
        return x

    @dataclasses.dataclass
    class Record:
        a: int

    class Thing:
        """A thing."""

        def __init__(self, n):  # noqa: ANN001
            self.n = n

        @property
        def size(self):  # noqa: ANN202
            return self.n

    assert problems(bare) == ["docstring", "annotation of x", "return annotation"]
    assert problems(documented) == []
    assert problems(Record) == ["docstring"]
    assert problems(Thing.__init__) == ["annotation of n"]
    assert problems(Thing.size) == ["docstring", "return annotation"]
