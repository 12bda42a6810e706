"""Checksums of the deep core's weights, block by block (`zoo.deep.weights_file`).

A block is `block_layers` consecutive layers: its `W` rows and its `b` rows. Its checksum is a
64-bit Fletcher-style sum: each of the two byte ranges is padded with zeros to whole rows of
eight little-endian 32-bit words; per column c, `a_c += word` and `b_c += a_c` row by row (mod
2^64) across both ranges; the sixteen sums are mixed into one value (splitmix64). A change of one
word always changes its column's `a_c`. The native library computes it at memory speed
(`zoo_deep_checksum` in `native/deep_core_ops.cc`); NumPy gives the same value where the library
cannot be built.

Example:

>>> import numpy as np
>>> from zoo.deep.checksums import block_checksum, numpy_checksum
>>> W, b = np.ones((3, 4, 4), np.float32), np.zeros((3, 4), np.float32)
>>> block_checksum(W, b) == numpy_checksum(W, b)
True
"""

import numpy as np

from zoo.deep import native
from zoo.errors import NativeBuildError

MASK = (1 << 64) - 1
MAX_BLOCK_LAYERS = 4096


def _mix(z: int) -> int:
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return z ^ (z >> 31)


def _column_sums(array: np.ndarray) -> tuple:
    """`(a, b, rows)` of one byte range (see the module docstring)."""
    data = np.frombuffer(memoryview(np.ascontiguousarray(array)).cast("B"), np.uint8)
    padded = np.zeros(-(-len(data) // 32) * 32, np.uint8)
    padded[: len(data)] = data
    words = padded.view("<u4").reshape(-1, 8).astype(np.uint64)
    rows = len(words)
    weights = np.arange(rows, 0, -1, dtype=np.uint64)[:, None]
    return words.sum(0, dtype=np.uint64), (weights * words).sum(0, dtype=np.uint64), rows


def numpy_checksum(W: np.ndarray, b: np.ndarray) -> int:
    """The block checksum of `W` and `b`, computed by NumPy."""
    a1, b1, _ = _column_sums(W)
    a2, b2, rows2 = _column_sums(b)
    with np.errstate(over="ignore"):
        a = a1 + a2
        s = b1 + np.uint64(rows2) * a1 + b2
    value = 0
    for column in range(8):
        value = _mix(value ^ int(a[column]))
        value = _mix(value ^ int(s[column]))
    return value


_native = []  # [the ctypes function or None], decided once per process


def _native_function():
    if not _native:
        try:
            _native.append(native.checksum_function())
        except NativeBuildError:
            _native.append(None)
    return _native[0]


def block_checksum(W: np.ndarray, b: np.ndarray) -> int:
    """The checksum of one block's `W` and `b` rows (C-contiguous arrays)."""
    function = _native_function()
    if function is None:
        return numpy_checksum(W, b)
    W, b = np.ascontiguousarray(W), np.ascontiguousarray(b)
    return int(function(W.ctypes.data, W.nbytes, b.ctypes.data, b.nbytes))


def block_layers_for(chunk_layers: int) -> int:
    """Layers per checksum block for a core read `chunk_layers` at a time: the largest divisor
    of `chunk_layers` up to 4096 (so aligned chunks hold whole blocks), or 4096 when that
    divisor is below 64 (many tiny blocks would make a large table)."""
    chunk_layers = max(1, int(chunk_layers))
    if chunk_layers <= MAX_BLOCK_LAYERS:
        return chunk_layers
    best = max(d for d in range(1, MAX_BLOCK_LAYERS + 1) if chunk_layers % d == 0)
    return best if best >= 64 else MAX_BLOCK_LAYERS
