"""Failure safety: atomic create, atomic append, clear errors for foreign, truncated, newer files."""
import os

import h5py
import numpy as np
import pytest
import torch

from analysis import hdf5
from analysis.io import format as fmt
from analysis.io import schema
from odenet import ResNet


def _sol(seed=0):
    net = ResNet(2, 2, 1, 3, seed=seed)
    return net.solve(torch.randn(4, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(seed)))


def _listing(folder):
    """The files in ``folder`` but the writers' lock sidecars ``<file>.lock`` (kept by design)."""
    return sorted(n for n in os.listdir(folder) if not n.endswith(".lock"))


def _boom_after_first_dataset(monkeypatch):
    """Make the generic writer fail after it has written part of a group."""
    real = schema.write_dataset
    calls = {"n": 0}

    def failing(*a, **k):
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("injected failure in the middle of a write")
        return real(*a, **k)

    monkeypatch.setattr(schema, "write_dataset", failing)
    return calls


def test_existing_file_is_refused_then_overwritten(tmp_path):
    p = tmp_path / "a.h5"
    hdf5.save(p, _sol(0))
    before = p.read_bytes()
    with pytest.raises(FileExistsError, match="overwrite=True"):
        hdf5.save(p, _sol(1))
    assert p.read_bytes() == before
    hdf5.save(p, _sol(1), overwrite=True)
    assert torch.equal(hdf5.load(p).y, _sol(1).y)
    assert _listing(tmp_path) == ["a.h5"]


def test_failed_overwrite_leaves_file_byte_identical(tmp_path, monkeypatch):
    p = tmp_path / "a.h5"
    hdf5.save(p, _sol(0))
    before = p.read_bytes()
    calls = _boom_after_first_dataset(monkeypatch)
    with pytest.raises(RuntimeError, match="injected"):
        hdf5.save(p, _sol(1), overwrite=True)
    assert calls["n"] == 2  # the failure really happened midway
    assert p.read_bytes() == before and _listing(tmp_path) == ["a.h5"]


def test_failed_create_leaves_nothing(tmp_path, monkeypatch):
    _boom_after_first_dataset(monkeypatch)
    with pytest.raises(RuntimeError, match="injected"):
        hdf5.save(tmp_path / "new.h5", _sol(0))
    assert _listing(tmp_path) == []


def test_append_adds_a_group_and_keeps_the_rest(tmp_path):
    p = tmp_path / "a.h5"
    hdf5.save(p, _sol(0), "run0")
    hdf5.append(p, _sol(1), "run1")
    hdf5.append(p, {"run2": _sol(2), "model": ResNet(2, 2, 1, 3, seed=2)})
    assert hdf5.list_records(p) == {"run0": "Solution", "run1": "Solution", "run2": "Solution", "model": "ResNet"}
    for i in range(3):
        assert torch.equal(hdf5.load(p, f"run{i}").y, _sol(i).y)
    with pytest.raises(ValueError, match="already exists"):
        hdf5.append(p, _sol(3), "run1")
    hdf5.append(p, _sol(3), "run1", replace=True)
    assert torch.equal(hdf5.load(p, "run1").y, _sol(3).y)
    assert _listing(tmp_path) == ["a.h5"]


def test_failed_append_leaves_file_byte_identical(tmp_path, monkeypatch):
    p = tmp_path / "a.h5"
    hdf5.save(p, _sol(0), "run0")
    os.chmod(p, 0o640)
    before = p.read_bytes()
    calls = _boom_after_first_dataset(monkeypatch)
    with pytest.raises(RuntimeError, match="injected"):
        hdf5.append(p, _sol(1), "run1")
    assert calls["n"] == 2
    assert p.read_bytes() == before and _listing(tmp_path) == ["a.h5"]
    monkeypatch.undo()
    hdf5.append(p, _sol(1), "run1")
    assert os.stat(p).st_mode & 0o777 == 0o640  # the copy keeps the original's permissions


def test_append_fails_before_fsync_rename(tmp_path, monkeypatch):
    # a failure at the very end (the rename) also leaves the original and no temp file
    p = tmp_path / "a.h5"
    hdf5.save(p, _sol(0), "run0")
    before = p.read_bytes()

    def no_replace(src, dst):
        raise OSError("injected rename failure")

    monkeypatch.setattr(fmt.os, "replace", no_replace)
    with pytest.raises(OSError, match="injected"):
        hdf5.append(p, _sol(1), "run1")
    assert p.read_bytes() == before and _listing(tmp_path) == ["a.h5"]


def test_non_hdf5_file(tmp_path):
    p = tmp_path / "notes.h5"
    p.write_text("just text\n")
    for call in (lambda: hdf5.load(p), lambda: hdf5.append(p, _sol(), "x"), lambda: hdf5.list_records(p)):
        with pytest.raises(ValueError, match="not an HDF5 file") as e:
            call()
        assert str(p) in str(e.value)
    assert p.read_text() == "just text\n"


def test_truncated_file(tmp_path):
    p = tmp_path / "a.h5"
    hdf5.save(p, _sol(0))
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="truncated") as e:
        hdf5.load(p)
    assert str(p) in str(e.value)


def test_a_file_appearing_during_the_write_is_not_clobbered(tmp_path):
    p = tmp_path / "a.h5"
    with pytest.raises(FileExistsError, match="appeared while it was being written"):
        with fmt.atomic_create(p) as f:
            f.attrs["x"] = 1
            p.write_text("someone else's")  # created between the check and the rename
    assert p.read_text() == "someone else's"
    assert _listing(tmp_path) == ["a.h5"]


def test_damaged_chunk_is_a_clear_error(tmp_path):
    p = tmp_path / "a.h5"
    net = ResNet(2, 2, 1, 40, seed=0)
    hdf5.save(p, net.solve(torch.randn(200, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))),
              gzip=4)
    with h5py.File(p, "r") as f:
        info = f["solution/y"].id.get_chunk_info(0)  # a gzip-compressed chunk
        assert f["solution/y"].compression == "gzip"
    data = bytearray(p.read_bytes())
    data[info.byte_offset: info.byte_offset + 64] = b"\xff" * 64  # the deflate stream is now invalid
    p.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="cannot be read") as e:
        hdf5.load(p)
    assert str(p) in str(e.value) and "'/solution/y'" in str(e.value)


def test_foreign_hdf5_file(tmp_path):
    p = tmp_path / "other.h5"
    with h5py.File(p, "w") as f:
        f["x"] = np.arange(3)
    with pytest.raises(ValueError, match="not an odenet file") as e:
        hdf5.load(p)
    assert str(p) in str(e.value)


def test_newer_format_version(tmp_path):
    p = tmp_path / "a.h5"
    hdf5.save(p, _sol(0))
    with h5py.File(p, "r+") as f:
        f.attrs["format_version"] = np.int64(fmt.FORMAT_VERSION + 1)
    with pytest.raises(ValueError, match="newer") as e:
        hdf5.load(p)
    assert str(p) in str(e.value) and str(fmt.FORMAT_VERSION + 1) in str(e.value)


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(FileNotFoundError):
        hdf5.load(tmp_path / "nope.h5")
    with pytest.raises(FileNotFoundError, match="folder"):
        hdf5.save(tmp_path / "no" / "dir.h5", _sol())
    with pytest.raises(TypeError, match="overwrite"):
        hdf5.save(tmp_path / "a.h5", _sol(), overwrite="yes")


def test_dimension_length_conflict_is_caught_before_the_file_appears(tmp_path):
    sol = _sol()
    sol.t = sol.t[:-1]  # t no longer matches y's step dimension
    with pytest.raises(ValueError, match="dimension 'step'"):
        hdf5.save(tmp_path / "bad.h5", sol)
    assert _listing(tmp_path) == []
