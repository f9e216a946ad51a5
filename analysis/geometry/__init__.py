"""Geometry of the input-output map Φ = A_out ∘ F_{L-1} ∘ … ∘ F_0 ∘ A_in of an (ε, δ) ResNet,
F_l(h) = ε h + δ σ(W_l h + b_l).

- :func:`trace`: the states h_k and the Jacobians J_k = ∂h_k/∂x by the variational recursion
  J_{k+1} = DF_k J_k, DF_k = ε I + δ diag σ'(W_k h_k + b_k) W_k; crossings and Liouville's
  log-det identity along the way.
- :func:`certify`: a homeomorphism certificate, δ K ‖W_l‖₂ < ε for every block (Banach's fixed
  point theorem inverts each block), and :func:`invert` the fixed-point inverse it licenses.
- :func:`find_critical_points` and :func:`classify`: zeros of ∇Φ for a scalar output, by Newton on
  the logit from a multi-start grid, classified by the Hessian's eigenvalues.
- :func:`jacobian_map`: singular values of ∂h_L/∂x on a grid; :func:`width_one_layers`: the fold
  of each width-one block in closed form.
"""
from analysis.geometry.tracing import Crossings, LiouvilleCheck, Trace, crossings, liouville, trace
from analysis.geometry.certificates import CertificateReport, certify, no_critical_point_proof
from analysis.geometry.inverse import Inverse, invert
from analysis.geometry.critical import (CriticalPoint, CriticalPointContradiction, CriticalPoints, classify,
                                        find_critical_points, inject_critical_point)
from analysis.geometry.width_one import LayerFold, WidthOneLayer, layer_fold, width_one_layers
from analysis.geometry.maps import JacobianMap, jacobian_map, range_jacobian

__all__ = ["trace", "Trace", "crossings", "Crossings", "liouville", "LiouvilleCheck", "certify", "CertificateReport",
           "no_critical_point_proof", "invert", "Inverse", "find_critical_points", "classify", "CriticalPoint",
           "CriticalPoints", "CriticalPointContradiction", "inject_critical_point", "width_one_layers",
           "WidthOneLayer", "layer_fold", "LayerFold", "jacobian_map", "JacobianMap", "range_jacobian"]
