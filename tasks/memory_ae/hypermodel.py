"""`MemoryAEHyperModel`: the memory-informed AE's search space for keras-tuner.

keras-tuner is optional (`pip install experiment-zoo[tuner]`): this module imports without it,
and only building the hypermodel asks for it.
"""

try:
    import keras_tuner
except ImportError:  # the `tuner` extra is not installed
    keras_tuner = None

from .config import OPTIMIZERS, MemoryAEConfig
from .training import build_model

_HyperModel = keras_tuner.HyperModel if keras_tuner is not None else object


class MemoryAEHyperModel(_HyperModel):
    """Searches the memory-informed AE: slots, hidden width, `1 - max(F)` weight, optimizer
    and learning rate; the model is `MemoryInformedAE` compiled with MSE on both outputs
    (fit it on `(codes, (images, images))`).

    Args:
        code_dims: int, the input code size (the PCA's `dl`). Defaults to 6.
        slots: the `mn` values to try. Defaults to `(5, 10, 20)`.
        hidden: the approximator widths to try. Defaults to `(128, 256, 512)`.
        floss_weights: the `1 - max(F)` weights to try. Defaults to `(0.0, 0.1)`.
        optimizers: `"adam"` and/or `"signsgd"`. Defaults to both.
        learning_rate: `(min, max)` of the log-uniform learning rate. Defaults to
            `(1e-4, 1e-2)`.
        seed: int, the weights' seed of every trial. Defaults to 0.

    Example:

    >>> import keras_tuner
    >>> hypermodel = MemoryAEHyperModel(code_dims=6, hidden=(16,))
    >>> model = hypermodel.build(keras_tuner.HyperParameters())
    >>> type(model).__name__, model.hidden
    ('MemoryInformedAE', 16)
    """

    def __init__(
        self,
        code_dims: int = 6,
        slots=(5, 10, 20),
        hidden=(128, 256, 512),
        floss_weights=(0.0, 0.1),
        optimizers=OPTIMIZERS,
        learning_rate=(1e-4, 1e-2),
        seed: int = 0,
    ):
        if keras_tuner is None:
            raise ImportError(
                "MemoryAEHyperModel needs keras-tuner: pip install 'experiment-zoo[tuner]'."
            )
        super().__init__(name="memory_ae")
        self.code_dims = code_dims
        self.slots = tuple(slots)
        self.hidden = tuple(hidden)
        self.floss_weights = tuple(floss_weights)
        self.optimizers = tuple(optimizers)
        self.learning_rate = tuple(learning_rate)
        self.seed = seed
        MemoryAEConfig(code_dims=code_dims, seed=seed)  # validates the fixed settings

    def config(self, hp) -> MemoryAEConfig:
        """The `MemoryAEConfig` of a trial's hyperparameters."""
        low, high = self.learning_rate
        return MemoryAEConfig(
            model="memory",
            code_dims=self.code_dims,
            slots=hp.Choice("slots", list(self.slots)),
            hidden=hp.Choice("hidden", list(self.hidden)),
            floss_weight=hp.Choice("floss_weight", list(self.floss_weights)),
            optimizer=hp.Choice("optimizer", list(self.optimizers)),
            learning_rate=hp.Float("learning_rate", low, high, sampling="log"),
            seed=self.seed,
        )

    def build(self, hp):
        model, _ = build_model(self.config(hp))
        return model
