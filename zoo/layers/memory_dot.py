from __future__ import annotations

from typing import Any

import keras
from keras import ops

from zoo.errors import UsageError
from zoo.layers._validation import Activation, Initializer, check_activation, serialize_setting
from zoo.validation import check_positive_int


@keras.saving.register_keras_serializable(package="zoo")
class MemoryDotLayer(keras.layers.Layer):
    """Dots a selection vector with a learned memory array: `p @ act(M)`.

    `M` has shape `(slots, units)`; each row is one memory slot. With `p` a
    softmax over slots, the output is a convex mix of the (activated) slots.

    Args:
        slots: int, number of memory slots (the width of `p`).
        units: int, width of each slot (the output width).
        activation: applied element-wise to the memory before the dot.
            Defaults to `"sigmoid"`, so slots live in `[0, 1]` like images.
        initializer: initializer of the memory. Defaults to `"glorot_uniform"`.
        **kwargs: base layer arguments (`name`, `dtype`, `trainable`).

    Call arguments:
        inputs: selection tensor of shape `(batch, slots)`.

    Example:

    >>> import keras
    >>> from zoo.layers import MemoryDotLayer
    >>> layer = MemoryDotLayer(slots=10, units=784, initializer="zeros")
    >>> outputs = layer(keras.ops.ones((2, 10)) / 10)
    >>> tuple(outputs.shape), round(float(outputs[0, 0]), 6)  # a mix of slots sigmoid(0)
    ((2, 784), 0.5)

    References:
        The memory-informed network notes (seed `001`): `F . sigmoid(NetArray)`.
    """

    def __init__(
        self,
        slots: int,
        units: int,
        activation: Activation = "sigmoid",
        initializer: Initializer = "glorot_uniform",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.slots = check_positive_int("slots", slots)
        self.units = check_positive_int("units", units)
        self.activation = check_activation("activation", activation)
        self.initializer = initializer
        self._activation_fn = keras.activations.get(activation)

    def build(self, input_shape: tuple) -> None:
        if input_shape[-1] != self.slots:
            raise UsageError(
                f"`slots`={self.slots} does not match the selection width {input_shape[-1]}."
            )
        self.memory = self.add_weight(
            shape=(self.slots, self.units),
            initializer=keras.initializers.get(self.initializer),
            name="memory",
        )

    def call(self, inputs: Any) -> Any:
        return ops.matmul(inputs, self._activation_fn(self.memory))

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return tuple(input_shape[:-1]) + (self.units,)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "slots": self.slots,
                "units": self.units,
                "activation": serialize_setting(self.activation, keras.activations),
                "initializer": serialize_setting(self.initializer, keras.initializers),
            }
        )
        return config
