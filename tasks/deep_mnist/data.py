"""MNIST for the deep core, and the batch of every step."""

import numpy as np

from zoo.data import load_mnist


def mnist_arrays(split: str) -> tuple:
    """Flat MNIST images as pixels / 255 and labels."""
    return load_mnist(split, as_numpy=True, flatten=True)


def batch_indices(seed: int, step: int, batch: int, examples: int) -> np.ndarray:
    """The examples of step `step`: `batch` draws with replacement, from `(seed, step)` alone,
    so a resumed run continues the very sequence of batches it would have seen."""
    rng = np.random.Generator(np.random.Philox(key=seed + 1, counter=[0, 0, 0, step]))
    return rng.integers(0, examples, batch)
