import copy
import math
import sys

import keras

from zoo.data import ResizableBatches
from zoo.validation import check_positive_int


def batch_size_at(epoch, initial, growth, maximum):
    """`min(maximum, int(initial * growth**epoch))`, epoch counted from 0."""
    return min(maximum, int(initial * growth**epoch))


def equivalent_batch_schedule(initial_batch, lr_decay, epochs, maximum=None):
    """Turns a per-epoch learning-rate decay into the equivalent batch-size schedule.

    Smith et al.'s rule: the SGD noise scale is about `lr * N / B`, so where a
    schedule would multiply the learning rate by `lr_decay` each epoch, divide
    the batch size by `lr_decay` instead. Returns the batch size of each epoch
    (epoch 0 first), capped at `maximum`.

    Example:

    >>> equivalent_batch_schedule(128, 0.9, 3)
    [128, 142, 158]
    """
    if not 0 < lr_decay <= 1:
        raise ValueError(f"`lr_decay` must be in (0, 1], got {lr_decay!r}.")
    maximum = maximum or math.inf
    return [int(min(maximum, round(initial_batch / lr_decay**e, 6))) for e in range(epochs)]


def _running_fit():
    """The `(epoch_iterator, callback_list)` of the `fit` call that is running now.

    Keras fixes the number of steps when `fit` starts; a callback that
    changes the batch size must correct it, and Keras offers no handle on the
    iterator, so we look it up on the stack of the running `fit`.
    """
    frame = sys._getframe(1)
    while frame is not None:
        names = frame.f_locals
        if frame.f_code.co_name == "fit" and "epoch_iterator" in names and "callbacks" in names:
            return names["epoch_iterator"], names["callbacks"]
        frame = frame.f_back
    raise RuntimeError("IncreasingBatchSize must be used inside `model.fit`.")


@keras.saving.register_keras_serializable(package="zoo")
class IncreasingBatchSize(keras.callbacks.Callback):
    """Grows the batch size every epoch: `batch_e = min(maximum, int(initial * growth**e))`.

    Keras cannot change `fit`'s batch size from a callback, so the data comes
    from a `zoo.data.ResizableBatches` (build one with `dataset(x, y)`); at
    each epoch this callback sets its batch size, corrects the step count that
    the progress bar and the epoch loop use, and logs `batch_size` and the
    cumulative `parameter_updates` in `history`. Every example is seen exactly
    once per epoch.

    Args:
        initial: int, the batch size of epoch 0.
        growth: float >= 1, the per-epoch factor (1.037 in the ibs seed).
        maximum: int, the cap (`N / 10` in the seed).
        data: the `ResizableBatches` passed to `fit`, or None to set it later
            with `dataset()`.

    Example:

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

    def __init__(self, initial, growth, maximum, data=None):
        super().__init__()
        check_positive_int("initial", initial)
        if not isinstance(growth, (int, float)) or growth < 1:
            raise ValueError(f"`growth` must be a number >= 1, got {growth!r}.")
        if isinstance(maximum, bool) or not isinstance(maximum, int) or maximum < initial:
            raise ValueError(f"`maximum` must be an integer >= initial ({initial}), got {maximum!r}.")
        if data is not None and not isinstance(data, ResizableBatches):
            raise ValueError("`data` must be a zoo.data.ResizableBatches.")
        self.initial = initial
        self.growth = growth
        self.maximum = maximum
        self.data = data

    def batch_size_at(self, epoch):
        return batch_size_at(epoch, self.initial, self.growth, self.maximum)

    def dataset(self, x, y, shuffle=True, seed=None):
        """Wraps `(x, y)` into the `ResizableBatches` this callback drives."""
        self.data = ResizableBatches(x, y, batch_size=self.initial, shuffle=shuffle, seed=seed)
        return self.data

    def __deepcopy__(self, memo):
        # keras-tuner deep-copies callbacks per trial; the copy must still
        # drive the very dataset that is passed to `fit`.
        memo[id(self.data)] = self.data
        clone = self.__class__.__new__(self.__class__)
        memo[id(self)] = clone
        for key, value in self.__dict__.items():
            setattr(clone, key, copy.deepcopy(value, memo))
        return clone

    def on_epoch_begin(self, epoch, logs=None):
        if self.data is None:
            raise ValueError(
                "IncreasingBatchSize has no data: pass `data=` or fit on `ibs.dataset(x, y)`."
            )
        self.data.batch_size = self.batch_size_at(epoch)
        steps = len(self.data)
        epoch_iterator, callback_list = _running_fit()
        epoch_iterator._num_batches = steps
        callback_list.params["steps"] = steps
        for callback in callback_list.callbacks:
            if isinstance(callback, keras.callbacks.ProgbarLogger):
                callback.target = steps
                if callback.progbar is not None:
                    callback.progbar.target = steps

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["batch_size"] = self.data.batch_size
            logs["parameter_updates"] = int(self.model.optimizer.iterations.numpy())

    def get_config(self):
        return {"initial": self.initial, "growth": self.growth, "maximum": self.maximum}
