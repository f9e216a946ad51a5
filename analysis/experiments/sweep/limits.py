"""Size limits of a sweep, checked by arithmetic before anything is expanded or allocated.

- the number of runs: the product of the grid axes' lengths times ``random.samples`` (the
  axes are counted, not listed: ``range`` by :func:`len` of a Python range, ``linspace`` /
  ``logspace`` by their count), refused above ``max_runs``;
- the memory of one task (an ensemble of runs trained together), estimated from the
  architecture and the training settings, refused above the memory available now.

The memory estimate is a lower bound of what training needs (float64 everywhere)::

    P      = n_in·w + w                       input map (none for input_map = "identity")
           + L·(w² + w)                       the L blocks' weights and biases
           + 4·L·w  (batchnorm only)          scale, shift, running mean and variance
           + w + 1                            readout
    bytes  = 8 · m · (4 P                     parameters, gradients, Adam's two moments
                      + 3 B·w·(L + 1)         states, pre-activations, activations of a batch
                      + N·(n_in + 1))         the data set (inputs and targets)

with width w, depth L, batch B = min(batch_size, N), N data points and m runs trained
together (``ensemble_size``, or the group's size if smaller).  ``depth = 10**9`` is ~ 10**11
bytes and is refused in the sweep file's validation, before a model exists.
"""
from __future__ import annotations

BYTES = 8  # float64


def model_parameters(n_in: int, model: dict) -> int:
    """Number of scalars of a ResNet with these settings (module docstring's P; counted by
    :meth:`odenet.ResNet.parameter_count`, which the ResNet's own memory check uses)."""
    from odenet import ResNet

    return ResNet.parameter_count(n_in, int(model["width"]), 1, int(model["depth"]), input_map=model["input_map"],
                                  batchnorm=bool(model.get("batchnorm")))


def task_memory(n_in: int, n_data: int, model: dict, train: dict, members: int) -> int:
    """Estimated bytes to train ``members`` runs of this architecture together (module docstring)."""
    w, depth = int(model["width"]), int(model["depth"])
    batch = min(int(train["batch_size"]), max(1, n_data))
    per_run = 4 * model_parameters(n_in, model) + 3 * batch * w * (depth + 1) + n_data * (n_in + 1)
    return BYTES * max(1, members) * per_run
