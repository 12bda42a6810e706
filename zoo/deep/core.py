"""The absurdly deep residual network and its exact chunk-checkpointed SGD step.

    stem : h0 = tanh(x W_in + b_in)                      x: (B, 784) pixels / 255
    core : h <- h + alpha * act(h W_i + b_i)             L layers, W_i: (w, w)
    head : logits = h W_out + b_out, mean softmax cross-entropy

One `train_step` is one ordinary minibatch SGD step, computed in O(L / chunk + chunk) activation
memory: the forward pass keeps only the chunk boundaries; the head is updated; the chunks are
walked in reverse, each recomputed from its boundary, each layer's gradient taken with its
pre-update weights and applied at once; the stem last (with the layer learning rate).
"""

import math
import tempfile
from pathlib import Path

import numpy as np
import tensorflow as tf

from zoo.deep import kernels as kernels_module
from zoo.deep.kernels import ChunkKernels
from zoo.validation import check_positive_int

KERNELS = ("auto", "native", "xla")


def select_kernels(activation, alpha, dtype, kernels="auto"):
    """The chunk kernels for `kernels` ("auto", "native" or "xla"), through
    `zoo.deep.kernels.select_kernels` where it exists (the XLA kernels otherwise)."""
    if kernels not in KERNELS:
        raise ValueError(f"`kernels` must be one of {', '.join(KERNELS)}, got {kernels!r}.")
    select = getattr(kernels_module, "select_kernels", None)
    if select is not None:
        return select(activation, alpha, dtype, kernels=kernels)
    chosen = ChunkKernels(activation, alpha)
    chosen.kind = "xla"
    return chosen

INPUTS, CLASSES = 784, 10


def glorot_uniform(rng, fan_in, fan_out, dtype):
    limit = math.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, size=(fan_in, fan_out)).astype(dtype)


class DeepNetwork:
    """Stem and head as `tf.Variable`s around a core held by a weights store.

    Args:
        weights: an `InMemoryWeights` or `FileWeights`.
        chunk_layers: layers per checkpointed chunk.
        alpha: residual scale; defaults to `1 / sqrt(L)`.
        seed: seed of the Glorot-uniform stem and head.
        head: optional dict of arrays (`W_in`, `b_in`, `W_out`, `b_out`) to start from, or of
            `tf.Variable`s to train in place (a Keras model's own weights).
        kernels: `"auto"`, `"native"` or `"xla"` chunk kernels.
    """

    def __init__(self, weights, chunk_layers, alpha=None, seed=0, head=None, kernels="auto"):
        check_positive_int("chunk_layers", chunk_layers)
        self.weights = weights
        self.layers, self.width, self.dtype = weights.layers, weights.width, weights.dtype
        self.chunk_layers = min(chunk_layers, self.layers)
        self.alpha = 1.0 / math.sqrt(self.layers) if alpha is None else float(alpha)
        if self.alpha <= 0:
            raise ValueError(f"`alpha` must be > 0, got {alpha!r}.")
        self.kernels = select_kernels(weights.activation, self.alpha, self.dtype, kernels)
        if head is None:
            rng = np.random.default_rng(seed)
            head = {
                "W_in": glorot_uniform(rng, INPUTS, self.width, self.dtype),
                "b_in": np.zeros(self.width, self.dtype),
                "W_out": glorot_uniform(rng, self.width, CLASSES, self.dtype),
                "b_out": np.zeros(CLASSES, self.dtype),
            }
        self.params = {
            name: value if isinstance(value, tf.Variable) else tf.Variable(np.asarray(value, self.dtype), name=name)
            for name, value in head.items()
        }

    @property
    def chunks(self):
        return [(start, min(start + self.chunk_layers, self.layers)) for start in range(0, self.layers, self.chunk_layers)]

    def stem(self, x):
        return tf.tanh(tf.matmul(x, self.params["W_in"]) + self.params["b_in"])

    def logits(self, x):
        """Forward pass only (evaluation): nothing but the running activation is kept."""
        h = self.stem(tf.convert_to_tensor(x, self.dtype))
        for start, stop in self.chunks:
            h = self.kernels.forward(h, *self.weights.read(start, stop))
        return tf.matmul(h, self.params["W_out"]) + self.params["b_out"]

    def train_step(self, x, y, layer_lr=0.01, head_lr=0.01):
        """One exact SGD step on the batch `(x, y)`; returns `(loss, accuracy)` before the update."""
        x = tf.convert_to_tensor(x, self.dtype)
        y = tf.convert_to_tensor(y, tf.int32)
        h0 = self.stem(x)
        boundaries, h = [], h0
        for start, stop in self.chunks:
            boundaries.append(h)
            h = self.kernels.forward(h, *self.weights.read(start, stop))
        logits = tf.matmul(h, self.params["W_out"]) + self.params["b_out"]
        loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(y, logits))
        accuracy = tf.reduce_mean(tf.cast(tf.equal(tf.argmax(logits, 1, output_type=tf.int32), y), tf.float32))
        dlogits = (tf.nn.softmax(logits) - tf.one_hot(y, CLASSES, dtype=self.dtype)) / tf.cast(tf.shape(x)[0], self.dtype)
        g = tf.matmul(dlogits, self.params["W_out"], transpose_b=True)
        self.params["W_out"].assign_sub(head_lr * tf.matmul(h, dlogits, transpose_a=True))
        self.params["b_out"].assign_sub(head_lr * tf.reduce_sum(dlogits, 0))
        self.weights.begin_step()
        for (start, stop), h_start in zip(reversed(self.chunks), reversed(boundaries)):
            W, b = self.weights.read(start, stop)
            g, W, b = self.kernels.backward_sgd(h_start, g, W, b, tf.constant(layer_lr, self.dtype))
            self.weights.write(start, W, b)
        self.weights.end_step()
        d = g * (1 - tf.square(h0))
        self.params["W_in"].assign_sub(layer_lr * tf.matmul(x, d, transpose_a=True))
        self.params["b_in"].assign_sub(layer_lr * tf.reduce_sum(d, 0))
        return float(loss), float(accuracy)

    def evaluate(self, x, y, batch_size=256, progress=None):
        """Mean cross-entropy and accuracy over `(x, y)` in batches."""
        total_loss = correct = 0.0
        for start in range(0, len(x), batch_size):
            logits = self.logits(x[start : start + batch_size])
            labels = y[start : start + batch_size]
            total_loss += float(tf.reduce_sum(tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits)))
            correct += float(np.sum(np.argmax(logits.numpy(), 1) == labels))
            if progress is not None:
                progress(len(labels))
        return total_loss / len(x), correct / len(x)

    # --- the head file: stem and head arrays plus the step count they belong to ----------

    def save_head(self, path):
        path = Path(path)
        arrays = {name: variable.numpy() for name, variable in self.params.items()}
        with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".npz", delete=False) as tmp:
            np.savez(tmp, steps=np.int64(self.weights.steps), alpha=np.float64(self.alpha), **arrays)
        Path(tmp.name).replace(path)

    @staticmethod
    def load_head(path, weights):
        data = np.load(path)
        if int(data["steps"]) != weights.steps:
            raise ValueError(
                f"`head` {path} belongs to step {int(data['steps'])} but the weights are at step "
                f"{weights.steps}: the run was interrupted between the two saves."
            )
        if data["W_in"].shape != (INPUTS, weights.width):
            raise ValueError(f"`head` {path} has width {data['W_in'].shape[1]}, the weights {weights.width}.")
        return {name: data[name] for name in ("W_in", "b_in", "W_out", "b_out")}, float(data["alpha"])
