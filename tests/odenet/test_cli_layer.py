"""The command line sits on top of the floors: importing the library never loads it, and loading it
(to parse arguments) loads no analysis before a command runs."""
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _modules_after(statement: str) -> set[str]:
    """The names in sys.modules after running ``statement`` in a fresh interpreter."""
    code = f"{statement}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True,
                         timeout=120).stdout
    return set(json.loads(out.splitlines()[-1]))


def _under(modules: set[str], package: str) -> list[str]:
    return sorted(m for m in modules if m == package or m.startswith(package + "."))


def test_import_odenet_loads_neither_the_cli_nor_analysis():
    loaded = _modules_after("import odenet")
    assert "odenet" in loaded and "odenet.resnet" in loaded  # the probe sees what was imported
    assert _under(loaded, "odenet.cli") == []
    assert _under(loaded, "analysis") == []


def test_parsing_the_command_line_loads_no_analysis():
    # building the parser imports every subcommand module; the library loads only when a command runs
    loaded = _modules_after("from odenet.cli import build_parser\nbuild_parser()")
    assert {"odenet.cli.converge", "odenet.cli.sweep", "odenet.cli.trace", "odenet.cli.tunnel"} <= loaded
    assert _under(loaded, "analysis") == []


def test_the_help_quotes_the_library_defaults_it_cannot_import():
    # parsing imports no analysis, so the help states these defaults as text: they must stay the library's
    import argparse

    from analysis.experiments.paper_regimes import CLI_NAMES
    from analysis.experiments.sweep import DASK_TIMEOUT, MAX_RUNS
    from odenet.cli import build_parser

    (sub,) = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    helps = {name: {a.dest: a.help for a in p._actions} for name, p in sub.choices.items()}
    assert f"(default {MAX_RUNS})" in helps["sweep"]["max_runs"]
    assert f"(default {DASK_TIMEOUT:g})" in helps["sweep"]["dask_timeout"]
    assert all(name in helps["tunnel"]["regime"] for name in CLI_NAMES)
    default = sub.choices["tunnel"].get_default("regime")
    assert default in CLI_NAMES and f"{default} (default)" in helps["tunnel"]["regime"]
