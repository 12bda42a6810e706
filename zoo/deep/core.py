"""The absurdly deep residual network and its exact chunk-checkpointed SGD step.

    stem : h0 = tanh(x W_in + b_in)                      x: (B, inputs)
    core : h <- h + alpha * act(h W_i + b_i)             L layers, W_i: (w, w)
    head : logits = h W_out + b_out, mean softmax cross-entropy over `classes`

One `train_step` is one ordinary minibatch SGD step, computed in O(L / chunk + chunk) activation
memory: the forward pass keeps only the chunk boundaries; the head is updated; the chunks are
walked in reverse, each recomputed from its boundary, each layer's gradient taken with its
pre-update weights and applied at once; the stem last (with the layer learning rate). The
`zoo deep` CLI, the Keras model of the task and `DeepResidualCore`'s users all train through
this one step.

The step ends with `weights.end_step(record)`, where `record` (`pack_record`) holds the stem,
the head, alpha and the caller's state: with a `FileWeights` store the core, stem and head are
committed together (see `zoo.deep.storage`), so they always belong to the same step.
"""

import json
import math
import struct
from typing import Callable, Optional

import numpy as np
import tensorflow as tf

from zoo.deep.kernels import KERNEL_CHOICES, select_kernels
from zoo.errors import CorruptFileError, UsageError
from zoo.validation import check_positive_int

KERNELS = KERNEL_CHOICES
HEAD_NAMES = ("W_in", "b_in", "W_out", "b_out")
RECORD_MAGIC = b"ZOOHEAD1"
RECORD_STATE_BYTES = 16384


def glorot_uniform(rng: np.random.Generator, fan_in: int, fan_out: int, dtype) -> np.ndarray:
    limit = math.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, size=(fan_in, fan_out)).astype(dtype)


def initial_head(inputs: int, width: int, classes: int, seed: int, dtype) -> dict:
    """The stem and head a fresh network starts from: Glorot-uniform kernels, zero biases."""
    rng = np.random.default_rng(seed)
    return {
        "W_in": glorot_uniform(rng, inputs, width, dtype),
        "b_in": np.zeros(width, dtype),
        "W_out": glorot_uniform(rng, width, classes, dtype),
        "b_out": np.zeros(classes, dtype),
    }


def record_capacity(inputs: int, width: int, classes: int, dtype) -> int:
    """Bytes a `pack_record` of this shape needs at most (for `FileWeights.create`)."""
    values = inputs * width + width + width * classes + classes
    return len(RECORD_MAGIC) + 4 + RECORD_STATE_BYTES + values * np.dtype(dtype).itemsize


def pack_record(head: dict, alpha: float, state: Optional[dict] = None) -> bytes:
    """The stem, head, alpha and a JSON-ready `state` as the bytes a weights store commits."""
    arrays = [np.ascontiguousarray(head[name]) for name in HEAD_NAMES]
    inputs, width = arrays[0].shape
    meta = json.dumps(
        {
            "inputs": inputs,
            "width": width,
            "classes": int(arrays[2].shape[1]),
            "dtype": arrays[0].dtype.name,
            "alpha": alpha,
            "state": state or {},
        },
        allow_nan=False,
    ).encode()
    if len(meta) > RECORD_STATE_BYTES:
        raise ValueError(
            f"the state to commit takes {len(meta)} bytes; at most {RECORD_STATE_BYTES}"
        )
    return (
        RECORD_MAGIC + struct.pack("<I", len(meta)) + meta + b"".join(a.tobytes() for a in arrays)
    )


def unpack_record(record: bytes, source="weights record") -> tuple:
    """`(head arrays, alpha, state)` from `pack_record`'s bytes."""
    try:
        if record[: len(RECORD_MAGIC)] != RECORD_MAGIC:
            raise ValueError("bad magic")
        (length,) = struct.unpack_from("<I", record, len(RECORD_MAGIC))
        start = len(RECORD_MAGIC) + 4
        meta = json.loads(record[start : start + length])
        inputs, width, classes = meta["inputs"], meta["width"], meta["classes"]
        dtype = np.dtype(meta["dtype"])
        shapes = {
            "W_in": (inputs, width),
            "b_in": (width,),
            "W_out": (width, classes),
            "b_out": (classes,),
        }
        offset, head = start + length, {}
        for name in HEAD_NAMES:
            count = int(np.prod(shapes[name]))
            head[name] = np.frombuffer(record, dtype, count, offset).reshape(shapes[name]).copy()
            offset += count * dtype.itemsize
    except (ValueError, KeyError, TypeError, struct.error) as error:
        raise CorruptFileError(source, f"unreadable stem/head record ({error})") from None
    return head, float(meta["alpha"]), meta["state"]


class DeepNetwork:
    """Stem and head as `tf.Variable`s around a core held by a weights store.

    Args:
        weights: an `InMemoryWeights` or `FileWeights` (`zoo.deep.storage`).
        chunk_layers: layers per checkpointed chunk.
        inputs: input features of the stem; with `classes`, needed for a fresh stem and head
            (otherwise taken from `head` or from the weights store's committed record).
        classes: outputs of the head.
        alpha: residual scale; defaults to `1 / sqrt(L)` (or the committed record's).
        seed: seed of the Glorot-uniform stem and head of a fresh network.
        head: optional dict of arrays (`W_in`, `b_in`, `W_out`, `b_out`) to start from, or of
            `tf.Variable`s to train in place (a Keras model's own weights).
        kernels: `"auto"`, `"native"` or `"xla"` chunk kernels (`zoo.deep.kernels`).
        threads: threads of the native kernels (default `zoo.deep.native.default_threads()`);
            one and two give the same bits.

    Attributes:
        state: a JSON-ready dict committed with every step (a training loop keeps its own
            counters here, e.g. wall time); restored from the committed record.

    Example:

    >>> import numpy as np
    >>> from zoo.deep import DeepNetwork, InMemoryWeights
    >>> network = DeepNetwork(InMemoryWeights.create(100, 4), chunk_layers=30, inputs=8, classes=3)
    >>> x, y = np.random.default_rng(0).random((5, 8)), np.array([0, 1, 2, 1, 0])
    >>> loss, accuracy = network.train_step(x, y)
    >>> network.weights.steps, network.logits(x).shape
    (1, TensorShape([5, 3]))
    """

    def __init__(
        self,
        weights,
        chunk_layers: int,
        *,
        inputs: Optional[int] = None,
        classes: Optional[int] = None,
        alpha: Optional[float] = None,
        seed: int = 0,
        head: Optional[dict] = None,
        kernels: str = "auto",
        threads: Optional[int] = None,
    ):
        check_positive_int("chunk_layers", chunk_layers)
        self.weights = weights
        self.layers, self.width, self.dtype = weights.layers, weights.width, weights.dtype
        self.chunk_layers = min(chunk_layers, self.layers)
        self.state: dict = {}
        if head is None and getattr(weights, "record", b""):
            head, saved_alpha, self.state = unpack_record(
                weights.record, getattr(weights, "path", "weights record")
            )
            alpha = saved_alpha if alpha is None else alpha
        self.alpha = 1.0 / math.sqrt(self.layers) if alpha is None else float(alpha)
        if not (self.alpha > 0 and math.isfinite(self.alpha)):
            raise UsageError(f"`alpha` must be a finite number > 0, got {alpha!r}.")
        if head is None:
            if inputs is None or classes is None:
                raise UsageError("`inputs` and `classes` are needed for a fresh stem and head.")
            head = initial_head(
                check_positive_int("inputs", inputs),
                self.width,
                check_positive_int("classes", classes),
                seed,
                self.dtype,
            )
        self.inputs, self.classes = int(head["W_in"].shape[0]), int(head["W_out"].shape[1])
        for name, value in (
            (n, v) for n, v in (("inputs", inputs), ("classes", classes)) if v is not None
        ):
            if value != getattr(self, name):
                raise UsageError(
                    f"`{name}` is {value} but the stem and head have {getattr(self, name)}."
                )
        if tuple(head["W_in"].shape) != (self.inputs, self.width):
            raise UsageError(f"the stem has width {head['W_in'].shape[1]}, the core {self.width}.")
        self.kernels = select_kernels(weights.activation, self.alpha, self.dtype, kernels, threads)
        self.params = {
            name: value
            if isinstance(value, tf.Variable)
            else tf.Variable(np.asarray(value, self.dtype), name=name)
            for name, value in head.items()
        }

    @property
    def chunks(self) -> list:
        return [
            (start, min(start + self.chunk_layers, self.layers))
            for start in range(0, self.layers, self.chunk_layers)
        ]

    def stem(self, x):
        return tf.tanh(tf.matmul(x, self.params["W_in"]) + self.params["b_in"])

    def logits(self, x):
        """Forward pass only (evaluation): nothing but the running activation is kept."""
        h = self.stem(tf.convert_to_tensor(x, self.dtype))
        for start, stop in self.chunks:
            h = self.kernels.forward(h, *self.weights.read(start, stop))
        return tf.matmul(h, self.params["W_out"]) + self.params["b_out"]

    def record(self) -> bytes:
        """The stem, head, alpha and `state`, as committed with each step."""
        return pack_record(
            {name: variable.numpy() for name, variable in self.params.items()},
            self.alpha,
            self.state,
        )

    def train_step(
        self,
        x,
        y,
        layer_lr: float = 0.01,
        head_lr: float = 0.01,
        before_commit: Optional[Callable[[float, float], None]] = None,
    ) -> tuple:
        """One exact SGD step on the batch `(x, y)`; returns `(loss, accuracy)` before the update.

        With streamed weights the step is committed (core, stem and head together) before this
        returns. `before_commit(loss, accuracy)` runs just before that commit: a training loop
        writes its history there (rows never lag behind a commit) and may update `state` or
        raise to keep the step from being committed (e.g. on a non-finite loss)."""
        x = tf.convert_to_tensor(x, self.dtype)
        y = tf.convert_to_tensor(y, tf.int32)
        # Native kernels on NumPy-held weights (CPU: in memory or streamed) update each chunk
        # where it lies; other kernels return a new chunk that the store copies in.
        in_place = hasattr(self.kernels, "backward_sgd_in_place") and self.weights.has_arrays
        chunk = self.weights.scratch if in_place else self.weights.read
        h0 = self.stem(x)
        # Each chunk's input; with the native kernels also its sub-chunk boundaries, which
        # spare the backward a walk over the chunk.
        chunks, boundaries, bounds, h = self.chunks, [], [], h0
        if in_place:
            h = h0.numpy()
        for start, stop in chunks:
            boundaries.append(h)
            W, b = chunk(start, stop)
            if in_place:
                h, kept = self.kernels.forward_keeping_bounds(h, W, b)
                bounds.append(kept)
            else:
                h = self.kernels.forward(h, W, b)
        h = tf.convert_to_tensor(h, self.dtype)
        logits = tf.matmul(h, self.params["W_out"]) + self.params["b_out"]
        loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(y, logits))
        accuracy = tf.reduce_mean(
            tf.cast(tf.equal(tf.argmax(logits, 1, output_type=tf.int32), y), tf.float32)
        )
        dlogits = (tf.nn.softmax(logits) - tf.one_hot(y, self.classes, dtype=self.dtype)) / tf.cast(
            tf.shape(x)[0], self.dtype
        )
        g = tf.matmul(dlogits, self.params["W_out"], transpose_b=True)
        self.params["W_out"].assign_sub(head_lr * tf.matmul(h, dlogits, transpose_a=True))
        self.params["b_out"].assign_sub(head_lr * tf.reduce_sum(dlogits, 0))
        self.weights.begin_step()
        lr = tf.constant(layer_lr, self.dtype)
        for index in reversed(range(len(chunks))):
            (start, stop), h_start = chunks[index], boundaries[index]
            W, b = chunk(start, stop)
            if in_place:
                g = self.kernels.backward_sgd_in_place(h_start, g, W, b, layer_lr, bounds[index])
            else:
                g, W, b = self.kernels.backward_sgd(h_start, g, W, b, lr)
            self.weights.write(start, W, b)
        d = tf.convert_to_tensor(g, self.dtype) * (1 - tf.square(h0))
        self.params["W_in"].assign_sub(layer_lr * tf.matmul(x, d, transpose_a=True))
        self.params["b_in"].assign_sub(layer_lr * tf.reduce_sum(d, 0))
        loss, accuracy = float(loss), float(accuracy)
        if before_commit is not None:
            before_commit(loss, accuracy)
        self.weights.end_step(self.record())
        return loss, accuracy

    def save(self, target) -> None:
        """Commits in-memory weights, with the stem, head and state, into the `FileWeights`
        `target` (the copy that is not current; see `zoo.deep.storage`)."""
        self.weights.save(target, self.record())

    def evaluate(
        self, x, y, batch_size: int = 256, progress: Optional[Callable[[int], None]] = None
    ) -> tuple:
        """Mean cross-entropy and accuracy over `(x, y)` in batches."""
        total_loss = correct = 0.0
        for start in range(0, len(x), batch_size):
            logits = self.logits(x[start : start + batch_size])
            labels = y[start : start + batch_size]
            total_loss += float(
                tf.reduce_sum(tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits))
            )
            correct += float(np.sum(np.argmax(logits.numpy(), 1) == labels))
            if progress is not None:
                progress(len(labels))
        return total_loss / len(x), correct / len(x)
