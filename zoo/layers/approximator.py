from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import keras
from keras import ops

from zoo.layers._validation import Activation, check_activation, check_shape, serialize_setting
from zoo.validation import check_positive_int


@keras.saving.register_keras_serializable(package="zoo")
class ApproximatorLayer(keras.layers.Layer):
    """An activated Dense layer into a linear Dense layer, reshaped to any output shape.

    Mathematica's `ApproximatorLayer[hidden, shape]`: `reshape(Dense_out(act(Dense_in(x))))`.
    The output is a scalar per example (`output_shape=()`), a vector or a matrix.

    Args:
        hidden: int, width of the activated hidden layer.
        output_shape: int or tuple of ints, the per-example output shape;
            `()` gives one scalar per example.
        activation: activation of the hidden layer. Defaults to `"relu"`.
        **kwargs: base layer arguments (`name`, `dtype`, `trainable`).

    Call arguments:
        inputs: tensor of shape `(batch, features)`.

    Example:

    >>> import keras
    >>> from zoo.layers import ApproximatorLayer
    >>> layer = ApproximatorLayer(hidden=512, output_shape=(10, 784))
    >>> tuple(layer(keras.ops.ones((2, 6))).shape)
    (2, 10, 784)
    >>> tuple(ApproximatorLayer(8, output_shape=())(keras.ops.ones((2, 6))).shape)
    (2,)

    References:
        The memory-informed network notes (seed `001`).
    """

    def __init__(
        self,
        hidden: int,
        output_shape: int | Sequence[int],
        activation: Activation = "relu",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.hidden = check_positive_int("hidden", hidden)
        self.target_shape = check_shape("output_shape", output_shape)
        self.activation = check_activation("activation", activation)

    def build(self, input_shape: tuple) -> None:
        self.dense_in = keras.layers.Dense(
            self.hidden, activation=self.activation, dtype=self.dtype_policy, name="dense_in"
        )
        self.dense_out = keras.layers.Dense(
            max(1, math.prod(self.target_shape)), dtype=self.dtype_policy, name="dense_out"
        )
        self.dense_in.build(input_shape)
        self.dense_out.build(tuple(input_shape[:-1]) + (self.hidden,))

    def call(self, inputs: Any) -> Any:
        flat = self.dense_out(self.dense_in(inputs))
        return ops.reshape(flat, (-1,) + self.target_shape)

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return (input_shape[0],) + self.target_shape

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "hidden": self.hidden,
                "output_shape": self.target_shape,
                "activation": serialize_setting(self.activation, keras.activations),
            }
        )
        return config
