"""ResNet models in a file: every entry of the state dict (parameters and BatchNorm buffers) as a
dataset named by its state-dict key, and ``ResNet.config`` as a JSON attribute, so that
:func:`read_model` rebuilds a model whose outputs equal the original's bit for bit.

Dimensions of the parameters (m = width, n = n_in, q = n_out, L = depth):

    field.weight (layer, row, col)   field.bias (layer, row)       W_l, b_l
    inp.weight   (row, input)        inp.bias   (row,)             input map (if any)
    out.weight   (output, col)       out.bias   (output,)          read-out
    field.bn.<l>.weight, .bias, .running_mean, .running_var (row,); .num_batches_tracked ()
"""
from __future__ import annotations

import json

import h5py

from odenet import ResNet

from .schema import _Dims, _read_dataset, _write_dataset, register_special

MODEL_TYPE = "ResNet"

_DIMS = {
    "field.weight": ("layer", "row", "col"),
    "field.bias": ("layer", "row"),
    "inp.weight": ("row", "input"),
    "inp.bias": ("row",),
    "out.weight": ("output", "col"),
    "out.bias": ("output",),
}


def parameter_dims(key: str, ndim: int) -> tuple[str, ...]:
    """Dimension names of the state-dict entry ``key``."""
    if key in _DIMS:
        return _DIMS[key]
    if key.startswith("field.bn."):
        return ("row",) if ndim == 1 else ()
    return tuple(f"{key.replace('.', '_')}_{i}" for i in range(ndim))


def write_model(group: h5py.Group, model: ResNet) -> None:
    """Store ``model``: config (JSON), train/eval mode, and every state-dict tensor exactly."""
    if not isinstance(model, ResNet):
        raise TypeError(f"model must be an odenet.ResNet; got {type(model).__name__}")
    group.attrs["config"] = json.dumps(model.config)
    group.attrs["training"] = int(model.training)
    dims = _Dims(group, group.name)
    for key, value in model.state_dict().items():
        arr = value.detach().cpu().numpy()
        d = parameter_dims(key, arr.ndim)
        dims.use(key, d, arr.shape)
        dims.attach.append((_write_dataset(group, key, arr, "torch", d), d))
    dims.finish()


def read_model(group: h5py.Group, device=None) -> ResNet:
    """The model stored in ``group``: ``ResNet.from_config(config)`` with the stored state dict
    loaded (strictly: every key must be present) and the stored train/eval mode."""
    config = json.loads(group.attrs["config"])
    model = ResNet.from_config(config, device=device)
    state = {}
    for key in model.state_dict():
        if key not in group:
            raise ValueError(f"group {group.name!r}: model parameter {key!r} is missing from the file")
        state[key] = _read_dataset(group[key])
    model.load_state_dict(state, strict=True)
    model.train(bool(group.attrs.get("training", 0)))
    return model


register_special(ResNet, MODEL_TYPE, write_model, read_model)
