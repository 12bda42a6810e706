from __future__ import annotations

from typing import Any

import keras

from zoo.errors import UsageError
from zoo.layers._validation import Activation, check_activation, serialize_setting
from zoo.validation import check_positive_int


@keras.saving.register_keras_serializable(package="zoo")
class MultiplyBlock(keras.layers.Layer):
    """Element-wise product of two projections: `Dense_out(Dense_a(a) * Dense_b(b))`.

    The network that won the reasoning-operations sweep: each operand is
    projected to `hidden` features, the projections are multiplied
    element-wise, and a Dense layer maps the product to `units`.

    Args:
        hidden: int, width of both projections (256 in the seed).
        units: int, output width.
        activation: activation of the output Dense layer. Defaults to `None`
            (linear).
        **kwargs: base layer arguments (`name`, `dtype`, `trainable`).

    Call arguments:
        inputs: a list `[a, b]` of tensors of shape `(batch, width_a)` and
            `(batch, width_b)`.

    Example:

    >>> import keras
    >>> from zoo.layers import MultiplyBlock
    >>> block = MultiplyBlock(hidden=256, units=128)
    >>> tuple(block([keras.ops.ones((2, 128)), keras.ops.ones((2, 64))]).shape)
    (2, 128)

    References:
        Octavian-ai/reasoning-operations (seed `004`).
    """

    def __init__(
        self, hidden: int, units: int, activation: Activation = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.hidden = check_positive_int("hidden", hidden)
        self.units = check_positive_int("units", units)
        self.activation = check_activation("activation", activation)

    def build(self, input_shape: list[tuple]) -> None:
        if (
            not isinstance(input_shape, (list, tuple))
            or len(input_shape) != 2
            or not isinstance(input_shape[0], (list, tuple))
        ):
            raise UsageError("`inputs` of MultiplyBlock must be a list of two tensors [a, b].")
        shape_a, shape_b = input_shape
        self.dense_a = keras.layers.Dense(self.hidden, dtype=self.dtype_policy, name="dense_a")
        self.dense_b = keras.layers.Dense(self.hidden, dtype=self.dtype_policy, name="dense_b")
        self.dense_out = keras.layers.Dense(
            self.units, activation=self.activation, dtype=self.dtype_policy, name="dense_out"
        )
        self.dense_a.build(shape_a)
        self.dense_b.build(shape_b)
        self.dense_out.build(tuple(shape_a[:-1]) + (self.hidden,))

    def call(self, inputs: list) -> Any:
        a, b = inputs
        return self.dense_out(self.dense_a(a) * self.dense_b(b))

    def compute_output_shape(self, input_shape: list[tuple]) -> tuple:
        return tuple(input_shape[0][:-1]) + (self.units,)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "hidden": self.hidden,
                "units": self.units,
                "activation": serialize_setting(self.activation, keras.activations),
            }
        )
        return config
