"""The deep core held in memory: NumPy arrays on CPU (chunks handed to the kernels without a
copy), `tf.Variable` pieces on a GPU. Committed into a weights file (`zoo.deep.weights_file`)
by `save`, loaded from one by `from_file`."""

from typing import TYPE_CHECKING, Optional

import numpy as np
import tensorflow as tf

from zoo.deep.buffers import aligned, aligned_empty, as_tensor
from zoo.deep.initialisation import check_activation, init_layers
from zoo.runs import crash_point

if TYPE_CHECKING:  # for the annotations only: the file store does not depend on this module
    from zoo.deep.weights_file import FileWeights


def _gpu_visible():
    return bool(tf.config.list_logical_devices("GPU"))


class InMemoryWeights:
    """The core in memory.

    On CPU the core is two NumPy arrays, `W (L, w, w)` and `b (L, w)`: a chunk is handed to
    the kernels as a zero-copy tensor view and its update copied back in place, so the resident
    memory is the weights plus a chunk or two (TensorFlow's allocator, which grows its regions
    by doubling, never holds the core). On a GPU the core is one `tf.Variable` pair per piece of
    `piece_layers` layers, kept on the device.

    Args:
        W, b: arrays of shape `(L, w, w)` and `(L, w)` (on CPU they are used, not copied,
            when already contiguous and of one float dtype).
        activation: the core activation (kept with the weights).
        steps: SGD steps these weights have taken.
        piece_layers: on a GPU, layers per variable pair (default: one pair for all).
    """

    def __init__(
        self, W, b, activation: str = "softsign", steps: int = 0, piece_layers: Optional[int] = None
    ):
        check_activation(activation)
        self.layers, self.width = int(W.shape[0]), int(W.shape[1])
        self.dtype = np.dtype(getattr(W.dtype, "as_numpy_dtype", W.dtype))
        self.activation, self.steps, self.record = activation, steps, b""
        self._arrays = self._pieces = None
        if _gpu_visible():
            piece_layers = piece_layers or self.layers
            self._pieces = [
                (
                    start,
                    min(start + piece_layers, self.layers),
                    tf.Variable(W[start : start + piece_layers], trainable=False),
                    tf.Variable(b[start : start + piece_layers], trainable=False),
                )
                for start in range(0, self.layers, piece_layers)
            ]
        else:
            self._arrays = (aligned(W, self.dtype), aligned(b, self.dtype))

    @classmethod
    def from_variables(cls, W: tf.Variable, b: tf.Variable, activation: str = "softsign"):
        """Wraps existing variables (e.g. a `DeepResidualCore`'s) without copying them."""
        weights = cls.__new__(cls)
        weights.layers, weights.width = int(W.shape[0]), int(W.shape[1])
        weights.dtype = np.dtype(W.dtype.as_numpy_dtype)
        weights.activation, weights.steps, weights.record = activation, 0, b""
        weights._arrays, weights._pieces = None, [(0, weights.layers, W, b)]
        return weights

    @classmethod
    def create(
        cls,
        layers: int,
        width: int,
        activation: str = "softsign",
        seed: int = 0,
        dtype=np.float32,
        piece_layers: Optional[int] = None,
    ):
        W, b = init_layers(layers, width, seed, dtype)
        return cls(W, b, activation, piece_layers=piece_layers)

    @classmethod
    def from_file(cls, weights: "FileWeights", piece_layers: int = 1_000_000):
        """Copies the committed copy of an open `FileWeights` into memory, `piece_layers` at a
        time (no full-size temporary), with its step count and extra record; every piece is
        checked against the file's checksums as it is read."""
        shape = (weights.layers, weights.width)
        if _gpu_visible():
            memory = cls(
                np.zeros((1, weights.width, weights.width), weights.dtype),
                np.zeros((1, weights.width), weights.dtype),
                weights.activation,
            )
            memory._pieces = []
        else:
            memory = cls(
                aligned_empty((*shape, weights.width), weights.dtype),
                aligned_empty(shape, weights.dtype),
                weights.activation,
            )
        memory.layers = weights.layers
        memory.steps, memory.record = weights.steps, weights.record
        for start in range(0, weights.layers, piece_layers):
            stop = min(weights.layers, start + piece_layers)
            if memory._arrays is not None:
                weights.load_into(
                    start, memory._arrays[0][start:stop], memory._arrays[1][start:stop]
                )
            else:
                W, b = weights.load(start, stop)
                memory._pieces.append(
                    (start, stop, tf.Variable(W, trainable=False), tf.Variable(b, trainable=False))
                )
        return memory

    @property
    def W(self):
        """The whole core's `W` as a tensor (a view on CPU)."""
        if self._arrays is not None:
            return tf.convert_to_tensor(self._arrays[0])
        return tf.concat([W for _, _, W, _ in self._pieces], 0)

    @property
    def b(self):
        if self._arrays is not None:
            return tf.convert_to_tensor(self._arrays[1])
        return tf.concat([b for _, _, _, b in self._pieces], 0)

    def numpy_pieces(self, piece_layers: int):
        """`(start, W, b)` NumPy pieces of the core, for saving."""
        if self._arrays is not None:
            for start in range(0, self.layers, piece_layers):
                yield (
                    start,
                    self._arrays[0][start : start + piece_layers],
                    self._arrays[1][start : start + piece_layers],
                )
            return
        for start, _, W, b in self._pieces:
            yield start, W.numpy(), b.numpy()

    @property
    def has_arrays(self) -> bool:
        """Whether the core is NumPy arrays (CPU), so `scratch` can hand out chunks."""
        return self._arrays is not None

    def scratch(self, start: int, stop: int):
        """Layers `[start, stop)` as writeable NumPy views of the core itself (CPU only): a
        kernel that updates them in place has updated the core, and `write` is then a no-op."""
        return self._arrays[0][start:stop], self._arrays[1][start:stop]

    def read(self, start: int, stop: int):
        if self._arrays is not None:
            # Slices of aligned arrays: TensorFlow wraps them without a copy (`write` overwrites
            # them only after the kernels that read them have returned).
            return as_tensor(self._arrays[0][start:stop]), as_tensor(self._arrays[1][start:stop])
        parts = [
            (max(start, lo) - lo, min(stop, hi) - lo, W, b)
            for lo, hi, W, b in self._pieces
            if lo < stop and hi > start
        ]
        if len(parts) == 1 and parts[0][0] == 0 and parts[0][1] == int(parts[0][2].shape[0]):
            return tf.convert_to_tensor(parts[0][2]), tf.convert_to_tensor(parts[0][3])
        return tf.concat([W[a:z] for a, z, W, _ in parts], 0), tf.concat(
            [b[a:z] for a, z, _, b in parts], 0
        )

    def write(self, start: int, W, b) -> None:
        stop = start + int(W.shape[0])
        if self._arrays is not None:
            if isinstance(W, np.ndarray) and W.ctypes.data == self._arrays[0][start:].ctypes.data:
                return  # a `scratch` view, already updated in place
            self._arrays[0][start:stop] = np.asarray(W)
            self._arrays[1][start:stop] = np.asarray(b)
            return
        for lo, hi, piece_W, piece_b in self._pieces:
            if lo >= stop or hi <= start:
                continue
            a, z = max(start, lo), min(stop, hi)
            if a == lo and z == hi:
                piece_W.assign(W[a - start : z - start])
                piece_b.assign(b[a - start : z - start])
            else:
                piece_W[a - lo : z - lo].assign(W[a - start : z - start])
                piece_b[a - lo : z - lo].assign(b[a - start : z - start])

    def begin_step(self) -> None:
        pass

    def end_step(self, record: bytes = b"") -> None:
        """Counts the step; the record is kept for the next `save` (memory is not durable)."""
        self.steps += 1
        self.record = record

    def save(
        self, target: "FileWeights", record: Optional[bytes] = None, piece_layers: int = 1_000_000
    ) -> None:
        """Commits the core, its step count and `record` into the weights file `target`: all
        of it goes to the copy that is not current, then the commit record flips (see the
        module docstring), so the last good copy is never overwritten in place."""
        target.check_shape(self)
        for start, W, b in self.numpy_pieces(piece_layers):
            target.store(start, W, b, target.spare)
            crash_point("deep-save-piece")
        target.commit(self.steps, self.record if record is None else record)

    def close(self) -> None:
        pass
