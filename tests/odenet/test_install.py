"""Installs that just work: a wheel built from the source tree, installed into a fresh virtual
environment, runs `odenet --version` and a quick reproduction from an unrelated folder.

The fresh environment sees the running environment's packages (torch, scipy, matplotlib, ...)
through a ``.pth`` line, because ``venv --system-site-packages`` made from a virtualenv's
interpreter reaches the *base* interpreter's site-packages, not the virtualenv's; the wheel
itself is installed with ``--no-deps`` (nothing is downloaded).  A ``.pth`` line adds a folder
without running the ``.pth`` files inside it, so an editable install of odenet in the running
environment stays invisible: the fresh environment imports the wheel's copy.
"""
import os
import shutil
import site
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import h5py
import pytest

import odenet
from analysis import hdf5

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("odenet", "solvers", "analysis")


def _run(argv, cwd, **kw):
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env["MPLBACKEND"] = "Agg"
    return subprocess.run([str(a) for a in argv], cwd=cwd, env=env, capture_output=True, text=True, **kw)


@pytest.mark.slow
def test_wheel_installs_into_a_fresh_venv_and_runs(tmp_path):
    # the sources alone (no build/ or egg-info left in the working tree)
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    for pkg in PACKAGES:
        shutil.copytree(ROOT / pkg, src / pkg, ignore=shutil.ignore_patterns("__pycache__"))
    wheels = tmp_path / "wheels"
    built = _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", wheels, src],
                 cwd=tmp_path, timeout=600)
    assert built.returncode == 0, built.stderr
    (wheel,) = wheels.glob("odenet-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert {f"{p}/py.typed" for p in PACKAGES} <= set(names)
    # every module of every sub-package ships (package discovery in pyproject.toml)
    sources = {str(f.relative_to(src)) for pkg in PACKAGES for f in (src / pkg).rglob("*.py")}
    assert len(sources) > 50 and sources - set(names) == set(), sorted(sources - set(names))
    meta = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    assert "Requires-Dist: matplotlib" in meta and 'extra == "io"' in meta and "Classifier: Typing :: Typed" in meta

    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False, system_site_packages=True).create(env_dir)
    py = env_dir / "bin" / "python"
    purelib = _run([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], cwd=tmp_path).stdout.strip()
    running = [p for p in site.getsitepackages() if Path(p).is_dir()]
    (Path(purelib) / "running_env.pth").write_text("\n".join(running) + "\n")
    installed = _run([sys.executable, "-m", "pip", "--python", py, "install", "--no-deps", "-q", wheel],
                     cwd=tmp_path, timeout=600)
    assert installed.returncode == 0, installed.stderr

    work = tmp_path / "elsewhere"
    work.mkdir()
    where = _run([py, "-c", "import odenet, analysis; print(odenet.__file__); print(analysis.__file__)"], cwd=work)
    assert where.returncode == 0, where.stderr
    for line in where.stdout.split():  # the wheel's copy, not the source tree's
        assert Path(line).resolve().is_relative_to(Path(purelib).resolve()), line
    odenet_cmd = env_dir / "bin" / "odenet"
    version = _run([odenet_cmd, "--version"], cwd=work)
    assert version.returncode == 0 and version.stdout == f"odenet {odenet.__version__}\n", version.stderr
    run = _run([odenet_cmd, "reproduce", "--quick", "--only", "injection", "--out", "results"], cwd=work,
               timeout=900)
    assert run.returncode == 0, run.stderr[-3000:]
    out = work / "results"
    assert (out / "summary.md").is_file() and any((out / "figures").glob("*.png"))
    with h5py.File(out / "paper.h5", "r") as f:
        assert f.attrs["format"] == "odenet-hdf5" and f.attrs["format_version"] == hdf5.FORMAT_VERSION
    assert hdf5.list_records(out / "paper.h5")  # records written, readable here
