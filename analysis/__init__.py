"""What we learn: trajectories with Jacobians, certificates, critical points, tunnels, bounds,
continuum-limit diagnostics, HDF5 export and plots."""

# geometry of the input-output map (trace, certificates, inverses, critical points, maps)
from .tracing import Crossings, LiouvilleCheck, Trace, crossings, liouville, trace  # noqa: E402
from .certificates import CertificateReport, certify, no_critical_point_proof  # noqa: E402
from .inverse import Inverse, invert  # noqa: E402
from .critical import (CriticalPoint, CriticalPointContradiction, CriticalPoints, classify,  # noqa: E402
                       find_critical_points, inject_critical_point)
from .width_one import LayerFold, WidthOneLayer, layer_fold, width_one_layers  # noqa: E402
from .maps import JacobianMap, jacobian_map, range_jacobian  # noqa: E402

# the tunnel effect and approximation limits (analysis.tunnel is the function; the module stays
# importable as `from analysis.tunnel import TunnelResult`)
from .tunnel import TunnelResult, level_sets, tunnel  # noqa: E402
from .bounds import (ModelBounds, MonotoneFit, critical_weight_norm, euler_ode_bound, extremum_depth,  # noqa: E402
                     isotonic_bound, model_bounds, monotone_fit, regime_lower_bound, resnet_mlp_bound,
                     sup_lower_bound, target_sup_bound)
from .regime import RegimeRun, data_window, regime_sweep  # noqa: E402

# continuum-limit diagnostics: observed orders, refinement and depth studies, work-precision,
# solver swap, weight regularity, reverse-Euler reconstruction, initialisation scaling
from .convergence import (ConvergenceStudy, OrderFit, ReferenceAccuracyWarning, WorkPrecision,  # noqa: E402
                          depth_study, fit_order, refinement_study, richardson_orders, work_precision)
from .depth_regularity import (DepthSeries, RegularityExponents, ReverseEuler, SolverSwap,  # noqa: E402
                               WeightRegularity, regularity_exponents, reverse_euler, reverse_euler_study,
                               solver_swap, swap_study, weight_regularity)
from .depth_weights import iid_weights, load_weights, smooth_weights  # noqa: E402
from .init_scaling import InitScaling, init_scaling_study  # noqa: E402
# neural ODEs: forward-then-backward reconstruction, and the trained flow evaluated as ResNets of depth L
from .reconstruction import Reconstruction, reconstruction_error  # noqa: E402
from .ode_swap import DepthSwap, depth_swap  # noqa: E402

# HDF5 export (docs/hdf5-format.md): analysis.hdf5.save / append / load / load_model / list_records
from . import hdf5  # noqa: E402

# parameter sweeps (docs/sweeps.md): TOML files, resumable, local processes or Dask
from .sweep import SweepResult, SweepSpec, load_spec, run_sweep  # noqa: E402
