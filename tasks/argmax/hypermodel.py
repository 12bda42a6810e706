"""`ArgMaxHyperModel`: ArgMaxNet's architecture space for keras-tuner, under a parameter budget.

keras-tuner is an optional dependency (`pip install "experiment-zoo[tuner]"`): without it this
module still imports, and creating an `ArgMaxHyperModel` raises `MissingExtraError`.
"""

from typing import Any, Sequence

import keras

from zoo.errors import MissingExtraError, UsageError
from zoo.metrics import RoundedIndexError
from zoo.tasks.argmax.budget import BLOCKS, count_parameters, widest_hidden
from zoo.tasks.argmax.config import PARAMETER_BUDGET
from zoo.tasks.argmax.models import ArgMaxNet
from zoo.validation import check_choice, check_float, check_positive_int

try:
    import keras_tuner
except ImportError:  # the `tuner` extra is not installed
    keras_tuner = None


def require_keras_tuner() -> None:
    """Raises `MissingExtraError` (one line, naming the extra) if keras-tuner is missing."""
    if keras_tuner is None:
        raise MissingExtraError(
            'keras-tuner is not installed: pip install "experiment-zoo[tuner]".'
        )


_HyperModelBase = keras_tuner.HyperModel if keras_tuner is not None else object


class ArgMaxHyperModel(_HyperModelBase):
    """ArgMaxNet architectures within a parameter budget, for a keras-tuner search.

    Hyperparameters: `depth` (1 to `max_depth` blocks), `block` (one of `blocks`),
    `width_fraction` (the hidden width as a fraction, 0.25 to 1, of the widest that keeps the
    network within `budget`; the width built is recorded as `model.hidden`) and
    `learning_rate` (Adam, log-uniform in `learning_rates`). Every candidate is within the
    budget by construction (see `architecture`). Models are compiled with the mean squared
    error and the `err` metric (`RoundedIndexError`), so the search's objective is
    `keras_tuner.Objective("val_err", "min")`.

    Args:
        budget: the most parameters a candidate may have (the seed net's 3,821 by default).
        max_depth: the deepest candidate.
        blocks: the block kinds searched (`"residual"`, `"multiply"`).
        learning_rates: `(lowest, highest)` Adam learning rate.
        steps_per_execution: steps per compiled call; `steps_per_epoch` given to the search
            must be a multiple of it (a check in `fit`), so that every trial trains exactly
            the steps asked for.

    Example:

    >>> import keras_tuner
    >>> hypermodel = ArgMaxHyperModel(budget=2000)
    >>> model = hypermodel.build(keras_tuner.HyperParameters())
    >>> model.count_params() <= 2000
    True

    A whole search (as in the README):

        tuner = keras_tuner.RandomSearch(
            ArgMaxHyperModel(budget=2000), objective=keras_tuner.Objective("val_err", "min"),
            max_trials=10, directory="my-search", project_name="argmax")
        tuner.search(score_dataset(250, 3000, seed=0), epochs=1, steps_per_epoch=3000,
                     validation_data=score_dataset(500, 10, seed=1))
    """

    def __init__(
        self,
        budget: int = PARAMETER_BUDGET,
        max_depth: int = 6,
        blocks: Sequence[str] = BLOCKS,
        learning_rates: tuple = (1e-4, 1e-2),
        steps_per_execution: int = 1,
        **kwargs: Any,
    ):
        require_keras_tuner()
        super().__init__(**kwargs)
        self.budget = check_positive_int("budget", budget)
        self.max_depth = check_positive_int("max_depth", max_depth)
        self.blocks = tuple(check_choice("blocks", block, BLOCKS) for block in blocks)
        if not self.blocks:
            raise UsageError("`blocks` must name at least one block kind.")
        low, high = learning_rates
        low = check_float("learning_rates[0]", low, low=0, low_inclusive=False)
        high = check_float("learning_rates[1]", high, low=low, low_inclusive=False)
        self.learning_rates = (low, high)
        self.steps_per_execution = check_positive_int("steps_per_execution", steps_per_execution)
        smallest = max(count_parameters(self.max_depth, 1, block) for block in self.blocks)
        if self.budget < smallest:
            raise UsageError(
                f"`budget` must be at least {smallest:,} (the narrowest {self.max_depth}-block "
                f"candidate), got {self.budget:,}."
            )

    def architecture(self, hp) -> tuple:
        """`(depth, hidden, block)` of the candidate `hp` describes (no model is built)."""
        depth = hp.Int("depth", 1, self.max_depth)
        block = hp.Choice("block", list(self.blocks))
        widest = widest_hidden(depth, block, self.budget)
        hidden = max(1, round(widest * hp.Float("width_fraction", 0.25, 1.0)))
        return depth, hidden, block

    def build(self, hp) -> ArgMaxNet:
        depth, hidden, block = self.architecture(hp)
        learning_rate = hp.Float("learning_rate", *self.learning_rates, sampling="log")
        model = ArgMaxNet(depth, hidden, block)
        model.compile(
            optimizer=keras.optimizers.Adam(learning_rate),
            loss=keras.losses.MeanSquaredError(),
            metrics=[RoundedIndexError()],
            steps_per_execution=self.steps_per_execution,
            jit_compile=True,
        )
        return model

    def fit(self, hp, model, *args, **kwargs):
        steps = kwargs.get("steps_per_epoch")
        if steps is not None and steps % self.steps_per_execution:
            raise UsageError(
                f"`steps_per_epoch` ({steps}) must be a multiple of the hypermodel's "
                f"`steps_per_execution` ({self.steps_per_execution})."
            )
        kwargs.setdefault("shuffle", False)  # fresh batches every step: nothing to shuffle
        return model.fit(*args, **kwargs)
