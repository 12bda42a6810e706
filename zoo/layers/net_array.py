from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
from keras import ops

from zoo.layers._validation import Initializer, check_shape, serialize_setting


@keras.saving.register_keras_serializable(package="zoo")
class NetArray(keras.layers.Layer):
    """A learned array that does not depend on the input (Mathematica's `NetArrayLayer`).

    Calling the layer returns the array itself, shape `shape`, with no batch
    dimension; the input only places the layer in a graph.

    Args:
        shape: int or tuple of ints, the array's shape.
        initializer: initializer of the array. Defaults to `"glorot_uniform"`.
        **kwargs: base layer arguments (`name`, `dtype`, `trainable`).

    Call arguments:
        inputs: any tensor (ignored); `None` is accepted too.

    Example:

    >>> import keras
    >>> from zoo.layers import NetArray
    >>> memory = NetArray((10, 784))
    >>> tuple(memory(keras.ops.ones((2, 6))).shape)
    (10, 784)

    References:
        The memory-informed network notes (seed `001`).
    """

    def __init__(
        self, shape: int | Sequence[int], initializer: Initializer = "glorot_uniform", **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.shape = check_shape("shape", shape)
        self.initializer = initializer

    def build(self, input_shape: tuple | None = None) -> None:
        self.array = self.add_weight(
            shape=self.shape,
            initializer=keras.initializers.get(self.initializer),
            name="array",
        )

    def call(self, inputs: Any = None) -> Any:
        # Under a mixed policy the array is stored in float32 and used in the compute dtype.
        return ops.cast(self.array, self.compute_dtype)

    def compute_output_shape(self, input_shape: tuple | None = None) -> tuple:
        return self.shape

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "shape": self.shape,
                "initializer": serialize_setting(self.initializer, keras.initializers),
            }
        )
        return config
