from __future__ import annotations

import math
from typing import Any

import keras

from zoo.errors import UsageError
from zoo.layers._validation import Activation, Initializer, check_activation, serialize_setting
from zoo.validation import check_positive_int


@keras.saving.register_keras_serializable(package="zoo")
class ResidualBlock(keras.layers.Layer):
    """A two-layer residual MLP block whose output width equals its input width.

    `y = act(Dense_out(act(Dense_in(x))) + x)`, the block that ArgMaxNet stacks
    (`Block(10, 60)` in the seed: 10 -> 60 -> 10).

    Args:
        hidden: int, width of the hidden Dense layer.
        activation: activation name or callable, applied after the hidden
            layer and after the residual sum. Defaults to `"relu"`.
        kernel_initializer: initializer for both kernels. The special value
            `"fan_in_uniform"` draws weights *and biases* from
            `U(-1/sqrt(fan_in), 1/sqrt(fan_in))`, PyTorch's `nn.Linear`
            default, which the ArgMaxNet seed used.
        bias_initializer: initializer for both biases (ignored with
            `"fan_in_uniform"`).
        **kwargs: base layer arguments (`name`, `dtype`, `trainable`).

    Call arguments:
        inputs: tensor of shape `(..., width)`.

    Example:

    >>> import keras
    >>> from zoo.layers import ResidualBlock
    >>> block = ResidualBlock(hidden=60)
    >>> tuple(block(keras.ops.ones((2, 10))).shape)
    (2, 10)
    >>> block.count_params()  # 10 * 60 + 60 + 60 * 10 + 10
    1270

    References:
        sparseinference/argmaxnet (seed `000`).
    """

    def __init__(
        self,
        hidden: int,
        activation: Activation = "relu",
        kernel_initializer: Initializer = "glorot_uniform",
        bias_initializer: Initializer = "zeros",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.hidden = check_positive_int("hidden", hidden)
        self.activation = check_activation("activation", activation)
        self.kernel_initializer = kernel_initializer
        self.bias_initializer = bias_initializer
        self._activation_fn = keras.activations.get(activation)

    def _dense(self, units: int, fan_in: int, name: str) -> keras.layers.Dense:
        if self.kernel_initializer == "fan_in_uniform":
            limit = 1.0 / math.sqrt(fan_in)
            kernel = keras.initializers.RandomUniform(-limit, limit)
            bias = keras.initializers.RandomUniform(-limit, limit)
        else:
            kernel = keras.initializers.get(self.kernel_initializer)
            bias = keras.initializers.get(self.bias_initializer)
        return keras.layers.Dense(
            units,
            kernel_initializer=kernel,
            bias_initializer=bias,
            dtype=self.dtype_policy,
            name=name,
        )

    def build(self, input_shape: tuple) -> None:
        width = input_shape[-1]
        if width is None:
            raise UsageError("`ResidualBlock` needs a known last input dimension.")
        self.dense_in = self._dense(self.hidden, width, "dense_in")
        self.dense_out = self._dense(width, self.hidden, "dense_out")
        self.dense_in.build(input_shape)
        self.dense_out.build(tuple(input_shape[:-1]) + (self.hidden,))

    def call(self, inputs: Any) -> Any:
        hidden = self._activation_fn(self.dense_in(inputs))
        return self._activation_fn(self.dense_out(hidden) + inputs)

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return tuple(input_shape)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "hidden": self.hidden,
                "activation": serialize_setting(self.activation, keras.activations),
                "kernel_initializer": serialize_setting(
                    self.kernel_initializer, keras.initializers
                ),
                "bias_initializer": serialize_setting(self.bias_initializer, keras.initializers),
            }
        )
        return config
