"""What a network of a given regime cannot approximate.

- :func:`tunnel`: the tunnel effect. A map without critical points has no bounded component of a
  super-level set {Φ ≥ c} inside the data window; a target whose level set is a closed curve is then
  missed along a tunnel joining its inside to the window's edge (width, direction, exit point).
- Lower bounds (:mod:`analysis.approximation.bounds`): for a target with an isolated extremum of
  depth d, any map without a critical point in the window errs by at least a multiple of d in the
  sup norm; the empirical form uses the sample's own isotonic fit.
- :func:`regime_sweep`: train and measure across (ε, δ) regimes.
"""
from analysis.approximation.tunnel_effect import TunnelResult, level_sets, tunnel
from analysis.approximation.bounds import (ModelBounds, MonotoneFit, critical_weight_norm, euler_ode_bound,
                                           extremum_depth, isotonic_bound, model_bounds, monotone_fit,
                                           regime_lower_bound, resnet_mlp_bound, sup_lower_bound, target_sup_bound)
from analysis.approximation.regime import RegimeRun, data_window, regime_sweep

__all__ = ["tunnel", "TunnelResult", "level_sets", "ModelBounds", "MonotoneFit", "critical_weight_norm",
           "euler_ode_bound", "extremum_depth", "isotonic_bound", "model_bounds", "monotone_fit",
           "regime_lower_bound", "resnet_mlp_bound", "sup_lower_bound", "target_sup_bound", "RegimeRun",
           "data_window", "regime_sweep"]
