"""The seed's core initialisation, computable chunk by chunk in any order."""

from typing import Optional

import numpy as np

from zoo.deep.kernels import ACTIVATIONS
from zoo.errors import UsageError


def _uniform01(seed, first, count):
    """Counter-based uniforms in [0, 1): splitmix64 of `(seed, index)`, index `first..first+count`.

    Each value depends only on its index, so any chunking gives the same weights."""
    golden = np.array([0x9E3779B97F4A7C15], np.uint64)  # arrays wrap silently, scalars warn
    z = np.arange(first, first + count, dtype=np.uint64) + np.array([seed], np.uint64) * golden
    z = z + golden
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) * 2.0**-53


def init_layers(
    layers: int, width: int, seed: int, dtype=np.float32, start: int = 0, stop: Optional[int] = None
):
    """The seed's core init for layers `[start, stop)`: W ~ U(-0.001, 0.001), b = 0.

    Each weight depends only on `(seed, its position)`, so the file can be filled
    chunk by chunk in any order with the same result.
    """
    stop = layers if stop is None else stop
    values = _uniform01(seed, start * width * width, (stop - start) * width * width)
    W = (0.002 * values - 0.001).astype(dtype).reshape(stop - start, width, width)
    return W, np.zeros((stop - start, width), dtype)


def check_activation(activation) -> None:
    """A one-line `UsageError` unless `activation` is a core activation."""
    if activation not in ACTIVATIONS:
        raise UsageError(
            f"`activation` must be one of {', '.join(ACTIVATIONS)}, got {activation!r}."
        )
