"""HDF5 schemas of the continuum-limit records (analysis.continuum.convergence, analysis.continuum.depth_regularity,
analysis.continuum.init_scaling), registered with :mod:`analysis.io` when this module imports (the
hdf5 package imports it, so ``analysis.io.save`` / ``load`` know these types).

Dimension names:

    levels      a refinement level k: its coordinate is n_k (steps, or depth L_k); ``h`` along it
    increment   the pair of consecutive levels (k, k+1)
    triple      the triple of consecutive levels (k, k+1, k+2) of a Richardson order
    run         one solve of a work-precision or solver-swap table
    depths      a network depth L of a family (the coordinate)
    layer       a block l = 0..L-1;  step: a hidden state h_0..h_L
    weight_kind, scaling   the pairings of an initialisation-scaling study

Order fits are nested ``OrderFit`` groups (attributes only).
"""
from __future__ import annotations

from analysis.continuum.convergence import ConvergenceStudy, OrderFit, WorkPrecision
from analysis.continuum.depth_regularity import DepthSeries, RegularityExponents, ReverseEuler, SolverSwap, WeightRegularity
from analysis.io.schema import Array, Attr, Json, Record, Schema, Strings, register
from analysis.continuum.init_scaling import InitScaling

_FIT = (Attr("order", float), Attr("log_constant", float), Attr("stderr", float), Attr("ci_low", float),
        Attr("ci_high", float), Attr("confidence", float), Attr("n_points", int), Attr("residual_std", float))

SCHEMAS = (
    Schema("OrderFit", OrderFit, fields=_FIT, doc="least-squares power law log e = log C + p log h"),
    Schema("ConvergenceStudy", ConvergenceStudy, fields=(
        Attr("kind", str), Attr("method", str), Attr("reference", str), Attr("reference_error", float),
        Array("levels", ("levels",), doc="steps n_k (or depth L_k)"),
        Array("h", ("levels",), coord=True, doc="step size (t1 - t0) / n_k"),
        Array("nfev", ("levels",), doc="field evaluations"),
        Array("err_sup", ("levels",), doc="max_ij |y_ij - y*_ij|"),
        Array("err_rms", ("levels",), doc="((1/N) sum_i |y_i - y*_i|^2)^(1/2)"),
        Array("resolved", ("levels",), doc="error above 10x the reference accuracy"),
        Array("increment_sup", ("increment",), doc="|y_hk - y_hk+1|_sup"),
        Array("increment_rms", ("increment",), doc="|y_hk - y_hk+1|_rms"),
        Array("richardson", ("triple",), doc="log(d_k/d_k+1)/log(h_k/h_k+1)"),
        Record("fit_sup"), Record("fit_rms"), Json("attrs"),
    ), doc="errors of a refinement or depth study with the observed order", dtype_of="err_sup"),
    Schema("WorkPrecision", WorkPrecision, fields=(
        Strings("method", ("run",), doc="solver of each run"), Array("setting", ("run",), doc="steps or rtol"),
        Array("nfev", ("run",), doc="field evaluations"), Array("err_sup", ("run",), doc="max_ij |y_ij - y*_ij|"),
        Array("err_rms", ("run",), doc="((1/N) sum_i |y_i - y*_i|^2)^(1/2)"),
        Attr("reference", str), Attr("reference_error", float), Json("slopes"), Json("attrs"),
    ), doc="error against field evaluations per method", dtype_of="err_sup"),
    Schema("DepthSeries", DepthSeries, fields=(
        Attr("quantity", str), Array("depths", ("depths",), doc="network depth L"),
        Array("value_sup", ("depths",), doc="the quantity in the sup norm"),
        Array("value_rms", ("depths",), doc="the quantity in the rms norm"), Record("fit_sup"), Record("fit_rms"),
    ), doc="a distance against depth with its fitted exponent", dtype_of="value_sup"),
    Schema("WeightRegularity", WeightRegularity, fields=(
        Attr("depth", int), Attr("norm", str), Array("norms", ("layer",), doc="|W_l|"),
        Array("increments", ("increment",), doc="|W_l+1 - W_l|"), Attr("max_norm", float),
        Attr("max_increment", float), Attr("total_variation", float), Attr("quadratic_variation", float),
        Attr("rms_increment", float),
    ), doc="regularity of block weights across depth", dtype_of="norms"),
    Schema("RegularityExponents", RegularityExponents, fields=(
        Array("depths", ("depths",), doc="network depth L"), Attr("norm", str),
        Array("max_norm", ("depths",), doc="max_l |W_l|"),
        Array("max_increment", ("depths",), doc="max_l |W_l+1 - W_l|"),
        Array("rms_increment", ("depths",), doc="rms over l of |W_l+1 - W_l|"),
        Array("quadratic_variation", ("depths",), doc="sum_l |W_l+1 - W_l|^2"),
        Record("fit_max_norm"), Record("fit_max_increment"),
        Record("fit_rms_increment"), Record("fit_quadratic_variation"),
    ), doc="weight regularity against depth with fitted exponents", dtype_of="max_norm"),
    Schema("ReverseEuler", ReverseEuler, fields=(
        Attr("depth", int), Attr("err_sup", float), Attr("err_rms", float),
        Array("layer_err_sup", ("step",), doc="|x^_l - h_l|_sup"),
        Array("layer_err_rms", ("step",), doc="|x^_l - h_l|_rms"),
    ), doc="reverse-Euler reconstruction error per layer", dtype_of="layer_err_rms"),
    Schema("SolverSwap", SolverSwap, fields=(
        Attr("depth", int), Strings("methods", ("run",), doc="solver of each run"),
        Array("refine", ("run",), doc="sub-steps per layer"),
        Array("nfev", ("run",), doc="field evaluations"), Array("change_sup", ("run",), doc="|Phi_swap - Phi|_sup"),
        Array("change_rms", ("run",), doc="|Phi_swap - Phi|_rms"),
        Array("accuracy", ("run",), doc="accuracy of the swapped model"), Attr("base_accuracy", float),
    ), doc="a network evaluated with other solvers of its ODE", dtype_of="change_sup"),
    Schema("InitScaling", InitScaling, fields=(
        Strings("weights", ("weight_kind",), doc="weight initialisation"),
        Strings("scalings", ("scaling",), doc="step-size scaling"),
        Array("depths", ("depths",), doc="network depth L"),
        Array("output_norm", ("weight_kind", "scaling", "depths"), doc="mean output norm at initialisation"),
        Array("residual_norm", ("weight_kind", "scaling", "depths"), doc="mean residual norm at initialisation"),
        Array("output_exponent", ("weight_kind", "scaling"), doc="fitted slope of output_norm against L"),
        Array("residual_exponent", ("weight_kind", "scaling"), doc="fitted slope of residual_norm against L"),
        Array("residual_ci_low", ("weight_kind", "scaling"), doc="lower end of the 95% interval of residual_exponent"),
        Array("residual_ci_high", ("weight_kind", "scaling"), doc="upper end of the 95% interval of residual_exponent"),
        Attr("width", int), Attr("n_samples", int), Attr("seed", int),
    ), doc="norms at initialisation against depth per scaling regime", dtype_of="output_norm"),
)

for _schema in SCHEMAS:
    register(_schema)
