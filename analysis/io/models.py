"""ResNet models in a file: every entry of the state dict (parameters and BatchNorm buffers) as a
dataset, and ``ResNet.config`` as a JSON attribute, so that :func:`read_model` rebuilds a model
whose outputs equal the original's bit for bit.

A dataset's name is the CF-valid form of its state-dict key (:func:`~analysis.io.schema.cf_name`:
``field.weight`` -> ``field_weight``), the key itself is its attribute ``torch_name`` (format
version 3; versions 1 and 2 named the datasets by the keys themselves, and are still read).

Dimensions of the parameters (m = width, n = n_in, q = n_out, L = depth):

    field.weight (layer, row, col)   field.bias (layer, row)       W_l, b_l
    inp.weight   (row, input)        inp.bias   (row,)             input map (if any)
    out.weight   (output, col)       out.bias   (output,)          read-out
    field.bn.<l>.weight, .bias, .running_mean, .running_var (row,); .num_batches_tracked ()
"""
from __future__ import annotations

import json
from typing import Any

import h5py
import torch

from odenet import ResNet

from analysis.io.schema import Dims, available_bytes, cf_name, read_dataset, register_special, set_cf, write_dataset

MODEL_TYPE = "ResNet"

_DIMS = {
    "field.weight": ("layer", "row", "col"),
    "field.bias": ("layer", "row"),
    "inp.weight": ("row", "input"),
    "inp.bias": ("row",),
    "out.weight": ("output", "col"),
    "out.bias": ("output",),
}


#: attribute of a parameter's dataset: its state-dict key (format version 3)
TORCH_NAME_ATTR = "torch_name"

_LONG_NAMES = {
    "field.weight": "block weights W_l", "field.bias": "block biases b_l",
    "inp.weight": "input map weight", "inp.bias": "input map bias",
    "out.weight": "read-out weight", "out.bias": "read-out bias",
    "weight": "BatchNorm scale", "bias": "BatchNorm shift", "running_mean": "BatchNorm running mean",
    "running_var": "BatchNorm running variance", "num_batches_tracked": "BatchNorm batches tracked",
}


def parameter_long_name(key: str) -> str:
    """The CF ``long_name`` of the state-dict entry ``key`` (``field.bn.<l>.<x>``: BatchNorm of block l)."""
    if key in _LONG_NAMES:
        return _LONG_NAMES[key]
    parts = key.split(".")
    if key.startswith("field.bn.") and len(parts) == 4 and parts[3] in _LONG_NAMES:
        return f"{_LONG_NAMES[parts[3]]} of block {parts[2]}"
    return f"model state {key}"


def parameter_datasets(group: h5py.Group) -> dict[str, str]:
    """``{state-dict key: dataset name}`` of the model stored in ``group``: by the ``torch_name``
    attributes (format version 3), else the datasets' own names (versions 1 and 2).  Index
    coordinates (no ``torch_name``) are left out of a version-3 group."""
    found = {}
    for name, ds in group.items():
        if isinstance(ds, h5py.Dataset) and TORCH_NAME_ATTR in ds.attrs:
            key = ds.attrs[TORCH_NAME_ATTR]
            found[key.decode() if isinstance(key, bytes) else str(key)] = name
    if found:
        return found
    return {name: name for name, ds in group.items() if isinstance(ds, h5py.Dataset)}


def parameter_dims(key: str, ndim: int) -> tuple[str, ...]:
    """Dimension names of the state-dict entry ``key``."""
    if key in _DIMS:
        return _DIMS[key]
    if key.startswith("field.bn."):
        return ("row",) if ndim == 1 else ()
    return tuple(f"{key.replace('.', '_')}_{i}" for i in range(ndim))


def write_model(group: h5py.Group, model: ResNet) -> None:
    """Store ``model`` into the empty ``group`` of an open file: config (JSON), train/eval mode,
    and every state-dict tensor exactly (:func:`~analysis.io.schema.write_dataset`, with
    checksums).  TypeError unless ``model`` is an :class:`odenet.ResNet`.  Atomicity is the
    caller's (:func:`analysis.io.save`)."""
    if not isinstance(model, ResNet):
        raise TypeError(f"model must be an odenet.ResNet; got {type(model).__name__}")
    group.attrs["config"] = json.dumps(model.config)
    group.attrs["training"] = int(model.training)
    dims = Dims(group, group.name)
    for key, value in model.state_dict().items():
        arr = value.detach().cpu().numpy()
        d = parameter_dims(key, arr.ndim)
        name = cf_name(key)
        dims.use(name, d, arr.shape)
        ds = write_dataset(group, name, arr, "torch", d)
        ds.attrs[TORCH_NAME_ATTR] = key
        set_cf(ds, parameter_long_name(key), "1")
        dims.attach.append((ds, d))
    dims.finish()


def expected_shapes(config: dict) -> dict[str, tuple[int, ...]]:
    """The state-dict shapes of ``ResNet.from_config(config)``, computed from the config alone
    (nothing allocated): field.weight (L, m, m), field.bias (L, m), out.weight (q, m), out.bias
    (q,), inp.weight (m, n) and inp.bias (m,) unless input_map is "identity", and per block l the
    BatchNorm's weight, bias, running_mean, running_var (m,) and num_batches_tracked () when
    batchnorm is set.  ``config`` must hold positive ints n_in, width, n_out, depth."""
    n, m, q, L = (config[k] for k in ("n_in", "width", "n_out", "depth"))
    shapes = {"field.weight": (L, m, m), "field.bias": (L, m), "out.weight": (q, m), "out.bias": (q,)}
    if config.get("input_map", "identity") != "identity":
        shapes.update({"inp.weight": (m, n), "inp.bias": (m,)})
    if config.get("batchnorm", False):
        for layer in range(L):
            for name in ("weight", "bias", "running_mean", "running_var"):
                shapes[f"field.bn.{layer}.{name}"] = (m,)
            shapes[f"field.bn.{layer}.num_batches_tracked"] = ()
    return shapes


def check_config(group: h5py.Group, config: Any) -> None:
    """Refuse (ValueError naming the file, the group, the config field and the stored shape) a
    model config that does not match the shapes of the stored datasets, or whose parameters would
    not fit in memory -- before anything is allocated.  The sizes n_in, width, n_out, depth are
    read off ``field.weight`` (L, m, m), ``out.weight`` (q, m) and ``inp.weight`` (m, n) first, so
    that a crafted ``depth = 10**9`` is refused without looping over it."""
    where = f"{group.file.filename!r}: model group {group.name!r}"
    if not isinstance(config, dict):
        raise ValueError(f"{where}: attribute config must be a JSON object; got {config!r}")
    for k in ("n_in", "width", "n_out", "depth"):
        v = config.get(k)
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{where}: config {k}={v!r} is not a positive integer")

    datasets = parameter_datasets(group)

    def stored(key: str) -> tuple[int, ...]:
        if key not in datasets:
            raise ValueError(f"{where}: model parameter {key!r} is missing from the file")
        return tuple(group[datasets[key]].shape)

    sizes = {"field.weight": ("depth", "width", "width"), "out.weight": ("n_out", "width")}
    if config.get("input_map", "identity") != "identity":
        sizes["inp.weight"] = ("width", "n_in")
    for key, names in sizes.items():
        shape = stored(key)
        want = tuple(config[k] for k in names)
        if shape != want:
            fields = ", ".join(f"{k}={config[k]}" for k in dict.fromkeys(names))
            raise ValueError(f"{where}: config {fields} does not match the stored {key!r} of shape {shape} "
                             f"(expected ({', '.join(names)}) = {want}); the file is damaged or crafted")
    expected = expected_shapes(config)
    need = 0
    for key, want in expected.items():
        ds = group[datasets[key]] if key in datasets else None
        if ds is None or tuple(ds.shape) != want:
            raise ValueError(f"{where}: model parameter {key!r} is {'missing' if ds is None else f'of shape {ds.shape}'}"
                             f", expected {want} from its config")
        need += ds.size * ds.dtype.itemsize
    avail = available_bytes()
    if 2 * need > avail:  # the model, and the state dict read into it
        raise ValueError(f"{where}: the model's parameters need {2 * need / 2**30:.3g} GiB, more than the "
                         f"{avail / 2**30:.3g} GiB of memory available")


def read_model(group: h5py.Group, device: str | torch.device | None = None) -> ResNet:
    """The model stored in ``group``: ``ResNet.from_config(config)`` with the stored state dict
    loaded (strictly: every key must be present) and the stored train/eval mode.  The config is
    checked against the stored shapes first (:func:`check_config`); ValueError naming the file
    and the group for a missing or unreadable config, or one that does not match."""
    try:
        config = json.loads(group.attrs["config"])
    except (KeyError, ValueError, TypeError) as exc:
        raise ValueError(f"{group.file.filename!r}: model group {group.name!r} has no readable config: {exc}") from None
    check_config(group, config)
    model = ResNet.from_config(config, device=device)
    names = parameter_datasets(group)
    state = {key: read_dataset(group[names[key]]) for key in model.state_dict()}
    model.load_state_dict(state, strict=True)
    model.train(bool(group.attrs.get("training", 0)))
    return model


register_special(ResNet, MODEL_TYPE, write_model, read_model)
