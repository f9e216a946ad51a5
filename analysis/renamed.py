"""Module paths of odenet 0.1, kept importable: ``analysis.hdf5[.<module>]`` is the storage package
``analysis.io`` under its old name (silently: it stays the documented alias), and the flat modules
of 0.1 (``analysis.tracing``, ``analysis.critical``, ``analysis.sweep``, ...) are their sub-package
modules, with a DeprecationWarning naming the new path.

Each old name resolves to the *same* module object as the new one (never a second copy: the
schema registry and module-level caches stay one).  ``analysis.tunnel`` is not here: it is the
function; its module is ``analysis.approximation.tunnel_effect``.
"""
from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import warnings
from types import ModuleType

#: old module path (0.1) -> module path now; a package entry also maps its submodules
RENAMED = {
    "analysis.hdf5": "analysis.io",
    "analysis.hdf5.io": "analysis.io.files",
    "analysis.tracing": "analysis.geometry.tracing",
    "analysis.certificates": "analysis.geometry.certificates",
    "analysis.inverse": "analysis.geometry.inverse",
    "analysis.critical": "analysis.geometry.critical",
    "analysis.width_one": "analysis.geometry.width_one",
    "analysis.maps": "analysis.geometry.maps",
    "analysis.bounds": "analysis.approximation.bounds",
    "analysis.regime": "analysis.approximation.regime",
    "analysis.convergence": "analysis.continuum.convergence",
    "analysis.depth_regularity": "analysis.continuum.depth_regularity",
    "analysis.depth_weights": "analysis.continuum.depth_weights",
    "analysis.init_scaling": "analysis.continuum.init_scaling",
    "analysis.reconstruction": "analysis.continuum.reconstruction",
    "analysis.ode_swap": "analysis.continuum.ode_swap",
    "analysis.continuum_hdf5": "analysis.continuum.records",
    "analysis.paper": "analysis.experiments.paper",
    "analysis.paper_regimes": "analysis.experiments.paper_regimes",
    "analysis.paper_claims": "analysis.experiments.paper_claims",
    "analysis.paper_records": "analysis.experiments.paper_records",
    "analysis.literature": "analysis.experiments.literature",
    "analysis.sweep": "analysis.experiments.sweep",
}
SILENT = ("analysis.hdf5",)


def new_name(old: str) -> str | None:
    """The module path now of the 0.1 path ``old`` (None when ``old`` was not renamed)."""
    if old in RENAMED:
        return RENAMED[old]
    parent, _, child = old.rpartition(".")
    while parent:
        if parent in RENAMED:
            return f"{RENAMED[parent]}.{old[len(parent) + 1:]}"
        parent, _, child = parent.rpartition(".")
    return None


class RenamedModuleFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Resolves an old path to the module object of its new path (installed by ``import analysis``)."""

    def __init__(self) -> None:
        #: old name -> the new module's own spec, while the old name is being imported (the
        #: import lock of the old name serialises each entry)
        self._own_spec: dict[str, importlib.machinery.ModuleSpec | None] = {}

    def find_spec(self, name: str, path: object = None, target: object = None) -> importlib.machinery.ModuleSpec | None:
        """A spec loaded by this finder when ``name`` is an old path (:func:`new_name`), else None."""
        target_name = new_name(name)
        return None if target_name is None else importlib.util.spec_from_loader(name, self)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        new = new_name(spec.name)
        assert new is not None
        if not spec.name.startswith(SILENT):
            warnings.warn(f"{spec.name} is now {new} (odenet 0.2); the old path will be removed",
                          DeprecationWarning, stacklevel=2)
        module = importlib.import_module(new)
        self._own_spec[spec.name] = module.__spec__
        return module

    def exec_module(self, module: ModuleType) -> None:
        """Nothing to execute (the module ran once, under its new name); only undo the import
        system's ``module.__spec__ = <the old name's spec>``, which would make
        ``importlib.reload`` of the new module a silent no-op through this loader."""
        old = module.__spec__.name if module.__spec__ is not None else None
        if old in self._own_spec:
            module.__spec__ = self._own_spec.pop(old)


def install() -> None:
    """Put the finder first on ``sys.meta_path`` (once) and ``analysis.hdf5`` in ``sys.modules``."""
    if not any(isinstance(f, RenamedModuleFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, RenamedModuleFinder())
    sys.modules.setdefault("analysis.hdf5", importlib.import_module("analysis.io"))
