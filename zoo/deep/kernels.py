"""Chunk kernels of the deep residual core `h <- h + alpha * act(h W_i + b_i)`.

A chunk is `n` consecutive layers: `W` of shape `(n, w, w)`, `b` of shape `(n, w)`. Two
implementations with the same three calls, chosen by `select_kernels(..., kernels=)`:

- `ChunkKernels` ("xla"): `tf.function(jit_compile=True)` with a `tf.while_loop` over the layers,
  so they run unchanged on CPU and GPU; they compile once per (chunk length, batch, width, dtype).
- `NativeChunkKernels` ("native"): C++ TensorFlow ops for the CPU, compiled on first use
  (`zoo.deep.native`); several times faster on a CPU, where the XLA loop pays for a few small
  fused kernels and the loop's bookkeeping per layer.

The calls:

- `forward(h, W, b)`: the chunk's output; keeps nothing else.
- `backward(h_start, g_end, W, b)`: recomputes the chunk's layer inputs `h_i` from its start
  boundary (the only per-layer activations kept), then walks the layers in reverse:
  `z_i = h_i W_i + b_i`, `dz_i = alpha * g * act'(z_i)`, `dW_i = h_i^T dz_i`, `db_i = sum(dz_i)`
  and `g <- g + dz_i W_i^T` (pre-update `W_i`). Returns `(g_start, dW, db)`.
- `backward_sgd(..., lr)`: the same walk writing the updated chunk `W_i - lr dW_i`,
  `b_i - lr db_i` directly (no gradient arrays). Returns `(g_start, W', b')`.

Per chunk the backward holds the layer inputs (`n x B x w`) and the new weights, nothing more.
The native kernels add two calls on NumPy chunks: `forward_keeping_bounds`, which also returns
the input of every sub-chunk of the chunk, and `backward_sgd_in_place`, which reads them (no
second walk over the chunk) and updates the chunk where it lies.
"""

import warnings
from typing import Optional

import numpy as np
import tensorflow as tf

from zoo.deep import native
from zoo.deep.buffers import as_tensor
from zoo.errors import NativeBuildError, UsageError
from zoo.validation import check_positive_int

ACTIVATIONS = ("softsign", "tanh", "relu")


def _softsign(z):
    return z / (1 + tf.abs(z))


def _softsign_grad(z):
    return 1 / tf.square(1 + tf.abs(z))


def _tanh_grad(z):
    return 1 - tf.square(tf.tanh(z))


def _relu_grad(z):
    return tf.cast(z > 0, z.dtype)


def activation_and_derivative(name):
    """`(act, act')` for a core activation name."""
    table = {
        "softsign": (_softsign, _softsign_grad),
        "tanh": (tf.tanh, _tanh_grad),
        "relu": (tf.nn.relu, _relu_grad),
    }
    if name not in table:
        raise ValueError(f"`activation` must be one of {', '.join(ACTIVATIONS)}, got {name!r}.")
    return table[name]


SMALL_WIDTH = 8


def _matmul(h, W):
    """`h @ W`. For a small width as a broadcast multiply and a reduction, which XLA fuses
    with the activation; a dot call per tiny layer costs more than its arithmetic."""
    if W.shape[0] is None or W.shape[0] > SMALL_WIDTH:
        return tf.matmul(h, W)
    return tf.reduce_sum(h[:, :, None] * W[None], axis=1)


def _matmul_transposed(dz, W):
    """`dz @ W^T`, likewise."""
    if W.shape[0] is None or W.shape[0] > SMALL_WIDTH:
        return tf.matmul(dz, W, transpose_b=True)
    return tf.reduce_sum(dz[:, None, :] * W[None], axis=2)


def _outer_sum(h, dz):
    """`h^T dz`: one layer's weight gradient `(B, w) x (B, w) -> (w, w)`."""
    if h.shape[-1] is None or h.shape[-1] > SMALL_WIDTH:
        return tf.matmul(h, dz, transpose_a=True)
    return tf.reduce_sum(h[:, :, None] * dz[:, None, :], axis=0)


class ChunkKernels:
    """The compiled forward and backward of one activation and residual scale `alpha`."""

    kind = "xla"

    def __init__(self, activation, alpha):
        self.activation = activation
        self.alpha = float(alpha)
        self._act, self._act_grad = activation_and_derivative(activation)
        self.forward = tf.function(self._forward, jit_compile=True, reduce_retracing=True)
        self.backward = tf.function(self._backward, jit_compile=True, reduce_retracing=True)
        self.backward_sgd = tf.function(self._backward_sgd, jit_compile=True, reduce_retracing=True)

    def _layer(self, h, W, b):
        return h + self.alpha * self._act(_matmul(h, W) + b)

    def _forward(self, h, W, b):
        layers = tf.shape(W)[0]

        def body(i, h):
            return i + 1, self._layer(h, W[i], b[i])

        _, h = tf.while_loop(lambda i, h: i < layers, body, (tf.constant(0), h))
        return h

    def _reverse(self, h_start, g_end, W, b, update):
        """Recomputes the chunk's layer inputs from its boundary, then walks the layers in
        reverse; `update(i, dW_i, db_i)` gives what is written for layer i."""
        layers = tf.shape(W)[0]
        # The layer inputs h_i are the only per-layer activations kept: z_i is recomputed
        # from h_i in the reverse walk (a w x w product), which costs less than storing it.
        inputs = tf.TensorArray(h_start.dtype, size=layers, element_shape=h_start.shape)

        def recompute(i, h, inputs):
            return i + 1, self._layer(h, W[i], b[i]), inputs.write(i, h)

        _, _, inputs = tf.while_loop(
            lambda i, *_: i < layers, recompute, (tf.constant(0), h_start, inputs)
        )
        out_W = tf.TensorArray(W.dtype, size=layers, element_shape=W.shape[1:])
        out_b = tf.TensorArray(b.dtype, size=layers, element_shape=b.shape[1:])

        def reverse(i, g, out_W, out_b):
            h = inputs.read(i)
            dz = self.alpha * g * self._act_grad(_matmul(h, W[i]) + b[i])
            new_W, new_b = update(i, _outer_sum(h, dz), tf.reduce_sum(dz, 0))
            return (
                i - 1,
                g + _matmul_transposed(dz, W[i]),
                out_W.write(i, new_W),
                out_b.write(i, new_b),
            )

        _, g, out_W, out_b = tf.while_loop(
            lambda i, *_: i >= 0, reverse, (layers - 1, g_end, out_W, out_b)
        )
        return g, out_W.stack(), out_b.stack()

    def _backward(self, h_start, g_end, W, b):
        return self._reverse(h_start, g_end, W, b, lambda i, dW, db: (dW, db))

    def _backward_sgd(self, h_start, g_end, W, b, lr):
        lr = tf.cast(lr, W.dtype)
        return self._reverse(
            h_start, g_end, W, b, lambda i, dW, db: (W[i] - lr * dW, b[i] - lr * db)
        )


KERNEL_CHOICES = ("auto", "native", "xla")
NATIVE_DTYPES = (tf.float32, tf.float64)


class NativeKernelsWarning(UserWarning):
    """`kernels="auto"` fell back to the XLA kernels; the message says why."""


class NativeChunkKernels:
    """The chunk kernels as native CPU ops (`zoo/deep/native/deep_core_ops.cc`).

    The same calls, shapes and results as `ChunkKernels` (float32 and float64), run as compiled
    C++ on the CPU: batch samples as SIMD lanes, split between threads. `forward_keeping_bounds`
    also returns the chunk's sub-chunk boundaries, which spare `backward_sgd_in_place` a walk,
    and `backward_sgd_in_place` updates NumPy weight arrays where they are (no new copy of the
    chunk).

    Args:
        activation: "softsign", "tanh" or "relu".
        alpha: residual scale.
        threads: threads per call (default `zoo.deep.native.default_threads()`): 2 split the
            batch; 1 and 2 give the same bits.

    Raises:
        NativeBuildError: the ops cannot be built or loaded on this machine.

    Example:

    >>> import numpy as np
    >>> from zoo.deep.kernels import NativeChunkKernels
    >>> kernels = NativeChunkKernels("softsign", alpha=0.5)
    >>> W, b = np.zeros((3, 4, 4)), np.zeros((3, 4))
    >>> kernels.forward(np.ones((2, 4)), W, b).numpy().tolist()
    [[1.0, 1.0, 1.0, 1.0], [1.0, 1.0, 1.0, 1.0]]
    """

    kind = "native"

    def __init__(self, activation: str, alpha: float, threads: Optional[int] = None):
        activation_and_derivative(activation)
        self.activation = activation
        self.alpha = float(alpha)
        self.threads = (
            native.default_threads() if threads is None else check_positive_int("threads", threads)
        )
        self._ops = native.load()
        self._in_place = native.in_place_function()
        self._forward = native.forward_function()
        self.simd = native.simd()

    def _inputs(self, *tensors):
        # Aligned NumPy arrays (a weights store's chunks) are viewed, not copied.
        converted = [as_tensor(t) if isinstance(t, np.ndarray) else t for t in tensors]
        first = tf.convert_to_tensor(converted[0])
        converted = [first] + [tf.convert_to_tensor(t, first.dtype) for t in converted[1:]]
        return converted, tf.constant(self.alpha, first.dtype)

    def forward(self, h, W, b):
        """The chunk's output `h` after the layers of `W` `(n, w, w)` and `b` `(n, w)`."""
        with tf.device("/CPU:0"):
            (h, W, b), alpha = self._inputs(h, W, b)
            return self._ops.zoo_deep_chunk_forward(
                h, W, b, alpha, activation=self.activation, threads=self.threads
            )

    def backward(self, h_start, g_end, W, b):
        """`(g_start, dW, db)` from the chunk's input `h_start` and output gradient `g_end`."""
        with tf.device("/CPU:0"):
            (h_start, g_end, W, b), alpha = self._inputs(h_start, g_end, W, b)
            return tuple(
                self._ops.zoo_deep_chunk_backward(
                    h_start, g_end, W, b, alpha, activation=self.activation, threads=self.threads
                )
            )

    def backward_sgd(self, h_start, g_end, W, b, lr):
        """`(g_start, W - lr dW, b - lr db)`, each layer's gradient with its pre-update weights."""
        with tf.device("/CPU:0"):
            (h_start, g_end, W, b), alpha = self._inputs(h_start, g_end, W, b)
            lr = tf.cast(lr, W.dtype)
            return tuple(
                self._ops.zoo_deep_chunk_backward_sgd(
                    h_start,
                    g_end,
                    W,
                    b,
                    alpha,
                    lr,
                    activation=self.activation,
                    threads=self.threads,
                )
            )

    @staticmethod
    def _check_chunk(W: np.ndarray, b: np.ndarray, writeable: bool) -> None:
        for name, array in (("W", W), ("b", b)):
            if not (
                isinstance(array, np.ndarray)
                and array.flags.c_contiguous
                and (array.flags.writeable or not writeable)
                and array.dtype in (np.float32, np.float64)
            ):
                what = "C-contiguous, writeable" if writeable else "C-contiguous"
                raise ValueError(f"`{name}` must be a {what} float32/64 array")
        layers, width = W.shape[0], W.shape[1]
        if W.shape != (layers, width, width) or b.shape != (layers, width) or b.dtype != W.dtype:
            raise ValueError(f"`W` {W.shape} and `b` {b.shape} are not one chunk of one dtype")

    def bounds_shape(self, layers: int, batch: int, width: int, dtype) -> tuple:
        """The shape of a chunk's sub-chunk boundaries (`forward_keeping_bounds`)."""
        code = 1 if np.dtype(dtype) == np.float32 else 2
        sub = native.sub_chunk_layers(code, width, batch)
        return (max(1, -(-layers // sub)), batch, width)

    def forward_keeping_bounds(self, h, W: np.ndarray, b: np.ndarray) -> tuple:
        """`(h_out, bounds)`: the chunk's output (NumPy) and the input of every sub-chunk of the
        kernels, which `backward_sgd_in_place` reads instead of walking the chunk again. The
        same bits as `forward`."""
        self._check_chunk(W, b, writeable=False)
        h = np.ascontiguousarray(h, W.dtype)
        if h.ndim != 2 or h.shape[1] != W.shape[1]:
            raise ValueError(f"`h` {h.shape} must be (B, {W.shape[1]})")
        out = np.empty_like(h)
        bounds = np.empty(self.bounds_shape(W.shape[0], h.shape[0], h.shape[1], W.dtype), W.dtype)
        status = self._forward(
            1 if W.dtype == np.float32 else 2,
            self.activation.encode(),
            self.threads,
            h.shape[0],
            h.shape[1],
            W.shape[0],
            self.alpha,
            h.ctypes.data,
            W.ctypes.data,
            b.ctypes.data,
            out.ctypes.data,
            bounds.ctypes.data,
        )
        if status != 0:
            raise ValueError("the native forward refused its arguments")
        return out, bounds

    def backward_sgd_in_place(
        self, h_start, g_end, W: np.ndarray, b: np.ndarray, lr, bounds: Optional[np.ndarray] = None
    ) -> np.ndarray:
        """`backward_sgd` writing `W - lr dW` and `b - lr db` into the arrays `W` and `b`
        themselves (C-contiguous, writeable, float32 or float64); returns `g_start` (NumPy).
        `bounds` are `forward_keeping_bounds`'s for this chunk and batch (else the kernels walk
        the chunk to find them).

        The same walk and bits as `backward_sgd`, without a new copy of the chunk."""
        self._check_chunk(W, b, writeable=True)
        width = W.shape[1]
        h_start = np.ascontiguousarray(h_start, W.dtype)
        g_end = np.ascontiguousarray(g_end, W.dtype)
        if h_start.ndim != 2 or h_start.shape[1] != width or g_end.shape != h_start.shape:
            raise ValueError(
                f"`h_start` {h_start.shape} and `g_end` {g_end.shape} must be (B, {width})"
            )
        if bounds is not None:
            expected = self.bounds_shape(W.shape[0], h_start.shape[0], width, W.dtype)
            if bounds.shape != expected or bounds.dtype != W.dtype:
                raise ValueError(f"`bounds` {bounds.shape} must be {expected} of {W.dtype}")
            bounds = np.ascontiguousarray(bounds)
        g_start = np.empty_like(g_end)
        status = self._in_place(
            1 if W.dtype == np.float32 else 2,
            self.activation.encode(),
            self.threads,
            h_start.shape[0],
            width,
            W.shape[0],
            self.alpha,
            float(lr),
            h_start.ctypes.data,
            g_end.ctypes.data,
            W.ctypes.data,
            b.ctypes.data,
            g_start.ctypes.data,
            None if bounds is None else bounds.ctypes.data,
        )
        if status != 0:
            raise ValueError("the native in-place backward refused its arguments")
        return g_start


_warned = set()


def _fall_back(activation, alpha, reason):
    """The XLA kernels, with one warning line per reason and process."""
    if reason not in _warned:
        _warned.add(reason)
        warnings.warn(
            f"deep core: using the XLA kernels: {reason}", NativeKernelsWarning, stacklevel=3
        )
    return ChunkKernels(activation, alpha)


def select_kernels(
    activation: str, alpha: float, dtype, kernels: str = "auto", threads: Optional[int] = None
):
    """The chunk kernels for `kernels` in {"auto", "native", "xla"}; `.kind` says which ran.

    "auto" picks the native CPU ops when no GPU is visible and they build here, else the XLA
    kernels (with one warning line saying why when the native ops fail); "native" raises when
    they cannot be built; "xla" is the portable path (GPU, or no compiler).

    Args:
        activation: "softsign", "tanh" or "relu".
        alpha: residual scale.
        dtype: the weights' dtype (the native ops take float32 and float64).
        kernels: "auto", "native" or "xla".
        threads: threads of the native kernels (default `zoo.deep.native.default_threads()`).

    Raises:
        UsageError: an unknown `kernels`, or "native" for another dtype.
        NativeBuildError: "native" where the ops cannot be built or loaded.

    Example:

    >>> import numpy as np
    >>> from zoo.deep.kernels import select_kernels
    >>> select_kernels("tanh", 0.1, np.float32, kernels="xla").kind
    'xla'
    """
    if kernels not in KERNEL_CHOICES:
        raise UsageError(f"`kernels` must be one of {', '.join(KERNEL_CHOICES)}, got {kernels!r}.")
    activation_and_derivative(activation)
    if kernels == "xla":
        return ChunkKernels(activation, alpha)
    dtype = tf.as_dtype(dtype)
    if dtype not in NATIVE_DTYPES:
        if kernels == "native":
            raise UsageError(
                f"`kernels`='native' takes float32 or float64 weights, got {dtype.name}."
            )
        return ChunkKernels(activation, alpha)
    if kernels == "auto" and tf.config.list_physical_devices("GPU"):
        return ChunkKernels(activation, alpha)
    try:
        return NativeChunkKernels(activation, alpha, threads)
    except NativeBuildError as error:
        if kernels == "native":
            raise
        return _fall_back(activation, alpha, str(error))
