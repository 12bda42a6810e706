"""The Keras side of the run lifecycle (`zoo.lifecycle`).

- `CommitEpoch` commits every epoch in order: the history row, then the `TrainingState`
  checkpoint, then TensorBoard; a signal received during the epoch stops the run after it.
- `TrainingState` is the checkpoint of a Keras model: weights, optimizer variables, RNG states,
  as one `.npz`.
- `WallTime` logs `wall_seconds`, accumulated across resumes.
- `StopOnNonFinite` turns a NaN or infinite loss into a `DivergenceError` at once, instead of
  Keras's `TerminateOnNaN`, which stops without an error and lets the run look finished.
"""

import math
import time
from pathlib import Path
from typing import Optional

import keras

from zoo.errors import CorruptFileError, DivergenceError
from zoo.files import crash_point, load_keras_model, load_npz


class WallTime(keras.callbacks.Callback):
    """Logs `wall_seconds`: seconds of training so far, starting from `offset` (the time an
    earlier, interrupted part of the run already spent).

    Args:
        offset: seconds already spent before this `fit`.
    """

    def __init__(self, offset: float = 0.0):
        super().__init__()
        self.offset = float(offset)
        self.started = None

    def on_train_begin(self, logs=None):
        self.started = time.time()

    def elapsed(self) -> float:
        return self.offset + (time.time() - self.started if self.started else 0.0)

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["wall_seconds"] = self.elapsed()


class StopOnNonFinite(keras.callbacks.Callback):
    """Raises `DivergenceError` on the first non-finite loss, naming the epoch and batch.

    Args:
        hint: the likely cause, appended to the message.
    """

    def __init__(self, hint: str = "the learning rate is likely too high"):
        super().__init__()
        self.hint = hint
        self.epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def _check(self, logs, where):
        for key in ("loss",):
            value = (logs or {}).get(key)
            if value is not None and not math.isfinite(float(value)):
                raise DivergenceError(f"the loss became {float(value)} at {where}; {self.hint}.")

    def on_train_batch_end(self, batch, logs=None):
        self._check(logs, f"epoch {self.epoch + 1}, batch {batch + 1}")

    def on_epoch_end(self, epoch, logs=None):
        self._check(logs, f"the end of epoch {epoch + 1}")


class CommitEpoch(keras.callbacks.Callback):
    """The lifecycle's commit at the end of every epoch (`TrainingRun.callbacks`): the
    epoch's history row, then the `TrainingState` checkpoint, then TensorBoard; a signal
    received during the epoch stops the run right after this commit.

    Also the fault-injection point `train-batch`, after every training batch.

    Args:
        session: the `zoo.lifecycle.TrainingRun`.
        training_state: the `TrainingState` to commit.
        wall_time: the `WallTime` callback, whose seconds the commit stores.
        columns: constant history columns (e.g. `{"schedule": "ibs"}`).
        state: returns further task state to store with each commit.
    """

    def __init__(self, session, training_state, wall_time, *, columns=None, state=None):
        super().__init__()
        self.session = session
        self.training_state = training_state
        self.wall_time = wall_time
        self.columns = dict(columns or {})
        self.state = state

    def on_train_batch_end(self, batch, logs=None):
        crash_point("train-batch")

    def on_epoch_end(self, epoch, logs=None):
        row = dict(self.columns)
        row[self.session.step_column] = epoch + 1
        row.update({key: float(value) for key, value in (logs or {}).items()})
        state = {"wall_seconds": self.wall_time.elapsed(), **(self.state() if self.state else {})}
        self.session.commit_training_state(epoch + 1, [row], self.training_state, state)
        self.session.raise_if_interrupted()


class TrainingState:
    """What the next step of a Keras model depends on besides the data, as one `.npz`.

    Holds the model's weights (`weight_<i>`), the optimizer's variables (`optimizer_<i>`,
    unless `optimizer=False`) and any further variables by name (`extra`: a
    `keras.random.SeedGenerator`'s `state`, a step counter). Restoring checks every array's
    presence and shape, and a checkpoint that does not fit is a `CorruptFileError` naming it.

    Args:
        model: a built, compiled `keras.Model`.
        optimizer: whether the optimizer's variables are part of the state (a recipe that
            resets them every epoch may leave them out).
        extra: further variables, by the name they get in the file.
    """

    def __init__(self, model, *, optimizer: bool = True, extra: Optional[dict] = None):
        self.model = model
        self.optimizer = optimizer
        self.extra = dict(extra or {})

    def _optimizer_variables(self) -> list:
        if not self.optimizer:
            return []
        optimizer = self.model.optimizer
        if not optimizer.built:
            optimizer.build(self.model.trainable_variables)
        return list(optimizer.variables)

    def _targets(self) -> dict:
        targets = {f"weight_{i}": weight for i, weight in enumerate(self.model.weights)}
        for i, variable in enumerate(self._optimizer_variables()):
            targets[f"optimizer_{i}"] = variable
        targets.update(self.extra)
        return targets

    def arrays(self) -> dict:
        """The state as NumPy arrays, by name."""
        return {
            name: keras.ops.convert_to_numpy(variable) for name, variable in self._targets().items()
        }

    def save(self, path) -> None:
        """Writes the state to `path` (an `.npz`)."""
        import numpy as np

        with open(path, "wb") as handle:
            np.savez(handle, **self.arrays())

    def restore(self, path) -> None:
        """Loads a state written by `save` (or a whole-model `.keras` checkpoint of an earlier
        release) into the model, optimizer and extra variables."""
        path = Path(path)
        if path.suffix == ".keras":
            self._restore_keras(path)
            return
        arrays = load_npz(path)
        targets = self._targets()
        missing = sorted(set(targets) - set(arrays))
        unknown = sorted(set(arrays) - set(targets))
        if missing or unknown:
            raise CorruptFileError(
                path,
                "does not hold this model's training state ("
                + ", ".join(
                    part
                    for part in (
                        f"missing {', '.join(missing[:3])}" if missing else "",
                        f"unexpected {', '.join(unknown[:3])}" if unknown else "",
                    )
                    if part
                )
                + ")",
            )
        for name, variable in targets.items():
            if tuple(variable.shape) != arrays[name].shape:
                raise CorruptFileError(
                    path,
                    f"{name} ({variable.path}) has shape {arrays[name].shape}, expected "
                    f"{tuple(variable.shape)}",
                )
        for name, variable in targets.items():
            variable.assign(arrays[name])

    def _restore_keras(self, path: Path) -> None:
        saved = load_keras_model(path)
        if len(saved.weights) != len(self.model.weights):
            raise CorruptFileError(path, "does not hold this model")
        self.model.set_weights(saved.get_weights())
        if self.optimizer and saved.optimizer is not None:
            for variable, value in zip(self._optimizer_variables(), saved.optimizer.variables):
                variable.assign(value)
