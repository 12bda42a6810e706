"""`DeepMNIST`: the deep task's network as a Keras model, trained by the shared fused step."""

import keras

from zoo.deep import DeepNetwork, DeepResidualCore, InMemoryWeights
from zoo.tasks.deep_mnist.config import CLASSES, INPUTS
from zoo.validation import check_positive_int


@keras.saving.register_keras_serializable(package="zoo")
class DeepMNIST(keras.Model):
    """Stem (784 -> width, tanh), `DeepResidualCore`, head (width -> 10 logits).

    With `fused_sgd=True` (default) `train_step` is `zoo.deep.DeepNetwork.train_step`, the very
    step `zoo deep train` runs, on the model's own weights (`layer_lr` for stem and core,
    `head_lr` for the head; the compiled optimizer is not used), so `model.fit` brings progress
    bars, history and callbacks at any depth that fits in memory. With `fused_sgd=False` it
    trains like any Keras model, with any optimizer, through the core's checkpointed custom
    gradient.

    Args:
        layers, width, activation, alpha, chunk_layers, kernels: the core
            (see `DeepResidualCore`).
        fused_sgd: use the fused exact-SGD step. Defaults to True.
        layer_lr, head_lr: learning rates of the fused step (0.01 each).

    Example:

    >>> model = DeepMNIST(layers=100, width=4)
    >>> model.compile()
    >>> tuple(model(keras.ops.zeros((2, 784))).shape)
    (2, 10)

    References:
        Andrewp2/deep_net (seed `003`).
    """

    def __init__(
        self,
        layers=100,
        width=4,
        activation="softsign",
        alpha=None,
        chunk_layers=1000,
        fused_sgd=True,
        layer_lr=0.01,
        head_lr=0.01,
        kernels="auto",
        **kwargs,
    ):
        super().__init__(**kwargs)
        check_positive_int("width", width)
        self.width, self.fused_sgd, self.layer_lr, self.head_lr = (
            width,
            fused_sgd,
            layer_lr,
            head_lr,
        )
        self.stem = keras.layers.Dense(
            width, activation="tanh", name="stem", dtype=self.dtype_policy
        )
        self.core = DeepResidualCore(
            layers,
            activation,
            alpha,
            chunk_layers,
            kernels=kernels,
            name="core",
            dtype=self.dtype_policy,
        )
        self.head = keras.layers.Dense(CLASSES, name="head", dtype=self.dtype_policy)
        self._network = None
        self.build((None, INPUTS))

    def build(self, input_shape):
        self.stem.build(input_shape)
        self.core.build((None, self.width))
        self.head.build((None, self.width))
        self.built = True

    def call(self, inputs):
        return self.head(self.core(self.stem(inputs)))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], CLASSES)

    def compile(self, optimizer="sgd", loss=None, metrics=None, **kwargs):
        if self.fused_sgd:
            # The fused step walks the chunks in Python around compiled kernels.
            kwargs["run_eagerly"] = True
            loss = loss or keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        super().compile(optimizer=optimizer, loss=loss, metrics=metrics, **kwargs)

    def compile_from_config(self, config):
        """Compiles a loaded model as it was saved, through this class's `compile` (Keras
        skips models that override `compile`)."""
        self.compile(**keras.saving.deserialize_keras_object(config))
        if self.built:
            self.optimizer.build(self.trainable_variables)

    @property
    def network(self) -> DeepNetwork:
        """The `DeepNetwork` over this model's own variables (what the fused step trains)."""
        if self._network is None:
            core = self.core
            weights = InMemoryWeights.from_variables(
                core.kernel.value, core.bias.value, core.activation
            )
            head = {
                "W_in": self.stem.kernel.value,
                "b_in": self.stem.bias.value,
                "W_out": self.head.kernel.value,
                "b_out": self.head.bias.value,
            }
            self._network = DeepNetwork(
                weights,
                core.chunk_layers,
                alpha=core.kernels.alpha,
                head=head,
                kernels=core.kernels_kind,
            )
        return self._network

    def train_step(self, data):
        if not self.fused_sgd:
            return super().train_step(data)
        x, y = data[0], data[1]
        labels = keras.ops.cast(keras.ops.reshape(y, (-1,)), "int32")
        loss, accuracy = self.network.train_step(x, labels, self.layer_lr, self.head_lr)
        return {"loss": loss, "accuracy": accuracy}

    def get_config(self):
        config = super().get_config()
        core = self.core
        config.update(
            {
                "layers": core.layers,
                "width": self.width,
                "activation": core.activation,
                "alpha": core.alpha,
                "chunk_layers": core.chunk_layers,
                "fused_sgd": self.fused_sgd,
                "layer_lr": self.layer_lr,
                "head_lr": self.head_lr,
                "kernels": core.kernels_kind,
            }
        )
        return config
