"""`FileWeights`: the core in a crash-safe two-copy file with checksummed blocks, streamed a
chunk at a time (the format: `zoo.deep.weights_format`)."""

import os
import zlib
from pathlib import Path
from typing import Optional

import numpy as np
import tensorflow as tf

from zoo.deep import weights_format as fmt
from zoo.deep.buffers import aligned_empty
from zoo.deep.checksums import block_checksum, block_layers_for
from zoo.deep.initialisation import check_activation, init_layers
from zoo.deep.kernels import ACTIVATIONS
from zoo.errors import CorruptFileError, UsageError
from zoo.runs import crash_point


class FileWeights:
    """The core in a crash-safe two-copy file, streamed a chunk at a time.

    Chunks are read with `preadv` into fresh arrays and written with `pwrite`: nothing of the
    file is mapped into the process, so the resident memory stays about one chunk whatever the
    depth (the page cache holds the file, outside the process). Reads of the committed copy are
    checked against its block checksums.

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
        header = os.pread(self._fd, fmt.DATA_OFFSET, 0)
        if len(header) < fmt.DATA_OFFSET:
            raise CorruptFileError(self.path, "too short to be a zoo deep-core weights file")
        magic, version = header[:8], int.from_bytes(header[8:12], "little")
        if magic != fmt.MAGIC:
            raise CorruptFileError(self.path, "not a zoo deep-core weights file (bad magic)")
        if version != fmt.VERSION:
            raise CorruptFileError(
                self.path,
                f"weights file version {version} has no block checksums; this zoo reads "
                f"version {fmt.VERSION} (re-create it with `zoo deep init`, or train a new --run)",
            )
        _, _, width, layers, dtype_code, activation_code, extra_capacity, block_layers = (
            fmt.HEADER.unpack_from(header)
        )
        if (
            dtype_code not in fmt.DTYPES
            or not 1 <= activation_code <= len(ACTIVATIONS)
            or width < 1
            or layers < 1
            or block_layers < 1
        ):
            raise CorruptFileError(self.path, "corrupt header")
        self._set_shape(
            width,
            layers,
            np.dtype(fmt.DTYPES[dtype_code]),
            ACTIVATIONS[activation_code - 1],
            extra_capacity,
            block_layers,
        )
        size = os.fstat(self._fd).st_size
        if size != self.layout.file_size:
            raise CorruptFileError(
                self.path,
                f"holds {size} bytes; {layers} layers of width {width} "
                f"need {self.layout.file_size} (truncated or not this file)",
            )
        slots = [
            fmt.parse_slot(header[offset : offset + fmt.SLOT.size + 4])
            for offset in fmt.SLOT_OFFSETS
        ]
        valid = [(slot[0], index) for index, slot in enumerate(slots) if slot is not None]
        if not valid:
            raise CorruptFileError(self.path, "no valid commit record (both slots corrupt)")
        for sequence, index in sorted(valid, reverse=True):
            _, copy, steps, length, crc, table_crc = slots[index]
            record = os.pread(self._fd, length, self.layout.extra_offset(copy)) if length else b""
            table = self._read_table(copy)
            if (
                len(record) == length
                and zlib.crc32(record) == crc
                and zlib.crc32(table.tobytes()) == table_crc
            ):
                self.sequence, self.current, self.steps, self.record = sequence, copy, steps, record
                self._slot, self._table = index, table
                self._start_spare()
                return
        raise CorruptFileError(self.path, "the committed record fails its checksum")

    def _read_table(self, copy) -> np.ndarray:
        table = np.zeros(self.layout.blocks, fmt.TABLE_ITEM)
        fmt.read_fully(self._fd, table, self.layout.table_offset(copy))
        return table

    def _set_shape(self, width, layers, dtype, activation, extra_capacity, block_layers):
        self.width, self.layers, self.dtype, self.activation = width, layers, dtype, activation
        self.extra_capacity, self.block_layers = extra_capacity, block_layers
        self.layout = fmt.Layout(width, layers, dtype, extra_capacity, block_layers)

    def _start_spare(self):
        """A fresh checksum table for the spare copy: blocks are marked as they are written."""
        self._spare_table = np.zeros(self.layout.blocks, fmt.TABLE_ITEM)
        self._spare_done = np.zeros(self.layout.blocks, bool)
        self._verified = np.zeros(self.layout.blocks, bool)  # of the current copy, this commit

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
        block_layers: Optional[int] = None,
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
            block_layers: layers per checksum block (default: a divisor of `chunk_layers`,
                `zoo.deep.checksums.block_layers_for`); reads of whole blocks are checked at
                no extra cost.
        """
        check_activation(activation)
        dtype = np.dtype(dtype)
        if dtype not in fmt.DTYPE_CODES:
            raise UsageError(f"`dtype` must be float32 or float64, got {dtype}.")
        path = Path(path)
        if path.exists():
            raise UsageError(f"`weights` {path} exists already.")
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.tmp")
        weights = cls.__new__(cls)
        weights.path, weights.writable, weights._writing = temporary, True, False
        block_layers = min(layers, block_layers or block_layers_for(chunk_layers))
        extra = max(extra_capacity, len(record))
        weights._set_shape(width, layers, dtype, activation, extra, block_layers)
        weights._fd = os.open(temporary, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.pwrite(
                weights._fd,
                fmt.HEADER.pack(
                    fmt.MAGIC,
                    fmt.VERSION,
                    width,
                    layers,
                    fmt.DTYPE_CODES[dtype],
                    ACTIVATIONS.index(activation) + 1,
                    extra,
                    block_layers,
                ),
                0,
            )
            os.ftruncate(weights._fd, weights.layout.file_size)
            weights.sequence, weights.current, weights._slot, weights.steps = 0, 1, 1, 0
            weights.record, weights._table = b"", np.zeros(weights.layout.blocks, fmt.TABLE_ITEM)
            weights._start_spare()
            if fill:
                step = max(chunk_layers, block_layers)
                step -= step % block_layers
                for start in range(0, layers, step):
                    stop = min(layers, start + step)
                    weights.store(start, *init_layers(layers, width, seed, dtype, start, stop), 0)
                    if progress is not None:
                        progress(stop - start)
            else:  # the file is zeros where nothing was written: their checksums suffice
                zeros = {}
                for block in range(weights.layout.blocks):
                    lo, hi = weights.layout.block_span(block)
                    if hi - lo not in zeros:
                        zeros[hi - lo] = block_checksum(
                            np.zeros((hi - lo, width, width), dtype),
                            np.zeros((hi - lo, width), dtype),
                        )
                    weights._spare_table[block] = zeros[hi - lo]
                weights._spare_done[:] = True
            weights.commit(0, record)
            os.replace(temporary, path)
            fmt.fsync_directory(path.parent)
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

    @property
    def spare(self) -> int:
        """The copy that is not current: where the next step or save writes."""
        return 1 - self.current

    def check_shape(self, other) -> None:
        mine = (self.layers, self.width, self.dtype, self.activation)
        theirs = (other.layers, other.width, other.dtype, other.activation)
        if mine != theirs:
            raise UsageError(
                f"`weights` {self.path} holds (layers, width, dtype, activation) {mine}, "
                f"not {theirs}."
            )

    # --- chunk I/O ------------------------------------------------------------------------

    def _read(self, start, W, b, copy):
        for array, offset in (
            (W, self.layout.W_offset(copy, start)),
            (b, self.layout.b_offset(copy, start)),
        ):
            if not fmt.read_fully(self._fd, array, offset):
                raise CorruptFileError(self.path, "ended early (truncated)")

    def _verify(self, start: int, W: np.ndarray, b: np.ndarray) -> None:
        """Checks layers `[start, start + len(W))` of the current copy, just read into `W` and
        `b`, against the committed checksums (blocks already checked in this commit are
        skipped; blocks the range cuts are read whole)."""
        stop = start + len(W)
        first, last = start // self.block_layers, -(-stop // self.block_layers)
        for block in range(first, last):
            if self._verified[block]:
                continue
            lo, hi = self.layout.block_span(block)
            if lo >= start and hi <= stop:
                value = block_checksum(W[lo - start : hi - start], b[lo - start : hi - start])
            else:
                whole_W = np.empty((hi - lo, self.width, self.width), self.dtype)
                whole_b = np.empty((hi - lo, self.width), self.dtype)
                self._read(lo, whole_W, whole_b, self.current)
                value = block_checksum(whole_W, whole_b)
            if value != int(self._table[block]):
                raise CorruptFileError(
                    self.path,
                    f"layers {lo}-{hi - 1} (checksum block {block} of {self.layout.blocks}) "
                    "fail their checksum: the weights are corrupt",
                )
            self._verified[block] = True

    def load_into(
        self, start: int, W: np.ndarray, b: np.ndarray, copy: Optional[int] = None
    ) -> None:
        """Reads layers `[start, start + len(W))` of `copy` (default: the current one, checked
        against its checksums) into the contiguous arrays `W` and `b`.

        Raises:
            CorruptFileError: a block fails its checksum, or the file ends early.
        """
        copy = self.current if copy is None else copy
        self._read(start, W, b, copy)
        if copy == self.current:
            self._verify(start, W, b)

    def load(self, start: int, stop: int, copy: Optional[int] = None):
        """Layers `[start, stop)` as fresh arrays `(W, b)`."""
        W = np.empty((stop - start, self.width, self.width), self.dtype)
        b = np.empty((stop - start, self.width), self.dtype)
        self.load_into(start, W, b, copy)
        return W, b

    def store(self, start: int, W, b, copy: int) -> None:
        """Writes layers `[start, start + len(W))` into `copy`, which must not be current, and
        the checksums of the blocks it covers whole (the others are computed at the commit)."""
        if copy == self.current:
            raise RuntimeError("the committed copy is never written in place")
        W = np.ascontiguousarray(W, self.dtype)
        b = np.ascontiguousarray(b, self.dtype)
        for array, offset in (
            (W, self.layout.W_offset(copy, start)),
            (b, self.layout.b_offset(copy, start)),
        ):
            fmt.write_fully(self._fd, array.reshape(-1), offset)
            fmt.start_writeback(self._fd, offset, array.nbytes)
        stop = start + len(W)
        first, last = start // self.block_layers, -(-stop // self.block_layers)
        for block in range(first, last):
            lo, hi = self.layout.block_span(block)
            inside = lo >= start and hi <= stop
            if inside:
                self._spare_table[block] = block_checksum(
                    W[lo - start : hi - start], b[lo - start : hi - start]
                )
            self._spare_done[block] = inside

    def commit(self, steps: int, record: bytes = b"") -> None:
        """Makes the spare copy, holding `steps` steps and `record`, the committed one: writes
        its checksum table and record, syncs its bytes, then writes and syncs the older commit
        slot (the commit point)."""
        if len(record) > self.extra_capacity:
            raise ValueError(
                f"record of {len(record)} bytes exceeds the file's {self.extra_capacity}"
            )
        copy = self.spare
        for block in np.flatnonzero(~self._spare_done):  # blocks written in parts, or not at all
            lo, hi = self.layout.block_span(int(block))
            W = np.empty((hi - lo, self.width, self.width), self.dtype)
            b = np.empty((hi - lo, self.width), self.dtype)
            self._read(lo, W, b, copy)
            self._spare_table[block] = block_checksum(W, b)
        table = self._spare_table.tobytes()
        fmt.write_fully(self._fd, table, self.layout.table_offset(copy))
        if record:
            os.pwrite(self._fd, record, self.layout.extra_offset(copy))
        os.fdatasync(self._fd)
        crash_point("deep-before-commit")
        slot = 1 - self._slot
        os.pwrite(
            self._fd,
            fmt.pack_slot(self.sequence + 1, copy, steps, record, table),
            fmt.SLOT_OFFSETS[slot],
        )
        os.fdatasync(self._fd)
        self.sequence, self.current, self._slot, self.steps, self.record = (
            self.sequence + 1,
            copy,
            slot,
            steps,
            record,
        )
        self._table = self._spare_table
        self._start_spare()
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
