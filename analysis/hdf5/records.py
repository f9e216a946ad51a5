"""The schemas of the result types: for each field, its kind and its dimension names.

Dimension names used across the format:

    step      recorded step k of a trajectory, coordinate t_k (t_k = k T / L exactly for a ResNet)
    interval  the step from k to k+1
    sample    one input point of a batch
    state     a component of the state (hidden width m)
    layer     a block l = 0..L-1

Schemas of types that live in other analysis modules are registered when those modules import
(see :func:`register_available`).
"""
from __future__ import annotations

import importlib

import solvers

from .grid import SampleGrid
from .schema import Array, Attr, Mapping, Schema, register

SOLUTION = register(Schema(
    "Solution", solvers.Solution,
    fields=(
        Array("t", ("step",), coord=True, doc="time of each recorded state"),
        Array("y", ("step", "sample", "state"), doc="state y[step, sample, state]"),
        Array("step_piece", ("interval",), doc="piece (layer) of each step"),
        Attr("nfev", int), Attr("njev", int), Attr("n_steps", int), Attr("n_accepted", int),
        Attr("n_rejected", int), Attr("status", int), Attr("message", str), Attr("method", str),
        Attr("success", bool, derived=True),
        Mapping("extras"),
    ),
    doc="solvers.Solution: a trajectory, time-first, with the solver statistics",
    dtype_of="y",
))

SAMPLE_GRID = register(Schema(
    "SampleGrid", SampleGrid,
    fields=(
        Array("x", ("x",), doc="grid abscissae"),
        Array("y", ("y",), doc="grid ordinates"),
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
    return Schema(
        "Trace", Trace,
        fields=(
            Array("inputs", ("sample", "input"), doc="inputs x"),
            Array("t", ("step",), coord=True, doc="time of each recorded state"),
            Array("states", ("step", "sample", "state"), doc="h_k, h_0 = A(x)"),
            Array("layer_jacobians", ("interval", "sample", "state", "state_from"), doc="DF_k = dh_{k+1}/dh_k"),
            Array("cumulative", ("step", "sample", "state", "input"), doc="J_k = dh_k/dx"),
            Array("logabsdet", ("step", "sample"), doc="log|det| (see logdet_of)"),
            Array("sign", ("step", "sample"), doc="sign of det (0: singular)"),
            Attr("logdet_of", str),
            Array("jacobian", ("sample", "output", "input"), doc="input-output Jacobian"),
            Array("outputs", ("sample", "output"), doc="Phi(x)"),
            Array("singular_values", ("sample", "singular"), doc="singular values of the Jacobian, descending"),
            Array("step_layer", ("interval",), doc="layer of each step"),
            Array("trace_integral", ("step", "sample"), doc="int_0^t tr D_x f dt (variational traces)"),
            Attr("method", str),
            Attr("n_steps", int, derived=True),
        ),
        doc="Trace: trajectories with per-layer and cumulative Jacobians",
        dtype_of="states",
    )


#: schema makers of the result types defined in other modules
OPTIONAL_SCHEMAS = {"Trace": _trace_schema}


def register_available() -> list[str]:
    """Register the schemas whose modules import; returns their names."""
    done = []
    for name, make in OPTIONAL_SCHEMAS.items():
        try:
            schema = make()
        except ImportError:
            continue
        register(schema)
        done.append(name)
    return done


register_available()
