"""Singular-value and log|det| maps of ResNet Jacobians over a grid of the input plane.

For grid points x and a layer range start..stop the Jacobian is

    J(x) = DF_{stop-1} ⋯ DF_start (h_start(x))        (start given: the partial block map)
    J(x) = DF_{stop-1} ⋯ DF_0 DA(x) = ∂h_stop/∂x      (start None: from the input)
    J(x) = w_out^T ∂h_L/∂x (· σ_out')                   (output=True: the whole network ∇Φ)

computed batched by the forward variational recursion of :mod:`analysis.geometry.tracing` (the one
generalised-Euler kernel with tangents, keeping only the last J: no per-point loop, no autograd).  σ_min, σ_max are its extreme singular values; log|det| and sign are defined
for square J (nan / 0 otherwise).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from numpy.typing import ArrayLike

from odenet import ResNet
from odenet.kernel import Compile, check_compile
from solvers.validation import check_positive_int

from analysis.geometry.critical import check_box
from analysis.geometry.tracing import block_run, check_resnet_eval, input_jacobian, output_jacobian, singular_values, slogdet
from analysis.io.schema import Array, Attr, Schema, register


@dataclass
class JacobianMap:
    """Result of :func:`jacobian_map` on an ny × nx grid (rows: second coordinate).

    ``x`` (nx,), ``y`` (ny,): the axes; ``points`` (ny·nx, 2): the grid, row-major over (y, x);
    ``sigma_min``, ``sigma_max``, ``logabsdet``, ``sign``: (ny, nx); ``start``, ``stop`` (layers),
    ``output`` (whether the readout is included)."""

    x: torch.Tensor
    y: torch.Tensor
    points: torch.Tensor
    sigma_min: torch.Tensor
    sigma_max: torch.Tensor
    logabsdet: torch.Tensor
    sign: torch.Tensor
    start: int | None
    stop: int
    output: bool


def range_jacobian(resnet: ResNet, x: torch.Tensor, *, start: int | None = None, stop: int | None = None,
                   refine: int = 1, output: bool = False, compile: Compile = False) -> torch.Tensor:
    """The batched Jacobian J(x) of the module docstring, shape (batch, rows, cols).

    ``compile="native"`` runs the recursion as one C++ loop over cache-sized chunks of the batch
    (:mod:`odenet.native`: float32/float64 on the CPU, within a few ulps of the default eager
    path, faster by the measured factor in docs/benchmarks.md); ``compile=True`` runs eagerly.
    """
    check_resnet_eval(resnet, "resnet")
    check_compile(compile, resnet.activation, resnet.field.weight)
    L = resnet.depth
    stop = L if stop is None else stop
    lo = 0 if start is None else start
    if not (isinstance(lo, int) and isinstance(stop, int) and 0 <= lo <= stop <= L):
        raise ValueError(f"start, stop must satisfy 0 <= start <= stop <= {L}; got start={start!r}, stop={stop!r}")
    if output and stop != L:
        raise ValueError(f"output=True needs stop == depth ({L}); got stop={stop}")
    check_positive_int("refine", refine)
    with torch.no_grad():
        h, J = input_jacobian(resnet, x)
        if start is not None:
            if start > 0:
                h = block_run(resnet, h, J[:, :, :0], refine, 0, start * refine, record="end",
                              compile=compile).states
            J = torch.eye(resnet.width, dtype=x.dtype, device=x.device).expand(x.shape[0], -1, -1)
        run = block_run(resnet, h, J, refine, lo * refine, stop * refine, record="end", compile=compile)
        assert run.tangents is not None  # tangents given, tangents returned
        h, J = run.states, run.tangents
        if output:
            J = output_jacobian(resnet, h, J)[1]
        return J


def jacobian_map(resnet: ResNet, box: ArrayLike = ((-1.0, 1.0), (-1.0, 1.0)),
                 resolution: int | tuple[int, int] = 200, *, start: int | None = None,
                 stop: int | None = None, refine: int = 1, output: bool = False,
                 compile: Compile = False) -> JacobianMap:
    """σ_min, σ_max, log|det| and sign of J(x) (module docstring) on a grid over ``box`` (2, 2)
    with ``resolution`` nodes per axis (int or (nx, ny)); needs a model with n_in = 2.
    ``compile``: see :func:`range_jacobian` (``"native"``: the fast C++ recursion)."""
    check_resnet_eval(resnet, "resnet")
    check_compile(compile, resnet.activation, resnet.field.weight)
    dtype = resnet.field.weight.dtype
    box = check_box(box, dtype, resnet.field.weight.device)
    if box.shape[0] != 2 or resnet.n_in != 2:
        raise ValueError(f"jacobian_map is over the input plane: box (2, 2) and n_in = 2; got box "
                         f"{tuple(box.shape)}, n_in={resnet.n_in}")
    nx, ny = (resolution, resolution) if isinstance(resolution, int) else tuple(resolution)
    check_positive_int("resolution[0]", nx)
    check_positive_int("resolution[1]", ny)
    dev = resnet.field.weight.device
    ax = torch.linspace(float(box[0, 0]), float(box[0, 1]), nx, dtype=dtype, device=dev)
    ay = torch.linspace(float(box[1, 0]), float(box[1, 1]), ny, dtype=dtype, device=dev)
    Y, X = torch.meshgrid(ay, ax, indexing="ij")
    pts = torch.stack([X.reshape(-1), Y.reshape(-1)], 1)
    J = range_jacobian(resnet, pts, start=start, stop=stop, refine=refine, output=output, compile=compile)
    sv = singular_values(J)
    if J.shape[-1] == J.shape[-2]:
        sign, lad = slogdet(J)
    else:
        lad = J.new_full((J.shape[0],), float("nan"))
        sign = J.new_zeros(J.shape[0])
    shape = (ny, nx)
    return JacobianMap(x=ax, y=ay, points=pts, sigma_min=sv[:, -1].reshape(shape), sigma_max=sv[:, 0].reshape(shape),
                       logabsdet=lad.reshape(shape), sign=sign.reshape(shape), start=start,
                       stop=resnet.depth if stop is None else stop, output=output)


# --- storage: the HDF5 schemas of this module's records, registered on import (docs/hdf5-format.md) ---
def _jacobian_map_schema() -> Schema:
    return Schema("JacobianMap", JacobianMap, fields=(
        Array("x", ("x",), doc="grid abscissae", axis="X"), Array("y", ("y",), doc="grid ordinates", axis="Y"),
        Array("points", ("sample", "input"), doc="grid points, row-major over (y, x)"),
        Array("sigma_min", ("y", "x"), doc="smallest singular value of the Jacobian"),
        Array("sigma_max", ("y", "x"), doc="largest singular value of the Jacobian"),
        Array("logabsdet", ("y", "x"), doc="log|det| of the Jacobian"),
        Array("sign", ("y", "x"), doc="sign of det of the Jacobian (0: singular)"),
        Attr("start", int), Attr("stop", int), Attr("output", bool),
    ), doc="singular values and log|det| of the Jacobian over a grid of the plane", dtype_of="sigma_min")


register(_jacobian_map_schema())
