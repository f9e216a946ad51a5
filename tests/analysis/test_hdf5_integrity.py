"""Integrity of results files: the writer's lock (concurrent appends, an append during an
overwrite), checksums on every dataset (bit flips found, naming file and dataset), format versions
per group, crafted configs refused before allocating, and `odenet inspect` on damaged files, temp
files and closed pipes."""
import multiprocessing
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from analysis import hdf5
from analysis.io import atomic, models, schema
from analysis.io.grid import SampleGrid
from analysis.io.inspect import check
from odenet import ResNet
from odenet.cli import main

from hdf5_helpers import Tagged

ROOT = Path(__file__).resolve().parents[2]
V1_FILE = Path(__file__).parent / "data" / "format_v1.h5"
V2_FILE = Path(__file__).parent / "data" / "format_v2.h5"
# fork: the workers inherit the imported modules (spawn would re-import torch in each, seconds)
FORK = multiprocessing.get_context("fork")


def _grid(i: int) -> SampleGrid:
    """A small record whose values identify the writer ``i``."""
    x = np.arange(3, dtype=np.float64) + 1000 * i
    return SampleGrid(x, None, torch.as_tensor(x).reshape(-1, 1))


def _flip_bit(path, offset: int, bit: int = 3) -> None:
    with open(path, "r+b") as fh:
        fh.seek(offset)
        byte = fh.read(1)[0]
        fh.seek(offset)
        fh.write(bytes([byte ^ (1 << bit)]))


def _chunk_offset(path, dataset: str, chunk: int = 0) -> int:
    """Byte offset in the file of a chunk's stored data (not of any header)."""
    with h5py.File(path, "r") as f:
        return f[dataset].id.get_chunk_info(chunk).byte_offset


# --- locking ----------------------------------------------------------------------------------------
def _append_after(start, path, i, done):
    start.wait()
    hdf5.append(path, _grid(i), f"w{i}")
    done.put((i, time.monotonic()))


def _run_together(targets):
    """Start processes that wait on one event, release them at once, wait for all."""
    start = FORK.Event()
    done = FORK.Queue()
    procs = [FORK.Process(target=fn, args=(start, *args, done)) for fn, args in targets]
    for p in procs:
        p.start()
    start.set()
    results = [done.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    return dict(results)


def test_concurrent_appends_all_land(tmp_path):
    # 6 processes append at the same moment, 3 rounds: without the lock most rounds lose records
    n = 6
    for rnd in range(3):
        p = tmp_path / f"r{rnd}.h5"
        hdf5.save(p, _grid(-1), "base")
        _run_together([(_append_after, (p, i)) for i in range(n)])
        records = hdf5.list_records(p)
        assert sorted(records) == sorted(["base"] + [f"w{i}" for i in range(n)]), f"round {rnd}: {sorted(records)}"
        for i in range(n):
            assert np.array_equal(hdf5.load(p, f"w{i}").x, _grid(i).x)


def _overwrite_after(start, path, marker, done):
    start.wait()
    hdf5.save(path, _grid(marker), "base", overwrite=True)
    done.put((marker, time.monotonic()))


def test_append_during_overwrite_is_never_silently_lost(tmp_path):
    # an overwrite and appends at once: the overwrite's content always survives, and an append that
    # returned after the overwrite returned is always in the file (only one that finished before the
    # overwrite began may be replaced by it, which is what an overwrite is asked to do)
    for rnd in range(3):
        p = tmp_path / f"r{rnd}.h5"
        hdf5.save(p, _grid(-1), "base")
        marker = 500 + rnd
        ends = _run_together([(_overwrite_after, (p, marker))] + [(_append_after, (p, i)) for i in range(4)])
        assert np.array_equal(hdf5.load(p, "base").x, _grid(marker).x), f"round {rnd}: the overwrite was lost"
        records = hdf5.list_records(p)
        for i in range(4):
            if ends[i] > ends[marker]:
                assert f"w{i}" in records, f"round {rnd}: append {i} returned after the overwrite but is lost"


def test_lock_is_reentrant_and_exclusive(tmp_path):
    # a sweep's assembly holds the lock and calls save(overwrite=True), which takes it again
    p = tmp_path / "a.h5"
    hdf5.save(p, _grid(0), "base")
    with atomic.exclusive_lock(p, timeout=0):
        hdf5.save(p, _grid(1), "base", overwrite=True)
        hdf5.append(p, _grid(2), "more")
        errors = []
        t = threading.Thread(target=lambda: errors.append(_try_lock(p)))
        t.start()
        t.join(30)
        assert errors == ["TimeoutError"]  # another thread is kept out
    assert sorted(hdf5.list_records(p)) == ["base", "more"]
    assert os.path.exists(atomic.lock_path(p))


def _try_lock(p):
    try:
        with atomic.exclusive_lock(p, timeout=0):
            return "acquired"
    except TimeoutError as exc:
        assert str(p) in str(exc)
        return "TimeoutError"


# --- checksums --------------------------------------------------------------------------------------
def _all_datasets(path):
    with h5py.File(path, "r") as f:
        out = {}
        f.visititems(lambda name, o: out.__setitem__(name, (o.fletcher32, schema.CHECKSUM_ATTR in o.attrs,
                                                            o.compression, o.nbytes))
                     if isinstance(o, h5py.Dataset) else None)
    return out


def test_every_dataset_has_a_checksum_and_small_ones_are_never_compressed(tmp_path):
    net = ResNet(2, 2, 1, 3, seed=0, batchnorm=True, input_map="affine")
    x = torch.randn(3000, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        sol = net.solve(net.embed(x))
    tagged = Tagged({"empty": torch.zeros(0, 2, dtype=torch.float64), "scalar": torch.tensor(1.5)})
    p = hdf5.save(tmp_path / "a.h5", {"model": net, "solution": sol, "tagged": tagged}, gzip=9)
    found = _all_datasets(p)
    assert len(found) > 20
    for name, (fletcher, sha, compression, nbytes) in found.items():
        assert fletcher or sha, f"{name} carries no checksum"
        assert (compression == "gzip") == (nbytes >= schema.COMPRESS_BYTES), name
    assert found["solution/y"][2] == "gzip" and found["model/field_weight"][2] is None
    assert found["model/field_bn_0_num_batches_tracked"][1] and found["tagged/extras/empty"][1]
    assert torch.equal(hdf5.load(p, "solution").y, sol.y)
    assert torch.equal(hdf5.load(p, "tagged").extras["scalar"], tagged.extras["scalar"])


@pytest.mark.parametrize("gzip", [None, 4])
def test_bit_flip_in_a_model_weight_is_found(tmp_path, gzip):
    p = hdf5.save(tmp_path / "m.h5", ResNet(2, 2, 1, 3, seed=0), gzip=gzip)
    _flip_bit(p, _chunk_offset(p, "model/field_weight") + 5)
    for call in (lambda: hdf5.load_model(p), lambda: hdf5.load(p, "model")):
        with pytest.raises(ValueError, match="checksum") as e:
            call()
        assert str(p) in str(e.value) and "'/model/field_weight'" in str(e.value)


@pytest.mark.parametrize("gzip", [None, 4])
def test_bit_flip_in_a_large_trace_array_is_found(tmp_path, gzip):
    from analysis.geometry.tracing import trace

    net = ResNet.neural_ode(2, 2, 1, depth=20, T=2.0, seed=0)
    with torch.no_grad():
        tr = trace(net, hdf5.parse_grid("-2:2:60,-2:2:60").points)
    p = hdf5.save(tmp_path / "t.h5", tr, gzip=gzip)
    with h5py.File(p, "r") as f:
        ds = f["trace/cumulative"]
        assert ds.nbytes > 2 * schema.CHUNK_BYTES and ds.id.get_num_chunks() > 2
        last = ds.id.get_num_chunks() - 1
    _flip_bit(p, _chunk_offset(p, "trace/cumulative", last) + 1000)
    with pytest.raises(ValueError, match="checksum") as e:
        hdf5.load(p)
    assert str(p) in str(e.value) and "'/trace/cumulative'" in str(e.value)


def test_bit_flip_in_a_scalar_fails_its_sha256(tmp_path):
    net = ResNet(2, 2, 1, 2, seed=0, batchnorm=True)
    net.field.bn[1].num_batches_tracked.fill_(7)
    p = hdf5.save(tmp_path / "m.h5", net)
    key = "model/field_bn_1_num_batches_tracked"
    with h5py.File(p, "r") as f:
        offset = f[key].id.get_offset()  # contiguous: the 8 bytes of the int64
    _flip_bit(p, offset, bit=4)
    with h5py.File(p, "r") as f:
        assert f[key][()] == 7 ^ 16  # the flip changed the value, and HDF5 alone does not notice
    with pytest.raises(ValueError, match="SHA-256") as e:
        hdf5.load_model(p)
    assert str(p) in str(e.value) and f"'/{key}'" in str(e.value)


def test_strings_carry_a_sha256(tmp_path):
    p = tmp_path / "s.h5"
    with h5py.File(p, "w") as f:
        schema.write_strings(f, "kinds", ["saddle", "minimum"])
    with h5py.File(p, "r") as f:
        assert schema.read_strings(f["kinds"]) == ["saddle", "minimum"]
    data = p.read_bytes()
    offset = data.index(b"saddle")  # in HDF5's global heap, which no filter covers
    _flip_bit(p, offset, bit=0)  # "saddle" -> "raddle"
    with h5py.File(p, "r") as f:
        with pytest.raises(ValueError, match="SHA-256") as e:
            schema.read_strings(f["kinds"])
    assert str(p) in str(e.value) and "'/kinds'" in str(e.value)


def test_sha256_is_the_documented_one():
    import hashlib

    a = np.array([[1.0, -2.0]], dtype=">f8")  # big-endian input: hashed as little-endian bytes
    assert schema.sha256_of(a) == hashlib.sha256(np.array([[1.0, -2.0]], dtype="<f8").tobytes()).hexdigest()
    assert schema.sha256_of(["ab", "ç"]) == hashlib.sha256(b"ab\0" + "ç".encode() + b"\0").hexdigest()


# --- versions -----------------------------------------------------------------------------------------
def test_group_format_version_is_checked(tmp_path):
    p = hdf5.save(tmp_path / "a.h5", {"old": _grid(0), "new": _grid(1)})
    with h5py.File(p, "r+") as f:
        f["new"].attrs["format_version"] = np.int64(99)
    assert np.array_equal(hdf5.load(p, "old").x, _grid(0).x)
    with pytest.raises(ValueError, match="format version 99, newer") as e:
        hdf5.load(p, "new")
    assert str(p) in str(e.value) and "'/new'" in str(e.value)
    with h5py.File(p, "r+") as f:
        f["new"].attrs["format_version"] = "two"
    with pytest.raises(ValueError, match="not an integer") as e:
        hdf5.load(p, "new")
    assert "'/new'" in str(e.value)


def test_version_1_files_stay_readable(tmp_path):
    # written by odenet's format version 1 (no checksums), kept as a file
    with h5py.File(V1_FILE, "r") as f:
        assert f.attrs["format_version"] == 1 and not f["model/field.weight"].fletcher32
    net = hdf5.load_model(V1_FILE)
    fresh = ResNet(2, 2, 1, 3, seed=0, batchnorm=True, input_map="affine")
    for k, v in fresh.state_dict().items():
        assert torch.equal(net.state_dict()[k], v), k
    x = torch.randn(4, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    sol = hdf5.load(V1_FILE, "solution")
    with torch.no_grad():  # the file holds solve(embed(x)), whose first state is embed(embed(x))
        torch.testing.assert_close(sol.y[0], fresh.embed(fresh.embed(x)), rtol=0, atol=1e-14)
    found = check(V1_FILE)
    assert found.ok and found.unchecked == []  # version 1 has no checksums to miss
    # appending to it writes checksummed groups and raises the file's version
    q = tmp_path / "v1.h5"
    q.write_bytes(V1_FILE.read_bytes())
    hdf5.append(q, _grid(3), "grid")
    with h5py.File(q, "r") as f:
        assert f.attrs["format_version"] == hdf5.FORMAT_VERSION == 3 and f["grid/x"].fletcher32
    assert torch.equal(hdf5.load_model(q).out.weight, fresh.out.weight)


def test_version_2_files_stay_readable(tmp_path):
    # written by odenet's format version 2 (checksums; parameters named by their state-dict keys)
    with h5py.File(V2_FILE, "r") as f:
        assert f.attrs["format_version"] == 2 and f["model/field.weight"].fletcher32
        assert "field_weight" not in f["model"]
    net = hdf5.load_model(V2_FILE)
    fresh = ResNet(2, 2, 1, 3, seed=0, batchnorm=True, input_map="affine")
    assert net.state_dict().keys() == fresh.state_dict().keys()
    for k, v in fresh.state_dict().items():
        assert torch.equal(net.state_dict()[k], v), k
    x = torch.randn(4, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(hdf5.load(V2_FILE, "solution").y[0], fresh.embed(fresh.embed(x)), rtol=0, atol=1e-14)
    found = check(V2_FILE)
    assert found.ok and found.unchecked == []
    q = tmp_path / "v2.h5"  # an append raises the version; the old model group is still read
    q.write_bytes(V2_FILE.read_bytes())
    hdf5.append(q, fresh, "model3")
    with h5py.File(q, "r") as f:
        assert f.attrs["format_version"] == 3 and "field_weight" in f["model3"] and "field.weight" in f["model"]
    for g in ("model", "model3"):
        assert torch.equal(hdf5.load_model(q, g).field.weight, fresh.field.weight)


# --- crafted configs, devices ---------------------------------------------------------------------
def test_crafted_config_is_refused_before_building_the_model(tmp_path, monkeypatch):
    import json

    p = hdf5.save(tmp_path / "m.h5", ResNet(2, 2, 1, 3, seed=0, batchnorm=True))
    with h5py.File(p, "r+") as f:
        cfg = json.loads(f["model"].attrs["config"])
        f["model"].attrs["config"] = json.dumps(dict(cfg, depth=10**9))

    def never(*a, **k):
        raise AssertionError("the model was built before the config was checked")

    monkeypatch.setattr(models.ResNet, "from_config", never)
    t0 = time.perf_counter()
    with pytest.raises(ValueError, match="depth=1000000000") as e:
        hdf5.load_model(p)
    assert time.perf_counter() - t0 < 5  # no loop over 10**9 BatchNorm layers either
    assert str(p) in str(e.value) and "'field.weight'" in str(e.value) and "(3, 2, 2)" in str(e.value)
    with h5py.File(p, "r+") as f:
        f["model"].attrs["config"] = json.dumps(dict(cfg, width=True))
    with pytest.raises(ValueError, match="width=True is not a positive integer"):
        hdf5.load_model(p)


def test_declared_size_beyond_memory_is_refused_before_reading(tmp_path):
    p = tmp_path / "huge.h5"
    hdf5.save(p, _grid(0), "base")
    with h5py.File(p, "r+") as f:  # declares 8 EiB, stores nothing
        f["base"].create_dataset("points_huge", shape=(2**60,), dtype="f8", chunks=(1024,))
    with h5py.File(p, "r") as f:
        with pytest.raises(ValueError, match="more than the .* GiB of memory available") as e:
            schema.read_verified(f["base/points_huge"])
    assert str(p) in str(e.value) and "'/base/points_huge'" in str(e.value)


def test_unknown_or_absent_device_is_named(tmp_path):
    p = hdf5.save(tmp_path / "m.h5", ResNet(2, 2, 1, 3, seed=0))
    with pytest.raises(ValueError, match="device must be a torch device") as e:
        hdf5.load(p, device="tpu:9")
    assert "'tpu:9'" in str(e.value) and "damaged" not in str(e.value)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="device 'cuda:9' is not available"):
            hdf5.load_model(p, device="cuda:9")
    assert hdf5.load_model(p, device="cpu").out.weight.device.type == "cpu"


def test_h5py_errors_while_writing_name_the_file(tmp_path, monkeypatch):
    # h5py's OSErrors (a full disk, a quota) name no file: the writers add the target's path
    p = hdf5.save(tmp_path / "a.h5", _grid(0), "base")
    before = p.read_bytes()

    def full_disk(*a, **k):
        raise OSError("Can't write data (no space left on device)")

    monkeypatch.setattr(schema, "write_dataset", full_disk)
    for call in (lambda: hdf5.append(p, _grid(1), "more"), lambda: hdf5.save(p, _grid(1), "x", overwrite=True),
                 lambda: hdf5.save(tmp_path / "new.h5", _grid(1))):
        with pytest.raises(OSError, match="no space left") as e:
            call()
        assert str(tmp_path) in str(e.value)
    assert p.read_bytes() == before and not (tmp_path / "new.h5").exists()


# --- odenet inspect ---------------------------------------------------------------------------------
def test_inspect_exits_1_naming_the_damaged_dataset(tmp_path, capsys):
    p = hdf5.save(tmp_path / "m.h5", ResNet(2, 2, 1, 3, seed=0))
    assert main(["inspect", str(p)]) == 0
    _flip_bit(p, _chunk_offset(p, "model/out_weight") + 2)
    capsys.readouterr()
    assert main(["inspect", str(p)]) == 1
    out, err = capsys.readouterr()
    assert "/model  ResNet" in out  # the tree is still printed
    assert "/model/out_weight" in err and "checksum" in err and str(p) in err


def test_inspect_does_not_crash_on_a_missing_dimension_scale(tmp_path, capsys):
    # the dimension list refers to a deleted object: its name is None (was AttributeError: rsplit)
    p = hdf5.save(tmp_path / "s.h5", _grid(0), "grid")
    with h5py.File(p, "r+") as f:
        del f["grid/sample"]
    assert main(["inspect", str(p)]) == 0
    assert "points  float64  (3, 1)         (?, input)" in capsys.readouterr().out


def _plant(folder: Path, name: str) -> list[Path]:
    """The temporaries of an interrupted write of ``name``, and decoys that must never match."""
    real = [folder / f".{name}.abcd_123.tmp", folder / f".{name}.zzzzzzzz.tmp"]
    for t in real:
        t.write_bytes(b"partial")
    (folder / f".{name}.tmp").write_text("fixed name: not ours")
    (folder / f".{name}.abcd1234.tmp.keep").write_text("other suffix")
    (folder / ".other.h5.abcd1234.tmp").write_text("another file's")
    (folder / f".{name}.dddddddd.tmp").mkdir()  # a folder of that name
    outside = folder / "precious.txt"
    outside.write_text("keep me")
    (folder / f".{name}.llllllll.tmp").symlink_to(outside)  # a link of that name
    return real


def test_inspect_reports_and_cleans_only_the_file_s_temporaries(tmp_path, capsys):
    p = hdf5.save(tmp_path / "f.h5", _grid(0), "grid")
    hdf5.append(p, _grid(1), "more")  # leaves f.h5.lock, which is not stale
    real = _plant(tmp_path, "f.h5")
    before = sorted(os.listdir(tmp_path))
    assert main(["inspect", str(p)]) == 0
    out = capsys.readouterr().out
    assert "2 stale temporary file(s)" in out and all(str(t) in out for t in real)
    assert sorted(os.listdir(tmp_path)) == before  # reported, not removed
    assert main(["inspect", str(p), "--clean"]) == 0
    assert "removed 2 stale temporary file(s)" in capsys.readouterr().out
    assert sorted(os.listdir(tmp_path)) == sorted(set(before) - {t.name for t in real})
    assert (tmp_path / "precious.txt").read_text() == "keep me" and (tmp_path / "f.h5.lock").exists()


def test_inspect_clean_never_removes_the_temporary_of_a_running_writer(tmp_path, capsys):
    p = hdf5.save(tmp_path / "f.h5", _grid(0), "grid")
    tmp = Path(atomic.temp_beside(p))
    held, release = threading.Event(), threading.Event()

    def writer():
        with atomic.exclusive_lock(p):
            held.set()
            release.wait(30)

    t = threading.Thread(target=writer)
    t.start()
    held.wait(30)
    try:
        assert main(["inspect", str(p), "--clean"]) == 1
        out, err = capsys.readouterr()
        assert "in use by a writer" in out and "nothing removed" in err and tmp.exists()
    finally:
        release.set()
        t.join(30)
    assert main(["inspect", str(p), "--clean"]) == 0 and not tmp.exists()


@pytest.mark.slow  # a fresh interpreter imports torch: seconds on a loaded machine
def test_closed_pipe_ends_quietly(tmp_path):
    p = hdf5.save(tmp_path / "f.h5", ResNet(2, 2, 1, 3, seed=0))
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-m", "odenet.cli", "inspect", str(p)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # the reader is gone before the command prints anything (imports take longer)
    err = proc.stderr.read().decode()
    assert proc.wait(120) == 141
    assert "Traceback" not in err and "BrokenPipe" not in err and "Exception ignored" not in err, err
