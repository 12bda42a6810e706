"""`IncreasingBatchSize`: a batch size that grows every epoch, with plain `model.fit`."""

import math
import sys
from typing import Any, Callable, NamedTuple, Optional

import keras

from zoo.data import ResizableBatches
from zoo.errors import UsageError
from zoo.validation import check_float, check_positive_int


def batch_size_at(epoch: int, initial: int, growth: float, maximum: int) -> int:
    """`min(maximum, int(initial * growth**epoch))`, epoch counted from 0.

    Example:

    >>> from zoo.callbacks import batch_size_at
    >>> [batch_size_at(epoch, 128, 1.037, 140) for epoch in range(4)]
    [128, 132, 137, 140]
    """
    return min(maximum, int(initial * growth**epoch))


def equivalent_batch_schedule(
    initial_batch: int, lr_decay: float, epochs: int, maximum: Optional[int] = None
) -> list[int]:
    """Turns a per-epoch learning-rate decay into the equivalent batch-size schedule.

    Smith et al.'s rule: the SGD noise scale is about `lr * N / B`, so where a
    schedule would multiply the learning rate by `lr_decay` each epoch, divide
    the batch size by `lr_decay` instead. Returns the batch size of each epoch
    (epoch 0 first), capped at `maximum`.

    Example:

    >>> from zoo.callbacks import equivalent_batch_schedule
    >>> equivalent_batch_schedule(128, 0.9, 3)
    [128, 142, 158]
    """
    check_float("lr_decay", lr_decay, low=0, low_inclusive=False, high=1)
    cap = math.inf if maximum is None else maximum
    return [int(min(cap, round(initial_batch / lr_decay**e, 6))) for e in range(epochs)]


class _FitLoop(NamedTuple):
    """What `IncreasingBatchSize` needs from the running `fit`."""

    training_data: Any  # the PyDataset `fit` trains on, or None for any other kind of data
    training_kind: str  # how Keras reads the training data, for error messages
    steps_per_epoch: Optional[int]  # `fit(steps_per_epoch=...)`
    set_steps: Callable[[int], None]  # the epoch loop and the progress bar run this many steps


def _running_fit(callback: keras.callbacks.Callback) -> _FitLoop:
    """The one private touch point: the training loop of the `fit` that calls `callback`.

    Keras 3 reads the number of batches once per `fit` (`EpochIterator.reset`)
    and offers no hook to change it, nor a handle on the iterator. This finds
    the `fit` frame that holds both the `CallbackList` containing `callback`
    and one `EpochIterator` (by type and identity, not by variable names),
    checks the internals it relies on, and raises naming the Keras version
    when they differ: never a silent fallback.
    """
    unsupported = (
        "IncreasingBatchSize relies on Keras 3 training-loop internals that differ in "
        f"Keras {keras.__version__} (written for 3.15)"
    )
    try:
        from keras.src.callbacks.callback_list import CallbackList
        from keras.src.trainers.data_adapters.data_adapter import DataAdapter
        from keras.src.trainers.epoch_iterator import EpochIterator
    except ImportError as error:
        raise RuntimeError(f"{unsupported}: {error}.") from None
    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_code.co_name == "fit":
            values = list(frame.f_locals.values())
            iterators = [v for v in values if isinstance(v, EpochIterator)]
            lists = [v for v in values if isinstance(v, CallbackList) and callback in v.callbacks]
            if len(iterators) == 1 and len(lists) == 1:
                break
        frame = frame.f_back
    else:
        raise RuntimeError(
            f"{unsupported}, or it runs outside `model.fit`: no `fit` holds this callback "
            "and an EpochIterator."
        )
    iterator, callback_list = iterators[0], lists[0]
    adapter = getattr(iterator, "data_adapter", None)
    if (
        "_num_batches" not in vars(iterator)
        or not hasattr(iterator, "steps_per_epoch")
        or not isinstance(adapter, DataAdapter)
    ):
        raise RuntimeError(
            f"{unsupported}: EpochIterator lacks `_num_batches`, `steps_per_epoch` or "
            "`data_adapter`."
        )

    def set_steps(steps: int) -> None:
        iterator._num_batches = steps
        if iterator.num_batches != steps:
            raise RuntimeError(f"{unsupported}: EpochIterator.num_batches ignores `_num_batches`.")
        callback_list.params["steps"] = steps
        for other in callback_list.callbacks:
            if isinstance(other, keras.callbacks.ProgbarLogger):
                other.target = steps
                if other.progbar is not None:
                    other.progbar.target = steps

    training_data = getattr(adapter, "py_dataset", None)
    return _FitLoop(
        training_data=training_data,
        training_kind=type(training_data if training_data is not None else adapter).__name__,
        steps_per_epoch=iterator.steps_per_epoch,
        set_steps=set_steps,
    )


@keras.saving.register_keras_serializable(package="zoo")
class IncreasingBatchSize(keras.callbacks.Callback):
    """Grows the batch size every epoch: `batch_e = min(maximum, int(initial * growth**e))`.

    Keras cannot change `fit`'s batch size, so `fit` must train on a
    `zoo.data.ResizableBatches` (`ibs.dataset(x, y)` builds one). At the start
    of every epoch this callback sets that dataset's batch size and epoch and
    tells the epoch loop and the progress bar the new number of steps; at the
    end it logs `batch_size` and the cumulative `parameter_updates` (the
    optimizer's step count). Every training example is seen exactly once per
    epoch.

    The dataset driven is the one `fit` trains on, read from the running
    `fit`: validation data of any kind (arrays, `tf.data`, a `PyDataset`,
    another `ResizableBatches`, one made by `ibs.dataset` too) is never
    resized. Training on anything but a `ResizableBatches`, or passing
    `steps_per_epoch` (the epoch is one pass over the data here), is a
    `UsageError`. A run resumed by `keras.callbacks.BackupAndRestore` goes on
    with the resumed epoch's batch size and data order. Place it before
    callbacks that read the logs (`CSVLogger`, `TensorBoard`, `EarlyStopping`)
    so they see `batch_size` and `parameter_updates`.

    Args:
        initial: int > 0, the batch size of epoch 0.
        growth: float >= 1, the per-epoch factor (1.037 in the ibs seed).
        maximum: int >= `initial`, the cap (`N / 10` in the seed).

    Example:

    >>> import keras, numpy as np
    >>> from zoo.callbacks import IncreasingBatchSize
    >>> ibs = IncreasingBatchSize(initial=2, growth=2.0, maximum=8)
    >>> data = ibs.dataset(np.zeros((16, 1)), np.zeros((16, 1)), seed=0)
    >>> model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    >>> model.compile("sgd", "mse")
    >>> history = model.fit(data, epochs=3, callbacks=[ibs], verbose=0)
    >>> history.history["batch_size"], history.history["parameter_updates"]
    ([2, 4, 8], [8, 12, 14])

    References:
        Smith et al. 2017, "Don't Decay the Learning Rate, Increase the Batch
        Size" (arXiv 1711.00489); dboyliao/CardinalBlue_Interview_Q2 (seed `002`).
    """

    def __init__(self, initial: int, growth: float, maximum: int):
        super().__init__()
        self.initial = check_positive_int("initial", initial)
        self.growth = check_float("growth", growth, low=1)
        self.maximum = check_positive_int("maximum", maximum)
        if self.maximum < self.initial:
            raise UsageError(f"`maximum` must be >= initial ({initial}), got {maximum!r}.")

    def batch_size_at(self, epoch: int) -> int:
        """The batch size of `epoch` (counted from 0)."""
        return batch_size_at(epoch, self.initial, self.growth, self.maximum)

    def dataset(
        self, x: Any, y: Any, shuffle: bool = True, seed: Optional[int] = None
    ) -> ResizableBatches:
        """A `ResizableBatches` over `(x, y)` starting at batch size `initial`.

        Pass it to `fit` as the training data; building validation data this
        way is harmless (only the training data is resized).
        """
        return ResizableBatches(x, y, batch_size=self.initial, shuffle=shuffle, seed=seed)

    def on_epoch_begin(self, epoch: int, logs: Optional[dict] = None) -> None:
        loop = _running_fit(self)
        data = loop.training_data
        if not isinstance(data, ResizableBatches):
            raise UsageError(
                "IncreasingBatchSize needs `fit` to train on a zoo.data.ResizableBatches "
                f"(build it with `ibs.dataset(x, y)`), got {loop.training_kind}."
            )
        if loop.steps_per_epoch:
            raise UsageError(
                "IncreasingBatchSize makes every epoch one pass over the data: do not pass "
                f"`steps_per_epoch` (got {loop.steps_per_epoch})."
            )
        data.batch_size = self.batch_size_at(epoch)
        data.epoch = epoch
        loop.set_steps(len(data))
        self._batch_size = data.batch_size

    def on_epoch_end(self, epoch: int, logs: Optional[dict] = None) -> None:
        if logs is not None:
            logs["batch_size"] = self._batch_size
            iterations = keras.ops.convert_to_numpy(self.model.optimizer.iterations)
            logs["parameter_updates"] = int(iterations)

    def get_config(self) -> dict:
        return {"initial": self.initial, "growth": self.growth, "maximum": self.maximum}
