"""How to integrate: fixed-step method objects (tableau-driven explicit Runge-Kutta, the
generalised Euler step), adaptive methods (torchdiffeq), float64 reference solutions (scipy),
the time grid and the Solution record.

solvers knows nothing of ResNets: a ResNet is one client among others (see odenet).
"""
from .fields import Field, PiecewiseField, all_pieces, field_span, fixed_grid, is_piecewise, split_pieces
from .fixed import euler_iteration
from .methods import FIXED_METHODS, ExplicitRK, GeneralisedEuler, get_method
from .adaptive import ADAPTIVE_METHODS
from .grid import TimeGrid
from .reference import REFERENCE_METHODS
from .solution import FAILED, SUCCESS, Solution
from .dispatch import METHODS, solve
from . import validation

__all__ = ["solve", "euler_iteration", "ExplicitRK", "GeneralisedEuler", "get_method", "Solution", "TimeGrid",
           "Field", "PiecewiseField", "is_piecewise", "field_span", "fixed_grid", "split_pieces", "all_pieces",
           "SUCCESS", "FAILED", "METHODS", "FIXED_METHODS", "ADAPTIVE_METHODS", "REFERENCE_METHODS", "validation"]
