"""Data of the memory-AE task: PCA codes of MNIST images (inputs) and the images (targets).

The reducer is fitted on the training images only and saved in the run folder as `pca.npz`.
`epoch_batches` gives each epoch's batches in an order drawn from `(seed, epoch)`, so a run
resumed at epoch `e` trains on exactly the batches an uninterrupted run would.
"""

from typing import NamedTuple, Optional

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


def epoch_batches(inputs, targets, batch_size: int, seed: int):
    """`(data, follow)`: `data` to pass to `fit` (`zoo.batches.ResizableBatches.for_fit`: on
    TensorFlow the batches are computed inside `tf.data`), and the callback `follow` that gives
    it the epoch `fit` is at, so the order of epoch `e` is the permutation drawn from
    `(seed, e)` whatever epoch `fit` starts at. `targets` may be a tuple (one per output).

    Example:

    >>> import numpy as np
    >>> data, follow = epoch_batches(np.arange(5.0), np.arange(5.0), batch_size=2, seed=0)
    >>> follow.on_epoch_begin(3)
    >>> sorted(np.concatenate([follow.data[i][0] for i in range(3)]).tolist())
    [0.0, 1.0, 2.0, 3.0, 4.0]
    """
    from zoo.batches import FollowEpochs, ResizableBatches

    batches = ResizableBatches(inputs, targets, batch_size, seed=seed)
    return batches.for_fit(), FollowEpochs(batches)
