"""The smallest sweep file of the sweep tests: 60 circles points, a width-2 depth-2 network, one epoch."""
from __future__ import annotations

TINY = {
    "sweep": {"name": "t"},
    "dataset": {"name": "circles", "n": 60},
    "model": {"width": 2, "depth": 2},
    "train": {"epochs": 1, "batch_size": 30},
    "analyses": {"certificate": True},
}


def tiny_sweep(**tables) -> dict:
    """A fresh copy of :data:`TINY` with ``tables`` replacing its tables (None removes one)."""
    raw = {k: dict(v) for k, v in TINY.items()}
    for k, v in tables.items():
        if v is None:
            raw.pop(k, None)
        else:
            raw[k] = v
    return raw
