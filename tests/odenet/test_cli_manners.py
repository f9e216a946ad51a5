"""The command line's manners: --version, help text on every command and option, `inspect --json`
(complete, machine-readable) and `--full` (nothing cut), errors that name the flag to change."""
import argparse
import json
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

import odenet
from analysis import hdf5
from odenet import ResNet
from odenet.cli import build_parser, main

ROOT = Path(__file__).resolve().parents[2]


def test_version_is_the_packages(capsys):
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out == f"odenet {declared}\n" == f"odenet {odenet.__version__}\n"


def _subcommands(parser):
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    helps = {a.dest: a.help for a in sub._choices_actions}
    return sub.choices, helps


def test_every_command_and_option_has_help_text():
    parser = build_parser()
    commands, helps = _subcommands(parser)
    assert {"demo", "inspect", "trace", "converge", "tunnel", "reproduce", "sweep"} <= set(commands)
    missing = [f"command {name}" for name in commands if not (helps.get(name) or "").strip()]
    missing += [f"{name}: description" for name, p in commands.items() if not (p.description or "").strip()]
    for name, p in [("odenet", parser)] + list(commands.items()):
        for action in p._actions:
            if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
                continue
            if not action.help or action.help == argparse.SUPPRESS or not action.help.strip():
                missing.append(f"{name}: {'/'.join(action.option_strings) or action.dest}")
    assert missing == []


def test_the_help_walk_finds_a_missing_help():
    p = argparse.ArgumentParser()
    p.add_argument("--x")
    assert [a.dest for a in p._actions if not isinstance(a, argparse._HelpAction) and not a.help] == ["x"]


@pytest.fixture
def two_records(tmp_path):
    net = ResNet(2, 3, 1, 4, seed=5, batchnorm=True, input_map="affine")
    with torch.no_grad():
        sol = net.eval().solve(torch.randn(6, 2, dtype=torch.float64))
    config = {"note": "a configuration long enough to be cut in the text summary " * 3, "depth": 4}
    p = hdf5.save(tmp_path / "f.h5", {"model": net, "runs/0": sol}, config=config)
    return p, net, config


def test_inspect_json_is_the_whole_tree(two_records, capsys):
    p, net, config = two_records
    assert main(["inspect", str(p), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    groups, datasets = [], {}

    def visit(name, obj):  # the tree, walked here with h5py
        if isinstance(obj, h5py.Group):
            groups.append("/" + name)
        else:
            datasets["/" + name] = obj

    with h5py.File(p, "r") as f:
        f.visititems(visit)
        assert sorted(doc["groups"]) == sorted(groups) and sorted(doc["datasets"]) == sorted(datasets)
        for name, ds in datasets.items():
            d = doc["datasets"][name]
            assert tuple(d["shape"]) == ds.shape and d["dtype"] == str(ds.dtype), name
            assert d["attrs"]["units"] == "1" and d["attrs"]["long_name"], name
            assert d["checksum"] in ("fletcher32", "sha256")
    w = doc["datasets"]["/model/field_weight"]
    assert w["dims"] == ["layer", "row", "col"] and w["attrs"]["torch_name"] == "field.weight"
    assert doc["datasets"]["/runs/0/y"]["dims"] == ["step", "sample", "state"]
    assert doc["datasets"]["/runs/0/step"]["dims"] == ["step"] and doc["datasets"]["/runs/0/step"]["is_coordinate"]
    assert doc["groups"]["/model"]["type"] == "ResNet"
    assert doc["groups"]["/model"]["attrs"]["config"] == json.loads(json.dumps(net.config))  # in full, parsed
    assert doc["groups"]["/runs/0"]["attrs"]["config"] == config
    assert doc["attrs"]["format_version"] == hdf5.FORMAT_VERSION and doc["ok"] is True and doc["damaged"] == []


def test_inspect_full_cuts_nothing(two_records, capsys):
    p, _, config = two_records
    assert main(["inspect", str(p)]) == 0
    cut = capsys.readouterr().out
    assert "..." in cut and json.dumps(config) not in cut
    assert main(["inspect", str(p), "--full"]) == 0
    full = capsys.readouterr().out
    assert "..." not in full and json.dumps(config) in full


def test_trace_errors_name_the_flags(tmp_path, capsys):
    net = ResNet(2, 2, 1, 2, seed=0)
    two = hdf5.save(tmp_path / "two.h5", {"a": net, "b": net})
    out = tmp_path / "t.h5"
    assert main(["trace", str(two), "--grid=0:1:3,0:1:3", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "--group" in err and "group=" not in err and "'a'" in err and "'b'" in err
    assert main(["trace", str(two), "--grid=0:1:3,0:1:3", "--out", str(out), "--group", "c"]) == 2
    err = capsys.readouterr().err
    assert "--group 'c'" in err and "group=" not in err
    assert main(["trace", str(two), "--grid=0:1", "--out", str(out), "--group", "a"]) == 2
    assert "--grid" in capsys.readouterr().err
    assert main(["trace", str(two), "--grid=0:1:3", "--out", str(out), "--group", "a"]) == 2
    assert "--grid '0:1:3' has 1 axes but the model has n_in=2" in capsys.readouterr().err
    assert not out.exists()
    assert main(["trace", str(two), "--grid=0:1:3,0:1:3", "--out", str(out), "--group", "b"]) == 0
    assert np.array_equal(hdf5.load(out, "grid").x, np.linspace(0, 1, 3))


def test_inspect_json_on_a_damaged_file_names_the_dataset(tmp_path, capsys):
    p = hdf5.save(tmp_path / "m.h5", ResNet(2, 2, 1, 3, seed=0))
    with h5py.File(p, "r") as f:
        offset = f["model/out_weight"].id.get_chunk_info(0).byte_offset
    with open(p, "r+b") as fh:  # one bit of the stored values, not of any header
        fh.seek(offset + 2)
        byte = fh.read(1)[0]
        fh.seek(offset + 2)
        fh.write(bytes([byte ^ 8]))
    assert main(["inspect", str(p), "--json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["ok"] is False and any("/model/out_weight" in d and "checksum" in d for d in doc["damaged"])
    assert doc["datasets"]["/model/out_weight"]["shape"] == [1, 2]  # still described
