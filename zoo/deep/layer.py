import keras
import tensorflow as tf

from zoo.deep.core import KERNELS, select_kernels
from zoo.deep.kernels import ACTIVATIONS
from zoo.errors import UsageError
from zoo.validation import check_positive_int


@keras.saving.register_keras_serializable(package="zoo")
class DeepResidualCore(keras.layers.Layer):
    """L residual layers `h <- h + alpha * act(h W_i + b_i)` with a checkpointed gradient.

    The forward pass keeps only chunk-boundary activations; the gradient
    (`tf.custom_gradient`) recomputes each chunk from its boundary and walks it
    in reverse with the XLA kernels of `zoo.deep.kernels`, so activation memory
    is O(L / chunk + chunk) and any Keras optimizer can train the layer.

    Args:
        layers: int, depth L.
        activation: `"softsign"`, `"tanh"` or `"relu"`.
        alpha: residual scale; defaults to `1 / sqrt(layers)`.
        chunk_layers: layers per checkpointed chunk. Defaults to 1,000.
        kernels: `"auto"`, `"native"` or `"xla"` chunk kernels. Defaults to `"auto"`.

    Call arguments:
        inputs: tensor of shape `(batch, width)`.

    Example:

    >>> core = DeepResidualCore(layers=100, chunk_layers=30)
    >>> tuple(core(keras.ops.ones((2, 4))).shape)
    (2, 4)

    References:
        Andrewp2/deep_net (seed `003`).
    """

    def __init__(
        self, layers, activation="softsign", alpha=None, chunk_layers=1000, kernels="auto", **kwargs
    ):
        super().__init__(**kwargs)
        check_positive_int("layers", layers)
        check_positive_int("chunk_layers", chunk_layers)
        if activation not in ACTIVATIONS:
            raise UsageError(
                f"`activation` must be one of {', '.join(ACTIVATIONS)}, got {activation!r}."
            )
        if alpha is not None and alpha <= 0:
            raise UsageError(f"`alpha` must be > 0, got {alpha!r}.")
        if kernels not in KERNELS:
            raise UsageError(f"`kernels` must be one of {', '.join(KERNELS)}, got {kernels!r}.")
        self.layers = layers
        self.activation = activation
        self.alpha = alpha
        self.chunk_layers = chunk_layers
        self.kernels_kind = kernels
        self._kernels = {}

    @property
    def kernels(self):
        """The chunk kernels for the layer's compute dtype."""
        return self.kernels_for(self.compute_dtype)

    def kernels_for(self, dtype):
        """The chunk kernels for `dtype` (chosen once per dtype)."""
        dtype = tf.as_dtype(dtype).name
        if dtype not in self._kernels:
            alpha = self.alpha if self.alpha is not None else self.layers**-0.5
            self._kernels[dtype] = select_kernels(self.activation, alpha, dtype, self.kernels_kind)
        return self._kernels[dtype]

    def build(self, input_shape):
        width = input_shape[-1]
        self.kernel = self.add_weight(
            shape=(self.layers, width, width),
            initializer=keras.initializers.RandomUniform(-0.001, 0.001),
            name="kernel",
        )
        self.bias = self.add_weight(shape=(self.layers, width), initializer="zeros", name="bias")

    @property
    def chunks(self):
        step = min(self.chunk_layers, self.layers)
        return [(start, min(start + step, self.layers)) for start in range(0, self.layers, step)]

    def call(self, inputs):
        chunks, kernels = self.chunks, self.kernels_for(inputs.dtype)

        @tf.custom_gradient
        def core(h, W, b):
            # The kernels are differentiated by hand below; keep the tape out of them.
            h, W, b = tf.stop_gradient(h), tf.stop_gradient(W), tf.stop_gradient(b)
            boundaries = []
            for start, stop in chunks:
                boundaries.append(h)
                h = kernels.forward(h, W[start:stop], b[start:stop])

            def grad(g):
                grads_W, grads_b = [], []
                for (start, stop), h_start in zip(reversed(chunks), reversed(boundaries)):
                    g, dW, db = kernels.backward(h_start, g, W[start:stop], b[start:stop])
                    grads_W.append(dW)
                    grads_b.append(db)
                return g, tf.concat(grads_W[::-1], 0), tf.concat(grads_b[::-1], 0)

            return h, grad

        return core(inputs, tf.convert_to_tensor(self.kernel), tf.convert_to_tensor(self.bias))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "layers": self.layers,
                "activation": self.activation,
                "alpha": self.alpha,
                "chunk_layers": self.chunk_layers,
                "kernels": self.kernels_kind,
            }
        )
        return config
