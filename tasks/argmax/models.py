"""ArgMaxNet and its multiply block: residual MLPs that regress the index of the largest score."""

import math
from typing import Any

import keras

from zoo.layers import MultiplyBlock, ResidualBlock
from zoo.tasks.argmax.budget import BLOCKS
from zoo.tasks.argmax.config import SCORES
from zoo.validation import check_choice, check_positive_int


@keras.saving.register_keras_serializable(package="zoo")
class MultiplyResidualBlock(keras.layers.Layer):
    """`y = act(MultiplyBlock([x, x]) + x)`: a residual block whose hidden layer is an
    element-wise product of two projections of the input.

    Args:
        hidden: width of the two projections.
        activation: applied after the residual sum. Defaults to `"relu"`.

    Call arguments:
        inputs: tensor of shape `(..., width)`; the output has the same shape.

    Example:

    >>> import keras
    >>> tuple(MultiplyResidualBlock(8)(keras.ops.ones((2, 10))).shape)
    (2, 10)
    """

    def __init__(self, hidden: int, activation: str = "relu", **kwargs: Any):
        super().__init__(**kwargs)
        self.hidden = check_positive_int("hidden", hidden)
        self.activation = activation
        self._activation_fn = keras.activations.get(activation)

    def build(self, input_shape):
        self.multiply = MultiplyBlock(
            self.hidden, input_shape[-1], dtype=self.dtype_policy, name="multiply"
        )
        self.multiply.build([input_shape, input_shape])

    def call(self, inputs):
        return self._activation_fn(self.multiply([inputs, inputs]) + inputs)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict:
        config = super().get_config()
        config.update({"hidden": self.hidden, "activation": self.activation})
        return config


@keras.saving.register_keras_serializable(package="zoo")
class ArgMaxNet(keras.Model):
    """Stacked residual blocks, then Dense(width -> 1) with `abs` output.

    The defaults are the seed's: 3 x `ResidualBlock(60)` on 10 scores, 3,821 parameters,
    PyTorch-style `U(+-1/sqrt(fan_in))` initialisation.

    Args:
        depth: number of blocks (3).
        hidden: hidden width of each block (60).
        block: `"residual"` (`ResidualBlock`) or `"multiply"` (`MultiplyResidualBlock`).

    Call arguments:
        inputs: scores of shape `(batch, 10)`; the output, the predicted index as a float, has
            shape `(batch, 1)`.

    Example:

    >>> import keras
    >>> model = ArgMaxNet()
    >>> tuple(model(keras.ops.ones((2, 10))).shape), model.count_params()
    ((2, 1), 3821)

    References:
        sparseinference/argmaxnet (seed `000`).
    """

    def __init__(self, depth: int = 3, hidden: int = 60, block: str = "residual", **kwargs: Any):
        super().__init__(**kwargs)
        self.depth = check_positive_int("depth", depth)
        self.hidden = check_positive_int("hidden", hidden)
        self.block = check_choice("block", block, BLOCKS)
        if block == "residual":
            self.blocks = [
                ResidualBlock(
                    hidden,
                    kernel_initializer="fan_in_uniform",
                    dtype=self.dtype_policy,
                    name=f"block_{i}",
                )
                for i in range(depth)
            ]
        else:
            self.blocks = [
                MultiplyResidualBlock(hidden, dtype=self.dtype_policy, name=f"block_{i}")
                for i in range(depth)
            ]
        limit = 1.0 / math.sqrt(SCORES)
        uniform = keras.initializers.RandomUniform(-limit, limit)
        self.head = keras.layers.Dense(
            1,
            kernel_initializer=uniform,
            bias_initializer=uniform,
            dtype=self.dtype_policy,
            name="head",
        )
        self.build((None, SCORES))

    def build(self, input_shape):
        for block in self.blocks:
            block.build(input_shape)
        self.head.build(input_shape)
        self.built = True

    def call(self, inputs):
        hidden = inputs
        for block in self.blocks:
            hidden = block(hidden)
        return keras.ops.abs(self.head(hidden))

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (1,)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update({"depth": self.depth, "hidden": self.hidden, "block": self.block})
        return config
