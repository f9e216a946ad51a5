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


def _saved_naming(tmp_path, probe_module, module):
    """A saved Probe record whose group names ``module`` as its type's home, with the type
    unregistered, so that loading must import that module to find the schema."""
    path = io.save(tmp_path / "probe.h5", probe_module.Probe(np.arange(3.0), "p"))
    del schema_module._BY_NAME["ProbeRecord"]
    with h5py.File(path, "r+") as f:
        (name,) = list(f)
        f[name].attrs[schema_module.MODULE_ATTR] = module
    return path


def test_a_module_that_does_not_import_fails_loudly(tmp_path, probe_module):
    path = _saved_naming(tmp_path, probe_module, "analysis.no_such_records_module")
    with pytest.raises(ValueError, match=r"'ProbeRecord'.*'analysis\.no_such_records_module'.*failed to import"):
        io.load(path)


def test_a_module_outside_the_trusted_packages_is_never_imported(tmp_path, probe_module):
    path = _saved_naming(tmp_path, probe_module, "antigravity")
    with pytest.raises(ValueError, match=r"'antigravity'.*not a public module of the packages"):
        io.load(path)
    assert "antigravity" not in sys.modules


@pytest.mark.parametrize("module", ["odenet.cli.__main__", "analysis.io._private", "analysis..io", ".io",
                                    "analysis.io; import os"])
def test_a_file_cannot_name_a_main_or_private_module(tmp_path, probe_module, module):
    """``odenet.cli.__main__`` would run the command line (and exit the reader's process) on import."""
    path = _saved_naming(tmp_path, probe_module, module)
    sys.modules.pop("odenet.cli.__main__", None)
    with pytest.raises(ValueError, match="not a public module"):
        io.load(path)
    assert "odenet.cli.__main__" not in sys.modules


@pytest.mark.parametrize("attr", [schema_module.TYPE_ATTR, schema_module.MODULE_ATTR])
def test_a_type_or_module_attribute_that_is_not_a_string_is_a_value_error(tmp_path, attr):
    path = io.save(tmp_path / "fit.h5", analysis.monotone_fit(np.linspace(-1, 1, 5), np.linspace(-1, 1, 5) ** 2))
    with h5py.File(path, "r+") as f:
        (name,) = list(f)
        f[name].attrs[attr] = np.int64(3)
    with pytest.raises(ValueError, match=rf"attribute {attr}=\S*3\)?; a string was expected"):
        io.load(path)


def test_a_record_name_cannot_be_taken_by_another_class():
    """Files name record types by ``odenet_type`` alone: a second class under a registered name
    would silently change what old files load as."""
    class Other:
        pass

    with pytest.raises(ValueError, match=r"'MonotoneFit' is already registered for "
                       r"analysis\.approximation\.bounds\.MonotoneFit"):
        schema_module.register(schema_module.Schema("MonotoneFit", Other, fields=()))
    assert schema_module.registered()["MonotoneFit"].cls is analysis.MonotoneFit
    with pytest.raises(TypeError, match="register expects a Schema; got dict"):
        schema_module.register({"name": "X"})


def test_the_registry_is_safe_to_use_while_another_thread_registers():
    """Lookups iterate the registry while modules imported by other threads add to it."""
    import threading

    classes = [type(f"Threaded{i}", (), {"__module__": __name__}) for i in range(3000)]
    fit = analysis.monotone_fit(np.linspace(-1, 1, 5), np.linspace(-1, 1, 5) ** 2)
    errors: list[BaseException] = []

    def look_up():
        try:
            for _ in range(3000):
                assert schema_module.schema_for(fit).name == "MonotoneFit"
        except BaseException as exc:  # noqa: BLE001 -- reported by the main thread
            errors.append(exc)

    readers = [threading.Thread(target=look_up) for _ in range(2)]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads often, so that a lookup meets a registration
    try:
        for t in readers:
            t.start()
        for cls in classes:
            schema_module.register(schema_module.Schema(cls.__name__, cls, fields=()))
        for t in readers:
            t.join()
    finally:
        sys.setswitchinterval(interval)
        for cls in classes:
            schema_module._BY_NAME.pop(cls.__name__, None)
    assert errors == []


def test_a_module_that_does_not_register_the_type_is_named(tmp_path, probe_module):
    path = _saved_naming(tmp_path, probe_module, "analysis.geometry.inverse")
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


def test_every_record_type_of_odenet_names_a_module_a_reader_may_import():
    """A file written by odenet can be read in a fresh process: the module each record group
    names is one :func:`schema_named` accepts (public, in a trusted package)."""
    ours = {n: s.cls.__module__ for n, s in schema_module.registered().items()
            if s.cls.__module__.split(".")[0] in schema_module.TRUSTED_PACKAGES}
    assert len(ours) > 20
    refused = {n: m for n, m in ours.items() if not schema_module.MODULE_PATH.match(m)}
    assert refused == {}
