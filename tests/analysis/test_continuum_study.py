"""The study of docs/continuum-limit.md end to end (slow: about a minute on two shared cores)."""
import importlib.util
from pathlib import Path

import pytest

import analysis.io as H

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "continuum_limit_study.py"


@pytest.mark.slow
def test_documented_study(tmp_path):
    spec = importlib.util.spec_from_file_location("continuum_limit_study", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out, fig = tmp_path / "c.h5", tmp_path / "c.png"
    with pytest.warns(UserWarning, match=r"levels \[512\]"):
        assert module.main(["--out", str(out), "--figure", str(fig)]) == 0
    get = lambda g: H.load(out, g)  # noqa: E731
    assert abs(get("depth_study").fit_sup.order - 1) < 0.05
    assert abs(get("rk4_refinement").fit_sup.order - 4) < 0.1
    assert get("swap_smooth").fit_rms.order < -0.8 and abs(get("swap_iid").fit_rms.order) < 0.2
    assert abs(get("regularity_smooth").beta - 1) < 0.1 and abs(get("regularity_iid").beta) < 0.1
    assert abs(get("reverse_smooth").fit_rms.order + 1) < 0.1
    init = get("init_scaling")
    for (w, s), p in {("smooth", "1/L"): 0, ("iid", "1/sqrt(L)"): 0, ("iid", "1/L"): -0.5,
                      ("smooth", "1/sqrt(L)"): 0.5}.items():
        assert abs(init.exponent(w, s) - p) < 0.1
    assert fig.stat().st_size > 10_000
