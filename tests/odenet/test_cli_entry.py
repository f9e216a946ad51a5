"""The two ways to start the command line: ``python -m odenet.cli`` and the ``odenet`` console
script that pyproject.toml declares (the script itself is run by the wheel test, marked slow)."""
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

import odenet

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[2]


def test_python_dash_m_runs_the_command_line_and_exits_with_its_status():
    """``odenet/cli/__main__.py`` passes main's return value to the interpreter's exit status."""
    missing = subprocess.run([sys.executable, "-m", "odenet.cli", "inspect", str(ROOT / "no-such-file.h5")],
                             capture_output=True, text=True, cwd=ROOT)
    assert missing.returncode == 2 and missing.stderr.startswith("odenet inspect: error: "), missing.stderr
    assert "no-such-file.h5" in missing.stderr


def test_the_console_script_names_the_main_function(capsys):
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    module, _, attr = scripts["odenet"].partition(":")
    main = getattr(importlib.import_module(module), attr)
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0 and capsys.readouterr().out == f"odenet {odenet.__version__}\n"
    assert main(["inspect", str(ROOT / "no-such-file.h5")]) == 2


def test_every_command_help_starts_with_a_description():
    """Each subcommand declares its own description (``odenet COMMAND --help`` starts with it)."""
    import argparse

    from odenet.cli import COMMANDS

    sub = argparse.ArgumentParser().add_subparsers()
    for command in COMMANDS:
        command.add_parser(sub)
    assert sorted(sub.choices) == sorted(["demo", "reproduce", "inspect", "trace", "sweep", "converge", "tunnel"])
    assert all(p.description for p in sub.choices.values())
