"""The seed's simple CNN (dboyliao/CardinalBlue_Interview_Q2)."""

import keras

from zoo.validation import check_choice, check_positive_int


@keras.saving.register_keras_serializable(package="zoo")
class SimpleCNN(keras.Model):
    """The seed's CNN: two strided 3x3 convolutions, a 2x2 max-pool, a 1x1 convolution,
    Dense 512, Dense `classes` (logits; train with `from_logits=True`).

    conv 3x3x32 stride 2 VALID ReLU (no bias) -> conv 3x3x32 stride 2 VALID ReLU (no bias) ->
    maxpool 2x2 stride 1 VALID -> conv 1x1x16 SAME (`conv3_activation`; the seed's code has
    none, its README says ReLU) -> flatten -> Dense 512 ReLU -> Dense `classes`. Glorot-normal
    initialisation.

    Args:
        conv3_activation: `None` (as coded), `"linear"` or `"relu"`, the 1x1 convolution's
            activation. Defaults to `None`.
        classes: int, number of outputs. Defaults to 10.
        **kwargs: `keras.Model` arguments (`name`, `dtype`, `trainable`).

    Example:

    >>> import keras
    >>> tuple(SimpleCNN()(keras.ops.zeros((2, 28, 28, 1))).shape)
    (2, 10)

    References:
        Smith et al. 2017, "Don't Decay the Learning Rate, Increase the Batch Size"
        (arXiv 1711.00489); dboyliao/CardinalBlue_Interview_Q2 (seed `002`).
    """

    def __init__(self, conv3_activation=None, classes=10, **kwargs):
        super().__init__(**kwargs)
        check_choice("conv3_activation", conv3_activation, (None, "linear", "relu"))
        self.conv3_activation = conv3_activation
        self.classes = check_positive_int("classes", classes)
        common = {"kernel_initializer": "glorot_normal", "dtype": self.dtype_policy}
        self.conv1 = keras.layers.Conv2D(
            32,
            3,
            strides=2,
            padding="valid",
            activation="relu",
            use_bias=False,
            name="conv1",
            **common,
        )
        self.conv2 = keras.layers.Conv2D(
            32,
            3,
            strides=2,
            padding="valid",
            activation="relu",
            use_bias=False,
            name="conv2",
            **common,
        )
        self.pool = keras.layers.MaxPooling2D(
            2, strides=1, padding="valid", name="pool1", dtype=self.dtype_policy
        )
        self.conv3 = keras.layers.Conv2D(
            16, 1, padding="same", activation=conv3_activation, name="conv3_1_by_1", **common
        )
        self.flatten = keras.layers.Flatten(dtype=self.dtype_policy)
        self.fc1 = keras.layers.Dense(512, activation="relu", name="fc1", **common)
        self.fc2 = keras.layers.Dense(classes, name="fc2", **common)

    def _layers_in_order(self):
        return (self.conv1, self.conv2, self.pool, self.conv3, self.flatten, self.fc1, self.fc2)

    def build(self, input_shape):
        shape = tuple(input_shape)
        for layer in self._layers_in_order():
            layer.build(shape)
            shape = layer.compute_output_shape(shape)
        self.built = True

    def call(self, inputs):
        outputs = inputs
        for layer in self._layers_in_order():
            outputs = layer(outputs)
        return outputs

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.classes)

    def get_config(self):
        config = super().get_config()
        config.update({"conv3_activation": self.conv3_activation, "classes": self.classes})
        return config
