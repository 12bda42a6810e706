"""`SimpleCNNHyperModel`: the seed's CNN and its batch/learning-rate schedule for keras-tuner.

keras-tuner is optional (`pip install experiment-zoo[tuner]`): this module imports without it,
and only building the hypermodel asks for it.
"""

try:
    import keras_tuner
except ImportError:  # the `tuner` extra is not installed
    keras_tuner = None

import keras

from .config import SCHEDULES
from .models import SimpleCNN
from .schedules import schedule_callbacks

_HyperModel = keras_tuner.HyperModel if keras_tuner is not None else object


class SimpleCNNHyperModel(_HyperModel):
    """Searches `SimpleCNN` trained by plain SGD under one of the schedules: the 1x1
    convolution's activation and the initial learning rate (in `build`), the schedule, the
    initial batch size and the lr decay (in `fit`, which trains on
    `IncreasingBatchSize.dataset` batches).

    Args:
        input_shape: the images' shape, e.g. `(28, 28, 1)`.
        classes: int, number of classes. Defaults to 10.
        schedules: the schedules to try. Defaults to all four.
        batch_sizes: the initial batch sizes to try. Defaults to `(64, 128, 256)`.
        lr_decays: the per-epoch decay factors to try. Defaults to `(0.8, 0.9)`.
        learning_rate: `(min, max)` of the log-uniform initial learning rate. Defaults to
            `(0.01, 0.3)`.
        seed: int, the seed of the shuffling. Defaults to 0.

    Example:

    >>> import keras_tuner
    >>> hypermodel = SimpleCNNHyperModel((28, 28, 1))
    >>> model = hypermodel.build(keras_tuner.HyperParameters())
    >>> type(model).__name__, type(model.optimizer).__name__
    ('SimpleCNN', 'SGD')
    """

    def __init__(
        self,
        input_shape,
        classes: int = 10,
        schedules=SCHEDULES,
        batch_sizes=(64, 128, 256),
        lr_decays=(0.8, 0.9),
        learning_rate=(0.01, 0.3),
        seed: int = 0,
    ):
        if keras_tuner is None:
            raise ImportError(
                "SimpleCNNHyperModel needs keras-tuner: pip install 'experiment-zoo[tuner]'."
            )
        super().__init__(name="simple_cnn")
        unknown = sorted(set(schedules) - set(SCHEDULES))
        if unknown:
            raise ValueError(f"`schedules` must be among {', '.join(SCHEDULES)}, got {unknown}.")
        self.input_shape = tuple(input_shape)
        self.classes = classes
        self.schedules = tuple(schedules)
        self.batch_sizes = tuple(batch_sizes)
        self.lr_decays = tuple(lr_decays)
        self.learning_rate = tuple(learning_rate)
        self.seed = seed

    def build(self, hp):
        activation = hp.Choice("conv3_activation", ["none", "relu"])
        low, high = self.learning_rate
        model = SimpleCNN(None if activation == "none" else activation, self.classes)
        model.compile(
            keras.optimizers.SGD(hp.Float("learning_rate", low, high, sampling="log")),
            keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=["accuracy"],
        )
        model.build((None, *self.input_shape))
        return model

    def fit(self, hp, model, x, y, callbacks=None, **kwargs):
        """`model.fit` on `x, y` under the trial's schedule; `kwargs` go to `fit` (epochs,
        validation_data, verbose, ...)."""
        schedule = hp.Choice("schedule", list(self.schedules))
        lr_schedule, ibs = schedule_callbacks(
            schedule,
            len(x),
            batch_size=hp.Choice("batch_size", list(self.batch_sizes)),
            learning_rate=hp.get("learning_rate"),
            lr_decay=hp.Choice("lr_decay", list(self.lr_decays)),
        )
        batches = ibs.dataset(x, y, seed=self.seed)
        return model.fit(
            batches.for_fit(),
            shuffle=False,
            callbacks=[ibs, lr_schedule, *(callbacks or [])],
            **kwargs,
        )
