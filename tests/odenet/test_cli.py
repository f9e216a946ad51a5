"""The `odenet demo` and `odenet tunnel` commands: the demo's printed convergence ratios, and bad
options refused (status 2, the option named) before any work."""
import pytest

import odenet
from odenet.cli import main


def test_demo_prints_first_order_ratios(capsys):
    assert main(["demo", "--depth", "4", "--T", "1"]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines() if line.split()[:1] == ["32"]]
    # Euler refinement of the associated ODE converges at first order: the error ratio of the
    # last doubling (m = 16 -> 32) is 2 to within the O(h) correction.
    assert len(rows) == 1 and abs(float(rows[0][2]) - 2.0) < 0.1


@pytest.mark.parametrize("argv, flag", [(["--depth", "0"], "--depth"), (["--T", "-1"], "--T"),
                                        (["--T", "nan"], "--T"), (["--width", "0"], "--width")])
def test_demo_refuses_bad_options(argv, flag, capsys):
    assert main(["demo"] + argv) == 2
    err = capsys.readouterr().err
    assert "odenet demo: error" in err and flag in err


@pytest.mark.parametrize("argv, name", [(["--epochs", "0"], "epochs"), (["--resolution", "2"], "resolution")])
def test_tunnel_refuses_bad_options_before_training(argv, name, capsys, monkeypatch):
    if name == "resolution":
        def no_training(*a, **k):
            raise AssertionError("trained before refusing --resolution")
        monkeypatch.setattr(odenet, "train", no_training)
    assert main(["tunnel", "--quiet"] + argv) == 2
    assert name in capsys.readouterr().err


def test_reproduce_passes_its_options_through(capsys, tmp_path):
    # `odenet reproduce --quick ...` (README) reached argparse's REMAINDER, which refused options
    with pytest.raises(SystemExit) as exit_:
        main(["reproduce", "--help"])
    assert exit_.value.code == 0 and "--quick" in capsys.readouterr().out
    assert main(["reproduce", "--quick", "--only", "nope", "--out", str(tmp_path / "r")]) == 2
    assert "only must name experiments" in capsys.readouterr().err


def test_reproduce_lists_and_refuses_literature_studies(capsys, tmp_path):
    from analysis.experiments.literature import STUDIES

    assert main(["reproduce", "--list"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in STUDIES) and all(s.source in out for s in STUDIES.values())
    assert main(["reproduce", "--study", "nosuchstudy", "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "nosuchstudy" in err and not (tmp_path / "r").exists()
    assert main(["reproduce", "--study", "all", "--seed", "-1", "--out", str(tmp_path / "r")]) == 2
    assert "--seed must be a non-negative integer" in capsys.readouterr().err
