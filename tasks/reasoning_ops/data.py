"""The sweep's data: two 128-wide operands per example and the twelve targets computed on them.

A dataset is a fixed sequence of examples in which every value is a hash of `(seed, example
index, position)`: example `i` is the same whichever batch asks for it, nothing is stored, and
the generation compiles into the XLA training loop. Training uses indices `[0, train_size)`,
the test set the `test_size` after them.
"""

import tensorflow as tf

from zoo.errors import UsageError
from zoo.metrics import DEFAULT_TOLERANCE
from zoo.tasks.reasoning_ops.config import DATASETS, WIDTH


def _hash32(x):
    """A bijective 32-bit integer hash (Wellons' "lowbias32"): counter -> random bits."""
    x = tf.bitwise.bitwise_xor(x, tf.bitwise.right_shift(x, 16))
    x = x * tf.constant(0x7FEB352D, tf.uint32)
    x = tf.bitwise.bitwise_xor(x, tf.bitwise.right_shift(x, 15))
    x = x * tf.constant(0x846CA68B, tf.uint32)
    return tf.bitwise.bitwise_xor(x, tf.bitwise.right_shift(x, 16))


def _key(seed, stream):
    return _hash32(tf.cast(seed, tf.uint32) * tf.constant(0x9E3779B9, tf.uint32) + stream)


def operands(dataset: str, indices, seed: int = 0):
    """`(a, b)`, each `(len(indices), 128)` float32: the examples `indices` of a dataset.

    `random_pos` is U[0, 1) as documented; `random_pos_seed` is U[-1, 1), what the original
    code actually generated under that name.

    Example:

    >>> import tensorflow as tf
    >>> a, b = operands("one_hot", tf.range(4), seed=0)
    >>> a.shape, float(tf.reduce_sum(a))
    (TensorShape([4, 128]), 4.0)
    """
    if dataset not in DATASETS:
        raise UsageError(f"`dataset` must be one of {', '.join(DATASETS)}, got {dataset!r}.")
    indices = tf.cast(indices, tf.uint32)
    counters = indices[:, None] * (2 * WIDTH) + tf.cast(tf.range(2 * WIDTH), tf.uint32)[None]
    bits = tf.bitwise.right_shift(_hash32(tf.bitwise.bitwise_xor(counters, _key(seed, 1))), 8)
    uniform = tf.cast(bits, tf.float32) * 2.0**-24  # U[0, 1), 24 bits
    if dataset == "one_hot":
        hot = tf.cast(uniform[:, ::WIDTH] * WIDTH, tf.int32)  # one position per operand
        values = tf.concat([tf.one_hot(hot[:, 0], WIDTH), tf.one_hot(hot[:, 1], WIDTH)], 1)
    elif dataset == "many_hot":
        values = tf.cast(uniform < 0.5, tf.float32)
    elif dataset == "random_pos":
        values = uniform
    else:
        values = 2.0 * uniform - 1.0
    return values[:, :WIDTH], values[:, WIDTH:]


def _bool(x):
    return tf.cast(x, tf.float32)


def _concat(a, b):
    return tf.concat([a, b], 1)


TASKS = {
    "reduce_sum": lambda a, b: tf.reduce_sum(_concat(a, b), 1, keepdims=True),
    "reduce_max": lambda a, b: tf.reduce_max(_concat(a, b), 1, keepdims=True),
    "concat": _concat,
    "dot": lambda a, b: tf.reduce_sum(a * b, 1, keepdims=True),
    "elementwise_mul": lambda a, b: a * b,
    "elementwise_add": lambda a, b: a + b,
    # argmax a + argmax b past 127 has no slot: the target is then all zeros, as in the original.
    "one_hot_sum": lambda a, b: tf.one_hot(tf.argmax(a, 1) + tf.argmax(b, 1), WIDTH),
    "equality": lambda a, b: _bool(tf.equal(a, b)),
    "logical_and": lambda a, b: _bool(tf.logical_and(a != 0, b != 0)),
    "logical_or": lambda a, b: _bool(tf.logical_or(a != 0, b != 0)),
    "logical_xor": lambda a, b: _bool(tf.math.logical_xor(a != 0, b != 0)),
    "almost_equal": lambda a, b: _bool(tf.abs(a - b) < DEFAULT_TOLERANCE),
}


def target(task: str, a, b):
    """The target of `task` on the operands `a`, `b`."""
    if task not in TASKS:
        raise UsageError(f"`task` must be one of {', '.join(TASKS)}, got {task!r}.")
    return TASKS[task](a, b)


def output_width(task: str) -> int:
    """The target's width: 1, 128 or 256."""
    return int(target(task, tf.zeros((1, WIDTH)), tf.zeros((1, WIDTH))).shape[1])


def train_batch(task: str, dataset: str, step, batch: int, train_size: int, seed: int):
    """Batch `step` of training: `batch` examples drawn with replacement from the first
    `train_size` of the dataset (the draw is a hash of the step, so it compiles too)."""
    draws = tf.cast(step * batch + tf.range(batch), tf.uint32)
    hashed = _hash32(tf.bitwise.bitwise_xor(draws, _key(seed, 2)))
    indices = tf.cast(hashed, tf.int64) % train_size
    a, b = operands(dataset, indices, seed)
    return (a, b), target(task, a, b)


def evaluation_set(task: str, dataset: str, train_size: int, test_size: int, seed: int):
    """The `test_size` examples after the training ones, and their targets."""
    a, b = operands(dataset, tf.range(train_size, train_size + test_size), seed)
    return (a, b), target(task, a, b)
