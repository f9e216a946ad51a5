"""The continuum limit: does a depth-L ResNet converge to the solution of its ODE as L → ∞?

- Observed orders: the error e(h) ≈ C h^p of a solve with step h = T/L is fitted on a refinement
  ladder (:func:`refinement_study`, :func:`fit_order`, Richardson estimates without a reference).
- Depth studies: networks of depth L built from one weight function W(t), t_k = kT/L
  (:func:`depth_study`, :func:`work_precision`).
- Regularity of trained weights in depth: increments max_k ‖W_{k+1} - W_k‖ ~ L^{-α} and their
  exponents (:func:`weight_regularity`, :func:`regularity_exponents`).
- Reverse-Euler reconstruction (:func:`reverse_euler`, :func:`reconstruction_error`), the solver
  swap (:func:`solver_swap`, :func:`depth_swap`) and initialisation scaling h ← h + L^{-β} f
  (:func:`init_scaling_study`).
"""
from analysis.continuum.convergence import (ConvergenceStudy, OrderFit, ReferenceAccuracyWarning, WorkPrecision,
                                            depth_study, fit_order, refinement_study, richardson_orders,
                                            work_precision)
from analysis.continuum.depth_regularity import (DepthSeries, RegularityExponents, ReverseEuler, SolverSwap,
                                                 WeightRegularity, regularity_exponents, reverse_euler,
                                                 reverse_euler_study, solver_swap, swap_study, weight_regularity)
from analysis.continuum.depth_weights import iid_weights, load_weights, smooth_weights
from analysis.continuum.init_scaling import InitScaling, init_scaling_study
from analysis.continuum.reconstruction import Reconstruction, reconstruction_error
from analysis.continuum.ode_swap import DepthSwap, depth_swap
from analysis.continuum import records  # noqa: F401  (registers the HDF5 schemas of the records above)

__all__ = ["ConvergenceStudy", "OrderFit", "ReferenceAccuracyWarning", "WorkPrecision", "depth_study", "fit_order",
           "refinement_study", "richardson_orders", "work_precision", "DepthSeries", "RegularityExponents",
           "ReverseEuler", "SolverSwap", "WeightRegularity", "regularity_exponents", "reverse_euler",
           "reverse_euler_study", "solver_swap", "swap_study", "weight_regularity", "iid_weights", "load_weights",
           "smooth_weights", "InitScaling", "init_scaling_study", "Reconstruction", "reconstruction_error",
           "DepthSwap", "depth_swap"]
