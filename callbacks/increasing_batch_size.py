"""`IncreasingBatchSize`: a batch size that grows every epoch, with plain `model.fit`."""

import math
import sys
from typing import Any, Callable, NamedTuple, Optional

import keras
import numpy as np

from zoo.batches import ResizableBatches, take
from zoo.errors import UsageError
from zoo.validation import check_float, check_positive_int

# Loss reductions under which padded rows (weight 0) can leave the loss that of the true batch:
# the mean over the batch divides by the padded size, so real rows weigh padded / true.
_MEAN_REDUCTIONS = ("sum_over_batch_size", "mean")
_WEIGHT_FREE_REDUCTIONS = ("sum", "mean_with_sample_weight")


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


def shape_buckets(initial: int, maximum: int, bucket_growth: float) -> list[int]:
    """The padded batch sizes: `ceil(initial * bucket_growth**k)`, strictly increasing, the
    last one `maximum`.

    Example:

    >>> from zoo.callbacks.increasing_batch_size import shape_buckets
    >>> shape_buckets(128, 1000, 2.0)
    [128, 256, 512, 1000]
    """
    buckets = [initial]
    while buckets[-1] < maximum:
        grown = math.ceil(round(initial * bucket_growth ** len(buckets), 6))
        buckets.append(min(maximum, max(buckets[-1] + 1, grown)))
    return buckets


class IncreasingBatches(ResizableBatches):
    """What `IncreasingBatchSize.dataset` builds: a `zoo.data.ResizableBatches` whose batches
    are `(x, y, sample_weight)`, padded to a fixed size when asked.

    With `padded_size` unset (the default, and whenever the train step is not compiled per
    shape) every batch is the true batch with a sample weight of 1 per row (multiplying by 1
    changes no loss or metric). With `padded_size` set, the batch is completed to that many rows
    with copies of its first row weighing 0, and its real rows weigh `row_weight(true_size)`
    (`padded_size / true_size` for a mean over the batch, so that the loss, its gradient and
    every weighted-mean metric are those of the true batch).

    Args: as `zoo.data.ResizableBatches`.

    Example:

    >>> import numpy as np
    >>> data = IncreasingBatches(np.arange(5.0), np.arange(5.0), batch_size=2, shuffle=False)
    >>> data.padded_size, data.mean_reduction = 4, True
    >>> x, y, weight = data[2]
    >>> x.tolist(), weight.tolist()
    ([4.0, 4.0, 4.0, 4.0], [4.0, 0.0, 0.0, 0.0])
    """

    _graph_twin = True  # `tf_dataset()` computes this class's `__getitem__`
    _yields_weights = True

    def __init__(self, *args: Any, **kwargs: Any):
        self._padded_size: Optional[int] = None
        self._mean_reduction = True
        super().__init__(*args, **kwargs)

    @property
    def padded_size(self) -> Optional[int]:
        """The size every batch is padded to, or `None` for the true batches."""
        return self._padded_size

    @padded_size.setter
    def padded_size(self, value: Optional[int]) -> None:
        self._padded_size = None if value is None else check_positive_int("padded_size", value)
        self._sync_graph()

    @property
    def mean_reduction(self) -> bool:
        """Whether the loss averages over the batch (real rows then weigh padded / true)."""
        return self._mean_reduction

    @mean_reduction.setter
    def mean_reduction(self, value: bool) -> None:
        self._mean_reduction = bool(value)
        self._sync_graph()

    def _padding(self) -> tuple:
        if self.padded_size is None:
            return 0, False
        return self.padded_size, self.mean_reduction

    def row_weight(self, true_size: int) -> float:
        """The sample weight of each real row of a batch of `true_size` rows."""
        if self.padded_size is None or not self.mean_reduction:
            return 1.0
        return self.padded_size / true_size

    def __getitem__(self, index: int) -> tuple[Any, Any, np.ndarray]:
        rows = self.rows(index)
        true_size = len(rows)
        padding = 0 if self.padded_size is None else self.padded_size - true_size
        if padding < 0:
            raise RuntimeError(f"batch {index} holds {true_size} rows, over {self.padded_size}.")
        weight = np.zeros(true_size + padding, dtype="float32")
        weight[:true_size] = self.row_weight(true_size)
        if padding:  # copies of the batch's first row
            rows = np.concatenate([rows, np.repeat(rows[:1], padding)])
        return take(self.x, rows), take(self.y, rows), weight


class _FitLoop(NamedTuple):
    """What `IncreasingBatchSize` needs from the running `fit`."""

    training_data: Any  # the PyDataset `fit` trains on, or None for any other kind of data
    training_kind: str  # how Keras reads the training data, for error messages
    steps_per_epoch: Optional[int]  # `fit(steps_per_epoch=...)`
    callbacks: list  # the callbacks of the running `fit`
    set_steps: Callable[[int], None]  # the epoch loop and the progress bar run this many steps
    keep_batch_order: Callable[[], None]  # Keras's own shuffling of the batch order, off


def _running_fit(callback: keras.callbacks.Callback) -> _FitLoop:
    """The one private touch point: the training loop of the `fit` that calls `callback`.

    Keras 3 reads the number of batches once per `fit` (`EpochIterator.reset`)
    and offers no hook to change it, nor a handle on the iterator; and `fit`'s
    `shuffle` reorders a `PyDataset`'s batches with Python's global `random`
    (`PyDatasetAdapter.shuffle`, and its enqueuer's). This finds the `fit`
    frame that holds both the `CallbackList` containing `callback` and one
    `EpochIterator` (by type and identity, not by variable names), checks the
    internals it relies on, and raises naming the Keras version when they
    differ: never a silent fallback.
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
    training_data = getattr(adapter, "py_dataset", None)
    from_py_dataset = training_data is not None
    if from_py_dataset and "shuffle" not in vars(adapter):
        raise RuntimeError(f"{unsupported}: PyDatasetAdapter lacks `shuffle`.")
    if not from_py_dataset:  # `ResizableBatches.tf_dataset()`, which names its batches
        dataset = getattr(adapter, "_dataset", None)
        training_data = getattr(dataset, "_zoo_resizable_batches", None)

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

    def keep_batch_order() -> None:
        if not from_py_dataset:  # a tf.data dataset: Keras never reorders it
            return
        adapter.shuffle = False
        enqueuer = getattr(adapter, "enqueuer", None)
        if enqueuer is not None:
            if "shuffle" not in vars(enqueuer):
                raise RuntimeError(f"{unsupported}: the PyDataset enqueuer lacks `shuffle`.")
            enqueuer.shuffle = False

    return _FitLoop(
        training_data=training_data,
        training_kind=type(training_data if training_data is not None else adapter).__name__,
        steps_per_epoch=iterator.steps_per_epoch,
        callbacks=list(callback_list.callbacks),
        set_steps=set_steps,
        keep_batch_order=keep_batch_order,
    )


def _compiled_per_shape(model: keras.Model) -> bool:
    """Whether `model`'s train step is compiled for each input shape it meets: XLA on
    TensorFlow, `jax.jit` on JAX, `torch.compile` on PyTorch."""
    return bool(getattr(model, "jit_compile", False)) and not getattr(model, "run_eagerly", False)


def _mean_reduction(model: keras.Model) -> bool:
    """Whether the compiled losses of `model` average over the batch (real rows of a padded
    batch then weigh padded / true) or sum / average over the weights (they weigh 1).

    Raises `UsageError` when that cannot be told (no compiled loss, mixed or no reduction).
    """
    fix = "or compile with `jit_compile=False` (the step is then traced once for every batch size)"
    if model.loss is None:
        raise UsageError(
            "IncreasingBatchSize pads batches to a few shapes when the train step is compiled "
            f"per shape, which needs the loss given to `compile`; {fix}."
        )
    reductions = set()
    for loss in keras.tree.flatten(model.loss):
        reductions.add(getattr(loss, "reduction", "sum_over_batch_size"))
    mean = reductions <= set(_MEAN_REDUCTIONS)
    if not (mean or reductions <= set(_WEIGHT_FREE_REDUCTIONS)):
        raise UsageError(
            "IncreasingBatchSize cannot pad batches exactly for loss reductions "
            f"{sorted(map(str, reductions))}: use one of "
            f"{', '.join(_MEAN_REDUCTIONS + _WEIGHT_FREE_REDUCTIONS)} for every loss, {fix}."
        )
    return mean


@keras.saving.register_keras_serializable(package="zoo")
class IncreasingBatchSize(keras.callbacks.Callback):
    """Grows the batch size every epoch: `batch_e = min(maximum, int(initial * growth**e))`.

    Keras cannot change `fit`'s batch size, so `fit` must train on a
    `zoo.data.ResizableBatches`, best the one `ibs.dataset(x, y)` builds (an
    `IncreasingBatches`). At the start of every epoch this callback sets that
    dataset's batch size and epoch and tells the epoch loop and the progress
    bar the new number of steps; at the end it logs `batch_size` and the
    cumulative `parameter_updates` (the optimizer's step count). Every
    training example is seen exactly once per epoch.

    **No recompilation.** A new batch size must not cost a new compilation of
    the train step, on any backend. Two cases, chosen from the compiled model:

    - The step is not compiled per shape (`jit_compile=False`: TensorFlow's
      graph, PyTorch eager; Keras's `"auto"` on a CPU-only TensorFlow): the
      batches are the true batches. TensorFlow traces the step once, with an
      unknown batch dimension, and every size runs through that one graph.
      Cost: none beyond forgoing XLA; on a CPU, XLA made this project's CNN
      slower, not faster, even at one batch size.
    - The step is compiled per shape (JAX, or `jit_compile=True`): each
      epoch's batches, its last partial batch too, are padded up to the next
      of a fixed ladder of sizes, `shape_buckets(initial, maximum,
      bucket_growth)`, with copies of a real row weighing 0. Real rows weigh
      `padded / true` (losses that average over the batch) or 1 (`"sum"`,
      `"mean_with_sample_weight"`), so the loss, its gradient and every
      weighted-mean metric are those of the true batch (up to float rounding).
      Cost: at most `len(shape_buckets(...))` compilations in all (12 for
      128 -> 5,400 at the default `sqrt(2)`, instead of two per epoch), and up
      to `1 - 1/bucket_growth` of each step's arithmetic spent on padding
      (about 15% on average at `sqrt(2)`). Layers that mix rows (batch
      normalization) see the padding rows; the logged epoch `loss` weighs each
      batch by its padded size (only the last partial batch differs).

    **TensorFlow: pass `data.tf_dataset()`** (or `data.for_fit()`, which picks
    it on TensorFlow and the object itself elsewhere). Keras reads a
    `PyDataset` on TensorFlow through `tf.data.Dataset.from_generator`, whose
    kernel fixes glibc's mmap threshold at 128 KiB for the whole process
    (TensorFlow's Python 3.11 memory patch); every large buffer is then
    mapped and page-faulted afresh, which made the seed's CNN epochs about
    twice as slow, and every later `fit` in the process too. The dataset
    `tf_dataset()` returns computes the same batches inside `tf.data` (exactly
    `data[i]`), and this callback drives it as it drives the object.

    **Order.** The order of epoch `e` is the dataset's own permutation drawn
    from `(seed, e)`, whatever `fit`'s `shuffle` says: this callback turns off
    Keras's reordering of the batches (which draws from Python's global
    `random`, so a resumed or distributed run would differ). A run resumed by
    `keras.callbacks.BackupAndRestore` goes on with the resumed epoch's batch
    size and data order.

    The dataset driven is the one `fit` trains on, read from the running
    `fit`: validation data of any kind (arrays, `tf.data`, a `PyDataset`,
    another `ResizableBatches`, one made by `ibs.dataset` too) is never
    resized. Training on anything but a `ResizableBatches` (or its
    `tf_dataset()`), passing `steps_per_epoch` (the epoch is one pass over the
    data here), a second `IncreasingBatchSize` on the same `fit`, or a plain
    `ResizableBatches` with a step compiled per shape, is a `UsageError` before
    any update. Place it
    before callbacks that read the logs (`CSVLogger`, `TensorBoard`,
    `EarlyStopping`) so they see `batch_size` and `parameter_updates`.

    Args:
        initial: int > 0, the batch size of epoch 0.
        growth: float >= 1, the per-epoch factor (1.037 in the ibs seed).
        maximum: int >= `initial`, the cap (`N / 10` in the seed).
        bucket_growth: float > 1, the ratio between padded sizes when the step
            is compiled per shape. Defaults to `sqrt(2)`.

    Example:

    >>> import keras, numpy as np
    >>> from zoo.callbacks import IncreasingBatchSize
    >>> ibs = IncreasingBatchSize(initial=2, growth=2.0, maximum=8)
    >>> data = ibs.dataset(np.zeros((16, 1)), np.zeros((16, 1)), seed=0)
    >>> model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    >>> model.compile("sgd", "mse")
    >>> history = model.fit(data.for_fit(), epochs=3, shuffle=False, callbacks=[ibs], verbose=0)
    >>> history.history["batch_size"], history.history["parameter_updates"]
    ([2, 4, 8], [8, 12, 14])

    References:
        Smith et al. 2017, "Don't Decay the Learning Rate, Increase the Batch
        Size" (arXiv 1711.00489); dboyliao/CardinalBlue_Interview_Q2 (seed `002`).
    """

    def __init__(
        self, initial: int, growth: float, maximum: int, bucket_growth: float = math.sqrt(2)
    ):
        super().__init__()
        self.initial = check_positive_int("initial", initial)
        self.growth = check_float("growth", growth, low=1)
        self.maximum = check_positive_int("maximum", maximum)
        if self.maximum < self.initial:
            raise UsageError(f"`maximum` must be >= initial ({initial}), got {maximum!r}.")
        self.bucket_growth = check_float(
            "bucket_growth", bucket_growth, low=1, low_inclusive=False, high=16
        )
        self._batch_size = self.initial
        self._padded = False

    def batch_size_at(self, epoch: int) -> int:
        """The batch size of `epoch` (counted from 0)."""
        return batch_size_at(epoch, self.initial, self.growth, self.maximum)

    def padded_size_at(self, epoch: int) -> int:
        """The batch size of `epoch` padded up to its shape bucket (used when the train step
        is compiled per shape)."""
        batch = self.batch_size_at(epoch)
        return next(
            b for b in shape_buckets(self.initial, self.maximum, self.bucket_growth) if b >= batch
        )

    def dataset(
        self, x: Any, y: Any, shuffle: bool = True, seed: Optional[int] = None
    ) -> IncreasingBatches:
        """An `IncreasingBatches` over `(x, y)` starting at batch size `initial`.

        Pass it to `fit` as the training data, as `data.for_fit()` (on
        TensorFlow, `data.tf_dataset()`); building validation data this way is
        harmless (only the training data is resized, never padded).
        """
        return IncreasingBatches(x, y, batch_size=self.initial, shuffle=shuffle, seed=seed)

    def _training_data(self) -> tuple[ResizableBatches, _FitLoop]:
        loop = _running_fit(self)
        data = loop.training_data
        if not isinstance(data, ResizableBatches):
            raise UsageError(
                "IncreasingBatchSize needs `fit` to train on a zoo.data.ResizableBatches "
                f"(build it with `ibs.dataset(x, y)`), got {loop.training_kind}."
            )
        return data, loop

    def on_train_begin(self, logs: Optional[dict] = None) -> None:
        data, loop = self._training_data()
        others = [c for c in loop.callbacks if isinstance(c, IncreasingBatchSize) and c is not self]
        if others:
            raise UsageError(
                "`fit` was given more than one IncreasingBatchSize: pass one (a second would "
                "silently override the first's batch sizes)."
            )
        if loop.steps_per_epoch:
            raise UsageError(
                "IncreasingBatchSize makes every epoch one pass over the data: do not pass "
                f"`steps_per_epoch` (got {loop.steps_per_epoch})."
            )
        self._padded = _compiled_per_shape(self.model)
        if self._padded:
            if not isinstance(data, IncreasingBatches):
                raise UsageError(
                    "IncreasingBatchSize: this model's train step is compiled per batch shape "
                    "(JAX or jit_compile=True), so a plain ResizableBatches would recompile it "
                    "every epoch; train on `ibs.dataset(x, y)` (padded to a few shapes) or "
                    "compile with `jit_compile=False`."
                )
            data.mean_reduction = _mean_reduction(self.model)
        elif isinstance(data, IncreasingBatches):
            data.padded_size = None

    def on_epoch_begin(self, epoch: int, logs: Optional[dict] = None) -> None:
        data, loop = self._training_data()
        loop.keep_batch_order()
        data.batch_size = self.batch_size_at(epoch)
        data.epoch = epoch
        if self._padded:
            data.padded_size = self.padded_size_at(epoch)
        loop.set_steps(len(data))
        self._batch_size = data.batch_size

    def on_epoch_end(self, epoch: int, logs: Optional[dict] = None) -> None:
        if logs is not None:
            logs["batch_size"] = self._batch_size
            iterations = keras.ops.convert_to_numpy(self.model.optimizer.iterations)
            logs["parameter_updates"] = int(iterations)

    def get_config(self) -> dict:
        return {
            "initial": self.initial,
            "growth": self.growth,
            "maximum": self.maximum,
            "bucket_growth": self.bucket_growth,
        }
