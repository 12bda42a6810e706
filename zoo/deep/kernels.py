"""XLA-compiled chunk kernels of the deep residual core `h <- h + alpha * act(h W_i + b_i)`.

A chunk is `n` consecutive layers: `W` of shape `(n, w, w)`, `b` of shape `(n, w)`. Both kernels
are `tf.function(jit_compile=True)` with a `tf.while_loop` over the layers, so they run unchanged
on CPU and GPU; they compile once per (chunk length, batch, width, dtype).

- `forward(h, W, b)`: the chunk's output; keeps nothing else.
- `backward(h_start, g_end, W, b)`: recomputes the chunk's layer inputs `h_i` and
  pre-activations `z_i` from its start boundary, then walks the layers in reverse carrying only
  the sequential part, `dz_i = alpha * g * act'(z_i)` and `g <- g + dz_i W_i^T` (pre-update
  `W_i`); the weight gradients `dW_i = h_i^T dz_i`, `db_i = sum(dz_i)` of all layers are then one
  batched contraction. Returns `(g_start, dW, db)`.
- `backward_sgd(..., lr)`: the same, returning the updated chunk `(g_start, W - lr dW, b - lr db)`.
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


def _weight_gradients(inputs, deltas):
    """`dW_i = h_i^T dz_i` for every layer of a chunk at once: `(n, B, w) x (n, B, w) -> (n, w, w)`."""
    if inputs.shape[-1] is None or inputs.shape[-1] > SMALL_WIDTH:
        return tf.einsum("nbj,nbk->njk", inputs, deltas)
    return tf.reduce_sum(inputs[:, :, :, None] * deltas[:, :, None, :], axis=1)


class ChunkKernels:
    """The compiled forward and backward of one activation and residual scale `alpha`."""

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

    def _backward(self, h_start, g_end, W, b):
        layers = tf.shape(W)[0]
        # Recompute every layer's input h_i and pre-activation z_i from the boundary.
        inputs = tf.TensorArray(h_start.dtype, size=layers, element_shape=h_start.shape)
        pre = tf.TensorArray(h_start.dtype, size=layers, element_shape=h_start.shape)

        def recompute(i, h, inputs, pre):
            z = _matmul(h, W[i]) + b[i]
            return i + 1, h + self.alpha * self._act(z), inputs.write(i, h), pre.write(i, z)

        _, _, inputs, pre = tf.while_loop(
            lambda i, *_: i < layers, recompute, (tf.constant(0), h_start, inputs, pre)
        )
        # The reverse walk carries only what is sequential: g, and each layer's dz.
        deltas = tf.TensorArray(h_start.dtype, size=layers, element_shape=h_start.shape)

        def reverse(i, g, deltas):
            dz = self.alpha * g * self._act_grad(pre.read(i))
            return i - 1, g + _matmul_transposed(dz, W[i]), deltas.write(i, dz)

        _, g, deltas = tf.while_loop(lambda i, *_: i >= 0, reverse, (layers - 1, g_end, deltas))
        # Weight gradients of all layers at once, outside the sequential loop.
        inputs, deltas = inputs.stack(), deltas.stack()
        return g, _weight_gradients(inputs, deltas), tf.reduce_sum(deltas, axis=1)

    def _backward_sgd(self, h_start, g_end, W, b, lr):
        g, dW, db = self._backward(h_start, g_end, W, b)
        lr = tf.cast(lr, W.dtype)
        return g, W - lr * dW, b - lr * db
