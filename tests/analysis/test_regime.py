"""Regime behaviour (docs/theory.md §6–8, §10–11): the sweep's records, and on the circles with the paper's
settings: the neural-ODE and MLP regimes show a tunnel, the standard and augmented networks don't."""
import math

import pytest

from analysis import certify, regime_sweep, tunnel
from analysis.approximation.regime import data_window
from analysis.experiments.paper_regimes import BATCH_2D, TWO_D, circles_regime
from odenet import train_ensemble
from odenet.datasets import circles


def test_regime_sweep_records_on_square():
    runs = regime_sweep((0.1, 10.0), depths=(2,), seeds=(0,), datasets=("square",), epochs={"square": 30},
                        critical_resolution=21, progress=False)
    assert [(r.dataset, r.ratio, r.depth, r.seed) for r in runs] == [("square", 0.1, 2, 0), ("square", 10.0, 2, 0)]
    for r in runs:
        assert r.sup_bound == 0.5 and abs(r.isotonic_bound - 9 / 160) < 1e-3
        assert r.critical_norm == pytest.approx(1 / r.ratio)
        assert r.closeness_kind == "ode" and math.isnan(r.accuracy) and r.tunnel_verdict == ""
        # the theory: a certified network has no critical points and misses the bounds' targets
        if r.certified:
            assert r.n_critical_points == 0
            # (both exact on the grid: a strictly monotone Φ is one of the monotone fits)
            assert r.sup_error >= r.sup_bound - 1e-9 and r.mse >= r.isotonic_bound - 1e-12
    assert runs[0].certified  # δ/ε = 0.1 with 30 epochs stays far below the critical norm 10


def test_regime_sweep_bad_input():
    with pytest.raises(ValueError, match="eps"):
        regime_sweep(eps=-1.0)
    with pytest.raises(ValueError, match="datasets"):
        regime_sweep(datasets=("moons",))
    with pytest.raises(ValueError, match="ratios"):
        regime_sweep(ratios=(0.0,))


# --- the paper's circles experiments (slow) ------------------------------------------------------
PAPER = dict(batch_size=BATCH_2D, loss="bce", lr=0.01, progress=False)


@pytest.fixture(scope="module")
def data():
    return circles(seed=0)


def _verdicts(data, run: str, seeds, batchnorm=None):
    """(tunnel, certificate, member) of each seed of the reproduction's circles run ``run`` (its network,
    epochs and BatchNorm, which ``batchnorm`` overrides), trained together."""
    spec = TWO_D[run]
    ens = train_ensemble(spec.model(seeds[0], batchnorm), data, seeds=seeds, epochs=spec.epochs,
                         freeze=spec.freeze(batchnorm), **PAPER)
    window = data_window(data.x)
    out = []
    for m in ens.members:
        t = tunnel(m.model, window, data.centre.numpy(), 0.5, 161, points=data.x_test.numpy(),
                   labels=data.y_test[:, 0].numpy())
        out.append((t, certify(m.model), m))
    return out


# Long trainings with BatchNorm are chaotic: rounding-level differences (another CPU's kernels, the
# ensemble against single runs) grow to O(0.1) in the weights over 300 epochs and can flip a seed's
# verdict.  So these tests assert what the theory guarantees (a certified network tunnels; a closed
# level set needs an uncertified network) and "at least one of a few seeds", not one seed's fate.
@pytest.mark.slow
def test_neural_ode_regime_has_a_tunnel(data):
    # without BatchNorm the regime is what its name says (δ‖W‖ ≪ ε): every seed certified, every
    # seed tunnels, and the tunnel costs test points
    for t, cert, m in _verdicts(data, "circles_neural_ode", [0, 1]):
        assert cert.no_critical_points and t.verdict == "tunnel" and len(t.tunnel_points) > 0
        assert m.metrics["test_accuracy"] < 0.95
    # the paper's settings (BatchNorm in the blocks): BN's eval scaling γ/√var inflates the effective
    # ratio (δ‖W_eff‖ well above ε in our runs), so some seeds fold and close the level set (here,
    # one torch thread: of seeds 0..3 seed 1 tunnels, seeds 0, 2, 3 close and are uncertified)
    runs = _verdicts(data, "circles_neural_ode_bn", [0, 1, 2, 3, 4, 5])
    assert all(t.verdict == "tunnel" or not cert.no_critical_points for t, cert, _ in runs)
    assert any(t.verdict == "tunnel" and len(t.tunnel_points) > 0 for t, _, _ in runs)


@pytest.mark.slow
def test_mlp_regime_has_a_tunnel(data):
    runs = _verdicts(data, "circles_mlp", [0, 1])  # here both tunnel (15 and 21 test points lost)
    assert any(t.verdict == "tunnel" and len(t.tunnel_points) > 0 and t.width > 0 for t, _, _ in runs)


@pytest.mark.slow
def test_standard_resnet_and_augmented_mlp_close_the_level_set(data):
    # here: seed 0 tunnels (31 test points lost), seeds 1 and 2 close: two seeds were needed
    runs = _verdicts(data, "circles_standard", [0, 1, 2])
    closed = [(t, cert, m) for t, cert, m in runs if t.verdict == "closed"]
    assert closed
    for t, cert, m in closed:
        assert m.metrics["test_accuracy"] > 0.99
        assert not cert.no_critical_points  # closing the level set needs a fold
    runs = _verdicts(data, "circles_augmented", [0, 1])  # here both close: one seed was needed
    closed = [t for t, _, m in runs if t.verdict == "closed" and m.metrics["test_accuracy"] > 0.99]
    assert closed
    # the closed component is bounded: it does not reach the window's edge
    t = closed[0]
    assert t.mask.any() and not (t.mask[0].any() or t.mask[-1].any() or t.mask[:, 0].any() or t.mask[:, -1].any())


def _report(data):  # pragma: no cover - a helper to print the verdicts behind the comments above
    for run, seeds in {"circles_neural_ode": [0, 1, 2, 3], "circles_neural_ode_bn": [0, 1, 2, 3],
                       "circles_mlp": [0, 1], "circles_standard": [0, 1, 2], "circles_augmented": [0, 1]}.items():
        for t, cert, m in _verdicts(data, run, seeds):
            print(run, m.seed, t.verdict, f"{t.width:.3f}", len(t.tunnel_points), cert.no_critical_points,
                  f"{m.metrics['test_accuracy']:.3f}")


def test_cli_tunnel_command(capsys):
    from odenet.cli import main

    assert main(["tunnel", "--regime", "neural-ode", "--epochs", "2", "--resolution", "41", "--quiet"]) == 0
    out = capsys.readouterr().out
    spec = circles_regime("neural-ode")
    assert f"neural-ode (eps={spec.eps}, delta={spec.delta}, L={spec.depth}, width={spec.width}" in out
    assert any(out.splitlines()[1].startswith(v) for v in ("tunnel:", "closed:", "centre-outside:"))
