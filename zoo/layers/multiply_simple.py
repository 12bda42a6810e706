from __future__ import annotations

from typing import Any

import keras

from zoo.errors import UsageError
from zoo.layers._validation import Activation, check_activation, serialize_setting
from zoo.validation import check_positive_int


@keras.saving.register_keras_serializable(package="zoo")
class MultiplySimple(keras.layers.Layer):
    """A Dense layer on the element-wise product of two equal-width operands: `Dense(a * b)`.

    Args:
        units: int, output width.
        activation: activation of the Dense layer. Defaults to `None` (linear).
        **kwargs: base layer arguments (`name`, `dtype`, `trainable`).

    Call arguments:
        inputs: a list `[a, b]` of two tensors of the same shape `(batch, width)`.

    Example:

    >>> import keras
    >>> from zoo.layers import MultiplySimple
    >>> block = MultiplySimple(units=1)
    >>> tuple(block([keras.ops.ones((2, 128)), keras.ops.ones((2, 128))]).shape)
    (2, 1)

    References:
        Octavian-ai/reasoning-operations (seed `004`), `multiply_simple`.
    """

    def __init__(self, units: int, activation: Activation = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.units = check_positive_int("units", units)
        self.activation = check_activation("activation", activation)

    def build(self, input_shape: list[tuple]) -> None:
        if (
            not isinstance(input_shape, (list, tuple))
            or len(input_shape) != 2
            or not isinstance(input_shape[0], (list, tuple))
        ):
            raise UsageError("`inputs` of MultiplySimple must be a list of two tensors [a, b].")
        shape_a, shape_b = input_shape
        if shape_a[-1] != shape_b[-1]:
            raise UsageError(
                f"`inputs` of MultiplySimple must have equal widths, got {shape_a[-1]} and "
                f"{shape_b[-1]}."
            )
        self.dense = keras.layers.Dense(
            self.units, activation=self.activation, dtype=self.dtype_policy, name="dense"
        )
        self.dense.build(shape_a)

    def call(self, inputs: list) -> Any:
        a, b = inputs
        return self.dense(a * b)

    def compute_output_shape(self, input_shape: list[tuple]) -> tuple:
        return tuple(input_shape[0][:-1]) + (self.units,)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "units": self.units,
                "activation": serialize_setting(self.activation, keras.activations),
            }
        )
        return config
