"""Reusable Keras layers of the zoo, each serializable under the package name `zoo`."""

from zoo.layers.approximator import ApproximatorLayer
from zoo.layers.memory_dot import MemoryDotLayer
from zoo.layers.multiply_block import MultiplyBlock
from zoo.layers.multiply_simple import MultiplySimple
from zoo.layers.net_array import NetArray
from zoo.layers.residual_block import ResidualBlock

__all__ = [
    "ApproximatorLayer",
    "MemoryDotLayer",
    "MultiplyBlock",
    "MultiplySimple",
    "NetArray",
    "ResidualBlock",
]
