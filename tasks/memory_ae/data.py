"""Data of the memory-AE task: PCA codes of MNIST images (inputs) and the images (targets).

The reducer is fitted on the training images only and saved in the run folder as `pca.npz`;
`EpochBatches` gives each epoch's batches in an order drawn from `(seed, epoch)`, so a run
resumed at epoch `e` trains on exactly the batches an uninterrupted run would.
"""

import math
from typing import NamedTuple, Optional

import keras
import numpy as np

from zoo.data import load_mnist
from zoo.reduction import PCA
from zoo.runs import load_npz


class CodedImages(NamedTuple):
    """Codes (inputs), flattened images in [0, 1] (targets) and digit labels of one split."""

    codes: np.ndarray
    images: np.ndarray
    labels: np.ndarray


def load_images(train_limit: int = 0, manual_dir: Optional[str] = None):
    """`((train_images, train_labels), (test_images, test_labels))`, images as 784-vectors;
    `train_limit > 0` keeps the first `train_limit` training images."""
    split = f"train[:{train_limit}]" if train_limit else "train"
    train = load_mnist(split, as_numpy=True, flatten=True, manual_dir=manual_dir)
    test = load_mnist("test", as_numpy=True, flatten=True, manual_dir=manual_dir)
    return train, test


def fit_pca(code_dims: int, train_images: np.ndarray) -> PCA:
    """The whitened PCA of the training images."""
    return PCA(code_dims).fit(train_images)


def load_pca(path) -> PCA:
    """A reducer saved by `PCA.save`; `CorruptFileError` naming the file when unreadable."""
    arrays = load_npz(path)
    pca = PCA(int(arrays["components"].shape[0]), bool(arrays["whiten"]))
    pca.mean, pca.components, pca.scale = arrays["mean"], arrays["components"], arrays["scale"]
    return pca


def encode(pca: PCA, images: np.ndarray, labels: np.ndarray) -> CodedImages:
    return CodedImages(pca.transform(images), images, labels)


class EpochBatches(keras.utils.PyDataset):
    """`(inputs, targets)` batches whose order in epoch `e` is a permutation drawn from
    `(seed, e)`; every example is seen once per epoch.

    Keras calls `on_epoch_begin` once at the start of every epoch; the first call moves to
    `first_epoch` (the epoch a resumed `fit` starts at).

    Args:
        inputs: array, first axis the examples.
        targets: array, or a tuple of arrays (one per model output), same length.
        batch_size: int > 0.
        seed: int, the seed of the permutations.
        first_epoch: int >= 0, the epoch of the first `on_epoch_begin`.

    Example:

    >>> import numpy as np
    >>> data = EpochBatches(np.arange(5), np.arange(5), batch_size=2, seed=0)
    >>> data.on_epoch_begin()
    >>> len(data), sorted(np.concatenate([data[i][0] for i in range(len(data))]).tolist())
    (3, [0, 1, 2, 3, 4])
    """

    def __init__(self, inputs, targets, batch_size: int, seed: int, first_epoch: int = 0):
        super().__init__()
        self.inputs = inputs
        self.targets = targets
        self.batch_size = batch_size
        self.seed = seed
        self.epoch = first_epoch - 1
        self.set_epoch(max(first_epoch, 0))

    def set_epoch(self, epoch: int) -> None:
        self.order = np.random.default_rng([self.seed, epoch]).permutation(len(self.inputs))

    def on_epoch_begin(self):
        self.epoch += 1
        self.set_epoch(self.epoch)

    def __len__(self):
        return math.ceil(len(self.inputs) / self.batch_size)

    def __getitem__(self, index):
        rows = self.order[index * self.batch_size : (index + 1) * self.batch_size]
        if isinstance(self.targets, tuple):
            return self.inputs[rows], tuple(target[rows] for target in self.targets)
        return self.inputs[rows], self.targets[rows]
