"""Where the core's `L` layers live: in memory, or in a file streamed chunk by chunk.

The file format (little-endian): a 64-byte header, then per layer `W` (w*w values, row j = input
coordinate) followed by `b` (w values).

    offset  field
    0       magic b"ZOODEEP\\0"
    8       version (uint32, 1)
    12      width (uint32)
    16      layers (uint64)
    24      dtype code (uint32: 1 float32, 2 float64)
    28      activation code (uint32: 1 softsign, 2 tanh, 3 relu)
    32      completed steps (uint64)
    40      state (uint32: 0 clean, 1 a step is being written back)
    44..63  reserved (zero)

A training step marks the file `dirty` (flushed to disk) before its first write-back, and after
its last one syncs the file and only then marks it `clean` with the step count raised, so a
step interrupted half-way, even by a crash of the machine, leaves a `dirty` file that `open`
refuses with a clear error instead of silently mixing two steps.
"""

import mmap
import os
import struct
from pathlib import Path

import numpy as np
import tensorflow as tf

from zoo.deep.kernels import ACTIVATIONS

MAGIC = b"ZOODEEP\0"
VERSION = 1
HEADER = struct.Struct("<8sIIQIIQI20x")
DTYPES = {1: np.float32, 2: np.float64}
DTYPE_CODES = {np.dtype(value): key for key, value in DTYPES.items()}


class TornFileError(ValueError):
    """The weights file was left half-way through a step."""


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


def init_layers(layers, width, seed, dtype=np.float32, start=0, stop=None):
    """The seed's core init for layers `[start, stop)`: W ~ U(-0.001, 0.001), b = 0.

    Each weight depends only on `(seed, its position)`, so the file can be filled
    chunk by chunk in any order with the same result.
    """
    stop = layers if stop is None else stop
    values = _uniform01(seed, start * width * width, (stop - start) * width * width)
    W = (0.002 * values - 0.001).astype(dtype).reshape(stop - start, width, width)
    return W, np.zeros((stop - start, width), dtype)


class InMemoryWeights:
    """The core in memory as `tf.Variable`s, one pair `(W (n, w, w), b (n, w))` per piece.

    With pieces as long as the network's chunks a chunk is read and written
    back whole (no slicing copies of a huge variable); other ranges work too.

    Args:
        W, b: arrays of shape `(L, w, w)` and `(L, w)`.
        activation: the core activation (kept with the weights).
        steps: SGD steps these weights have taken.
        piece_layers: layers per variable pair (default: one pair for all).
    """

    def __init__(self, W, b, activation="softsign", steps=0, piece_layers=None):
        self.layers, self.width = int(W.shape[0]), int(W.shape[1])
        self.dtype = np.dtype(getattr(W.dtype, "as_numpy_dtype", W.dtype))
        self.activation, self.steps = activation, steps
        piece_layers = piece_layers or self.layers
        self.pieces = [
            (start, min(start + piece_layers, self.layers),
             tf.Variable(W[start : start + piece_layers], trainable=False), tf.Variable(b[start : start + piece_layers], trainable=False))
            for start in range(0, self.layers, piece_layers)
        ]

    @classmethod
    def from_variables(cls, W, b, activation="softsign"):
        """Wraps existing variables (e.g. a `DeepResidualCore`'s) without copying them."""
        weights = cls.__new__(cls)
        weights.layers, weights.width = int(W.shape[0]), int(W.shape[1])
        weights.dtype = np.dtype(W.dtype.as_numpy_dtype)
        weights.activation, weights.steps = activation, 0
        weights.pieces = [(0, weights.layers, W, b)]
        return weights

    @classmethod
    def create(cls, layers, width, activation="softsign", seed=0, dtype=np.float32, piece_layers=None):
        W, b = init_layers(layers, width, seed, dtype)
        return cls(W, b, activation, piece_layers=piece_layers)

    @classmethod
    def from_file(cls, weights, piece_layers=1_000_000):
        """Copies an open `FileWeights` into memory piece by piece (no full-size temporary)."""
        memory = cls.__new__(cls)
        memory.layers, memory.width, memory.dtype = weights.layers, weights.width, weights.dtype
        memory.activation, memory.steps, memory.pieces = weights.activation, weights.steps, []
        for start in range(0, weights.layers, piece_layers):
            stop = min(weights.layers, start + piece_layers)
            W, b = weights._load(start, stop)
            memory.pieces.append((start, stop, tf.Variable(W, trainable=False), tf.Variable(b, trainable=False)))
        return memory

    @property
    def W(self):
        return tf.concat([W for _, _, W, _ in self.pieces], 0)

    @property
    def b(self):
        return tf.concat([b for _, _, _, b in self.pieces], 0)

    def read(self, start, stop):
        parts = [(max(start, lo) - lo, min(stop, hi) - lo, W, b) for lo, hi, W, b in self.pieces if lo < stop and hi > start]
        if len(parts) == 1 and parts[0][0] == 0 and parts[0][1] == int(parts[0][2].shape[0]):
            return tf.convert_to_tensor(parts[0][2]), tf.convert_to_tensor(parts[0][3])
        return tf.concat([W[a:z] for a, z, W, _ in parts], 0), tf.concat([b[a:z] for a, z, _, b in parts], 0)

    def write(self, start, W, b):
        stop = start + int(W.shape[0])
        for lo, hi, piece_W, piece_b in self.pieces:
            if lo >= stop or hi <= start:
                continue
            a, z = max(start, lo), min(stop, hi)
            if a == lo and z == hi:
                piece_W.assign(W[a - start : z - start])
                piece_b.assign(b[a - start : z - start])
            else:
                piece_W[a - lo : z - lo].assign(W[a - start : z - start])
                piece_b[a - lo : z - lo].assign(b[a - start : z - start])

    def begin_step(self):
        pass

    def end_step(self):
        self.steps += 1

    def save(self, path):
        """Writes the core into a weights file (the format above), piece by piece."""
        weights = FileWeights.create(path, self.layers, self.width, self.activation, dtype=self.dtype, fill=False)
        for start, _, W, b in self.pieces:
            weights._store(start, W.numpy(), b.numpy())
        weights.steps = self.steps
        weights._sync()
        weights._write_header(state=0)
        weights.close()

    def close(self):
        pass


class FileWeights:
    """The core in a file, streamed through a memory map one chunk at a time.

    Pages of a chunk are dropped from memory once it is written back, so the
    resident memory stays about one chunk whatever the depth.
    """

    def __init__(self, path, mode="r+"):
        self.path = Path(path)
        self._file = open(self.path, "r+b" if mode == "r+" else "rb")
        header = self._file.read(HEADER.size)
        if len(header) < HEADER.size:
            raise ValueError(f"`weights` {self.path} is too short to be a zoo deep-core file.")
        magic, version, width, layers, dtype_code, activation_code, steps, state = HEADER.unpack(header)
        if magic != MAGIC:
            raise ValueError(f"`weights` {self.path} is not a zoo deep-core file (bad magic).")
        if version != VERSION:
            raise ValueError(f"`weights` {self.path} has version {version}; this zoo reads {VERSION}.")
        if dtype_code not in DTYPES or not 1 <= activation_code <= len(ACTIVATIONS):
            raise ValueError(f"`weights` {self.path} has a corrupt header.")
        self.width, self.layers, self.steps = width, layers, steps
        self.dtype = np.dtype(DTYPES[dtype_code])
        self.activation = ACTIVATIONS[activation_code - 1]
        self.record = width * width + width
        expected = HEADER.size + layers * self.record * self.dtype.itemsize
        if os.path.getsize(self.path) != expected:
            raise ValueError(f"`weights` {self.path} holds {os.path.getsize(self.path)} bytes; "
                             f"{layers} layers of width {width} need {expected}.")
        if state != 0:
            raise TornFileError(
                f"`weights` {self.path} was interrupted while writing back step {steps + 1}: it mixes "
                f"two steps. Re-initialise it (`zoo deep init`) or restore a copy."
            )
        self._map = mmap.mmap(self._file.fileno(), 0, access=mmap.ACCESS_WRITE if mode == "r+" else mmap.ACCESS_READ)

    @classmethod
    def create(cls, path, layers, width, activation="softsign", seed=0, dtype=np.float32, chunk_layers=100_000, fill=True, progress=None):
        """A new weights file with the seed's init, written chunk by chunk."""
        if activation not in ACTIVATIONS:
            raise ValueError(f"`activation` must be one of {', '.join(ACTIVATIONS)}, got {activation!r}.")
        dtype = np.dtype(dtype)
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as file:
            file.write(HEADER.pack(MAGIC, VERSION, width, layers, DTYPE_CODES[dtype], ACTIVATIONS.index(activation) + 1, 0, 1))
            file.truncate(HEADER.size + layers * (width * width + width) * dtype.itemsize)
        weights = cls.__new__(cls)
        weights.path, weights.width, weights.layers, weights.steps = path, width, layers, 0
        weights.dtype, weights.activation, weights.record = dtype, activation, width * width + width
        weights._file = open(path, "r+b")
        weights._map = mmap.mmap(weights._file.fileno(), 0, access=mmap.ACCESS_WRITE)
        if fill:
            for start in range(0, layers, chunk_layers):
                stop = min(layers, start + chunk_layers)
                weights._store(start, *init_layers(layers, width, seed, dtype, start, stop))
                if progress is not None:
                    progress(stop - start)
            weights._sync()
            weights._write_header(state=0)
        return weights

    @classmethod
    def open(cls, path, mode="r+"):
        if not Path(path).exists():
            raise ValueError(f"`weights` {path} does not exist; create it with `zoo deep init`.")
        return cls(path, mode)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _span(self, start, stop):
        offset = HEADER.size + start * self.record * self.dtype.itemsize
        return offset, (stop - start) * self.record * self.dtype.itemsize

    def _load(self, start, stop):
        offset, length = self._span(start, stop)
        records = np.frombuffer(self._map, self.dtype, (stop - start) * self.record, offset).reshape(stop - start, self.record)
        W = records[:, : self.width * self.width].reshape(-1, self.width, self.width).copy()
        b = records[:, self.width * self.width :].copy()
        self._drop(offset, length)
        return W, b

    def _store(self, start, W, b):
        stop = start + len(W)
        offset, length = self._span(start, stop)
        records = np.frombuffer(self._map, self.dtype, (stop - start) * self.record, offset).reshape(stop - start, self.record)
        records[:, : self.width * self.width] = np.asarray(W).reshape(stop - start, -1)
        records[:, self.width * self.width :] = b
        del records
        self._drop(offset, length)

    def _drop(self, offset, length):
        page = mmap.PAGESIZE
        begin = offset // page * page
        # Unmap the pages from this process (dirty ones stay in the page cache, to be written
        # out): resident memory stays about one chunk whatever the depth.
        self._map.madvise(mmap.MADV_DONTNEED, begin, offset + length - begin)

    def _sync(self):
        # Every chunk on disk before the header may say clean (the dirty mark went first).
        os.fsync(self._file.fileno())

    def _write_header(self, state):
        self._map[: HEADER.size] = HEADER.pack(MAGIC, VERSION, self.width, self.layers, DTYPE_CODES[self.dtype],
                                               ACTIVATIONS.index(self.activation) + 1, self.steps, state)
        self._map.flush(0, min(mmap.PAGESIZE, len(self._map)))

    def read(self, start, stop):
        W, b = self._load(start, stop)
        return tf.constant(W), tf.constant(b)

    def write(self, start, W, b):
        self._store(start, W.numpy(), b.numpy())

    def begin_step(self):
        self._write_header(state=1)

    def end_step(self):
        self._sync()
        self.steps += 1
        self._write_header(state=0)

    def close(self):
        if getattr(self, "_map", None) is not None:
            self._map.close()
            self._map = None
        if getattr(self, "_file", None) is not None:
            self._file.close()
            self._file = None
