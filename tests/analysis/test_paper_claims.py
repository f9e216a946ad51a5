"""The claims table: Wilson intervals against scipy and the closed form, verdicts of fabricated
outcomes, and the reproduction's exit status when an 'always' claim is contradicted."""
import math

import numpy as np
import pytest
from scipy.stats import binomtest

from analysis.experiments.paper_claims import (CLAIMS, SeedOutcome, claims_markdown, contradictions, evaluate_claims,
                                   format_fraction, wilson_interval)
from analysis.experiments.paper_regimes import TWO_D
from odenet.cli.reproduce import run_paper


@pytest.mark.parametrize("k, n", [(0, 1), (1, 1), (0, 4), (2, 4), (4, 4), (0, 16), (7, 16), (16, 16), (3, 97)])
def test_wilson_interval_matches_scipy(k, n):
    ci = binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    assert wilson_interval(k, n) == pytest.approx((ci.low, ci.high), abs=1e-12)


def test_wilson_interval_closed_form_at_zero_successes():
    # k = 0: the lower end is 0 and the upper end is z²/(n + z²)
    z = 1.959963984540054
    for n in (1, 4, 16, 100):
        lo, hi = wilson_interval(0, n)
        assert lo == pytest.approx(0.0, abs=1e-15) and hi == pytest.approx(z * z / (n + z * z), rel=1e-12)
        # and the interval is mirrored for k = n
        assert wilson_interval(n, n) == pytest.approx((1 - hi, 1.0), abs=1e-12)


def test_wilson_interval_narrows_with_n_and_refuses_bad_counts():
    widths = [np.diff(wilson_interval(n // 2, n))[0] for n in (4, 16, 64, 256)]
    assert all(a > b for a, b in zip(widths, widths[1:]))
    assert wilson_interval(0, 0) == (0.0, 1.0)
    with pytest.raises(ValueError, match="k=5, n=4"):
        wilson_interval(5, 4)
    with pytest.raises(TypeError, match="k must be an int"):
        wilson_interval(1.0, 4)
    with pytest.raises(ValueError, match="confidence"):
        wilson_interval(1, 4, confidence=1.5)
    assert format_fraction(0, 16).startswith("0/16 [0, 19]")


def _circles(run, seed, verdict, certified, crit=0):
    return SeedOutcome(run, "circles", seed, certified, crit, {"saddle": crit} if crit else {}, tunnel=verdict,
                       tunnel_width=0.3 if verdict == "tunnel" else math.nan, accuracy=0.9)


def _one_d(seed, crit, sup, mse, iso=0.05):
    return SeedOutcome("resnet_L2", "1d x²", seed, False, crit, sup_error=sup, mse=mse, isotonic_mse=iso)


def _verdicts(outcomes):
    return {v.claim.key: v for v in evaluate_claims(outcomes)}


def test_a_certified_network_without_a_tunnel_contradicts_the_theorem():
    good = [_circles("circles_neural_ode", s, "tunnel", True) for s in range(3)]
    v = _verdicts(good)
    c = v["certified_tunnels"]
    assert c.verdict == "consistent" and (c.k, c.n) == (3, 3)
    bad = good + [_circles("circles_neural_ode", 7, "closed", True)]
    v = _verdicts(bad)["certified_tunnels"]
    assert v.verdict == "contradicts" and (v.k, v.n) == (3, 4) and v.offenders == (("circles_neural_ode", 7),)
    table = claims_markdown(evaluate_claims(bad))
    assert "CONTRADICTS" in table
    # every row has the header's five cells: the '|' of |Φ - x²| is escaped
    assert {line.replace("\\|", "").count("|") for line in table.strip().splitlines()} == {6}
    assert [c.claim.key for c in contradictions(evaluate_claims(bad))] == ["certified_tunnels"]
    # a network whose centre is not predicted inner says nothing about the theorem
    assert _verdicts([_circles("circles_neural_ode", 0, "centre-outside", True)])["certified_tunnels"].n == 0
    # and an uncertified network that closes is outside the theorem's scope
    assert _verdicts([_circles("circles_standard", 0, "closed", False, crit=2)])["certified_tunnels"].n == 0
    # unless the structure proves it free of critical points all the same (a narrow MLP)
    proved = SeedOutcome("circles_mlp", "circles", 0, False, 0, proved_free=True, tunnel="closed")
    assert _verdicts([proved])["certified_tunnels"].verdict == "contradicts"


def test_a_network_proved_free_of_critical_points_with_one_found_is_a_contradiction():
    v = _verdicts([_circles("circles_neural_ode", 0, "tunnel", True, crit=1)])["proved_no_critical_points"]
    assert v.verdict == "contradicts"
    mlp = SeedOutcome("xor_mlp", "xor", 0, False, 2, {"saddle": 2}, proved_free=True)
    assert _verdicts([mlp])["proved_no_critical_points"].verdict == "contradicts"
    fine = SeedOutcome("xor_mlp", "xor", 0, False, 0, flat_points=40, proved_free=True)  # plateaus are not points
    assert _verdicts([fine])["proved_no_critical_points"].verdict == "consistent"


def test_can_claims_are_never_contradicted():
    # all 16 standard ResNets tunnel: the claim "can close" is not contradicted, only not observed
    v = _verdicts([_circles("circles_standard", s, "tunnel", False) for s in range(16)])["standard_can_close"]
    assert v.verdict == "consistent" and (v.k, v.n) == (0, 16) and "not observed" in v.note
    # one closing seed is an observation, not a proof and not a contradiction either way
    v = _verdicts([_circles("circles_neural_ode", 0, "closed", False)])["neural_ode_tunnels"]
    assert v.verdict == "consistent" and (v.k, v.n) == (0, 1)
    assert all(c.theory in ("always", "can") for c in CLAIMS)


def test_one_d_bounds_apply_only_without_critical_points():
    ok = [_one_d(0, 0, 0.5, 0.06), _one_d(1, 2, 0.1, 0.001)]  # seed 1 has critical points: out of scope
    v = _verdicts(ok)
    assert (v["1d_sup_bound"].k, v["1d_sup_bound"].n, v["1d_sup_bound"].verdict) == (1, 1, "consistent")
    assert v["1d_isotonic_bound"].verdict == "consistent"
    v = _verdicts(ok + [_one_d(2, 0, 0.6, 0.04)])  # monotone yet below the isotonic bound of its sample
    assert v["1d_isotonic_bound"].verdict == "contradicts" and v["1d_sup_bound"].verdict == "consistent"
    v = _verdicts(ok + [_one_d(3, 0, 0.49, 0.2)])
    assert v["1d_sup_bound"].verdict == "contradicts" and v["1d_sup_bound"].offenders == (("resnet_L2", 3),)


def test_a_contradiction_makes_the_reproduction_exit_non_zero_and_still_write(tmp_path, monkeypatch, capsys):
    import analysis.experiments.paper as paper
    from analysis.experiments.paper_records import SeedTable

    def fabricated(spec, seed, settings, progress):
        outcomes = [_circles(spec.name, seed + k, "closed" if k == 0 else "tunnel", True)
                    for k in range(settings.seeds)]
        row = paper._aggregate(spec.name, "circles", spec.regime, spec.eps, spec.delta, spec.depth, spec.width,
                               outcomes, seed)
        return paper.RegimeResult(row, outcomes, {"seeds": SeedTable.of(spec.name, outcomes, 0)})

    monkeypatch.setattr(paper, "run_two_d", fabricated)
    out = tmp_path / "results"
    code = run_paper(["--out", str(out), "--only", "circles", "--seeds", "3", "--quiet"])
    assert code == 1
    err = capsys.readouterr().err
    assert "CONTRADICTION" in err and "cannot enclose the centre" in err
    summary = (out / "summary.md").read_text()
    assert "**CONTRADICTS**" in summary and "CONTRADICTION(S)" in summary
    assert summary.index("## Claims") < summary.index("## Regimes")
    assert (out / "paper.h5").exists()
    # the same fabricated runs without the closed seed: exit 0
    monkeypatch.setattr(paper, "run_two_d", lambda spec, seed, settings, progress: _all_tunnel(paper, spec, seed,
                                                                                               settings))
    assert run_paper(["--out", str(out), "--only", "circles", "--seeds", "3", "--quiet", "--overwrite"]) == 0


def _all_tunnel(paper, spec, seed, settings):
    from analysis.experiments.paper_records import SeedTable

    outcomes = [_circles(spec.name, seed + k, "tunnel", True) for k in range(settings.seeds)]
    row = paper._aggregate(spec.name, "circles", spec.regime, spec.eps, spec.delta, spec.depth, spec.width, outcomes,
                           seed)
    return paper.RegimeResult(row, outcomes, {"seeds": SeedTable.of(spec.name, outcomes, 0)})


def test_the_summary_row_reports_k_of_n_with_intervals():
    import analysis.experiments.paper as paper

    outcomes = [_circles("circles_standard", 0, "tunnel", False), _circles("circles_standard", 1, "closed", False, 2),
                _circles("circles_standard", 2, "closed", False, 4), _circles("circles_standard", 3, "tunnel", True)]
    s = TWO_D["circles_standard"]
    row = paper._aggregate(s.name, s.dataset, s.regime, s.eps, s.delta, s.depth, s.width, outcomes, 0)
    lo, hi = wilson_interval(2, 4)
    assert row["tunnel"].startswith(f"2/4 [{100 * lo:.0f}, {100 * hi:.0f}] %") and "2 closed" in row["tunnel"]
    assert row["certified"].startswith("1/4") and row["has_critical_points"].startswith("2/4")
    assert row["critical_kinds"] == "saddle 1 [0, 4]"  # median of 0, 2, 4, 0
    assert row["tunnel_width"] == "0.3 [0.3, 0.3]"
    assert row["metric"] == "test acc 0.900 ± 0.000"


def test_a_network_without_a_decision_boundary_is_reported_not_judged():
    import analysis.experiments.paper as paper

    flat = _circles("circles_neural_ode", 0, paper.NO_BOUNDARY, True)
    assert _verdicts([flat])["certified_tunnels"].n == 0
    s = TWO_D["circles_neural_ode"]
    row = paper._aggregate(s.name, s.dataset, s.regime, s.eps, s.delta, s.depth, s.width,
                           [flat, _circles("circles_neural_ode", 1, "tunnel", True)], 0)
    assert row["tunnel"].startswith("1/2") and "1 no decision boundary" in row["tunnel"]
