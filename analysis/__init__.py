"""What we learn about a network: geometry of its map, approximation limits, the continuum limit,
storage and experiments.  The sub-packages are floors; each imports only from its own floor and
the floors below (tests/test_layers.py)::

    analysis.experiments   the paper's reproduction, literature studies, sweeps
    analysis.plots         figures (matplotlib)
    analysis.approximation  analysis.continuum   side by side: neither imports the other
    analysis.geometry      traces, certificates, inverses, critical points, Jacobian maps
    analysis.io            HDF5 storage, XDMF, atomic writes and locks (alias: analysis.hdf5)
    odenet                 models, training, data
    solvers                integrators

The names users know are re-exported here (``analysis.trace``, ``analysis.certify``,
``analysis.tunnel``, ``analysis.hdf5.save``, ...).
"""
from analysis import io
from analysis.geometry import *  # noqa: F401,F403
from analysis.approximation import *  # noqa: F401,F403
from analysis.continuum import *  # noqa: F401,F403
from analysis.experiments import *  # noqa: F401,F403
from analysis import geometry, approximation, continuum, experiments, renamed  # noqa: F401
from analysis.geometry import __all__ as _geometry
from analysis.approximation import __all__ as _approximation
from analysis.continuum import __all__ as _continuum
from analysis.experiments import __all__ as _experiments


#: the storage package under the name scripts have used since 0.1: ``analysis.hdf5.save(...)``,
#: ``from analysis.hdf5 import load``, ``import analysis.hdf5.inspect``; the flat module paths of
#: 0.1 (``analysis.tracing``, ...) stay importable too (analysis/renamed.py)
hdf5 = io
renamed.install()

__all__ = ["io", "hdf5", "geometry", "approximation", "continuum", "experiments",
           *_geometry, *_approximation, *_continuum, *_experiments]
