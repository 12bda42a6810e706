"""`ResizableBatches`: in-memory batches whose size may change between epochs, the data side of
`zoo.callbacks.IncreasingBatchSize` (also importable as `zoo.data.ResizableBatches`).

Keras 3 code: it runs on TensorFlow, JAX and PyTorch.
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
        x: array of inputs, first axis the examples.
        y: array of targets, same length as `x`.
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
        if len(x) != len(y):
            raise UsageError(f"`x` and `y` must have the same length, got {len(x)} and {len(y)}.")
        if len(x) == 0:
            raise UsageError("`x` must hold at least one example.")
        self.x = x
        self.y = y
        self.shuffle = bool(shuffle)
        if seed is not None:
            check_non_negative_int("seed", seed)
        self.seed = seed
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

    @property
    def epoch(self) -> int:
        """The epoch whose order `__getitem__` serves."""
        return self._epoch

    @epoch.setter
    def epoch(self, value: int) -> None:
        self._epoch = check_non_negative_int("epoch", value)
        if self.shuffle:
            rng = np.random.default_rng([self._seed, self._epoch])
            self._order = rng.permutation(len(self.x))
        else:
            self._order = np.arange(len(self.x))

    def __len__(self) -> int:
        return math.ceil(len(self.x) / self._batch_size)

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        if not 0 <= index < len(self):
            raise IndexError(f"batch {index} of {len(self)}")
        rows = self._order[index * self._batch_size : (index + 1) * self._batch_size]
        return self.x[rows], self.y[rows]

    def on_epoch_end(self) -> None:
        self.epoch = self._epoch + 1
