"""The schemas of the result types: for each field, its kind and its dimension names.

Dimension names used across the format:

    step      recorded step k of a trajectory, coordinate t_k (t_k = k T / L exactly for a ResNet)
    interval  the step from k to k+1
    sample    one input point of a batch
    state     a component of the state (hidden width m)
    layer     a block l = 0..L-1

Storage knows the types of the floors below it (solvers' Solution, odenet's training results and
data sets, and the models in models.py).  Every analysis record declares its schema beside its
dataclass and registers it when its module imports; ``import analysis`` imports them all.
"""
from __future__ import annotations

import solvers
from odenet.datasets import Dataset
from odenet.ensemble import EnsembleResult
from odenet.training import TrainResult

from analysis.io.grid import SampleGrid
from analysis.io.schema import Array, Attr, Json, Record, RecordList, Schema, register

SOLUTION = register(Schema(
    "Solution", solvers.Solution,
    fields=(
        Array("t", ("step",), coord=True, doc="time of each recorded state"),
        Array("y", ("step", "sample", "state"), doc="state y[step, sample, state]"),
        Array("step_piece", ("interval",), doc="piece (layer) of each step"),
        Attr("nfev", int), Attr("njev", int), Attr("n_steps", int), Attr("n_accepted", int),
        Attr("n_rejected", int), Attr("status", int), Attr("message", str), Attr("method", str),
        Attr("success", bool, derived=True),
    ),
    doc="solvers.Solution: a trajectory, time-first, with the solver statistics",
    dtype_of="y",
))

SAMPLE_GRID = register(Schema(
    "SampleGrid", SampleGrid,
    fields=(
        Array("x", ("x",), doc="grid abscissae", axis="X"),
        Array("y", ("y",), doc="grid ordinates", axis="Y"),
        Array("points", ("sample", "input"), doc="grid points, x fastest"),
    ),
    doc="a rectangular grid of input points (odenet trace --grid)",
))


# --- the records of odenet (a floor below storage); models are written by models.py ----------------
def _train_result_schema() -> Schema:
    return Schema("TrainResult", TrainResult, fields=(
        Record("model", doc="the trained model (a ResNet group)"),
        Array("train_loss", ("epoch",), doc="loss on the training split after each epoch"),
        Array("val_loss", ("epoch",), doc="loss on the validation split after each epoch"),
        Array("batch_loss", ("epoch",), doc="mean mini-batch loss during each epoch"),
        Array("train_accuracy", ("epoch",), doc="accuracy on the training split after each epoch"),
        Array("val_accuracy", ("epoch",), doc="accuracy on the validation split after each epoch"),
        Attr("best_epoch", int), Attr("seed", int), Json("seeds_tried"), Json("best_val_per_seed"),
        Json("metrics"), Json("config"), Attr("epochs", int, derived=True),
    ), doc="a training run: the model and its loss histories", dtype_of="model")


def _dataset_schema() -> Schema:
    return Schema("Dataset", Dataset, fields=(
        Attr("name", str), Attr("seed", int), Json("params"),
        Array("x_train", ("train", "input"), doc="training inputs (standardised)"),
        Array("y_train", ("train", "target"), doc="training targets"),
        Array("x_val", ("val", "input"), doc="validation inputs (standardised)"),
        Array("y_val", ("val", "target"), doc="validation targets"),
        Array("x_test", ("test", "input"), doc="test inputs (standardised)"),
        Array("y_test", ("test", "target"), doc="test targets"),
        Array("mean", ("input",), doc="standardisation x_std = (x_raw - mean) / std"),
        Array("std", ("input",), doc="standardisation scale std"),
        Array("centre", ("input",), doc="centre of the enclosed class"),
    ), doc="a labelled data set with its train/val/test splits", dtype_of="x_train")


def _ensemble_schema() -> Schema:
    return Schema("EnsembleResult", EnsembleResult, fields=(
        RecordList("members", doc="one TrainResult per member"), Json("seeds"),
        Array("train_loss", ("member", "epoch"), doc="training loss per member after each epoch"),
        Array("val_loss", ("member", "epoch"), doc="validation loss per member after each epoch"),
        Array("batch_loss", ("member", "epoch"), doc="mean mini-batch loss per member during each epoch"),
        Array("train_accuracy", ("member", "epoch"), doc="training accuracy per member after each epoch"),
        Array("val_accuracy", ("member", "epoch"), doc="validation accuracy per member after each epoch"),
        Array("best_epoch", ("member",), doc="epoch of the lowest validation loss per member"), Json("config"),
    ), doc="K trainings at once: the members' runs and their stacked histories", dtype_of="train_loss")


register(_train_result_schema())
register(_dataset_schema())
register(_ensemble_schema())
