"""XLA-compiled chunk kernels of the deep residual core `h <- h + alpha * act(h W_i + b_i)`.

A chunk is `n` consecutive layers: `W` of shape `(n, w, w)`, `b` of shape `(n, w)`. Both kernels
are `tf.function(jit_compile=True)` with a `tf.while_loop` over the layers, so they run unchanged
on CPU and GPU; they compile once per (chunk length, batch, width, dtype).

- `forward(h, W, b)`: the chunk's output; keeps nothing else.
- `backward(h_start, g_end, W, b)`: recomputes the chunk's layer inputs from its start boundary,
  then walks the layers in reverse: `dz = alpha * g * act'(z)`, `dW = h^T dz`, `db = sum(dz)`,
  `g <- g + dz W^T` with the pre-update `W`. Returns `(g_start, dW, db)`.
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
        return h + self.alpha * self._act(tf.matmul(h, W) + b)

    def _forward(self, h, W, b):
        layers = tf.shape(W)[0]

        def body(i, h):
            return i + 1, self._layer(h, W[i], b[i])

        _, h = tf.while_loop(lambda i, h: i < layers, body, (tf.constant(0), h))
        return h

    def _backward(self, h_start, g_end, W, b):
        layers = tf.shape(W)[0]
        inputs = tf.TensorArray(h_start.dtype, size=layers, element_shape=h_start.shape)

        def recompute(i, h, inputs):
            return i + 1, self._layer(h, W[i], b[i]), inputs.write(i, h)

        _, _, inputs = tf.while_loop(lambda i, *_: i < layers, recompute, (tf.constant(0), h_start, inputs))
        grads_W = tf.TensorArray(W.dtype, size=layers, element_shape=W.shape[1:])
        grads_b = tf.TensorArray(b.dtype, size=layers, element_shape=b.shape[1:])

        def reverse(i, g, grads_W, grads_b):
            h = inputs.read(i)
            dz = self.alpha * g * self._act_grad(tf.matmul(h, W[i]) + b[i])
            g = g + tf.matmul(dz, W[i], transpose_b=True)
            return i - 1, g, grads_W.write(i, tf.matmul(h, dz, transpose_a=True)), grads_b.write(i, tf.reduce_sum(dz, 0))

        _, g, grads_W, grads_b = tf.while_loop(
            lambda i, *_: i >= 0, reverse, (layers - 1, g_end, grads_W, grads_b)
        )
        return g, grads_W.stack(), grads_b.stack()

    def _backward_sgd(self, h_start, g_end, W, b, lr):
        g, dW, db = self._backward(h_start, g_end, W, b)
        lr = tf.cast(lr, W.dtype)
        return g, W - lr * dW, b - lr * db
