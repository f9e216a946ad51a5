"""Helpers shared by the HDF5 tests: exact (bitwise) comparison of arrays and tensors, and a
record holding a mapping."""
from dataclasses import dataclass

import numpy as np
import torch

from analysis.io.schema import Mapping, Schema, register


def as_np(a):
    return a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)


def bit_equal(a, b) -> bool:
    """Same type (tensor/ndarray), dtype, shape and bytes (so NaN payloads and -0.0 count)."""
    if type(a) is not type(b):
        return False
    a, b = as_np(a), as_np(b)
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


@dataclass
class Tagged:
    """A test record made of one free-form mapping (the schema field kind ``Mapping``): arrays
    are stored as datasets of a subgroup, other values as JSON attributes."""

    extras: dict


register(Schema("_TestTagged", Tagged, fields=(Mapping("extras"),)))
