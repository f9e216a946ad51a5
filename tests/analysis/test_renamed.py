"""The module paths of 0.1 stay importable and are the new modules themselves."""
import importlib
import subprocess
import sys
import warnings

import pytest

import analysis
from analysis.renamed import RENAMED, new_name


@pytest.mark.parametrize("old", sorted(o for o in RENAMED if not o.startswith("analysis.hdf5")))
def test_old_path_is_the_new_module_with_a_deprecation_warning(old):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sys.modules.pop(old, None)
        module = importlib.import_module(old)
    assert module is importlib.import_module(RENAMED[old])
    assert any(issubclass(w.category, DeprecationWarning) and RENAMED[old] in str(w.message) for w in caught)


def test_submodules_of_a_renamed_package_resolve():
    assert new_name("analysis.sweep.store") == "analysis.experiments.sweep.store"
    assert new_name("analysis.hdf5.schema") == "analysis.io.schema"
    assert new_name("analysis.hdf5.io") == "analysis.io.files"
    assert new_name("analysis.geometry.tracing") is None
    sys.modules.pop("analysis.sweep.store", None)
    with pytest.warns(DeprecationWarning, match="analysis.experiments.sweep.store"):
        from analysis.sweep.store import SweepStore

    import analysis.experiments.sweep.store as store
    assert SweepStore is store.SweepStore


def test_the_hdf5_alias_is_silent():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sys.modules.pop("analysis.hdf5.files", None)
        import analysis.hdf5.files  # noqa: F401


def test_the_old_file_module_imports_by_every_form():
    import analysis.io.files as files
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # silent, as the whole hdf5 alias
        from analysis.hdf5 import io
        import analysis.hdf5.io as io2
    assert io is files and io2 is files
    with pytest.raises(ImportError, match="cannot import name 'nothing'"):
        from analysis.hdf5 import nothing  # noqa: F401


def test_analysis_tunnel_stays_the_function():
    assert callable(analysis.tunnel) and not hasattr(analysis.tunnel, "__path__")
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("analysis.tunnel")
    assert callable(analysis.tunnel)


def test_an_old_script_runs_in_a_fresh_interpreter():
    """What a 0.1 script wrote: flat module paths, a record saved and loaded through them."""
    code = ("import warnings; warnings.simplefilter('ignore')\n"
            "from analysis.bounds import monotone_fit\n"
            "from analysis.hdf5.files import save, load\n"
            "import numpy as np, tempfile, os\n"
            "fit = monotone_fit(np.linspace(-1, 1, 5), np.linspace(-1, 1, 5) ** 2)\n"
            "p = save(os.path.join(tempfile.mkdtemp(), 'f.h5'), fit)\n"
            "print(type(load(p)).__module__)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "analysis.approximation.bounds"


def test_importing_an_old_path_leaves_the_new_module_its_own_spec():
    """The import system sets ``__spec__`` on the module the finder returns; left so, the new
    module's spec would name the old path and ``importlib.reload`` would run the finder's empty
    loader: a silent no-op.  Checked in a fresh interpreter (a reload re-registers schemas)."""
    code = ("import warnings, importlib; warnings.simplefilter('ignore')\n"
            "import analysis.geometry.maps as new\n"
            "import analysis.maps, analysis.hdf5.schema, analysis.io.schema\n"
            "assert new.__spec__.name == 'analysis.geometry.maps', new.__spec__\n"
            "assert analysis.io.schema.__spec__.name == 'analysis.io.schema', analysis.io.schema.__spec__\n"
            "new.jacobian_map = None\n"
            "importlib.reload(new)\n"
            "print(callable(new.jacobian_map))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "True"
