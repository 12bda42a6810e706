"""`ExpDecay`: per-epoch exponential learning-rate decay, a function of the epoch."""

import math
import weakref
from typing import Optional

import keras

from zoo.errors import UsageError
from zoo.validation import check_float


def _read_learning_rate(optimizer: keras.optimizers.Optimizer) -> float:
    return float(keras.ops.convert_to_numpy(optimizer.learning_rate))


@keras.saving.register_keras_serializable(package="zoo")
class ExpDecay(keras.callbacks.Callback):
    """Per-epoch exponential learning-rate decay: `lr_e = max(floor, lr_0 * rate**e)`.

    Like `keras.callbacks.LearningRateScheduler`, the rate is a function of
    the epoch `e`, never of the previous rate, so a run resumed by
    `keras.callbacks.BackupAndRestore` (any number of times) or started with
    `initial_epoch` lands on the same curve. `lr_0` is `initial_learning_rate`
    when given, else the optimizer's learning rate when this callback first
    meets the optimizer (in `set_model`, before any callback's
    `on_train_begin` restores a backup). A new `ExpDecay` on an optimizer
    that an earlier `fit` already decayed needs `initial_learning_rate`.
    The rate in force is logged as `learning_rate` every epoch.

    With `keras.callbacks.ReduceLROnPlateau` (or anything else that changes
    the learning rate between epochs) the two compose: each change found at
    the start of an epoch scales every later rate by the same factor, so
    `lr_e = max(floor, lr_0 * rate**e) * reduction`, `reduction` being the
    product of the factors applied since this callback's first `fit`. The
    reduction lives in the callback: a new `ExpDecay` (a resumed process)
    starts again from 1, as `ReduceLROnPlateau`'s own counters do.

    Args:
        rate: float in `(0, 1]`, the per-epoch factor (0.9 in the lrd seed,
            0.98 per ArgMaxNet episode).
        floor: optional float >= 0, the lowest rate the decay reaches.
        initial_learning_rate: optional float > 0, `lr_0`.
        verbose: int, 1 prints the new rate at every epoch.

    Example:

    >>> import keras, numpy as np
    >>> from zoo.callbacks import ExpDecay
    >>> model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    >>> model.compile(keras.optimizers.SGD(0.1), "mse")
    >>> history = model.fit(np.zeros((4, 1)), np.zeros((4, 1)), epochs=3,
    ...                     callbacks=[ExpDecay(0.5)], verbose=0)
    >>> [round(lr, 3) for lr in history.history["learning_rate"]]
    [0.1, 0.05, 0.025]

    References:
        Smith et al. 2017, "Don't Decay the Learning Rate, Increase the Batch
        Size" (arXiv 1711.00489), seed `002`.
    """

    def __init__(
        self,
        rate: float,
        floor: Optional[float] = None,
        initial_learning_rate: Optional[float] = None,
        verbose: int = 0,
    ):
        super().__init__()
        self.rate = check_float("rate", rate, low=0, low_inclusive=False, high=1)
        self.floor = None if floor is None else check_float("floor", floor, low=0)
        if initial_learning_rate is not None:
            initial_learning_rate = check_float(
                "initial_learning_rate", initial_learning_rate, low=0, low_inclusive=False
            )
        self.initial_learning_rate = initial_learning_rate
        self.verbose = verbose
        self.reduction = 1.0
        self._captured_lr0: Optional[float] = None
        self._captured_from = None  # weak reference to the optimizer lr_0 was read from
        self._in_force: Optional[float] = None

    @property
    def initial_rate(self) -> Optional[float]:
        """`lr_0`: `initial_learning_rate`, or the rate captured from the optimizer."""
        if self.initial_learning_rate is not None:
            return self.initial_learning_rate
        return self._captured_lr0

    def learning_rate_at(self, epoch: int) -> float:
        """`max(floor, lr_0 * rate**epoch) * reduction`."""
        if self.initial_rate is None:
            raise UsageError(
                "ExpDecay has no initial learning rate yet: pass `initial_learning_rate` "
                "or use it in `fit` first."
            )
        lr = self.initial_rate * self.rate**epoch
        if self.floor is not None:
            lr = max(lr, self.floor)
        return lr * self.reduction

    def set_model(self, model: keras.Model) -> None:
        super().set_model(model)
        optimizer = getattr(model, "optimizer", None)
        if optimizer is None:
            return
        schedule = optimizer.get_config().get("learning_rate")
        if isinstance(schedule, dict):
            raise UsageError(
                "ExpDecay needs an optimizer with a float `learning_rate`, but it holds a "
                f"{schedule.get('class_name', 'LearningRateSchedule')} schedule."
            )
        captured_from = self._captured_from() if self._captured_from is not None else None
        if captured_from is not optimizer:
            # A new optimizer is a new run: its current rate is lr_0 (read before any
            # BackupAndRestore restores a decayed one in on_train_begin).
            self._captured_lr0 = _read_learning_rate(optimizer)
            self._captured_from = weakref.ref(optimizer)
            self.reduction = 1.0

    def on_train_begin(self, logs: Optional[dict] = None) -> None:
        if self.model.optimizer is None or self.initial_rate is None:
            raise UsageError("ExpDecay needs a compiled model with an optimizer.")
        # A restore between fits (BackupAndRestore) is not a reduction.
        self._in_force = None

    def _take_in_outside_changes(self) -> None:
        """Folds a change made by another callback since the last epoch into `reduction`."""
        if self._in_force is not None:
            current = _read_learning_rate(self.model.optimizer)
            if not math.isclose(current, self._in_force, rel_tol=1e-6):
                self.reduction *= current / self._in_force
                self._in_force = current

    def on_epoch_begin(self, epoch: int, logs: Optional[dict] = None) -> None:
        self._take_in_outside_changes()
        optimizer = self.model.optimizer
        optimizer.learning_rate = self.learning_rate_at(epoch)
        self._in_force = _read_learning_rate(optimizer)
        if self.verbose:
            print(f"ExpDecay: epoch {epoch + 1} learning rate {self._in_force:.6g}", flush=True)

    def on_epoch_end(self, epoch: int, logs: Optional[dict] = None) -> None:
        if logs is not None and self._in_force is not None:
            logs["learning_rate"] = self._in_force

    def on_train_end(self, logs: Optional[dict] = None) -> None:
        self._take_in_outside_changes()

    def get_config(self) -> dict:
        return {
            "rate": self.rate,
            "floor": self.floor,
            "initial_learning_rate": self.initial_learning_rate,
            "verbose": self.verbose,
        }
