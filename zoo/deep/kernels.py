"""XLA-compiled chunk kernels of the deep residual core `h <- h + alpha * act(h W_i + b_i)`.

A chunk is `n` consecutive layers: `W` of shape `(n, w, w)`, `b` of shape `(n, w)`. Both kernels
are `tf.function(jit_compile=True)` with a `tf.while_loop` over the layers, so they run unchanged
on CPU and GPU; they compile once per (chunk length, batch, width, dtype).

- `forward(h, W, b)`: the chunk's output; keeps nothing else.
- `backward(h_start, g_end, W, b)`: recomputes the chunk's layer inputs `h_i` from its start
  boundary (the only per-layer activations kept), then walks the layers in reverse:
  `z_i = h_i W_i + b_i`, `dz_i = alpha * g * act'(z_i)`, `dW_i = h_i^T dz_i`, `db_i = sum(dz_i)`
  and `g <- g + dz_i W_i^T` (pre-update `W_i`). Returns `(g_start, dW, db)`.
- `backward_sgd(..., lr)`: the same walk writing the updated chunk `W_i - lr dW_i`,
  `b_i - lr db_i` directly (no gradient arrays). Returns `(g_start, W', b')`.

Per chunk the backward holds the layer inputs (`n x B x w`) and the new weights, nothing more.
"""

import tensorflow as tf

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
    table = {"softsign": (_softsign, _softsign_grad), "tanh": (tf.tanh, _tanh_grad), "relu": (tf.nn.relu, _relu_grad)}
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

        _, _, inputs = tf.while_loop(lambda i, *_: i < layers, recompute, (tf.constant(0), h_start, inputs))
        out_W = tf.TensorArray(W.dtype, size=layers, element_shape=W.shape[1:])
        out_b = tf.TensorArray(b.dtype, size=layers, element_shape=b.shape[1:])

        def reverse(i, g, out_W, out_b):
            h = inputs.read(i)
            dz = self.alpha * g * self._act_grad(_matmul(h, W[i]) + b[i])
            new_W, new_b = update(i, _outer_sum(h, dz), tf.reduce_sum(dz, 0))
            return i - 1, g + _matmul_transposed(dz, W[i]), out_W.write(i, new_W), out_b.write(i, new_b)

        _, g, out_W, out_b = tf.while_loop(lambda i, *_: i >= 0, reverse, (layers - 1, g_end, out_W, out_b))
        return g, out_W.stack(), out_b.stack()

    def _backward(self, h_start, g_end, W, b):
        return self._reverse(h_start, g_end, W, b, lambda i, dW, db: (dW, db))

    def _backward_sgd(self, h_start, g_end, W, b, lr):
        lr = tf.cast(lr, W.dtype)
        return self._reverse(h_start, g_end, W, b, lambda i, dW, db: (W[i] - lr * dW, b[i] - lr * db))


KERNEL_CHOICES = ("auto", "native", "xla")


def select_kernels(activation: str, alpha: float, dtype, kernels: str = "auto"):
    """The chunk kernels for `kernels` in {"auto", "native", "xla"}; `.kind` says which ran.

    "auto" picks the native CPU ops when no GPU is visible and they build, else the XLA kernels
    (with one warning line saying why); "native" raises when the native ops cannot be built.
    """
    if kernels not in KERNEL_CHOICES:
        raise ValueError(f"`kernels` must be one of {', '.join(KERNEL_CHOICES)}, got {kernels!r}.")
    activation_and_derivative(activation)
    if kernels == "xla":
        return ChunkKernels(activation, alpha)
    try:
        from zoo.deep import native
    except ImportError:
        if kernels == "native":
            raise ValueError("`kernels`='native': the native kernels are not available yet.") from None
        return ChunkKernels(activation, alpha)
    return native.select(activation, alpha, dtype, kernels)
