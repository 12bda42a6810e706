"""Data for the zoo: MNIST-like image sets through tensorflow-datasets, offline-capable,
and `ResizableBatches`, the data side of `zoo.callbacks.IncreasingBatchSize`."""

import math
import os
from pathlib import Path
from typing import Any, Optional, Union

import keras
import numpy as np
import tensorflow as tf

from zoo.errors import UsageError
from zoo.validation import check_non_negative_int, check_positive_int

IMAGE_DATASETS = ("mnist", "fashion_mnist", "cifar10")
SPLITS = ("train", "test")


def _builder(name: str, data_dir: Optional[str] = None, manual_dir: Optional[str] = None):
    """A prepared tfds builder; prepares it (offline when `manual_dir` holds the files)."""
    import tensorflow_datasets as tfds

    if name not in IMAGE_DATASETS:
        raise UsageError(f"`dataset` must be one of {', '.join(IMAGE_DATASETS)}, got {name!r}.")
    data_dir = data_dir or os.environ.get("ZOO_TFDS_DIR") or None
    builder = tfds.builder(name, data_dir=data_dir)
    if not builder.is_prepared():
        if manual_dir is None and name == "mnist":
            manual_dir = os.environ.get("ZOO_MNIST_DIR") or None
        if manual_dir is not None and not Path(manual_dir).is_dir():
            raise UsageError(f"`manual_dir` {manual_dir!r} is not a directory.")
        config = tfds.download.DownloadConfig(
            manual_dir=manual_dir, try_download_gcs=manual_dir is None
        )
        try:
            builder.download_and_prepare(download_config=config)
        except Exception as error:  # tfds raises many kinds; the user needs one line
            hint = ""
            if name == "mnist":
                hint = " Point `manual_dir` or ZOO_MNIST_DIR at the original .gz files."
            raise UsageError(
                f"`dataset` {name!r} is not prepared in {builder.data_dir} and could not be "
                f"downloaded ({type(error).__name__}).{hint}"
            ) from None
    return builder


def load_images(
    name: str,
    split: str = "train",
    *,
    as_numpy: bool = False,
    normalize: bool = True,
    flatten: bool = False,
    data_dir: Optional[str] = None,
    manual_dir: Optional[str] = None,
) -> Union[tf.data.Dataset, tuple[np.ndarray, np.ndarray]]:
    """Loads an image classification set from tensorflow-datasets.

    Args:
        name: one of `"mnist"`, `"fashion_mnist"`, `"cifar10"`.
        split: `"train"`, `"test"`, or any tfds split string (`"train[:10%]"`).
        as_numpy: return `(images, labels)` numpy arrays instead of a dataset.
        normalize: scale pixels to float32 in `[0, 1]`; otherwise keep uint8.
        flatten: give each image as one vector (784 for MNIST).
        data_dir: where tfds keeps prepared data (default `$ZOO_TFDS_DIR` or
            tfds's own default).
        manual_dir: folder with the original files, for preparing offline
            (default `$ZOO_MNIST_DIR` for MNIST).

    Returns:
        A `tf.data.Dataset` of `(image, label)` pairs, or a tuple of arrays.
    """
    if not isinstance(split, str) or split.split("[")[0] not in SPLITS:
        raise UsageError(f"`split` must start with one of {', '.join(SPLITS)}, got {split!r}.")
    builder = _builder(name, data_dir=data_dir, manual_dir=manual_dir)

    def convert(image, label):
        if normalize:
            image = tf.cast(image, tf.float32) / 255.0
        if flatten:
            image = tf.reshape(image, (-1,))
        return image, tf.cast(label, tf.int32)

    if as_numpy:
        import tensorflow_datasets as tfds

        examples = builder.as_dataset(split=split, as_supervised=True, shuffle_files=False)
        chunks = examples.batch(10000)
        arrays = list(tfds.as_numpy(chunks))
        images = np.concatenate([chunk[0] for chunk in arrays])
        labels = np.concatenate([chunk[1] for chunk in arrays])
        if normalize:
            images = images.astype(np.float32) / np.float32(255.0)
        if flatten:
            images = images.reshape(len(images), -1)
        return images, labels.astype(np.int32)
    dataset = builder.as_dataset(split=split, as_supervised=True, shuffle_files=False)
    return dataset.map(convert, num_parallel_calls=tf.data.AUTOTUNE)


def load_mnist(
    split: str = "train", **kwargs: Any
) -> Union[tf.data.Dataset, tuple[np.ndarray, np.ndarray]]:
    """Loads MNIST through tensorflow-datasets; see `load_images` for the arguments.

    Offline: point `manual_dir` (or `$ZOO_MNIST_DIR`) at the four original
    `*-ubyte.gz` files and tfds prepares the set from them.

    Example:

    >>> from zoo.data import load_mnist
    >>> images, labels = load_mnist("test", as_numpy=True)  # doctest: +SKIP
    >>> images.shape, labels.shape  # doctest: +SKIP
    ((10000, 28, 28, 1), (10000,))
    """
    return load_images("mnist", split, **kwargs)


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
