"""The sweep's networks: `ReasoningNet`, one Keras model for the four network kinds."""

import keras

from zoo.errors import UsageError
from zoo.layers import MultiplyBlock, MultiplySimple
from zoo.tasks.reasoning_ops.config import ACTIVATIONS, NETWORKS, WIDTH


@keras.saving.register_keras_serializable(package="zoo")
class ReasoningNet(keras.Model):
    """The sweep's networks on two operands `[a, b]`.

    - `dense`: concat(a, b) -> (depth - 1) x Dense(hidden, act) -> Dense(units, act); the
      activation is on every layer, the output's included, as in the seed.
    - `dense_residual`: concat -> Dense(hidden, act) -> (depth - 1) x [h + Dense(hidden, act)(h)]
      -> Dense(units).
    - `multiply`: `MultiplyBlock(hidden, units)`: Dense(a -> hidden) * Dense(b -> hidden) ->
      Dense(units).
    - `multiply_simple`: `MultiplySimple(units)`: Dense(a * b).

    Args:
        network: one of `"dense"`, `"dense_residual"`, `"multiply"`, `"multiply_simple"`.
        units: the output width (the task's target width).
        depth: 1, 2 or 3 Dense layers (`dense`, `dense_residual`).
        activation: `"linear"`, `"tanh"`, `"relu"`, `"sigmoid"` or `"selu"`.
        hidden: the hidden width (256 in the seed).

    Example:

    >>> import keras
    >>> ReasoningNet("multiply", units=1)([keras.ops.ones((2, 128))] * 2).shape
    TensorShape([2, 1])
    """

    def __init__(
        self,
        network: str,
        units: int,
        depth: int = 1,
        activation: str = "linear",
        hidden: int = 256,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if network not in NETWORKS:
            raise UsageError(f"`network` must be one of {', '.join(NETWORKS)}, got {network!r}.")
        if activation not in ACTIVATIONS:
            raise UsageError(
                f"`activation` must be one of {', '.join(ACTIVATIONS)}, got {activation!r}."
            )
        if depth not in (1, 2, 3):
            raise UsageError(f"`depth` must be 1, 2 or 3, got {depth!r}.")
        self.network = network
        self.units = units
        self.depth = depth
        self.activation = activation
        self.hidden = hidden
        policy = self.dtype_policy
        if network == "dense":
            self.stack = [
                keras.layers.Dense(hidden, activation=activation, dtype=policy)
                for _ in range(depth - 1)
            ]
            self.stack.append(keras.layers.Dense(units, activation=activation, dtype=policy))
        elif network == "dense_residual":
            self.stem = keras.layers.Dense(hidden, activation=activation, dtype=policy)
            self.stack = [
                keras.layers.Dense(hidden, activation=activation, dtype=policy)
                for _ in range(depth - 1)
            ]
            self.out = keras.layers.Dense(units, dtype=policy)
        elif network == "multiply":
            self.block = MultiplyBlock(hidden, units, dtype=policy)
        else:
            self.block = MultiplySimple(units, dtype=policy)

    def call(self, inputs):
        a, b = inputs
        if self.network in ("multiply", "multiply_simple"):
            return self.block([a, b])
        h = keras.ops.concatenate([a, b], axis=1)
        if self.network == "dense":
            for layer in self.stack:
                h = layer(h)
            return h
        h = self.stem(h)
        for layer in self.stack:
            h = h + layer(h)
        return self.out(h)

    def compute_output_shape(self, input_shape):
        return (input_shape[0][0], self.units)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "network": self.network,
                "units": self.units,
                "depth": self.depth,
                "activation": self.activation,
                "hidden": self.hidden,
            }
        )
        return config


def build_network(
    network: str, units: int, depth: int = 1, activation: str = "linear", seed: int = 0
) -> ReasoningNet:
    """A built `ReasoningNet` whose initial weights depend only on `seed`.

    Example:

    >>> build_network("dense", units=128, depth=2, seed=3).count_params()
    98688
    """
    keras.utils.set_random_seed(seed)
    model = ReasoningNet(network, units, depth, activation)
    model([keras.ops.zeros((1, WIDTH))] * 2)
    return model
