"""What is integrated: vector fields with layer-indexed weights, the (ε, δ) ResNet family and
its associated ODE."""
from .activations import ACTIVATIONS, Activation, get_activation
from .fields import DampedField, LayerField, SmoothField
from .resnet import ResNet
from .neural_ode import NeuralODE, TimeMLPField
from .datasets import Dataset, circles, make_dataset, square, xor
from .training import TrainResult, train
from .ensemble import EnsembleResult, train_ensemble

__version__ = "0.2.0"

__all__ = ["ResNet", "NeuralODE", "TimeMLPField", "LayerField", "SmoothField", "DampedField", "Activation", "ACTIVATIONS",
           "get_activation", "__version__",
           "Dataset", "square", "circles", "xor", "make_dataset", "TrainResult", "train", "EnsembleResult",
           "train_ensemble"]
