"""`ExpDecay`: per-epoch exponential learning-rate decay, a function of the epoch."""

import dataclasses
import math
import weakref
from typing import Any, Optional

import keras

from zoo.errors import UsageError
from zoo.validation import check_float


@dataclasses.dataclass
class _Curve:
    """What `ExpDecay` knows of one optimizer's learning rate; kept per optimizer, so a new
    `ExpDecay` on the same optimizer (a `fit` resumed in the same process) continues it."""

    initial: float  # lr_0
    last_set: float  # the rate an ExpDecay set last (a different rate means a new curve)
    reduction: float = 1.0  # the product of outside changes (ReduceLROnPlateau) so far
    in_force: Optional[float] = None  # this fit's rate, None before its first epoch


_CURVES: "weakref.WeakKeyDictionary[Any, _Curve]" = weakref.WeakKeyDictionary()


def _read_learning_rate(optimizer: Any) -> float:
    return float(keras.ops.convert_to_numpy(optimizer.learning_rate))


@keras.saving.register_keras_serializable(package="zoo")
class ExpDecay(keras.callbacks.Callback):
    """Per-epoch exponential learning-rate decay: `lr_e = max(floor, lr_0 * rate**e)`.

    Like `keras.callbacks.LearningRateScheduler`, the rate is a function of
    the epoch `e`, never of the previous rate, so a run resumed by
    `keras.callbacks.BackupAndRestore` (any number of times) or started with
    `initial_epoch` lands on the same curve. `lr_0` is `initial_learning_rate`
    when given, else the optimizer's rate before any `ExpDecay` changed it:
    read when the callback meets the optimizer (`set_model`, before any
    callback restores a backup in `on_train_begin`) and remembered per
    optimizer, so a new `ExpDecay` on an optimizer that an `ExpDecay` decayed
    continues the same curve. A rate set by hand in between starts a new
    curve from that rate. A model loaded from a file holds a new optimizer
    whose rate is already decayed: pass `initial_learning_rate` there. The
    rate in force is logged as `learning_rate` every epoch; place `ExpDecay`
    before callbacks that read the logs (`CSVLogger`).

    With `keras.callbacks.ReduceLROnPlateau` (or anything else that changes
    the rate between epochs) the two compose: each change found at the start
    of an epoch (or the end of `fit`) scales every later rate by the same
    factor, `lr_e = max(floor, lr_0 * rate**e) * reduction`, `reduction` being
    the product of those factors. It is kept per optimizer in this process; a
    new process (a `BackupAndRestore` resume) starts it again at 1, as
    `ReduceLROnPlateau` restarts its own counters.

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
        self._curve: Optional[_Curve] = None

    def learning_rate_at(self, epoch: int) -> float:
        """The rate of `epoch`: `max(floor, lr_0 * rate**epoch) * reduction`."""
        initial = self._curve.initial if self._curve else self.initial_learning_rate
        if initial is None:
            raise UsageError(
                "ExpDecay has no initial learning rate yet: pass `initial_learning_rate` "
                "or use it in `fit` first."
            )
        lr = initial * self.rate**epoch
        if self.floor is not None:
            lr = max(lr, self.floor)
        return lr * (self._curve.reduction if self._curve else 1.0)

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
        current = _read_learning_rate(optimizer)
        curve = _CURVES.get(optimizer)
        if curve is None or not math.isclose(current, curve.last_set, rel_tol=1e-6):
            curve = _CURVES[optimizer] = _Curve(initial=current, last_set=current)
        if self.initial_learning_rate is not None:
            curve.initial = self.initial_learning_rate
        curve.in_force = None  # a restore before the first epoch is not a reduction
        self._curve = curve

    def _take_in_outside_changes(self) -> None:
        """Folds a change made by someone else since this fit's last epoch into `reduction`."""
        curve = self._curve
        if curve.in_force is None:
            return
        current = _read_learning_rate(self.model.optimizer)
        if not math.isclose(current, curve.in_force, rel_tol=1e-6):
            curve.reduction *= current / curve.in_force
            curve.in_force = curve.last_set = current

    def on_train_begin(self, logs: Optional[dict] = None) -> None:
        if self._curve is None:
            raise UsageError("ExpDecay needs a model compiled with an optimizer.")

    def on_epoch_begin(self, epoch: int, logs: Optional[dict] = None) -> None:
        self._take_in_outside_changes()
        optimizer = self.model.optimizer
        optimizer.learning_rate = self.learning_rate_at(epoch)
        self._curve.in_force = self._curve.last_set = _read_learning_rate(optimizer)
        if self.verbose:
            print(f"ExpDecay: epoch {epoch + 1} learning rate {self._curve.in_force:.6g}")

    def on_epoch_end(self, epoch: int, logs: Optional[dict] = None) -> None:
        if logs is not None and self._curve.in_force is not None:
            logs["learning_rate"] = self._curve.in_force

    def on_train_end(self, logs: Optional[dict] = None) -> None:
        self._take_in_outside_changes()

    def get_config(self) -> dict:
        return {
            "rate": self.rate,
            "floor": self.floor,
            "initial_learning_rate": self.initial_learning_rate,
            "verbose": self.verbose,
        }
