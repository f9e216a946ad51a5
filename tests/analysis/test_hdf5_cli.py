"""`odenet inspect` prints the tree with shapes, dims, checksums and key attributes; bad files give exit 2."""
import torch

from analysis import hdf5
from odenet import ResNet
from odenet.cli import main


def test_inspect_prints_tree_shapes_dims_and_attributes(tmp_path, capsys):
    net = ResNet(2, 2, 1, 3, seed=5, batchnorm=True, input_map="affine")
    with torch.no_grad():
        sol = net.eval().solve(net.embed(torch.zeros(4, 2, dtype=torch.float64)))
    big = net.eval().solve(net.embed(torch.zeros(5000, 2, dtype=torch.float64)))  # 160 KB: compressed
    p = hdf5.save(tmp_path / "f.h5", {"model": net, "runs/0": sol, "runs/1": big}, gzip=4)
    assert main(["inspect", str(p)]) == 0
    out = capsys.readouterr().out
    assert "format=odenet-hdf5, format_version=3" in out
    assert "/model  ResNet" in out and "/runs  group" in out and "0/  Solution" in out
    assert "y           float64  (4, 4, 2)      (step, sample, state)  fletcher32\n" in out
    assert "field_weight" in out and "(layer, row, col)" in out
    assert "dims: step=4, sample=4, state=2, interval=3" in out
    assert "seed=5" in out and '"batchnorm": true' in out and "method=euler" in out
    assert "(step, sample, state)  gzip(4)+shuffle fletcher32 chunks=(4, 5000, 2)" in out
    assert "num_batches_tracked  int64    ()             ()  sha256" in out


def test_inspect_errors(tmp_path, capsys):
    bad = tmp_path / "bad.h5"
    bad.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\x00" * 20)  # an HDF5 signature, then nothing
    assert main(["inspect", str(bad)]) == 2
    assert "bad.h5" in capsys.readouterr().err
    assert main(["inspect", str(tmp_path / "missing.h5")]) == 2
    assert "no such file" in capsys.readouterr().err
