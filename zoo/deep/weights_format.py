"""The deep core's weights file (version 3): two copies, a double-buffered commit record and a
checksum per block of layers.

Every SGD step rewrites every layer, so an undo or redo journal of "the chunks a step rewrites"
would be a second copy of the whole core written on every step. The file instead holds two
copies of the core side by side; a step reads the *current* copy and writes the *other* one, and
a commit record names which copy is current. The record is double-buffered: two slots, each
with a CRC-32, the newer valid one wins. Little-endian layout:

    offset              field
    0                   magic b"ZOODEEP\\0", version (uint32, 3), width (uint32),
                        layers (uint64), dtype code (uint32: 1 float32, 2 float64),
                        activation code (uint32: 1 softsign, 2 tanh, 3 relu),
                        extra capacity (uint64): bytes reserved per copy for the owner's record,
                        block layers (uint64): layers per checksum block
    512, 1024           commit slots: magic b"ZOOSLOT\\0", sequence (uint64), copy (uint32),
                        steps (uint64), extra length (uint64), extra CRC-32 (uint32),
                        checksum-table CRC-32 (uint32), slot CRC-32 (uint32) of the fields
    4096 + k * copy     copy k (k = 0, 1): W (L x w x w), b (L x w), the extra record (for
                        `zoo.deep.DeepNetwork`: the stem, the head and the run's state), then
                        the checksum table: one uint64 per block (`zoo.deep.checksums`)

A streamed step (`begin_step`, `write` per chunk, `end_step(extra)`):

1. the new chunks, their blocks' checksums and the new extra record go to the copy that is
   *not* current (the backward pass still reads the pre-update weights from the current one);
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
names, checked by its CRC), so they can never belong to different steps. The committed copy's
blocks are checked against their checksums when they are read for training or evaluation (a
block read twice within one commit, a streamed step's forward and backward, is checked the first
time): a flipped weight is a one-line `CorruptFileError` naming the file and the block's layers,
not a silent step. Version 2 files (no checksums) are refused in one line.

Crash points (`zoo.runs.crash_point`, for the fault-injection tests): "deep-chunk-written" after
each chunk a streamed step writes, "deep-save-piece" after each piece an in-memory save writes,
"deep-before-commit" after the data sync, "deep-after-commit" after the slot sync.
"""

import os
import struct
import zlib
from pathlib import Path

import numpy as np

MAGIC, SLOT_MAGIC = b"ZOODEEP\0", b"ZOOSLOT\0"
VERSION = 3
HEADER = struct.Struct("<8sIIQIIQQ")
SLOT = struct.Struct("<8sQIQQII")
SLOT_OFFSETS = (512, 1024)
DATA_OFFSET = 4096
PAGE = 4096
DTYPES = {1: np.float32, 2: np.float64}
DTYPE_CODES = {np.dtype(value): key for key, value in DTYPES.items()}
TABLE_ITEM = np.dtype("<u8")


class Layout:
    """Byte offsets of a file's parts, from its shape."""

    def __init__(self, width, layers, dtype, extra_capacity, block_layers):
        self.width, self.layers, self.dtype = width, layers, np.dtype(dtype)
        self.extra_capacity, self.block_layers = extra_capacity, block_layers
        self.blocks = -(-layers // block_layers)
        item = self.dtype.itemsize
        self.W_bytes, self.b_bytes = layers * width * width * item, layers * width * item
        self.table_bytes = self.blocks * TABLE_ITEM.itemsize
        core = self.W_bytes + self.b_bytes
        self.copy_bytes = -(-(core + extra_capacity + self.table_bytes) // PAGE) * PAGE
        self.file_size = DATA_OFFSET + 2 * self.copy_bytes

    def W_offset(self, copy, layer):
        return (
            DATA_OFFSET
            + copy * self.copy_bytes
            + layer * self.width * self.width * self.dtype.itemsize
        )

    def b_offset(self, copy, layer):
        return (
            DATA_OFFSET
            + copy * self.copy_bytes
            + self.W_bytes
            + layer * self.width * self.dtype.itemsize
        )

    def extra_offset(self, copy):
        return DATA_OFFSET + copy * self.copy_bytes + self.W_bytes + self.b_bytes

    def table_offset(self, copy):
        return self.extra_offset(copy) + self.extra_capacity

    def block_span(self, block):
        """Layers `[start, stop)` of checksum block `block`."""
        start = block * self.block_layers
        return start, min(self.layers, start + self.block_layers)


def pack_slot(sequence, copy, steps, record: bytes, table: bytes) -> bytes:
    fields = SLOT.pack(
        SLOT_MAGIC, sequence, copy, steps, len(record), zlib.crc32(record), zlib.crc32(table)
    )
    return fields + struct.pack("<I", zlib.crc32(fields))


def parse_slot(raw):
    """`(sequence, copy, steps, record length, record CRC, table CRC)`, or None when torn."""
    magic, sequence, copy, steps, length, crc, table_crc = SLOT.unpack_from(raw)
    (check,) = struct.unpack_from("<I", raw, SLOT.size)
    if magic != SLOT_MAGIC or copy not in (0, 1) or zlib.crc32(raw[: SLOT.size]) != check:
        return None
    return sequence, copy, steps, length, crc, table_crc


def read_fully(fd, array: np.ndarray, offset: int) -> bool:
    """Reads `array`'s bytes from `offset`; False when the file ends first."""
    view = memoryview(array.reshape(-1)).cast("B")
    done = 0
    while done < len(view):
        count = os.preadv(fd, [view[done:]], offset + done)
        if count <= 0:
            return False
        done += count
    return True


def write_fully(fd, data, offset: int) -> None:
    view = memoryview(data).cast("B") if not isinstance(data, bytes) else memoryview(data)
    done = 0
    while done < len(view):
        done += os.pwrite(fd, view[done:], offset + done)


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


start_writeback = _writeback_starter()


def fsync_directory(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
