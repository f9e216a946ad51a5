"""What we learn about a network: geometry of its map, approximation limits, the continuum limit,
storage and experiments.  The sub-packages are floors; each imports only from the floors below::

    analysis.experiments   the paper's reproduction, literature studies, sweeps
    analysis.plots         figures (matplotlib)
    analysis.geometry  analysis.approximation  analysis.continuum
    analysis.io            HDF5 storage, XDMF, atomic writes and locks (alias: analysis.hdf5)
    odenet                 models, training, data
    solvers                integrators

The names users know are re-exported here (``analysis.trace``, ``analysis.certify``,
``analysis.tunnel``, ``analysis.hdf5.save``, ...).
"""
import importlib as _importlib
import sys as _sys
from importlib import abc as _abc, util as _util

from analysis import io
from analysis.geometry import *  # noqa: F401,F403
from analysis.approximation import *  # noqa: F401,F403
from analysis.continuum import *  # noqa: F401,F403
from analysis.experiments import *  # noqa: F401,F403
from analysis import geometry, approximation, continuum, experiments  # noqa: F401
from analysis.geometry import __all__ as _geometry
from analysis.approximation import __all__ as _approximation
from analysis.continuum import __all__ as _continuum
from analysis.experiments import __all__ as _experiments



class _HDF5Alias(_abc.MetaPathFinder, _abc.Loader):
    """``analysis.hdf5`` and ``analysis.hdf5.<module>`` are the very module objects of
    ``analysis.io`` (one registry of schemas, not a second copy)."""

    def find_spec(self, name, path=None, target=None):
        if name.startswith("analysis.hdf5."):
            return _util.spec_from_loader(name, self)
        return None

    def create_module(self, spec):
        return _importlib.import_module("analysis.io." + spec.name[len("analysis.hdf5."):])

    def exec_module(self, module):
        pass  # already executed under its own name


#: the storage package under the name scripts have used since 0.1: ``analysis.hdf5.save(...)``,
#: ``from analysis.hdf5 import load``, ``import analysis.hdf5.inspect``
hdf5 = io
_sys.modules.setdefault("analysis.hdf5", io)
if not any(isinstance(f, _HDF5Alias) for f in _sys.meta_path):
    _sys.meta_path.insert(0, _HDF5Alias())

__all__ = ["io", "hdf5", "geometry", "approximation", "continuum", "experiments",
           *_geometry, *_approximation, *_continuum, *_experiments]
