"""The two decoders of seed `001`: the memory-informed AE and the set-min subnets."""

import keras
from keras import ops

from zoo.layers import ApproximatorLayer, MemoryDotLayer
from zoo.losses import OneMinusMax
from zoo.validation import check_float, check_positive_int

PIXELS = 784


@keras.saving.register_keras_serializable(package="zoo")
class MemoryInformedAE(keras.Model):
    """Two decoders sharing one softmax selection `F` over `slots` memory slots.

    `F = softmax(Approximator(hidden -> slots)(code))`; the memory output is
    `F . sigmoid(M)` with a learned memory array `M` (`slots x units`), the memory-informed
    output `F . sigmoid(Approximator(hidden -> (slots, units))(code))`. Returns
    `(memory_output, informed_output)`, each `(batch, units)`; train both on the same target.
    `selection(code)` gives `F`.

    Args:
        slots: int, `mn`, number of memory slots. Defaults to 10.
        units: int, output width. Defaults to 784.
        hidden: int, hidden width of both approximators. Defaults to 512.
        floss_weight: float >= 0, weight of the `1 - max(F)` term added to the loss
            (0: off). Defaults to 0.
        **kwargs: `keras.Model` arguments (`name`, `dtype`, `trainable`).

    Example:

    >>> import keras
    >>> memory, informed = MemoryInformedAE(hidden=16)(keras.ops.zeros((2, 6)))
    >>> tuple(memory.shape), tuple(informed.shape)
    ((2, 784), (2, 784))

    References:
        The memory-informed network notes (seed `001`).
    """

    def __init__(self, slots=10, units=PIXELS, hidden=512, floss_weight=0.0, **kwargs):
        super().__init__(**kwargs)
        self.slots = check_positive_int("slots", slots)
        self.units = check_positive_int("units", units)
        self.hidden = check_positive_int("hidden", hidden)
        self.floss_weight = check_float("floss_weight", floss_weight, low=0.0)
        self.selector = ApproximatorLayer(hidden, slots, name="selector", dtype=self.dtype_policy)
        self.memory = MemoryDotLayer(slots, units, name="memory", dtype=self.dtype_policy)
        self.candidates = ApproximatorLayer(
            hidden, (slots, units), name="candidates", dtype=self.dtype_policy
        )

    def build(self, input_shape):
        self.selector.build(input_shape)
        self.memory.build((input_shape[0], self.slots))
        self.candidates.build(input_shape)
        self.built = True

    def selection(self, codes):
        """`F`, the softmax selection over the slots, `(batch, slots)`."""
        return ops.softmax(self.selector(codes), axis=-1)

    def call(self, codes):
        selection = self.selection(codes)
        if self.floss_weight:
            self.add_loss(self.floss_weight * ops.mean(OneMinusMax().call(None, selection)))
        memory_output = self.memory(selection)
        candidates = ops.sigmoid(self.candidates(codes))
        informed_output = ops.einsum("bs,bsu->bu", selection, candidates)
        return memory_output, informed_output

    def compute_output_shape(self, input_shape):
        shape = (input_shape[0], self.units)
        return shape, shape

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "slots": self.slots,
                "units": self.units,
                "hidden": self.hidden,
                "floss_weight": self.floss_weight,
            }
        )
        return config


@keras.saving.register_keras_serializable(package="zoo")
class SetMinAE(keras.Model):
    """K decoder subnets of the same code, stacked as `(batch, K, units)`.

    Train with `zoo.losses.SetMinRandomLoss`, which updates one subnet per example.

    Args:
        subnets: int, K. Defaults to 5.
        units: int, output width. Defaults to 784.
        hidden: int, hidden width of each subnet's approximator. Defaults to 512.
        **kwargs: `keras.Model` arguments (`name`, `dtype`, `trainable`).

    Example:

    >>> import keras
    >>> tuple(SetMinAE(subnets=3, hidden=16)(keras.ops.zeros((2, 6))).shape)
    (2, 3, 784)

    References:
        The set-min random loss notes (seed `001`).
    """

    def __init__(self, subnets=5, units=PIXELS, hidden=512, **kwargs):
        super().__init__(**kwargs)
        self.subnets = check_positive_int("subnets", subnets)
        self.units = check_positive_int("units", units)
        self.hidden = check_positive_int("hidden", hidden)
        self.decoders = [
            ApproximatorLayer(hidden, units, name=f"subnet_{k}", dtype=self.dtype_policy)
            for k in range(subnets)
        ]

    def build(self, input_shape):
        for decoder in self.decoders:
            decoder.build(input_shape)
        self.built = True

    def call(self, codes):
        return ops.stack([ops.sigmoid(decoder(codes)) for decoder in self.decoders], axis=1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.subnets, self.units)

    def get_config(self):
        config = super().get_config()
        config.update({"subnets": self.subnets, "units": self.units, "hidden": self.hidden})
        return config
