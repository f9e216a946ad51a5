"""The schemas of the result types: for each field, its kind and its dimension names.

Dimension names used across the format:

    step      recorded step k of a trajectory, coordinate t_k (t_k = k T / L exactly for a ResNet)
    interval  the step from k to k+1
    sample    one input point of a batch
    state     a component of the state (hidden width m)
    layer     a block l = 0..L-1

Schemas of types that live in other modules are registered on first need (see
:func:`register_available`); modules may also register their own (``PROVIDER_MODULES``).
"""
from __future__ import annotations

import importlib

import solvers

from .grid import SampleGrid
from .schema import Array, Attr, Json, Ragged, Record, RecordList, Schema, Strings, add_provider, register

SOLUTION = register(Schema(
    "Solution", solvers.Solution,
    fields=(
        Array("t", ("step",), coord=True, doc="time of each recorded state"),
        Array("y", ("step", "sample", "state"), doc="state y[step, sample, state]"),
        Array("step_piece", ("interval",), doc="piece (layer) of each step"),
        Attr("nfev", int), Attr("njev", int), Attr("n_steps", int), Attr("n_accepted", int),
        Attr("n_rejected", int), Attr("status", int), Attr("message", str), Attr("method", str),
        Attr("success", bool, derived=True),
    ),
    doc="solvers.Solution: a trajectory, time-first, with the solver statistics",
    dtype_of="y",
))

SAMPLE_GRID = register(Schema(
    "SampleGrid", SampleGrid,
    fields=(
        Array("x", ("x",), doc="grid abscissae", axis="X"),
        Array("y", ("y",), doc="grid ordinates", axis="Y"),
        Array("points", ("sample", "input"), doc="grid points, x fastest"),
    ),
    doc="a rectangular grid of input points (odenet trace --grid)",
))


# --- result types of other modules: registered when their module imports -------------------------
def _import(modules: tuple[str, ...], cls: str) -> type:
    """The class ``cls`` from the first of ``modules`` that imports (ImportError if none)."""
    for m in modules:
        try:
            mod = importlib.import_module(m)
        except ImportError:
            continue
        if hasattr(mod, cls):
            return getattr(mod, cls)
    raise ImportError(f"none of {modules} defines {cls}")


def _trace_schema() -> Schema:
    Trace = _import(("analysis.tracing",), "Trace")

    def build(v: dict):
        # a Trace is a Solution; files written before it was carry no statistics: one
        # evaluation per recorded step, success (a trace that failed raised instead of being saved)
        if v.get("nfev") is None:
            S = v["y"].shape[0] - 1
            v.update(n_steps=S, n_accepted=S, nfev=S, njev=0, n_rejected=0, status=0, message="")
        return Trace(**v)

    return Schema(
        "Trace", Trace,
        fields=(
            Array("inputs", ("sample", "input"), doc="inputs x"),
            Array("t", ("step",), coord=True, doc="time of each recorded state"),
            Array("y", ("step", "sample", "state"), doc="h_k, h_0 = A(x)", key="states"),
            Array("layer_jacobians", ("interval", "sample", "state", "state_from"), doc="DF_k = dh_{k+1}/dh_k"),
            Array("cumulative", ("step", "sample", "state", "input"), doc="J_k = dh_k/dx"),
            Array("logabsdet", ("step", "sample"), doc="log|det| (see logdet_of)"),
            Array("sign", ("step", "sample"), doc="sign of det (0: singular)"),
            Attr("logdet_of", str),
            Array("jacobian", ("sample", "output", "input"), doc="input-output Jacobian"),
            Array("outputs", ("sample", "output"), doc="Phi(x)"),
            Array("singular_values", ("sample", "singular"), doc="singular values of the Jacobian, descending"),
            Array("step_piece", ("interval",), doc="layer of each step", key="step_layer"),
            Array("trace_integral", ("step", "sample"), doc="int_0^t tr D_x f dt (variational traces)"),
            Attr("method", str),
            Attr("n_steps", int), Attr("nfev", int), Attr("njev", int), Attr("n_accepted", int),
            Attr("n_rejected", int), Attr("status", int), Attr("message", str),
            Attr("success", bool, derived=True),
        ),
        build=build,
        doc="Trace: a Solution (trajectories, solver statistics) with per-layer and cumulative Jacobians",
        dtype_of="y",
    )


def _liouville_schema() -> Schema:
    return Schema("LiouvilleCheck", _import(("analysis.tracing",), "LiouvilleCheck"), fields=(
        Array("logabsdet", ("sample",), doc="log|det D phi_T| from the variational equation"),
        Array("trace_integral", ("sample",), doc="int_0^T tr D_x f dt"),
        Array("sign", ("sample",), doc="sign of det D phi_T (+1 for a flow)"),
        Array("gap", ("sample",), doc="logabsdet - trace_integral"),
    ), doc="Liouville's formula checked per point", dtype_of="logabsdet")


def _crossings_schema() -> Schema:
    return Schema("Crossings", _import(("analysis.tracing",), "Crossings"), fields=(
        Attr("order_change_step", int),
        Array("order_change_pairs", ("order_pair", "pair_member"), doc="neighbouring inputs whose states swap order"),
        Array("det_sign_change", ("sample",), doc="first step at which sign det J_k changes (-1: never)"),
        Attr("close_step", int),
        Array("close_pairs", ("close_pair", "pair_member"), doc="distant inputs whose states come close"),
        Array("close_distance", ("close_pair",), doc="state distance of a close pair at close_step"),
    ), doc="where trajectories cross", dtype_of="close_distance")


def _critical_points_schema() -> Schema:
    cls = _import(("analysis.critical",), "CriticalPoints")

    def build(v: dict):  # files written before flat regions were reported lack the newer fields
        return cls(**{k: x for k, x in v.items() if x is not None})

    return Schema("CriticalPoints", cls, fields=(
        Array("points", ("point", "input"), doc="location x*"),
        Array("values", ("point",), doc="Phi(x*)"),
        Array("gradient_residual", ("point",), doc="|grad g(x*)|_2, g the searched map (see searched_on)"),
        Array("hessians", ("point", "input", "input_j"), doc="Hessian of the searched map g at x*"),
        Array("eigenvalues", ("point", "eigen"), doc="Hessian eigenvalues, ascending"),
        Array("morse_index", ("point",), doc="number of negative eigenvalues"),
        Array("degenerate", ("point",), doc="singular Hessian"),
        Strings("kinds", ("point",), doc="type of critical point (minimum, maximum, saddle, degenerate)"),
        Array("box", ("input", "bound"), doc="search box [lower, upper] per input"),
        Attr("n_seeds", int), Attr("iterations", int),
        Array("flat_points", ("flat_point", "input"), doc="flat-region points (gradient underflow), not counted"),
        Attr("searched_on", str, doc="logit (Phi = s(g), s monotone) or output (g = Phi)"),
        Attr("structural", str, doc="why the structure proves there are no critical points"),
        Attr("gradient_scale", float), Attr("hessian_scale", float), Attr("accept_threshold", float),
    ), build=build, doc="critical points of the logit g of Phi (or of Phi): location, value, Hessian, Morse type",
        dtype_of="points")


def _critical_point_schema() -> Schema:
    return Schema("CriticalPoint", _import(("analysis.critical",), "CriticalPoint"), fields=(
        Array("point", ("input",), doc="location x*"), Attr("value", float), Attr("gradient_residual", float),
        Array("hessian", ("input", "input_j"), doc="Hessian of Phi at x*"),
        Array("eigenvalues", ("eigen",), doc="Hessian eigenvalues, ascending"),
        Attr("morse_index", int), Attr("degenerate", bool), Attr("kind", str),
    ), doc="one critical point", dtype_of="point")


def _certificate_schema() -> Schema:
    return Schema("CertificateReport", _import(("analysis.certificates",), "CertificateReport"), fields=(
        Attr("eps", float), Attr("delta", float), Attr("lipschitz_constant", float),
        Array("weight_norms", ("layer",), doc="||W_l||_2"),
        Array("contraction", ("layer",), doc="delta K ||W_l||_2"),
        Array("margin", ("layer",), doc="eps - delta K ||W_l||_2"),
        Array("certified", ("layer",), doc="block l certified invertible (margin > 0)"),
        Json("folding_blocks"),
        Attr("input_rank", int), Attr("input_ok", bool), Attr("output_ok", bool),
        Attr("homeomorphism", bool), Attr("no_critical_points", bool), Attr("verdict", str),
        Array("orientation_sign", ("step", "sample"), doc="sign det along the layers"),
        Attr("orientation_consistent", bool),
    ), doc="homeomorphism certificate of a ResNet", dtype_of="margin")


def _inverse_schema() -> Schema:
    return Schema("Inverse", _import(("analysis.inverse",), "Inverse"), fields=(
        Array("h", ("sample", "state"), doc="recovered state h_start"),
        Array("x", ("sample", "input"), doc="recovered input x with A(x) = h"),
        Array("residual", ("sample",), doc="max-norm forward residual of the recovered state"),
        Array("block_residuals", ("block",), doc="a-posteriori bound on |h* - h|_2 per block, max over the batch"),
        Array("iterations", ("block",), doc="fixed-point iterations per block"),
    ), doc="inverse of the block map", dtype_of="h")


def _train_result_schema() -> Schema:
    return Schema("TrainResult", _import(("odenet.training",), "TrainResult"), fields=(
        Record("model", doc="the trained model (a ResNet group)"),
        Array("train_loss", ("epoch",), doc="loss on the training split after each epoch"),
        Array("val_loss", ("epoch",), doc="loss on the validation split after each epoch"),
        Array("batch_loss", ("epoch",), doc="mean mini-batch loss during each epoch"),
        Array("train_accuracy", ("epoch",), doc="accuracy on the training split after each epoch"),
        Array("val_accuracy", ("epoch",), doc="accuracy on the validation split after each epoch"),
        Attr("best_epoch", int), Attr("seed", int), Json("seeds_tried"), Json("best_val_per_seed"),
        Json("metrics"), Json("config"), Attr("epochs", int, derived=True),
    ), doc="a training run: the model and its loss histories", dtype_of="model")


def _tunnel_schema() -> Schema:
    def build(v: dict):
        v["window"] = None if v["window"] is None else tuple(v["window"])
        return cls(**v)

    cls = _import(("analysis.tunnel",), "TunnelResult")
    return Schema("TunnelResult", cls, fields=(
        Attr("verdict", str), Attr("tunnel", bool), Attr("level", float), Json("window"),
        Array("centre", ("xy",), doc="centre x0 of the enclosed class"),
        Array("xs", ("x",), doc="grid abscissae", key="x", axis="X"),
        Array("ys", ("y",), doc="grid ordinates", key="y", axis="Y"),
        Array("values", ("y", "x"), doc="Phi on the grid"),
        Array("mask", ("y", "x"), doc="the centre's component of {Phi < level}"),
        Attr("n_components", int), Attr("area", float), Attr("width", float),
        Array("bottleneck", ("xy",), doc="where the narrowest chord of the tunnel was measured"),
        Array("direction", ("xy",), doc="unit vector from the centre to the bottleneck"), Attr("angle", float),
        Array("exit_point", ("xy",), doc="where the tunnel leaves the window"),
        Ragged("level_set", ("vertex", "xy"), "curve", doc="level-set polylines (x, y)"),
        Array("misclassified", ("misclassified_point",), doc="indices of the misclassified given points"),
        Array("tunnel_points", ("tunnel_point",), doc="indices of misclassified points inside the tunnel"),
    ), build=build, doc="tunnel test on a grid: verdict, width, area, direction, component mask, level sets",
        dtype_of="values")


def _monotone_fit_schema() -> Schema:
    return Schema("MonotoneFit", _import(("analysis.bounds",), "MonotoneFit"), fields=(
        Array("x", ("sample",), doc="sorted inputs"), Array("y", ("sample",), doc="targets in that order"),
        Array("fit", ("sample",), doc="best monotone L2 fit"),
        Attr("increasing", bool), Attr("mse", float), Attr("mse_increasing", float), Attr("mse_decreasing", float),
    ), doc="best monotone L2 fit (isotonic regression): the L2 lower bound in 1D", dtype_of="fit")


def _model_bounds_schema() -> Schema:
    return Schema("ModelBounds", _import(("analysis.bounds",), "ModelBounds"), fields=(
        Attr("omega", float), Attr("critical_norm", float), Attr("closeness", float), Attr("closeness_kind", str),
    ), doc="weight norms and closeness bounds of one ResNet")


def _jacobian_map_schema() -> Schema:
    return Schema("JacobianMap", _import(("analysis.maps",), "JacobianMap"), fields=(
        Array("x", ("x",), doc="grid abscissae", axis="X"), Array("y", ("y",), doc="grid ordinates", axis="Y"),
        Array("points", ("sample", "input"), doc="grid points, row-major over (y, x)"),
        Array("sigma_min", ("y", "x"), doc="smallest singular value of the Jacobian"),
        Array("sigma_max", ("y", "x"), doc="largest singular value of the Jacobian"),
        Array("logabsdet", ("y", "x"), doc="log|det| of the Jacobian"),
        Array("sign", ("y", "x"), doc="sign of det of the Jacobian (0: singular)"),
        Attr("start", int), Attr("stop", int), Attr("output", bool),
    ), doc="singular values and log|det| of the Jacobian over a grid of the plane", dtype_of="sigma_min")


def _regime_run_schema() -> Schema:
    cls = _import(("analysis.regime",), "RegimeRun")
    floats = ("eps", "delta", "ratio", "sup_error", "mse", "accuracy", "sup_bound", "isotonic_bound",
              "closeness", "omega", "critical_norm", "tunnel_width")
    ints = ("depth", "width", "seed", "epochs", "best_epoch", "tunnel_points")
    strs = ("dataset", "closeness_kind", "certificate_verdict", "tunnel_verdict")
    return Schema("RegimeRun", cls, fields=tuple(Attr(n, float) for n in floats) + tuple(Attr(n, int) for n in ints)
                  + tuple(Attr(n, str) for n in strs) + (
        Attr("certified", bool),
        Array("critical_points", ("point", "input"), doc="critical points found on the box"),
        Strings("critical_kinds", ("point",), doc="type of each critical point"),
    ), doc="one trained network of a regime sweep and what was measured on it", dtype_of="critical_points")


def _dataset_schema() -> Schema:
    return Schema("Dataset", _import(("odenet.datasets",), "Dataset"), fields=(
        Attr("name", str), Attr("seed", int), Json("params"),
        Array("x_train", ("train", "input"), doc="training inputs (standardised)"),
        Array("y_train", ("train", "target"), doc="training targets"),
        Array("x_val", ("val", "input"), doc="validation inputs (standardised)"),
        Array("y_val", ("val", "target"), doc="validation targets"),
        Array("x_test", ("test", "input"), doc="test inputs (standardised)"),
        Array("y_test", ("test", "target"), doc="test targets"),
        Array("mean", ("input",), doc="standardisation x_std = (x_raw - mean) / std"),
        Array("std", ("input",), doc="standardisation scale std"),
        Array("centre", ("input",), doc="centre of the enclosed class"),
    ), doc="a labelled data set with its train/val/test splits", dtype_of="x_train")


def _ensemble_schema() -> Schema:
    return Schema("EnsembleResult", _import(("odenet.ensemble",), "EnsembleResult"), fields=(
        RecordList("members", doc="one TrainResult per member"), Json("seeds"),
        Array("train_loss", ("member", "epoch"), doc="training loss per member after each epoch"),
        Array("val_loss", ("member", "epoch"), doc="validation loss per member after each epoch"),
        Array("batch_loss", ("member", "epoch"), doc="mean mini-batch loss per member during each epoch"),
        Array("train_accuracy", ("member", "epoch"), doc="training accuracy per member after each epoch"),
        Array("val_accuracy", ("member", "epoch"), doc="validation accuracy per member after each epoch"),
        Array("best_epoch", ("member",), doc="epoch of the lowest validation loss per member"), Json("config"),
    ), doc="K trainings at once: the members' runs and their stacked histories", dtype_of="train_loss")


#: schema makers of the result types defined in other modules
OPTIONAL_SCHEMAS = {"Trace": _trace_schema, "LiouvilleCheck": _liouville_schema, "Crossings": _crossings_schema,
                    "CriticalPoints": _critical_points_schema, "CriticalPoint": _critical_point_schema,
                    "CertificateReport": _certificate_schema, "Inverse": _inverse_schema,
                    "TrainResult": _train_result_schema, "TunnelResult": _tunnel_schema,
                    "MonotoneFit": _monotone_fit_schema, "ModelBounds": _model_bounds_schema,
                    "JacobianMap": _jacobian_map_schema, "RegimeRun": _regime_run_schema,
                    "Dataset": _dataset_schema, "EnsembleResult": _ensemble_schema}

#: modules that register schemas of their own records when imported (kept beside the records)
PROVIDER_MODULES = ("analysis.continuum_hdf5", "analysis.paper_records", "analysis.sweep.store",
                    "analysis.literature.records")


def register_available() -> list[str]:
    """Register the schemas whose modules import, and import the provider modules; returns the
    names registered here.  Run lazily, the first time a type or name is not found (so that
    importing analysis.hdf5 stays light and free of import cycles)."""
    done = []
    for name, make in OPTIONAL_SCHEMAS.items():
        try:
            schema = make()
        except ImportError:
            continue
        register(schema)
        done.append(name)
    for module in PROVIDER_MODULES:
        try:
            importlib.import_module(module)
        except ImportError:
            pass
    return done


add_provider(register_available)
