"""The data set of a sweep is a parameter: circles by default, and the tunnel analysis looks into
the enclosed class the data set declares or the one the file names (any 2-D classification set)."""
from __future__ import annotations

import inspect

import pytest
import torch

from analysis.experiments.sweep import SweepSpecError, load_spec
from analysis.experiments.sweep.analyses import tunnel
from odenet.datasets import circles
from sweep_helpers import tiny_sweep

TUNNEL_DEFAULTS = {"resolution": 61, "padding": 0.25, "level": None}


def test_a_file_without_dataset_name_sweeps_the_circles_with_the_same_run_ids():
    implicit = load_spec(tiny_sweep(dataset={"n": 60}))
    explicit = load_spec(tiny_sweep(dataset={"name": "circles", "n": 60}))
    assert implicit.dataset["name"] == "circles"
    assert [r.run_id for r in implicit.runs] == [r.run_id for r in explicit.runs]
    defaults = {k: p.default for k, p in inspect.signature(circles).parameters.items()}
    assert load_spec(tiny_sweep(dataset=None)).dataset == {"name": "circles"} | defaults


def test_options_not_given_stay_out_of_the_config_so_earlier_run_ids_hold():
    spec = load_spec(tiny_sweep(analyses={"tunnel": True}))
    assert set(spec.runs[0].config["analyses"]["tunnel"]) == {"resolution", "padding", "level"}
    given = load_spec(tiny_sweep(analyses={"tunnel": {"inner_label": 0}}))
    assert given.runs[0].config["analyses"]["tunnel"]["inner_label"] == 0


def test_xor_takes_the_tunnel_analysis_when_the_file_names_the_enclosed_class():
    spec = load_spec(tiny_sweep(dataset={"name": "xor", "n": 60},
                                analyses={"tunnel": {"inner_label": 1, "centre": [0, 0.5]}}))
    assert spec.runs[0].config["analyses"]["tunnel"] == {"resolution": 101, "padding": 0.25, "level": None,
                                                             "inner_label": 1, "centre": [0.0, 0.5]}


@pytest.mark.parametrize("tables, key", [
    (dict(analyses={"tunnel": {"inner_label": 2}}), "analyses.tunnel.inner_label"),
    (dict(analyses={"tunnel": {"inner_label": True}}), "analyses.tunnel.inner_label"),
    (dict(analyses={"tunnel": {"centre": [0.0]}}), "analyses.tunnel.centre"),
    (dict(analyses={"tunnel": {"centre": "middle"}}), "analyses.tunnel.centre"),
    (dict(analyses={"tunnel": {"centre": [0.0, float("nan")]}}), "analyses.tunnel.centre"),
    (dict(dataset={"name": "xor", "n": 60}, analyses={"tunnel": {"centre": [0.0, 0.0]}}), "inner_label"),
    (dict(dataset={"name": "square", "n": 60}, analyses={"tunnel": {"inner_label": 0}}), "analyses.tunnel"),
])
def test_bad_tunnel_options_name_the_key(tables, key):
    with pytest.raises(SweepSpecError) as info:
        load_spec(tiny_sweep(**tables))
    assert key in str(info.value)


def _disc_classifier(data, inside_label: int):
    """P(class 1) of a classifier predicting ``inside_label`` in the disc that separates the circles'
    classes (radius halfway between the inner class's farthest point and the outer class's nearest)."""
    r = (data.x - data.centre).norm(dim=1)
    inner = data.y[:, 0] == 0
    radius = (r[inner].max() + r[~inner].min()) / 2

    def model(x):
        p_outside = torch.sigmoid(40 * ((x - data.centre).norm(dim=1) - radius))[:, None]
        return p_outside if inside_label == 0 else 1 - p_outside
    return model


def test_the_enclosed_class_one_is_looked_into_as_class_zero_is():
    data = circles(n=400, seed=3)
    row0, _ = tunnel(_disc_classifier(data, 0), data, TUNNEL_DEFAULTS)
    row1, _ = tunnel(_disc_classifier(data, 1), data, TUNNEL_DEFAULTS | {"inner_label": 1})
    assert row0["tunnel_verdict"] == row1["tunnel_verdict"] == "closed"
    assert row0["tunnel_area"] == pytest.approx(row1["tunnel_area"], rel=1e-12)
    assert row0["tunnel_points"] == 0  # the disc holds the inner class: nothing misclassified
