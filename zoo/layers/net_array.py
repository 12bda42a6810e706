import keras
from keras import ops

from zoo.layers._validation import check_shape, serialize_setting


@keras.saving.register_keras_serializable(package="zoo")
class NetArray(keras.layers.Layer):
    """A learned array that does not depend on the input (Mathematica's `NetArrayLayer`).

    Calling the layer returns the array itself, shape `shape`, with no batch
    dimension; the input only places the layer in a graph.

    Args:
        shape: int or tuple of ints, the array's shape.
        initializer: initializer of the array. Defaults to `"glorot_uniform"`.

    Call arguments:
        inputs: any tensor (ignored); `None` is accepted too.

    Example:

    >>> memory = NetArray((10, 784))
    >>> memory(keras.ops.ones((2, 6))).shape
    (10, 784)

    References:
        The memory-informed network notes (seed `001`).
    """

    def __init__(self, shape, initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        self.shape = check_shape("shape", shape)
        self.initializer = initializer

    def build(self, input_shape=None):
        self.array = self.add_weight(
            shape=self.shape,
            initializer=keras.initializers.get(self.initializer),
            name="array",
        )

    def call(self, inputs=None):
        # Under a mixed policy the array is stored in float32 and used in the compute dtype.
        return ops.cast(self.array, self.compute_dtype)

    def compute_output_shape(self, input_shape=None):
        return self.shape

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "shape": self.shape,
                "initializer": serialize_setting(self.initializer, keras.initializers),
            }
        )
        return config
