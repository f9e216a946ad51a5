"""The analyses a sweep runs on each trained model, as adapters from the analysis modules to flat
records: ``analyse(name, model, data, options) -> (row, arrays)``, where ``row`` holds scalars for
the summary table and ``arrays`` the per-run arrays stored in the run's group.

- certificate      :func:`analysis.certify`: certified ⇔ δK‖W_l‖₂ < ε for every block (with the
                   input and output conditions); min_margin = min_l (ε - δK‖W_l‖₂).
- critical_points  :func:`analysis.find_critical_points` of Φ on the data's bounding box widened by
                   ``padding`` × its size on each side; counts by kind (minimum, maximum, saddle,
                   degenerate).
- tunnel           :func:`analysis.approximation.tunnel_effect.tunnel` of the predicted probability
                   at level 0.5 (``level`` overrides) on the square window
                   |x - c|_∞ ≤ (1 + padding) max |x_train|_∞ about the centre c of the enclosed
                   class ``inner_label``: by default the data set's own (:data:`ENCLOSED_CLASS`,
                   :attr:`odenet.datasets.Dataset.centre`), or any 2-D classification data set
                   with ``inner_label`` (and ``centre``) given.
- bounds           :func:`analysis.approximation.bounds.model_bounds` (ω = max‖W_l‖₂, ε/(δK), the regime's closeness
                   bound) and, for 1-D regression data, the isotonic lower bound on the training MSE
                   of any network without critical points (:func:`analysis.approximation.bounds.isotonic_bound`).
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

if TYPE_CHECKING:
    from odenet import Dataset, ResNet


#: the label of the class each data set encloses (the tunnel analysis looks for a channel of the
#: other class reaching into it); data sets not listed enclose none
ENCLOSED_CLASS = {"circles": 0}
#: the data sets whose targets are real values, not class labels
REGRESSION_DATASETS = ("square",)


def check_available(name: str, data: Dataset, model: dict[str, Any], options: dict[str, Any] | None = None) -> None:
    """Raise ValueError if analysis ``name`` with ``options`` cannot run on this data set
    (``model``: the sweep's model table)."""
    options = options or {}
    if name == "tunnel":
        if data.n_in != 2 or data.name in REGRESSION_DATASETS:
            raise ValueError(f"the tunnel analysis needs a 2-D classification data set; got dataset {data.name!r} "
                             f"with {data.n_in} input(s)")
        if options.get("inner_label") is None and data.name not in ENCLOSED_CLASS:
            raise ValueError(f"the tunnel analysis needs an enclosed class: dataset {data.name!r} has none of its "
                             f"own (those that have: {sorted(ENCLOSED_CLASS)}); give analyses.tunnel.inner_label "
                             f"(and centre)")
        centre = options.get("centre")
        if centre is not None and len(centre) != data.n_in:
            raise ValueError(f"analyses.tunnel.centre must have {data.n_in} coordinates (the data's inputs); "
                             f"got {centre!r}")


def enclosed_class(data: Dataset, options: dict[str, Any]) -> tuple[int, np.ndarray]:
    """(label, centre (2,)) of the class the tunnel analysis looks into: ``options``' ``inner_label``
    and ``centre`` where given, else the data set's (:data:`ENCLOSED_CLASS`, ``data.centre``)."""
    label = options.get("inner_label")
    label = ENCLOSED_CLASS[data.name] if label is None else label
    centre = options.get("centre")
    if centre is None and data.centre is None:
        raise ValueError(f"the data set {data.name!r} has no centre; give options['centre']")
    return label, np.asarray(data.centre if centre is None else centre, dtype=np.float64)


def _folded(model):
    return model.fold_batchnorm() if model.batchnorm else model


def certificate(model: ResNet, data: Dataset, options: dict[str, Any]) -> tuple[dict, dict]:
    """:func:`analysis.certify` of ``model``: row ``certified``, ``homeomorphism``, ``min_margin``
    = min_l (ε - δK‖W_l‖₂), ``n_folding_blocks``; arrays ``certificate_margin`` and
    ``certificate_weight_norms`` (L,).  ``data`` and ``options`` are unused (one signature)."""
    from analysis.geometry.certificates import certify

    rep = certify(model)
    row = dict(certified=bool(rep.no_critical_points), homeomorphism=bool(rep.homeomorphism),
               min_margin=float(rep.margin.min()), n_folding_blocks=len(rep.folding_blocks))
    return row, dict(certificate_margin=rep.margin.detach().clone(),
                     certificate_weight_norms=rep.weight_norms.detach().clone())


def critical_points(model: ResNet, data: Dataset, options: dict[str, Any]) -> tuple[dict, dict]:
    """:func:`analysis.find_critical_points` of Φ (BatchNorm folded) on the box of ``data.x``
    widened by ``options["padding"]`` × its size per side, at ``options["resolution"]`` and
    ``options["accept_tol"]``: row ``n_critical`` and the counts by kind; arrays (when any are
    found, n of them) ``critical_points`` (n, d), ``critical_values`` (n,), ``critical_morse_index`` (n,)."""
    from analysis.geometry.critical import find_critical_points

    x = data.x
    lo, hi = x.min(0).values, x.max(0).values
    pad = options["padding"] * (hi - lo)
    box = torch.stack([lo - pad, hi + pad], 1)
    cp = find_critical_points(_folded(model), box, resolution=options["resolution"],
                              accept_tol=options["accept_tol"])
    kinds = list(cp.kinds)
    row = dict(n_critical=len(cp), n_minima=kinds.count("minimum"), n_maxima=kinds.count("maximum"),
               n_saddles=kinds.count("saddle"), n_degenerate=kinds.count("degenerate"))
    arrays = {}
    if len(cp):
        arrays["critical_points"] = cp.points.detach().clone()
        arrays["critical_values"] = cp.values.detach().clone()
        arrays["critical_morse_index"] = cp.morse_index.clone()
    return row, arrays


def tunnel(model: ResNet, data: Dataset, options: dict[str, Any]) -> tuple[dict, dict]:
    """:func:`analysis.approximation.tunnel_effect.tunnel` of the predicted probability (module
    docstring) at ``options["resolution"]``: row ``tunnel``, ``tunnel_verdict``, ``tunnel_width``,
    ``tunnel_area``, ``tunnel_points``; array ``tunnel_mask`` (ny, nx) int8 on the tunnel's grid.  When the level lies
    outside Φ's range (a constant predictor) the verdict is "undetermined" with no arrays."""
    from analysis.approximation.tunnel_effect import tunnel as find_tunnel

    inner_label, centre = enclosed_class(data, options)
    r = (1 + options["padding"]) * float(data.x_train.abs().max())
    window = (centre[0] - r, centre[0] + r, centre[1] - r, centre[1] + r)
    level = 0.5 if options["level"] is None else options["level"]
    # the tunnel is a component of {Φ < level} about the centre: Φ = P(class 1) when the enclosed
    # class is 0, and P(class 0) = 1 - P(class 1) at level 1 - level when it is 1
    if inner_label == 0:
        prob = lambda x: model(x)[:, 0]  # noqa: E731
    else:
        prob, level = (lambda x: 1 - model(x)[:, 0]), 1 - level
    with torch.no_grad():
        try:
            t = find_tunnel(prob, window, centre, level, options["resolution"], points=data.x_test.numpy(),
                            labels=data.y_test[:, 0].numpy(), inner_label=inner_label)
        except ValueError as exc:  # the level outside Φ's range: a constant predictor; else a real error
            if "level" not in str(exc):
                raise
            return dict(tunnel=False, tunnel_verdict="undetermined", tunnel_width=math.nan,
                        tunnel_area=math.nan, tunnel_points=0), {}
    row = dict(tunnel=bool(t.tunnel), tunnel_verdict=t.verdict, tunnel_width=float(t.width),
               tunnel_area=float(t.area), tunnel_points=int(len(t.tunnel_points)))
    return row, dict(tunnel_mask=np.ascontiguousarray(t.mask.astype(np.int8)))


def bounds(model: ResNet, data: Dataset, options: dict[str, Any]) -> tuple[dict, dict]:
    """:func:`analysis.approximation.bounds.model_bounds` on ``data.x_train``: row ``omega``,
    ``critical_norm`` (ε/(δK)), ``closeness``, ``closeness_kind``, and for 1-D regression data
    ``isotonic_mse_bound``; no arrays.  ``options`` is unused (one signature)."""
    from analysis.approximation.bounds import isotonic_bound, model_bounds

    with torch.no_grad():
        b = model_bounds(model, data.x_train)
    row = dict(omega=float(b.omega), critical_norm=float(b.critical_norm), closeness=float(b.closeness),
               closeness_kind=b.closeness_kind)
    if data.n_in == 1 and data.name in REGRESSION_DATASETS:
        row["isotonic_mse_bound"] = float(isotonic_bound(data.x_train[:, 0].numpy(), data.y_train[:, 0].numpy()))
    return row, {}


ANALYSIS_FUNCTIONS = {"certificate": certificate, "critical_points": critical_points, "tunnel": tunnel,
                      "bounds": bounds}


def analyse(name: str, model: ResNet, data: Dataset, options: dict[str, Any]) -> tuple[dict, dict]:
    """Run analysis ``name`` (a key of :data:`ANALYSIS_FUNCTIONS`) on a trained model (eval mode):
    (summary row of scalars, arrays by name)."""
    return ANALYSIS_FUNCTIONS[name](model, data, options)
