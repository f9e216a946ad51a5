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

from .schema import Dims, available_bytes, read_dataset, register_special, write_dataset

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
    dims = Dims(group, group.name)
    for key, value in model.state_dict().items():
        arr = value.detach().cpu().numpy()
        d = parameter_dims(key, arr.ndim)
        dims.use(key, d, arr.shape)
        dims.attach.append((write_dataset(group, key, arr, "torch", d), d))
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


def check_config(group: h5py.Group, config) -> None:
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

    def stored(key: str) -> tuple[int, ...]:
        if key not in group or not isinstance(group[key], h5py.Dataset):
            raise ValueError(f"{where}: model parameter {key!r} is missing from the file")
        return tuple(group[key].shape)

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
        ds = group[key] if key in group else None
        if ds is None or not isinstance(ds, h5py.Dataset) or tuple(ds.shape) != want:
            raise ValueError(f"{where}: model parameter {key!r} is {'missing' if ds is None else f'of shape {ds.shape}'}"
                             f", expected {want} from its config")
        need += ds.size * ds.dtype.itemsize
    avail = available_bytes()
    if 2 * need > avail:  # the model, and the state dict read into it
        raise ValueError(f"{where}: the model's parameters need {2 * need / 2**30:.3g} GiB, more than the "
                         f"{avail / 2**30:.3g} GiB of memory available")


def read_model(group: h5py.Group, device=None) -> ResNet:
    """The model stored in ``group``: ``ResNet.from_config(config)`` with the stored state dict
    loaded (strictly: every key must be present) and the stored train/eval mode.  The config is
    checked against the stored shapes first (:func:`check_config`)."""
    try:
        config = json.loads(group.attrs["config"])
    except (KeyError, ValueError, TypeError) as exc:
        raise ValueError(f"{group.file.filename!r}: model group {group.name!r} has no readable config: {exc}") from None
    check_config(group, config)
    model = ResNet.from_config(config, device=device)
    state = {key: read_dataset(group[key]) for key in model.state_dict()}
    model.load_state_dict(state, strict=True)
    model.train(bool(group.attrs.get("training", 0)))
    return model


register_special(ResNet, MODEL_TYPE, write_model, read_model)
