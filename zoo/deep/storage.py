"""Where the core's `L` layers live: in memory, or in a crash-safe file streamed chunk by chunk.

## The weights file (version 2): two copies and a double-buffered commit record

Every SGD step rewrites every layer, so an undo or redo journal of "the chunks a step rewrites"
would be a second copy of the whole core written on every step. The file instead holds two
copies of the core side by side; a step reads the *current* copy and writes the *other* one, and
a commit record names which copy is current. The record is double-buffered: two slots, each
with a CRC-32, the newer valid one wins. Little-endian layout:

    offset              field
    0                   magic b"ZOODEEP\\0", version (uint32, 2), width (uint32),
                        layers (uint64), dtype code (uint32: 1 float32, 2 float64),
                        activation code (uint32: 1 softsign, 2 tanh, 3 relu),
                        extra capacity (uint64): bytes reserved per copy for the owner's record
    512, 1024           commit slots: magic b"ZOOSLOT\\0", sequence (uint64), copy (uint32),
                        steps (uint64), extra length (uint64), extra CRC-32 (uint32),
                        slot CRC-32 (uint32) of the preceding fields
    4096 + k * copy     copy k (k = 0, 1): W (L x w x w), b (L x w), then the extra record
                        (for `zoo.deep.DeepNetwork`: the stem, the head and the run's state)

A streamed step (`begin_step`, `write` per chunk, `end_step(extra)`):

1. the new chunks and the new extra record go to the copy that is *not* current (the backward
   pass still reads the pre-update weights from the current one);
2. `fdatasync` (every new byte is on disk);
3. the slot that does not hold the current commit gets `sequence + 1`, the other copy and the
   step count, then `fdatasync`. That slot write is the commit point.

So a step costs two `fdatasync`s, however many chunks it has. A kill -9 (or a crash of the
machine) at any instant leaves either the old commit (the step in flight is lost, the current
copy was never touched) or the new one (complete, synced before it was named). A torn slot fails
its CRC and the other slot, which still names a complete copy, wins. No instant needs repair on
open, so a second Ctrl-C cannot tear anything, and no signal has to be blocked.

`InMemoryWeights.save` uses the same commit: the whole core goes to the copy that is not current,
then the record flips, so the last good copy is never overwritten in place. A new file is filled
under a temporary name and renamed into place only once its first commit is on disk.

The core, the stem and the head are one commit (the extra record rides in the copy the slot
names, checked by its CRC), so they can never belong to different steps.

Crash points (`zoo.runs.crash_point`, for the fault-injection tests): "deep-chunk-written" after
each chunk a streamed step writes, "deep-save-piece" after each piece an in-memory save writes,
"deep-before-commit" after the data sync, "deep-after-commit" after the slot sync.
"""

import os
import struct
import zlib
from pathlib import Path
from typing import Optional

import numpy as np
import tensorflow as tf

from zoo.deep.kernels import ACTIVATIONS
from zoo.errors import CorruptFileError, UsageError
from zoo.runs import crash_point

MAGIC, SLOT_MAGIC = b"ZOODEEP\0", b"ZOOSLOT\0"
VERSION = 2
HEADER = struct.Struct("<8sIIQIIQ")
SLOT = struct.Struct("<8sQIQQI")
SLOT_OFFSETS = (512, 1024)
DATA_OFFSET = 4096
PAGE = 4096
DTYPES = {1: np.float32, 2: np.float64}
DTYPE_CODES = {np.dtype(value): key for key, value in DTYPES.items()}


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


def _check_activation(activation):
    if activation not in ACTIVATIONS:
        raise UsageError(
            f"`activation` must be one of {', '.join(ACTIVATIONS)}, got {activation!r}."
        )


def _gpu_visible():
    return bool(tf.config.list_logical_devices("GPU"))


ALIGNMENT = 64  # what TensorFlow's Eigen kernels require of a buffer they did not allocate


def aligned_empty(shape, dtype) -> np.ndarray:
    """An uninitialised C-contiguous array whose data starts on a 64-byte boundary."""
    dtype = np.dtype(dtype)
    size = int(np.prod(shape)) * dtype.itemsize
    raw = np.empty(size + ALIGNMENT, np.uint8)
    start = -raw.ctypes.data % ALIGNMENT
    return raw[start : start + size].view(dtype).reshape(shape)


def as_tensor(array: np.ndarray) -> tf.Tensor:
    """A CPU tensor viewing `array` without a copy when it is contiguous and 64-byte aligned
    (through DLPack), else a copy. Valid while `array`'s memory is not overwritten."""
    if array.flags.c_contiguous and array.ctypes.data % ALIGNMENT == 0 and array.size:
        return tf.experimental.dlpack.from_dlpack(array.__dlpack__())
    return tf.convert_to_tensor(array)


def _aligned(array, dtype) -> np.ndarray:
    array = np.asarray(array)
    if array.dtype == dtype and array.flags.c_contiguous and array.ctypes.data % ALIGNMENT == 0:
        return array
    copy = aligned_empty(array.shape, dtype)
    copy[...] = array
    return copy


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
        _check_activation(activation)
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
            self._arrays = (_aligned(W, self.dtype), _aligned(b, self.dtype))

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
        time (no full-size temporary), with its step count and extra record."""
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


class FileWeights:
    """The core in a crash-safe two-copy file (module docstring), streamed a chunk at a time.

    Chunks are read with `preadv` into fresh arrays and written with `pwrite`: nothing of the
    file is mapped into the process, so the resident memory stays about one chunk whatever the
    depth (the page cache holds the file, outside the process).

    Use `FileWeights.create` for a new file and `FileWeights.open` for an existing one.
    """

    def __init__(self, path, mode: str = "r+"):
        self.path = Path(path)
        self.writable = mode == "r+"
        try:
            self._fd = os.open(self.path, os.O_RDWR if self.writable else os.O_RDONLY)
        except FileNotFoundError:
            raise CorruptFileError(
                self.path, "missing; `zoo deep init` or `zoo deep train` creates it"
            ) from None
        except IsADirectoryError:
            raise CorruptFileError(self.path, "is a directory, not a weights file") from None
        try:
            self._read_header()
        except BaseException:
            self.close()
            raise
        self._writing = False

    def _read_header(self):
        header = os.pread(self._fd, DATA_OFFSET, 0)
        if len(header) < DATA_OFFSET:
            raise CorruptFileError(self.path, "too short to be a zoo deep-core weights file")
        magic, version, width, layers, dtype_code, activation_code, extra_capacity = (
            HEADER.unpack_from(header)
        )
        if magic != MAGIC:
            raise CorruptFileError(self.path, "not a zoo deep-core weights file (bad magic)")
        if version != VERSION:
            raise CorruptFileError(
                self.path,
                f"weights file version {version}; this zoo reads {VERSION} "
                "(re-create it with `zoo deep init`)",
            )
        if (
            dtype_code not in DTYPES
            or not 1 <= activation_code <= len(ACTIVATIONS)
            or width < 1
            or layers < 1
        ):
            raise CorruptFileError(self.path, "corrupt header")
        self._set_shape(
            width,
            layers,
            np.dtype(DTYPES[dtype_code]),
            ACTIVATIONS[activation_code - 1],
            extra_capacity,
        )
        size = os.fstat(self._fd).st_size
        if size != self._file_size:
            raise CorruptFileError(
                self.path,
                f"holds {size} bytes; {layers} layers of width {width} "
                f"need {self._file_size} (truncated or not this file)",
            )
        slots = [
            self._parse_slot(header[offset : offset + SLOT.size + 4]) for offset in SLOT_OFFSETS
        ]
        valid = [(slot[0], index) for index, slot in enumerate(slots) if slot is not None]
        if not valid:
            raise CorruptFileError(self.path, "no valid commit record (both slots corrupt)")
        for sequence, index in sorted(valid, reverse=True):
            _, copy, steps, length, crc = slots[index]
            record = os.pread(self._fd, length, self._extra_offset(copy)) if length else b""
            if len(record) == length and zlib.crc32(record) == crc:
                self.sequence, self.current, self.steps, self.record = sequence, copy, steps, record
                self._slot = index
                return
        raise CorruptFileError(self.path, "the committed record fails its checksum")

    @staticmethod
    def _parse_slot(raw):
        magic, sequence, copy, steps, length, crc = SLOT.unpack_from(raw)
        (check,) = struct.unpack_from("<I", raw, SLOT.size)
        if magic != SLOT_MAGIC or copy not in (0, 1) or zlib.crc32(raw[: SLOT.size]) != check:
            return None
        return sequence, copy, steps, length, crc

    def _set_shape(self, width, layers, dtype, activation, extra_capacity):
        self.width, self.layers, self.dtype, self.activation = width, layers, dtype, activation
        self.extra_capacity = extra_capacity
        item = dtype.itemsize
        self._W_bytes, self._b_bytes = layers * width * width * item, layers * width * item
        core = self._W_bytes + self._b_bytes
        self._copy_bytes = -(-(core + extra_capacity) // PAGE) * PAGE
        self._file_size = DATA_OFFSET + 2 * self._copy_bytes

    @classmethod
    def create(
        cls,
        path,
        layers: int,
        width: int,
        activation: str = "softsign",
        seed: int = 0,
        dtype=np.float32,
        chunk_layers: int = 100_000,
        fill: bool = True,
        progress=None,
        extra_capacity: int = 0,
        record: bytes = b"",
    ):
        """A new weights file with the seed's init (`fill=False`: zeros), committed at step 0
        with `record`. It is written under a temporary name and renamed into place once
        complete, so an interrupted `create` leaves no file behind.

        Args:
            path: the file; it must not exist.
            layers, width, activation, seed, dtype: the core.
            chunk_layers: layers written at a time.
            fill: False leaves the core zero (the caller stores its own values and commits).
            progress: called with the number of layers written after each chunk.
            extra_capacity: bytes reserved for the owner's record (stem, head, state).
            record: the record committed with step 0.
        """
        _check_activation(activation)
        dtype = np.dtype(dtype)
        if dtype not in DTYPE_CODES:
            raise UsageError(f"`dtype` must be float32 or float64, got {dtype}.")
        path = Path(path)
        if path.exists():
            raise UsageError(f"`weights` {path} exists already.")
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.tmp")
        weights = cls.__new__(cls)
        weights.path, weights.writable, weights._writing = temporary, True, False
        weights._set_shape(width, layers, dtype, activation, max(extra_capacity, len(record)))
        weights._fd = os.open(temporary, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.pwrite(
                weights._fd,
                HEADER.pack(
                    MAGIC,
                    VERSION,
                    width,
                    layers,
                    DTYPE_CODES[dtype],
                    ACTIVATIONS.index(activation) + 1,
                    weights.extra_capacity,
                ),
                0,
            )
            os.ftruncate(weights._fd, weights._file_size)
            weights.sequence, weights.current, weights._slot, weights.steps, weights.record = (
                0,
                1,
                1,
                0,
                b"",
            )
            if fill:
                for start in range(0, layers, chunk_layers):
                    stop = min(layers, start + chunk_layers)
                    weights.store(
                        start, *init_layers(layers, width, seed, dtype, start, stop), copy=0
                    )
                    if progress is not None:
                        progress(stop - start)
            weights.commit(0, record)
            os.replace(temporary, path)
            _fsync_directory(path.parent)
        except BaseException:
            weights.close()
            temporary.unlink(missing_ok=True)
            raise
        weights.path = path
        return weights

    @classmethod
    def open(cls, path, mode: str = "r+"):
        return cls(path, mode)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # --- layout ---------------------------------------------------------------------------

    @property
    def spare(self) -> int:
        """The copy that is not current: where the next step or save writes."""
        return 1 - self.current

    def _W_offset(self, copy, layer):
        return (
            DATA_OFFSET
            + copy * self._copy_bytes
            + layer * self.width * self.width * self.dtype.itemsize
        )

    def _b_offset(self, copy, layer):
        return (
            DATA_OFFSET
            + copy * self._copy_bytes
            + self._W_bytes
            + layer * self.width * self.dtype.itemsize
        )

    def _extra_offset(self, copy):
        return DATA_OFFSET + copy * self._copy_bytes + self._W_bytes + self._b_bytes

    def check_shape(self, other) -> None:
        mine = (self.layers, self.width, self.dtype, self.activation)
        theirs = (other.layers, other.width, other.dtype, other.activation)
        if mine != theirs:
            raise UsageError(
                f"`weights` {self.path} holds (layers, width, dtype, activation) {mine}, "
                f"not {theirs}."
            )

    # --- chunk I/O ------------------------------------------------------------------------

    def load_into(
        self, start: int, W: np.ndarray, b: np.ndarray, copy: Optional[int] = None
    ) -> None:
        """Reads layers `[start, start + len(W))` of `copy` (default: the current one) into the
        contiguous arrays `W` and `b`."""
        copy = self.current if copy is None else copy
        for array, offset in ((W, self._W_offset(copy, start)), (b, self._b_offset(copy, start))):
            view = memoryview(array.reshape(-1)).cast("B")
            done = 0
            while done < len(view):
                count = os.preadv(self._fd, [view[done:]], offset + done)
                if count <= 0:
                    raise CorruptFileError(self.path, "ended early (truncated)")
                done += count

    def load(self, start: int, stop: int, copy: Optional[int] = None):
        """Layers `[start, stop)` as fresh arrays `(W, b)`."""
        W = np.empty((stop - start, self.width, self.width), self.dtype)
        b = np.empty((stop - start, self.width), self.dtype)
        self.load_into(start, W, b, copy)
        return W, b

    def store(self, start: int, W, b, copy: int) -> None:
        """Writes layers `[start, start + len(W))` into `copy`, which must not be current."""
        if copy == self.current:
            raise RuntimeError("the committed copy is never written in place")
        for array, offset in ((W, self._W_offset(copy, start)), (b, self._b_offset(copy, start))):
            view = memoryview(np.ascontiguousarray(array, self.dtype).reshape(-1)).cast("B")
            done = 0
            while done < len(view):
                done += os.pwrite(self._fd, view[done:], offset + done)
            _start_writeback(self._fd, offset, len(view))

    def commit(self, steps: int, record: bytes = b"") -> None:
        """Makes the spare copy, holding `steps` steps and `record`, the committed one: syncs
        its bytes, then writes and syncs the older commit slot (the commit point)."""
        if len(record) > self.extra_capacity:
            raise ValueError(
                f"record of {len(record)} bytes exceeds the file's {self.extra_capacity}"
            )
        copy = self.spare
        if record:
            os.pwrite(self._fd, record, self._extra_offset(copy))
        os.fdatasync(self._fd)
        crash_point("deep-before-commit")
        slot = 1 - self._slot
        fields = SLOT.pack(
            SLOT_MAGIC, self.sequence + 1, copy, steps, len(record), zlib.crc32(record)
        )
        os.pwrite(self._fd, fields + struct.pack("<I", zlib.crc32(fields)), SLOT_OFFSETS[slot])
        os.fdatasync(self._fd)
        self.sequence, self.current, self._slot, self.steps, self.record = (
            self.sequence + 1,
            copy,
            slot,
            steps,
            record,
        )
        crash_point("deep-after-commit")

    # --- the step protocol (DeepNetwork) --------------------------------------------------

    has_arrays = True
    _scratch = None

    def scratch(self, start: int, stop: int):
        """Layers `[start, stop)` of the current copy read into one reused, 64-byte-aligned
        buffer: valid until the next `scratch` call (a step's `write` stores it first)."""
        count = stop - start
        if self._scratch is None or self._scratch[0].shape[0] < count:
            self._scratch = (
                aligned_empty((count, self.width, self.width), self.dtype),
                aligned_empty((count, self.width), self.dtype),
            )
        W, b = self._scratch[0][:count], self._scratch[1][:count]
        self.load_into(start, W, b)
        return W, b

    def read(self, start: int, stop: int):
        W, b = self.load(start, stop)
        return tf.convert_to_tensor(W), tf.convert_to_tensor(b)

    def begin_step(self) -> None:
        self._writing = True

    def write(self, start: int, W, b) -> None:
        self.store(start, np.asarray(W), np.asarray(b), self.spare)
        crash_point("deep-chunk-written")

    def end_step(self, record: bytes = b"") -> None:
        self._writing = False
        self.commit(self.steps + 1, record)

    def close(self) -> None:
        if getattr(self, "_fd", None) is not None:
            os.close(self._fd)
            self._fd = None


def _writeback_starter():
    """`start(fd, offset, count)`: asks the kernel to begin writing those dirty pages to disk
    now, without waiting (Linux `sync_file_range(SYNC_FILE_RANGE_WRITE)`), so a step's final
    `fdatasync` finds most of its chunks already written; elsewhere a no-op. Durability still
    comes from the `fdatasync` alone."""
    import ctypes

    try:
        function = ctypes.CDLL(None).sync_file_range  # the C library this process runs on
    except (OSError, AttributeError):
        return lambda fd, offset, count: None
    function.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    function.restype = ctypes.c_int
    write = 2  # SYNC_FILE_RANGE_WRITE
    return lambda fd, offset, count: function(fd, offset, count, write)


_start_writeback = _writeback_starter()


def _fsync_directory(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
