"""Figures (matplotlib): one module per experiment family (continuum, paper, literature).

matplotlib is imported lazily, by :func:`pyplot` inside the plotting functions, so importing
analysis never loads it."""
from __future__ import annotations

from types import ModuleType


def pyplot() -> ModuleType:
    """``matplotlib.pyplot``, on the Agg backend unless a backend was chosen already (so that no
    figure needs a display)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


__all__ = ["pyplot"]
