"""`ResizableBatches`: in-memory batches whose size may change between epochs, the data side of
`zoo.callbacks.IncreasingBatchSize` (also importable as `zoo.data.ResizableBatches`).

Keras 3 code: it runs on TensorFlow, JAX and PyTorch. On TensorFlow, `tf_dataset()` gives the
same batches computed inside `tf.data` (see `ResizableBatches.tf_dataset` for why that matters).
"""

import math
from typing import Any, Optional

import keras
import numpy as np

from zoo.errors import UsageError
from zoo.validation import check_non_negative_int, check_positive_int


class ResizableBatches(keras.utils.PyDataset):
    """In-memory `(x, y)` batches whose batch size may change between epochs.

    Epoch `e` shows every example exactly once, cut into
    `ceil(n / batch_size)` batches (the last holds the remainder). With
    `shuffle`, the order of epoch `e` is a permutation drawn from `(seed, e)`:
    a function of the epoch, not of how many epochs this object has seen, so a
    run resumed at epoch `e` sees the same batches as an uninterrupted one.
    `zoo.callbacks.IncreasingBatchSize` sets `epoch` and `batch_size` at the
    start of every epoch of the `fit` that trains on this dataset; used
    without it, the dataset moves to the next permutation at every
    `on_epoch_end`.

    Args:
        x: array of inputs, first axis the examples, or a tuple of such arrays (one per
            model input).
        y: array of targets, or a tuple of arrays (one per model output), as long as `x`.
        batch_size: int > 0, the batch size until it is changed.
        shuffle: bool, a fresh permutation every epoch. Defaults to `True`.
        seed: int or `None`, the seed of the permutations. `None` draws one.
        **kwargs: `keras.utils.PyDataset` arguments (`workers`,
            `max_queue_size`); `use_multiprocessing=True` is refused, since
            worker processes would not see a new batch size.

    Example:

    >>> import numpy as np
    >>> from zoo.data import ResizableBatches
    >>> data = ResizableBatches(np.arange(10), np.arange(10), batch_size=4, seed=0)
    >>> len(data), [len(data[i][0]) for i in range(len(data))]
    (3, [4, 4, 2])
    >>> data.batch_size = 5
    >>> seen = np.concatenate([data[i][1] for i in range(len(data))])
    >>> len(data), sorted(seen.tolist()) == list(range(10))
    (2, True)
    """

    # `tf_dataset` computes the batches of the class that sets this in its own body, so a
    # subclass with its own `__getitem__` (augmentation, say) is refused there.
    _graph_twin = True
    # Whether batches are `(x, y, sample_weight)` (padded when `padded_size` is set).
    _yields_weights = False

    def __init__(
        self,
        x: Any,
        y: Any,
        batch_size: int,
        shuffle: bool = True,
        seed: Optional[int] = None,
        **kwargs: Any,
    ):
        if kwargs.get("use_multiprocessing"):
            raise UsageError(
                "`use_multiprocessing=True` cannot be used with ResizableBatches: worker "
                "processes keep their own copy and would not see a new batch size."
            )
        super().__init__(**kwargs)
        if _length(x, "x") != _length(y, "y"):
            raise UsageError(
                f"`x` and `y` must have the same length, got {_length(x, 'x')} and "
                f"{_length(y, 'y')}."
            )
        if _length(x, "x") == 0:
            raise UsageError("`x` must hold at least one example.")
        self.x = x
        self.y = y
        self.shuffle = bool(shuffle)
        if seed is not None:
            check_non_negative_int("seed", seed)
        self.seed = seed
        self._graph: Optional[_GraphBatches] = None
        # With no seed, one drawn now keeps every epoch's order a function of the epoch.
        self._seed = int(np.random.SeedSequence().entropy) if seed is None else int(seed)
        self.batch_size = batch_size
        self.epoch = 0

    @property
    def batch_size(self) -> int:
        """The number of examples per batch (the last batch of an epoch holds the rest)."""
        return self._batch_size

    @batch_size.setter
    def batch_size(self, value: int) -> None:
        self._batch_size = check_positive_int("batch_size", value)
        self._sync_graph()

    @property
    def epoch(self) -> int:
        """The epoch whose order `__getitem__` serves."""
        return self._epoch

    @epoch.setter
    def epoch(self, value: int) -> None:
        self._epoch = check_non_negative_int("epoch", value)
        if self.shuffle:
            rng = np.random.default_rng([self._seed, self._epoch])
            self._order = rng.permutation(_length(self.x))
        else:
            self._order = np.arange(_length(self.x))
        self._sync_graph()

    def __len__(self) -> int:
        return math.ceil(_length(self.x) / self._batch_size)

    def rows(self, index: int) -> np.ndarray:
        """The example indices of batch `index` of the current epoch."""
        if not 0 <= index < len(self):
            raise IndexError(f"batch {index} of {len(self)}")
        return self._order[index * self._batch_size : (index + 1) * self._batch_size]

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        rows = self.rows(index)
        return take(self.x, rows), take(self.y, rows)

    def on_epoch_end(self) -> None:
        self.epoch = self._epoch + 1

    def tf_dataset(self):
        """These batches as a `tf.data.Dataset` computed inside TensorFlow (TensorFlow only).

        Pass it to `fit` instead of this object on the TensorFlow backend, with a
        `zoo.callbacks.IncreasingBatchSize` (which finds this object behind the dataset) or a
        `FollowEpochs(self)` among the callbacks to give it each epoch. Every iterator of the
        dataset serves the epoch and batch size this object holds when it is read, batch by
        batch, exactly `self[i]`; the arrays are copied into TensorFlow once.

        Why: on TensorFlow, Keras reads a `PyDataset` through
        `tf.data.Dataset.from_generator`, whose kernel calls, at its first use in a process,
        `mallopt(M_MMAP_THRESHOLD, 128 KiB)` (TensorFlow's `ApplyPython311MemoryPatch`).
        That turns off glibc's adaptive threshold for the whole process: every buffer over
        128 KiB the heap cannot serve becomes a fresh `mmap`, page-faulted in and unmapped
        again. On this project's MNIST CNN that made each epoch about twice as slow (ten
        times the page faults, system time as large as user time), and every later `fit` in
        the process too. This dataset runs no Python per batch and creates no such kernel.

        Raises:
            UsageError: `x` or `y` is not a NumPy array, or a subclass overrides
                `__getitem__` (its batches cannot be computed in the graph).

        Example:

        >>> import numpy as np
        >>> data = ResizableBatches(np.arange(10), np.arange(10), batch_size=4, seed=0)
        >>> [x.tolist() for x, _ in data.tf_dataset().as_numpy_iterator()] == [
        ...     data[i][0].tolist() for i in range(3)]
        True
        >>> data.batch_size = 5  # the dataset follows the object
        >>> [len(x) for x, _ in data.tf_dataset().as_numpy_iterator()]
        [5, 5]
        """
        if self._graph is None:
            owner = next(c for c in type(self).__mro__ if "__getitem__" in vars(c))
            if not vars(owner).get("_graph_twin", False):
                raise UsageError(
                    f"`tf_dataset()` computes the batches of {owner.__name__}'s parent, but "
                    f"{owner.__name__} overrides `__getitem__`: pass the object itself to `fit`."
                )
            for name, value in (("x", self.x), ("y", self.y)):
                for array in value if isinstance(value, tuple) else (value,):
                    if not isinstance(array, np.ndarray):
                        raise UsageError(
                            f"`tf_dataset()` needs `{name}` to be a NumPy array or a tuple of "
                            f"them, got {type(array).__name__}."
                        )
            self._graph = _GraphBatches(self)
        return self._graph.dataset

    def for_fit(self):
        """What to pass to `fit` as the training data on the running backend:
        `tf_dataset()` on TensorFlow, this object on JAX and PyTorch (whose data adapters
        read a `PyDataset` without `tf.data`)."""
        if keras.backend.backend() == "tensorflow":
            return self.tf_dataset()
        return self

    def _padding(self) -> tuple:
        """`(padded size or 0, whether real rows weigh padded / true)`, for `tf_dataset()`."""
        return 0, False

    def _sync_graph(self) -> None:
        if getattr(self, "_graph", None) is not None:
            self._graph.sync()


class FollowEpochs(keras.callbacks.Callback):
    """Sets `data.epoch` to the epoch `fit` starts, every epoch: for a `ResizableBatches` of
    fixed batch size read through `tf_dataset()`, which Keras does not tell of epochs (an
    `IncreasingBatchSize` does this itself). With the object itself as the data, it agrees
    with the object's own `on_epoch_end`, and a resumed `fit(initial_epoch=e)` starts at `e`.

    Args:
        data: the `ResizableBatches`.
    """

    def __init__(self, data: ResizableBatches):
        super().__init__()
        self.data = data

    def on_epoch_begin(self, epoch, logs=None):
        self.data.epoch = epoch


def _length(value: Any, name: str = "x") -> int:
    """The number of examples of an array or of a tuple of equally long arrays."""
    if not isinstance(value, tuple):
        return len(value)
    lengths = {len(array) for array in value}
    if len(lengths) != 1:
        raise UsageError(f"the arrays of `{name}` must have one length, got {sorted(lengths)}.")
    return lengths.pop()


def take(value: Any, rows: Any) -> Any:
    """`value[rows]`, for an array or each array of a tuple."""
    return _each(lambda array: array[rows], value)


def _each(function, value: Any) -> Any:
    """`function(value)`, or the tuple of `function(array)` for each array of a tuple."""
    if isinstance(value, tuple):
        return tuple(function(array) for array in value)
    return function(value)


class _GraphBatches:
    """The graph twin of a `ResizableBatches` (see `ResizableBatches.tf_dataset`): the arrays as
    constants, the epoch's order, batch size and padding as variables that `sync` loads, and
    a dataset whose batch `i` is `batches[i]`, computed when it is read."""

    def __init__(self, batches: ResizableBatches):
        import tensorflow as tf

        self.batches = batches
        n = _length(batches.x)
        constants = {}  # one copy of an array that appears twice ((images, images) targets)

        def constant(array):
            if id(array) not in constants:
                constants[id(array)] = tf.constant(array)
            return constants[id(array)]

        with tf.device("/CPU:0"):
            self.x = _each(constant, batches.x)
            self.y = _each(constant, batches.y)
            self.order = tf.Variable(np.zeros(n, np.int64), trainable=False)
            self.batch_size = tf.Variable(np.int64(1), trainable=False)
            self.padded_size = tf.Variable(np.int64(0), trainable=False)  # 0: no padding
            self.reweigh = tf.Variable(False, trainable=False)  # real rows weigh padded/true
        self.sync()
        # No prefetching: a batch is computed when the train step reads it, so always from
        # the epoch the callbacks have just set (Keras makes the next epoch's iterator
        # before `on_epoch_begin`).
        self.dataset = tf.data.Dataset.range(n).take_while(self._in_epoch).map(self._batch)
        self.dataset._zoo_resizable_batches = batches

    def sync(self) -> None:
        batches = self.batches
        self.order.assign(batches._order.astype(np.int64))
        self.batch_size.assign(batches.batch_size)
        padded_size, reweigh = batches._padding()
        self.padded_size.assign(padded_size)
        self.reweigh.assign(reweigh)

    def _in_epoch(self, index):
        n = self.order.shape[0]
        return index < (n + self.batch_size - 1) // self.batch_size

    def _batch(self, index):
        import tensorflow as tf

        n = self.order.shape[0]
        start = index * self.batch_size
        stop = tf.minimum(start + self.batch_size, n)
        rows = self.order[start:stop]

        def gather(value):
            return _each(lambda array: tf.gather(array, rows), value)

        if not self.batches._yields_weights:
            return gather(self.x), gather(self.y)
        true_size = stop - start
        padded = tf.maximum(self.padded_size, true_size)
        padding = padded - true_size
        rows = tf.concat([rows, tf.repeat(rows[:1], padding)], axis=0)  # copies of the first
        real = tf.where(
            self.reweigh,
            tf.cast(padded, tf.float64) / tf.cast(true_size, tf.float64),
            tf.constant(1.0, tf.float64),
        )
        weight = tf.concat(
            [tf.fill([true_size], tf.cast(real, tf.float32)), tf.zeros([padding], tf.float32)],
            axis=0,
        )
        return gather(self.x), gather(self.y), weight
