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
