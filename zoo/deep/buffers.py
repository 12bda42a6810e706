"""Aligned NumPy buffers the native kernels and TensorFlow can share without a copy."""

import numpy as np
import tensorflow as tf

ALIGNMENT = 64  # what TensorFlow's Eigen kernels require of a buffer they did not allocate


def aligned_empty(shape, dtype) -> np.ndarray:
    """An uninitialised C-contiguous array whose data starts on a 64-byte boundary."""
    dtype = np.dtype(dtype)
    size = int(np.prod(shape)) * dtype.itemsize
    raw = np.empty(size + ALIGNMENT, np.uint8)
    start = -raw.ctypes.data % ALIGNMENT
    return raw[start : start + size].view(dtype).reshape(shape)


def aligned(array, dtype) -> np.ndarray:
    """`array` itself when it is a C-contiguous, 64-byte-aligned array of `dtype`, else an
    aligned copy."""
    array = np.asarray(array)
    if array.dtype == dtype and array.flags.c_contiguous and array.ctypes.data % ALIGNMENT == 0:
        return array
    copy = aligned_empty(array.shape, dtype)
    copy[...] = array
    return copy


def as_tensor(array: np.ndarray) -> tf.Tensor:
    """A CPU tensor viewing `array` without a copy when it is contiguous and 64-byte aligned
    (through DLPack), else a copy. Valid while `array`'s memory is not overwritten."""
    if array.flags.c_contiguous and array.ctypes.data % ALIGNMENT == 0 and array.size:
        return tf.experimental.dlpack.from_dlpack(array.__dlpack__())
    return tf.convert_to_tensor(array)
