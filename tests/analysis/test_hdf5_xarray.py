"""Other readers: xarray/h5netcdf see named dimensions and coordinates; storage is gzip+shuffle
chunked along step; the XDMF sidecar describes each trajectory as a polyline; h5dump reads it."""
import shutil
import subprocess
import xml.etree.ElementTree as ET

import h5py
import numpy as np
import pytest
import torch
import xarray as xr

from analysis import hdf5
from analysis.io import schema
from analysis.io.xdmf import write_xdmf
from odenet import ResNet


@pytest.fixture
def net():
    return ResNet.neural_ode(2, 2, 1, depth=7, T=3.0, seed=4)


def _x(n):
    return torch.randn(n, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(1))


def test_xarray_opens_solution_with_names_and_exact_times(tmp_path, net):
    sol = net.solve(_x(5))
    p = hdf5.save(tmp_path / "s.h5", sol)
    with xr.open_dataset(p, engine="h5netcdf", group="solution") as ds:
        assert ds["y"].dims == ("step", "sample", "state")
        assert not any(d.startswith("phony_dim") for d in ds.dims)
        assert dict(ds.sizes) == {"step": 8, "sample": 5, "state": 2, "interval": 7}
        # t is attached to y as a coordinate, with t_k = k T / L exactly (computed here independently)
        assert "t" in ds["y"].coords
        assert [float(v) for v in ds["t"].values] == [k * 3.0 / 7 if k < 7 else 3.0 for k in range(8)]
        assert ds["step"].values.tolist() == list(range(8))
        np.testing.assert_array_equal(ds["y"].values, sol.y.detach().numpy())
        assert ds["step_piece"].dims == ("interval",) and ds["step_piece"].values.tolist() == list(range(7))
        assert ds.attrs["method"] == "euler" and ds.attrs["nfev"] == 7 and ds.attrs["format"] == "odenet-hdf5"


def test_xarray_opens_model(tmp_path, net):
    p = hdf5.save(tmp_path / "m.h5", net)
    with xr.open_dataset(p, engine="h5netcdf", group="model") as ds:
        assert ds["field_weight"].dims == ("layer", "row", "col") and ds["out_weight"].dims == ("output", "col")
        assert not any(d.startswith("phony_dim") for d in ds.dims)
        np.testing.assert_array_equal(ds["field_weight"].values, net.field.weight.detach().numpy())
        assert ds["layer"].values.tolist() == list(range(7))


def test_xarray_opens_grid_coordinates_and_bool_arrays(tmp_path):
    g = hdf5.parse_grid("-1:1:3,0:2:5")
    p = hdf5.save(tmp_path / "g.h5", g)
    with xr.open_dataset(p, engine="h5netcdf", group="grid") as ds:
        assert ds["x"].values.tolist() == [-1.0, 0.0, 1.0] and ds["y"].values.tolist() == [0.0, 0.5, 1.0, 1.5, 2.0]
        assert ds["points"].dims == ("sample", "input")
    from hdf5_helpers import Tagged

    p2 = hdf5.save(tmp_path / "b.h5", Tagged({"mask": torch.tensor([True, False, True])}), "tagged")
    with xr.open_dataset(p2, engine="h5netcdf", group="tagged/extras") as ds:
        assert ds["mask"].dtype == bool and ds["mask"].values.tolist() == [True, False, True]


def test_gzip_shuffle_chunks_along_step_no_lzf(tmp_path):
    net = ResNet.neural_ode(2, 2, 1, depth=40, T=1.0, seed=0)
    x = torch.randn(5000, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        p = hdf5.save(tmp_path / "big.h5", {"sol": net.solve(x), "model": net}, gzip=4)
    with h5py.File(p, "r") as f:
        filters = []
        f.visititems(lambda name, o: filters.append(o.compression) if isinstance(o, h5py.Dataset) else None)
        assert "lzf" not in filters and "gzip" in filters
        y = f["sol/y"]
        assert y.compression == "gzip" and y.compression_opts == 4 and y.shuffle
        # whole (sample, state) rows, several steps per chunk, at most ~1 MiB
        assert y.chunks[1:] == (5000, 2) and 1 < y.chunks[0] < 41
        assert np.prod(y.chunks) * 8 <= schema.CHUNK_BYTES
        assert y.id.get_storage_size() < y.nbytes  # gzip did compress
        t = f["sol/t"]  # 328 bytes: one chunk, checksummed, never compressed
        assert t.compression is None and t.chunks == (41,) and t.fletcher32
        assert t.nbytes < schema.COMPRESS_BYTES <= y.nbytes


def _polylines_from_xdmf(xmf_path):
    """(name, geometry type, connectivity (S, n+1), points (N, k)) of each Uniform grid, parsed
    here from the XML (independently of the writer)."""
    root = ET.parse(xmf_path).getroot()
    grids = root.findall(".//Grid[@GridType='Uniform']")
    out = []
    for g in grids:
        topo = g.find("Topology")
        conn = np.array(topo.find("DataItem").text.split(), dtype=np.int64)
        conn = conn.reshape(int(topo.get("NumberOfElements")), int(topo.get("NodesPerElement")))
        item = g.find("Geometry/DataItem")
        assert item.get("Format") == "XML"
        points = np.array(item.text.split(), dtype=np.float64).reshape(tuple(map(int, item.get("Dimensions").split())))
        out.append((g.get("Name"), g.find("Geometry").get("GeometryType"), conn, points))
    return out


def test_xdmf_sidecar_describes_each_trajectory_as_a_polyline(tmp_path, net):
    with torch.no_grad():
        sol = net.solve(_x(4))
    p = hdf5.save(tmp_path / "t.h5", {"run": sol, "model": net})
    xmf = write_xdmf(p, "run")
    assert xmf == tmp_path / "t.xmf"
    (name, gtype, conn, points), = _polylines_from_xdmf(xmf)
    assert name == "run.y" and gtype == "XY" and points.shape == (8 * 4, 2) and conn.shape == (4, 8)
    for s in range(4):  # polyline s follows sample s through every step, bit for bit (17 digits)
        np.testing.assert_array_equal(points[conn[s]], sol.y[:, s, :].numpy())
    step_attr = ET.parse(xmf).getroot().find(".//Attribute[@Name='step']/DataItem")
    node_step = np.array(step_attr.text.split(), dtype=np.int64)
    assert node_step.shape == (8 * 4,) and (node_step[conn] == np.arange(8)[None, :]).all()
    with pytest.raises(FileExistsError):
        write_xdmf(p, "run")
    with pytest.raises(ValueError, match="no dataset"):
        write_xdmf(p, "model", tmp_path / "m.xmf")


def test_xdmf_takes_three_components_of_wider_states(tmp_path):
    net = ResNet(4, 4, 1, 3, seed=0)
    sol = net.solve(torch.randn(2, 4, dtype=torch.float64))
    p = hdf5.save(tmp_path / "w.h5", sol)
    (_, gtype, conn, points), = _polylines_from_xdmf(write_xdmf(p))
    assert gtype == "XYZ" and points.shape == (4 * 2, 3)
    for s in range(2):
        np.testing.assert_array_equal(points[conn[s]], sol.y[:, s, :3].detach().numpy())


def test_xdmf_with_several_trajectories_is_a_collection_of_grids(tmp_path, net):
    with torch.no_grad():
        a, b = net.solve(_x(3)), net.solve(_x(5))
    xmf = write_xdmf(hdf5.save(tmp_path / "two.h5", {"a": a, "b": b}))
    root = ET.parse(xmf).getroot()
    assert root.find("Domain/Grid").get("GridType") == "Collection"
    assert [(n, pts.shape) for n, _, _, pts in _polylines_from_xdmf(xmf)] == [("a.y", (8 * 3, 2)), ("b.y", (8 * 5, 2))]


def _trajectories(tmp_path, d):
    net = ResNet(d, d, 1, 6, seed=3)
    with torch.no_grad():
        sol = net.solve(torch.randn(11, d, dtype=torch.float64, generator=torch.Generator().manual_seed(d)))
    p = hdf5.save(tmp_path / f"t{d}.h5", sol)
    return sol.y.numpy(), write_xdmf(p)


@pytest.mark.parametrize("d", [2, 3, 4])
def test_meshio_reads_the_xdmf_sidecar(tmp_path, d):
    meshio = pytest.importorskip("meshio", reason="meshio is not installed: the XDMF sidecar is not checked with it")
    y, xmf = _trajectories(tmp_path, d)
    mesh = meshio.read(xmf)
    n1, S, _ = y.shape
    assert mesh.points.shape == (n1 * S, min(d, 3))  # every node (the old sidecar gave n1 points)
    np.testing.assert_array_equal(mesh.points, y[:, :, :3].reshape(n1 * S, -1))
    (block,) = mesh.cells
    assert block.data.shape == (S, n1)
    for s in range(S):
        np.testing.assert_array_equal(mesh.points[block.data[s]], y[:, s, :3])
    assert np.array_equal(mesh.point_data["step"], np.repeat(np.arange(n1), S))
    assert np.array_equal(mesh.cell_data["sample"][0], np.arange(S))


@pytest.mark.parametrize("d", [2, 3, 4])
def test_vtk_reads_the_xdmf_sidecar(tmp_path, d):
    pytest.importorskip("vtkmodules", reason="vtk is not installed: the XDMF sidecar is not checked with it")
    try:
        from vtkmodules.vtkIOXdmf3 import vtkXdmf3Reader as Reader  # ParaView's reader
    except ImportError:
        from vtkmodules.vtkIOXdmf2 import vtkXdmfReader as Reader  # the one in vtk's wheels
    from vtkmodules.util.numpy_support import vtk_to_numpy
    from vtkmodules.vtkCommonDataModel import VTK_POLY_LINE

    y, xmf = _trajectories(tmp_path, d)
    n1, S, _ = y.shape
    reader = Reader()
    reader.SetFileName(str(xmf))
    reader.Update()
    grid = reader.GetOutputDataObject(0)
    assert grid.GetNumberOfPoints() == n1 * S and grid.GetNumberOfCells() == S
    pts = vtk_to_numpy(grid.GetPoints().GetData())
    expected = np.zeros((n1 * S, 3))  # VTK's points are 3-D: XY gets z = 0
    expected[:, : min(d, 3)] = y[:, :, :3].reshape(n1 * S, -1)
    np.testing.assert_array_equal(pts, expected)
    for s in range(S):
        cell = grid.GetCell(s)
        assert cell.GetCellType() == VTK_POLY_LINE
        ids = [cell.GetPointId(i) for i in range(cell.GetNumberOfPoints())]
        np.testing.assert_array_equal(pts[ids, : min(d, 3)], y[:, s, :3])
    assert np.array_equal(vtk_to_numpy(grid.GetPointData().GetArray("step")), np.repeat(np.arange(n1), S))


def test_h5dump_reads_the_file(tmp_path, net, capsys):
    with torch.no_grad():
        p = hdf5.save(tmp_path / "t.h5", {"run": net.solve(_x(3)), "model": net})
    h5dump = shutil.which("h5dump")
    if h5dump is None:  # installs nothing: the check runs where hdf5-tools is present
        with capsys.disabled():
            print("\n[test_h5dump_reads_the_file] h5dump not found (Debian package hdf5-tools); "
                  "external-reader check not run here")
        return
    out = subprocess.run([h5dump, "-H", str(p)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert 'DATASET "y"' in out.stdout and 'DATASET "field_weight"' in out.stdout and "DIMENSION_LIST" in out.stdout
    assert 'ATTRIBUTE "format"' in out.stdout


def test_ncdump_reads_named_dimensions(tmp_path, net, capsys):
    # netCDF-C itself (not only h5netcdf) must see the groups, dimension names and strings
    from analysis.geometry.critical import find_critical_points

    cps = find_critical_points(lambda x: torch.sin(x[..., 0]) * torch.cos(x[..., 1]), [[-2.0, 2.0], [-2.0, 2.0]],
                               resolution=11)
    with torch.no_grad():
        p = hdf5.save(tmp_path / "n.h5", {"run": net.solve(_x(3)), "model": net, "cps": cps})
    ncdump = shutil.which("ncdump")
    if ncdump is None:  # installs nothing: the check runs where netcdf-bin is present
        with capsys.disabled():
            print("\n[test_ncdump_reads_named_dimensions] ncdump not found (Debian package netcdf-bin); "
                  "netCDF-C check not run here")
        return
    out = subprocess.run([ncdump, str(p)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "group: run {" in out.stdout and "double y(step, sample, state) ;" in out.stdout
    assert "double field_weight(layer, row, col) ;" in out.stdout
    assert "string kinds(point) ;" in out.stdout and "phony_dim" not in out.stdout


def test_gzip_level_and_no_compression(tmp_path):
    net = ResNet.neural_ode(2, 2, 1, depth=10, T=1.0, seed=0)
    with torch.no_grad():
        sol = net.solve(torch.randn(500, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0)))
    p = hdf5.save(tmp_path / "raw.h5", sol, gzip=None)
    q = hdf5.save(tmp_path / "g9.h5", sol, gzip=9)
    with h5py.File(p, "r") as f, h5py.File(q, "r") as g:
        assert f["solution/y"].compression is None and f["solution/y"].chunks[1:] == (500, 2)
        assert g["solution/y"].compression == "gzip" and g["solution/y"].compression_opts == 9
    assert torch.equal(hdf5.load(p).y, sol.y) and torch.equal(hdf5.load(q).y, sol.y)
    for bad in (10, -1, 2.0, True):
        with pytest.raises(ValueError, match="gzip"):
            hdf5.save(tmp_path / "bad.h5", sol, gzip=bad)
    assert not (tmp_path / "bad.h5").exists()
    hdf5.append(p, sol, "again", gzip=1)
    with h5py.File(p, "r") as f:
        assert f["again/y"].compression_opts == 1 and f["solution/y"].compression is None
