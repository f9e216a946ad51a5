"""The regime table is defined once (analysis.experiments.paper_regimes): the numbers docs/theory.md
quotes for the reproduction's runs are the table's."""
from dataclasses import replace
from pathlib import Path

from analysis.experiments.paper_regimes import CIRCLES, INJECTION, ONE_D, TWO_D, XOR

ROOT = Path(__file__).resolve().parents[2]


def _tuple(*values) -> str:
    return "(" + ", ".join(f"{v:g}" for v in values) + ")"


def _in_order(text: str, needles: list[str]) -> bool:
    at = 0
    for needle in needles:
        at = text.find(needle, at)
        if at < 0:
            return False
        at += len(needle)
    return True


def test_the_theory_quotes_the_regime_table():
    text = " ".join((ROOT / "docs" / "theory.md").read_text().split())
    assert _in_order(text, [_tuple(s.eps, s.delta, s.depth, s.epochs) for s in ONE_D])
    names = {"circles_neural_ode": "neural ODE", "circles_mlp": "MLP", "circles_standard": "standard ResNet",
             "circles_augmented": "augmented MLP"}
    assert {s.name for s in CIRCLES} == set(names) | {"circles_neural_ode_bn"}
    # the docs' "again with it": the same run, with BatchNorm
    assert replace(TWO_D["circles_neural_ode"], name="circles_neural_ode_bn", regime="neural-ODE + BatchNorm",
                   batchnorm=True) == TWO_D["circles_neural_ode_bn"]
    assert _in_order(text, [f"{names[s.name]} {_tuple(s.eps, s.delta, s.depth, s.width, s.epochs)}"
                            for s in CIRCLES if s.name in names])
    xor_names = {"xor_mlp": "MLP", "xor_augmented": "augmented MLP", "xor_resnet": "standard ResNet"}
    assert _in_order(text, [f"{xor_names[s.name]} {_tuple(s.eps, s.delta, s.depth, s.width)}" for s in XOR])
    s = INJECTION
    assert f"(ε, δ, L, width) = {_tuple(s.eps, s.delta, s.depth, s.width)}" in text
    assert f"disc radius {s.inner_radius:g}" in text
