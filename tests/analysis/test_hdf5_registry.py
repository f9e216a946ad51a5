"""Storage is a leaf: record types register their schemas beside their dataclasses, and a file
names the module that declares each record so that reading imports it (trusted packages only)."""
import sys
import textwrap

import h5py
import numpy as np
import pytest

import analysis
from analysis import io
from analysis.io import schema as schema_module

FAKE_MODULE = textwrap.dedent('''
    from dataclasses import dataclass
    import numpy as np
    from analysis.io.schema import Array, Attr, Schema, register

    @dataclass
    class Probe:
        values: np.ndarray
        label: str

    register(Schema("ProbeRecord", Probe, fields=(Array("values", ("sample",), doc="probe values"),
                                                    Attr("label", str))))
''')


@pytest.fixture
def probe_module(tmp_path, monkeypatch):
    """A record module inside the analysis package (on an extra path entry), imported once."""
    (tmp_path / "probe_records.py").write_text(FAKE_MODULE)
    monkeypatch.setattr(analysis, "__path__", [*analysis.__path__, str(tmp_path)])
    import analysis.probe_records as mod
    yield mod
    sys.modules.pop("analysis.probe_records", None)
    schema_module._BY_NAME.pop("ProbeRecord", None)


def test_every_record_group_names_its_declaring_module(tmp_path):
    fit = analysis.monotone_fit(np.linspace(-1, 1, 9), np.linspace(-1, 1, 9) ** 2)
    path = io.save(tmp_path / "fit.h5", fit)
    with h5py.File(path, "r") as f:
        (name,) = list(f)
        assert f[name].attrs[schema_module.TYPE_ATTR] == "MonotoneFit"
        assert f[name].attrs[schema_module.MODULE_ATTR] == "analysis.approximation.bounds"


def test_an_unregistered_type_is_loaded_by_importing_its_module(tmp_path, probe_module):
    path = io.save(tmp_path / "probe.h5", probe_module.Probe(np.arange(4.0), "p"))
    # forget the type, as in a fresh process that never imported the declaring module
    del schema_module._BY_NAME["ProbeRecord"]
    del sys.modules["analysis.probe_records"]
    back = io.load(path)
    assert "ProbeRecord" in schema_module.registered()
    assert type(back).__module__ == "analysis.probe_records" and back.label == "p"
    np.testing.assert_array_equal(back.values, np.arange(4.0))


def _retag(path, module):
    with h5py.File(path, "r+") as f:
        (name,) = list(f)
        f[name].attrs[schema_module.MODULE_ATTR] = module


def test_a_module_that_does_not_import_fails_loudly(tmp_path, probe_module):
    path = io.save(tmp_path / "probe.h5", probe_module.Probe(np.arange(3.0), "p"))
    del schema_module._BY_NAME["ProbeRecord"]
    _retag(path, "analysis.no_such_records_module")
    with pytest.raises(ValueError, match=r"'ProbeRecord'.*'analysis\.no_such_records_module'.*failed to import"):
        io.load(path)


def test_a_module_outside_the_trusted_packages_is_never_imported(tmp_path, probe_module):
    path = io.save(tmp_path / "probe.h5", probe_module.Probe(np.arange(3.0), "p"))
    del schema_module._BY_NAME["ProbeRecord"]
    _retag(path, "antigravity")
    with pytest.raises(ValueError, match="outside the packages"):
        io.load(path)
    assert "antigravity" not in sys.modules


def test_a_module_that_does_not_register_the_type_is_named(tmp_path, probe_module):
    path = io.save(tmp_path / "probe.h5", probe_module.Probe(np.arange(3.0), "p"))
    del schema_module._BY_NAME["ProbeRecord"]
    _retag(path, "analysis.geometry.inverse")
    with pytest.raises(ValueError, match=r"unknown record type 'ProbeRecord'.*does not register it"):
        io.load(path)


def test_importing_analysis_registers_every_record_type():
    names = set(schema_module.registered())
    expected = {"Solution", "Trace", "CriticalPoints", "CertificateReport", "Inverse", "TunnelResult", "MonotoneFit",
                "ModelBounds", "JacobianMap", "RegimeRun", "TrainResult", "Dataset", "EnsembleResult",
                "ConvergenceStudy", "SweepRun", "StudyRecord"}
    assert expected <= names, expected - names


def test_the_hdf5_alias_is_the_io_package():
    import analysis.hdf5 as h5
    assert h5 is analysis.io and analysis.hdf5 is analysis.io
    assert h5.save is io.save


def test_hdf5_submodules_are_the_io_modules_not_copies():
    """``import analysis.hdf5.schema`` must not execute a second copy of the module (a second
    registry would not know the records registered through the first)."""
    import analysis.hdf5.inspect as old_inspect
    import analysis.hdf5.schema as old_schema
    from analysis.hdf5.schema import register

    import analysis.io.inspect
    assert old_schema is schema_module and register is schema_module.register
    assert old_inspect is analysis.io.inspect
