"""Data for the zoo: MNIST-like image sets through tensorflow-datasets, offline-capable,
and `ResizableBatches`, the data side of `zoo.callbacks.IncreasingBatchSize`."""

import math
import os
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from zoo.validation import check_positive_int

IMAGE_DATASETS = ("mnist", "fashion_mnist", "cifar10")
SPLITS = ("train", "test")


def _builder(name, data_dir=None, manual_dir=None):
    """A prepared tfds builder; prepares it (offline when `manual_dir` holds the files)."""
    import tensorflow_datasets as tfds

    if name not in IMAGE_DATASETS:
        raise ValueError(f"`dataset` must be one of {', '.join(IMAGE_DATASETS)}, got {name!r}.")
    data_dir = data_dir or os.environ.get("ZOO_TFDS_DIR") or None
    builder = tfds.builder(name, data_dir=data_dir)
    if not builder.is_prepared():
        if manual_dir is None and name == "mnist":
            manual_dir = os.environ.get("ZOO_MNIST_DIR") or None
        if manual_dir is not None and not Path(manual_dir).is_dir():
            raise ValueError(f"`manual_dir` {manual_dir!r} is not a directory.")
        config = tfds.download.DownloadConfig(
            manual_dir=manual_dir, try_download_gcs=manual_dir is None
        )
        try:
            builder.download_and_prepare(download_config=config)
        except Exception as error:  # tfds raises many kinds; the user needs one line
            hint = " Point `manual_dir` or ZOO_MNIST_DIR at the original .gz files." if name == "mnist" else ""
            raise ValueError(
                f"`dataset` {name!r} is not prepared in {builder.data_dir} and could not be "
                f"downloaded ({type(error).__name__}).{hint}"
            ) from None
    return builder


def load_images(
    name,
    split="train",
    *,
    as_numpy=False,
    normalize=True,
    flatten=False,
    data_dir=None,
    manual_dir=None,
):
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
    if not isinstance(split, str) or not split.split("[")[0] in SPLITS:
        raise ValueError(f"`split` must start with one of {', '.join(SPLITS)}, got {split!r}.")
    builder = _builder(name, data_dir=data_dir, manual_dir=manual_dir)

    def convert(image, label):
        if normalize:
            image = tf.cast(image, tf.float32) / 255.0
        if flatten:
            image = tf.reshape(image, (-1,))
        return image, tf.cast(label, tf.int32)

    if as_numpy:
        import tensorflow_datasets as tfds

        chunks = builder.as_dataset(split=split, as_supervised=True, shuffle_files=False).batch(10000)
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


def load_mnist(split="train", **kwargs):
    """Loads MNIST through tensorflow-datasets; see `load_images` for the arguments.

    Offline: point `manual_dir` (or `$ZOO_MNIST_DIR`) at the four original
    `*-ubyte.gz` files and tfds prepares the set from them.

    Example:

    >>> images, labels = load_mnist("test", as_numpy=True)  # doctest: +SKIP
    >>> images.shape, labels.shape
    ((10000, 28, 28, 1), (10000,))
    """
    return load_images("mnist", split, **kwargs)


class ResizableBatches(keras.utils.PyDataset):
    """In-memory `(x, y)` batches whose batch size may change between epochs.

    Every epoch shows every example exactly once, in a fresh permutation
    (when `shuffle`), cut into `ceil(n / batch_size)` batches; the last batch
    holds the remainder. `zoo.callbacks.IncreasingBatchSize` sets `batch_size` at
    the start of each epoch and tells Keras the new number of steps.

    Args:
        x: array of inputs, first axis the examples.
        y: array of targets, same length as `x`.
        batch_size: initial batch size (int > 0).
        shuffle: reshuffle at every epoch. Defaults to True.
        seed: seed of the permutations.

    Example:

    >>> data = ResizableBatches(np.zeros((10, 2)), np.zeros(10), batch_size=4)
    >>> len(data), data[2][0].shape
    (3, (2, 2))
    """

    def __init__(self, x, y, batch_size, shuffle=True, seed=None, **kwargs):
        super().__init__(**kwargs)
        if len(x) != len(y):
            raise ValueError(f"`x` and `y` must have the same length, got {len(x)} and {len(y)}.")
        if len(x) == 0:
            raise ValueError("`x` must hold at least one example.")
        self.x = x
        self.y = y
        self.shuffle = shuffle
        self.seed = seed
        self.batch_size = batch_size
        self._rng = np.random.default_rng(seed)
        self._order = self._rng.permutation(len(x)) if shuffle else np.arange(len(x))

    @property
    def batch_size(self):
        return self._batch_size

    @batch_size.setter
    def batch_size(self, value):
        self._batch_size = check_positive_int("batch_size", value)

    def __len__(self):
        return math.ceil(len(self.x) / self._batch_size)

    def __getitem__(self, index):
        rows = self._order[index * self._batch_size : (index + 1) * self._batch_size]
        return self.x[rows], self.y[rows]

    def on_epoch_end(self):
        if self.shuffle:
            self._order = self._rng.permutation(len(self.x))
