"""What is integrated: vector fields with layer-indexed weights, the (ε, δ) ResNet family and
its associated ODE."""
from .activations import ACTIVATIONS, Activation, get_activation
from .fields import DampedField, LayerField, SmoothField
from .resnet import ResNet

__version__ = "0.1.0"

__all__ = ["ResNet", "LayerField", "SmoothField", "DampedField", "Activation", "ACTIVATIONS",
           "get_activation", "__version__"]
