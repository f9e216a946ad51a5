"""The floors of the code base, checked from the source: every module's imports (parsed with
``ast``, lazy imports inside functions included) may only reach its own floor or the floors below.

    8  odenet.cli, scripts       command line and scripts: thin layers over the library
    7  analysis                  the facade re-exporting the names users know
    6  analysis.experiments      the paper's reproduction, literature studies, sweeps
    5  analysis.plots            figures
    4  analysis.approximation    tunnels, lower bounds, regimes      | side by side: neither
       analysis.continuum        orders, depth studies, regularity   | imports the other
    3  analysis.geometry         traces, certificates, inverses, critical points, Jacobian maps
    2  analysis.io               HDF5 storage, XDMF, atomic writes and locks (alias analysis.hdf5)
    1  odenet                    fields, ResNets, neural ODEs, data, training
    0  solvers                   integrators

Storage sits above odenet (it rebuilds models and stores training results) and below every
analysis floor, which declare their records' schemas beside their dataclasses.
"""
import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("solvers", "odenet", "analysis")

FLOOR = {
    "solvers": 0, "odenet": 1, "analysis.io": 2, "analysis.geometry": 3, "analysis.approximation": 4,
    "analysis.continuum": 4, "analysis.plots": 5, "analysis.experiments": 6, "analysis": 7,
    "odenet.cli": 8, "scripts": 8,
}
#: same-floor units that must not import each other
SIDE_BY_SIDE = {frozenset({"analysis.approximation", "analysis.continuum"})}


def unit_of(module: str) -> str:
    """The floor unit of a dotted module name (the longest key of FLOOR that prefixes it)."""
    parts = module.split(".")
    for n in range(len(parts), 0, -1):
        prefix = ".".join(parts[:n])
        if prefix in FLOOR:
            return prefix
    raise KeyError(module)


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def imports_of(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module) for every import of a project package in ``path``."""
    tree = ast.parse(path.read_text(), filename=str(path))
    here = module_name(path)
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.append((node.lineno, target))
            # `from analysis import io` imports the sub-package analysis.io
            found += [(node.lineno, f"{target}.{alias.name}") for alias in node.names
                      if f"{target}.{alias.name}" in FLOOR]
        elif isinstance(node, ast.Call) and _called_name(node.func) in ("import_module", "__import__") \
                and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
            found.append((node.lineno, node.args[0].value))  # importlib.import_module("analysis.x")
    return [(line, m) for line, m in found if m.split(".")[0] in PACKAGES]


def _called_name(func: ast.expr) -> str | None:
    return func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else None


def is_module(dotted: str) -> bool:
    """Whether ``dotted`` names a module or package of the source tree."""
    base = ROOT.joinpath(*dotted.split("."))
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def private_uses(path: Path) -> list[str]:
    """Another module's private name reached from ``path``: imported (``from x import _y``), a
    private module path (``x._y``), or read as an attribute of an imported project module
    (``import x.y as m; m._z``, ``from x import y; y._z``)."""
    tree = ast.parse(path.read_text())
    where = path.relative_to(ROOT)
    bad, modules = [], set()  # local names bound to project modules
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in PACKAGES:
            bad += [f"{where}:{node.lineno} {node.module}.{a.name}"
                    for a in node.names if a.name.startswith("_") and not a.name.startswith("__")]
            modules |= {a.asname or a.name for a in node.names if node.module and is_module(f"{node.module}.{a.name}")}
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            bad += [f"{where}:{node.lineno} {node.module}"
                    for part in node.module.split(".")[1:] if part.startswith("_") and part != "__main__"]
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name.split(".")[0] in PACKAGES:
                    modules.add(a.asname or a.name.split(".")[0])
                    bad += [f"{where}:{node.lineno} {a.name}" for part in a.name.split(".")[1:]
                            if part.startswith("_") and part != "__main__"]
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
            chain, base = [], node.value
            while isinstance(base, ast.Attribute):
                chain.append(base.attr)
                base = base.value
            if isinstance(base, ast.Name) and base.id in modules:
                bad.append(f"{where}:{node.lineno} {'.'.join([base.id, *reversed(chain), node.attr])}")
    return bad


def source_files() -> list[Path]:
    files = [p for pkg in PACKAGES + ("scripts",) for p in sorted((ROOT / pkg).rglob("*.py"))]
    assert len(files) > 50, "the floors test found too few modules: is ROOT right?"
    return files


def violations(path: Path) -> list[str]:
    unit = unit_of(module_name(path)) if path.parts[-2] != "scripts" else "scripts"
    bad = []
    for line, target in imports_of(path):
        if target == "analysis" and unit != "analysis" and FLOOR[unit] < FLOOR["analysis"]:
            bad.append(f"{path.relative_to(ROOT)}:{line} imports the facade `analysis`; import the sub-package")
            continue
        other = unit_of(target)
        if FLOOR[other] > FLOOR[unit] or frozenset({unit, other}) in SIDE_BY_SIDE:
            bad.append(f"{path.relative_to(ROOT)}:{line} ({unit}, floor {FLOOR[unit]}) imports {target} "
                       f"({other}, floor {FLOOR[other]})")
    return bad


@pytest.mark.parametrize("path", source_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_respect_the_floors(path):
    assert violations(path) == []


def test_private_names_stay_in_their_module():
    """No module imports another module's private name (``from x import _y``) or reads one as an
    attribute of an imported module (``schema._Dims``)."""
    bad = [use for path in source_files() for use in private_uses(path)]
    assert bad == []


@pytest.mark.parametrize("source, reported", [
    ("from analysis.io.schema import _find\n", "analysis.io.schema._find"),
    ("from analysis.io import schema\nschema._find(1)\n", "schema._find"),
    ("import analysis.io.schema as s\ns._BY_NAME\n", "s._BY_NAME"),
    ("import solvers\nsolvers.validation._x\n", "solvers.validation._x"),
    ("import analysis.io._private\n", "analysis.io._private"),
])
def test_the_checker_catches_a_private_name(monkeypatch, source, reported):
    fake = ROOT / "analysis" / "geometry" / "_private_probe.py"
    monkeypatch.setattr(Path, "read_text", lambda self, *a, **k: source if self == fake else Path.open(self).read())
    assert [use.split(" ", 1)[1] for use in private_uses(fake)] == [reported]


def test_the_checker_sees_string_and_lazy_imports(monkeypatch):
    """``importlib.import_module("analysis.experiments")`` inside a function is an import too."""
    fake = ROOT / "analysis" / "io" / "_floors_probe.py"
    source = "import importlib\ndef f():\n    return importlib.import_module('analysis.experiments.paper')\n"
    monkeypatch.setattr(Path, "read_text", lambda self, *a, **k: source if self == fake else Path.open(self).read())
    assert len(violations(fake)) == 1 and "analysis.experiments.paper" in violations(fake)[0]


def test_the_checker_catches_an_upward_import(tmp_path, monkeypatch):
    """The rule itself can fail: storage importing geometry is reported."""
    fake = ROOT / "analysis" / "io" / "_floors_probe.py"
    monkeypatch.setattr(Path, "read_text", lambda self, *a, **k: "from analysis.geometry import trace\n"
                        if self == fake else Path.open(self).read())
    assert violations(fake) and "floor 2" in violations(fake)[0]


def test_no_module_is_shadowed_by_a_function_of_the_same_name():
    """``package.name`` is the module ``package/name.py`` after import, never a function
    re-exported under the module's name (``analysis.tunnel`` is the function: its module is
    ``analysis.approximation.tunnel_effect``)."""
    import importlib
    import inspect
    import pkgutil

    shadowed = []
    for top in PACKAGES:
        for info in pkgutil.walk_packages(importlib.import_module(top).__path__, prefix=f"{top}."):
            if info.name.endswith(".__main__"):  # importing it runs the program
                continue
            parent_name, _, child = info.name.rpartition(".")
            importlib.import_module(info.name)
            attr = getattr(importlib.import_module(parent_name), child)
            if not inspect.ismodule(attr):
                shadowed.append(f"{info.name} is shadowed by {attr!r}")
    assert shadowed == []
