"""`odenet converge` end to end, and the continuum-limit figures (analysis.plots.continuum)."""
import numpy as np
import pytest
import torch

import analysis.io as H
from odenet.cli.converge import parse_depths
from analysis.continuum.convergence import refinement_study, work_precision
from analysis.continuum.depth_regularity import DepthSeries, regularity_exponents
from analysis.continuum.depth_weights import iid_weights
from analysis.continuum.init_scaling import init_scaling_study
from analysis.plots import continuum as plots
from odenet import ResNet
from odenet.cli import main


def test_converge_writes_orders_and_a_figure(tmp_path, capsys):
    out, png = tmp_path / "c.h5", tmp_path / "c.png"
    rc = main(["converge", "--methods", "euler,rk4,dopri5", "--depths", "8:128", "--tolerances", "1e-4,1e-6,1e-8",
               "--out", str(out), "--plot", str(png)])
    assert rc == 0
    text = capsys.readouterr().out
    assert "observed order (sup)" in text and "work-precision" in text
    assert set(H.list_records(out)) == {"euler", "rk4", "work_precision"}
    euler, rk4 = H.load(out, "euler"), H.load(out, "rk4")
    assert list(euler.levels) == [8, 16, 32, 64, 128]
    assert abs(euler.fit_sup.order - 1) < 0.1 and abs(rk4.fit_sup.order - 4) < 0.1
    wp = H.load(out, "work_precision")
    assert "dopri5" in wp.method
    assert png.stat().st_size > 10_000


def test_converge_on_a_saved_model_and_richardson(tmp_path):
    model = tmp_path / "m.h5"
    H.save_model(model, ResNet.neural_ode(2, 2, 1, depth=4, T=1.0, seed=0))
    out = tmp_path / "r.h5"
    rc = main(["converge", "--field", str(model), "--methods", "heun", "--depths", "4:256", "--reference", "none",
               "--out", str(out), "--quiet"])
    assert rc == 0
    study = H.load(out, "heun")
    assert study.reference == "none" and abs(study.fit_sup.order - 2) < 0.15


@pytest.mark.parametrize("argv, message", [
    (["--depths", "8:4"], "--depths must be"),
    (["--depths", "8,4,16"], "strictly increasing"),
    (["--depths", "4,8"], "at least 3 refinement levels"),
    (["--methods", "leapfrog"], "--methods must name"),
    (["--field", "smooth", "--depths", "2,4,6"], "multiples of the field's 4 pieces"),
    (["--reference", "exactish"], "--reference must be"),
    (["--batch", "0"], "--batch must be >= 1"),
    (["--T", "-1"], "--T must be finite and > 0"),
    (["--field", "smooth", "--width", "0"], "--width and --knots must be >= 1"),
    (["--field", "/nonexistent-dir/model.h5"], "--field must be linear, smooth or a readable model file"),
])
def test_converge_bad_input(argv, message, capsys, tmp_path):
    out = tmp_path / "x.h5"
    assert main(["converge", "--quiet", "--out", str(out)] + argv) == 2
    assert message in capsys.readouterr().err and not out.exists()


def test_converge_refuses_to_overwrite(tmp_path, capsys):
    out = tmp_path / "c.h5"
    out.write_bytes(b"")
    assert main(["converge", "--out", str(out), "--quiet"]) == 2
    assert "--overwrite" in capsys.readouterr().err


def test_parse_depths():
    assert parse_depths("4:1024") == [4, 8, 16, 32, 64, 128, 256, 512, 1024]
    assert parse_depths("3:20") == [3, 6, 12]
    assert parse_depths("5,10,40") == [5, 10, 40]


# --- figures ------------------------------------------------------------------------------------
def _slope_of(line):
    x, y = np.asarray(line.get_xdata(), float), np.asarray(line.get_ydata(), float)
    return np.log(y[-1] / y[0]) / np.log(x[-1] / x[0])


def test_convergence_figure_has_reference_slopes():
    A = torch.tensor([[0.0, 1.0], [-1.0, 0.0]], dtype=torch.float64)
    x0 = torch.ones(3, 2, dtype=torch.float64)
    studies = [refinement_study(lambda t, x: x @ A.T, x0, (0, 1.0), method=m, steps=(8, 16, 32, 64))
               for m in ("euler", "rk4")]
    fig = plots.plot_convergence(studies)
    ax = fig.axes[0]
    assert ax.get_xscale() == ax.get_yscale() == "log"
    dashed = [l for l in ax.get_lines() if l.get_linestyle() not in ("-", "None")]
    assert sorted(round(_slope_of(l), 6) for l in dashed) == [1.0, 4.0]
    assert "p = 1.0" in ax.get_legend().get_texts()[0].get_text()
    wp = work_precision(lambda t, x: x @ A.T, x0, (0, 1.0), steps=(8, 16, 32), adaptive_methods=())
    assert len(plots.plot_work_precision(wp).axes[0].get_lines()) == 4


def test_reference_slope_is_the_methods_order_not_the_rounded_fit():
    # rk4's fitted order can exceed 4.5 on a short range (it drew a "slope 5"): the reference line
    # follows the method's order, 4; a method of unknown order keeps its rounded fitted order
    import dataclasses

    A = torch.tensor([[0.0, 1.0], [-1.0, 0.0]], dtype=torch.float64)
    x0 = torch.ones(3, 2, dtype=torch.float64)
    rk4 = refinement_study(lambda t, x: x @ A.T, x0, (0, 1.0), method="rk4", steps=(8, 16, 32, 64))
    steep = dataclasses.replace(rk4, fit_sup=dataclasses.replace(rk4.fit_sup, order=4.6))
    ax = plots.plot_convergence([steep]).axes[0]
    dashed = [l for l in ax.get_lines() if l.get_linestyle() not in ("-", "None")]
    assert [round(_slope_of(l), 6) for l in dashed] == [4.0]
    assert [t.get_text() for t in ax.texts] == ["slope 4"]
    assert plots.method_order("heun") == plots.method_order("midpoint") == 2 and plots.method_order("euler") == 1
    assert plots.method_order("dopri5", steep.fit_sup) == 5 and plots.method_order("dopri5") is None


def test_depth_figures():
    s = DepthSeries("swap", np.array([8, 16, 32]), np.array([1.0, 0.5, 0.25]), np.array([1.0, 0.5, 0.25]),
                    None, None)
    ax = plots.plot_depth_series([s], slopes=(-1.0,)).axes[0]
    assert any(abs(_slope_of(l) + 1) < 1e-9 for l in ax.get_lines()[1:])
    e = regularity_exponents([iid_weights(L, 2, seed=L)[0] for L in (4, 8, 16)])
    assert len(plots.plot_regularity(e).axes[0].get_lines()) == 3 + 3
    st = init_scaling_study((2, 4, 8), width=3, n_samples=1, n_inputs=4)
    assert len(plots.plot_init_scaling(st).axes[0].get_lines()) == 4 + 3


def test_converge_reports_levels_below_the_reference_accuracy(capsys):
    assert main(["converge", "--field", "smooth", "--methods", "rk4", "--depths", "64:1024", "--batch", "8"]) == 0
    captured = capsys.readouterr()
    assert "warning (rk4): levels [512, 1024]" in captured.err
    assert captured.out.count("(unresolved)") == 2


def test_the_converge_figure_has_a_panel_per_kind_of_record():
    A = torch.tensor([[0.0, 1.0], [-1.0, 0.0]], dtype=torch.float64)
    x0 = torch.ones(3, 2, dtype=torch.float64)
    euler = refinement_study(lambda t, x: x @ A.T, x0, (0, 1.0), method="euler", steps=(8, 16, 32))
    wp = work_precision(lambda t, x: x @ A.T, x0, (0, 1.0), steps=(8, 16, 32), adaptive_methods=())
    left, right = plots.plot_convergence_summary([euler], wp).axes
    dashed = [l for l in left.get_lines() if l.get_linestyle() not in ("-", "None")]
    assert [round(_slope_of(l), 6) for l in dashed] == [1.0]  # the refinement study, with Euler's slope
    assert len(right.get_lines()) == len(plots.plot_work_precision(wp).axes[0].get_lines())
    assert len(plots.plot_convergence_summary([], wp).axes) == len(plots.plot_convergence_summary([euler]).axes) == 1
    with pytest.raises(ValueError, match="got neither"):
        plots.plot_convergence_summary([])
