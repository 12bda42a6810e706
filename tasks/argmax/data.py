"""ArgMaxNet's data: fresh softmax scores every batch, a pure function of (seed, step).

Batch `step` of a run seeded `seed` is drawn from the stateless seed pair `(seed, step)`, so a
run resumed at any episode sees exactly the batches an uninterrupted run would have seen.

Two streams share that rule:

- the *training stream* (`draw_batch`, `DATA_STREAM` 2): ThreeFry drawn inside the
  XLA-compiled loops of `zoo.tasks.argmax.loops`, where training, the per-episode evaluation
  and the seed's test protocol draw their batches without a host round trip. XLA generates it
  bit for bit the same wherever it is compiled, alone or inside a loop
  (`compiled_batches` returns it to the host);
- `score_batch` / `score_dataset`: TensorFlow's own kernel (Philox) in a `tf.data` pipeline,
  for `model.fit` users and the keras-tuner search. Same distribution, other numbers: XLA and
  the kernel do not draw the same bits from one seed.
"""

import functools

import tensorflow as tf

from zoo.tasks.argmax.config import SCORES

DATA_STREAM = 2
"""Version of the training stream. 1: `score_dataset` batches fed to `model.fit` (zoo 0.2);
2: `draw_batch` inside the compiled loop. A run folder records it with every checkpoint, and a
run of another stream is refused on resume: it could not continue identically."""

TRAINING_RNG = "threefry"
"""The stateless algorithm of the training stream: ThreeFry is XLA's fastest on CPU (about 3x
Philox per batch of 25), and naming it keeps the stream fixed if the automatic choice changes."""


def score_batch(batch_size: int, seed, alg: str = "auto_select") -> tuple:
    """`softmax(randn(batch_size, 10))` and the argmax as a float, from a stateless seed pair.

    Args:
        batch_size: scores in the batch.
        seed: a shape-`(2,)` int tensor, `(run seed, step)`.
        alg: the stateless algorithm (`tf.random.stateless_normal`'s `alg`).

    Returns:
        `(scores, labels)` of shapes `(batch_size, 10)` and `(batch_size, 1)`.

    Example:

    >>> scores, labels = score_batch(4, tf.constant([0, 7], tf.int64))
    >>> scores.shape, labels.shape
    (TensorShape([4, 10]), TensorShape([4, 1]))
    """
    logits = tf.random.stateless_normal((batch_size, SCORES), seed=seed, alg=alg)
    scores = tf.nn.softmax(logits)
    labels = tf.cast(tf.argmax(scores, axis=-1), tf.float32)[:, None]
    return scores, labels


def draw_batch(batch_size: int, seed, step) -> tuple:
    """Batch `step` of the training stream seeded `seed` (`DATA_STREAM`): `score_batch` with
    ThreeFry from the pair `(seed, step)`. Call it inside a function compiled with XLA
    (`tf.function(..., jit_compile=True)`); TensorFlow's CPU kernel has no ThreeFry.

    Args:
        batch_size: scores in the batch.
        seed: the run's seed (int or int64 scalar tensor).
        step: the global step (int or int64 scalar tensor).
    """
    pair = tf.stack([tf.cast(seed, tf.int64), tf.cast(step, tf.int64)])
    return score_batch(batch_size, pair, alg=TRAINING_RNG)


@functools.lru_cache(maxsize=16)
def _batch_drawer(batch_size: int):
    """`draw_batch` at `batch_size`, compiled once (XLA needs the size fixed)."""
    return tf.function(lambda seed, step: draw_batch(batch_size, seed, step), jit_compile=True)


def compiled_batches(batch_size: int, batches: int, seed: int, first_step: int = 0) -> tuple:
    """Batches `first_step .. first_step + batches - 1` of the training stream, on the host,
    exactly as the compiled loops draw them.

    Returns:
        `(scores, labels)` of shapes `(batches, batch_size, 10)` and `(batches, batch_size, 1)`.

    Example:

    >>> scores, labels = compiled_batches(3, 2, seed=0)
    >>> tuple(scores.shape), tuple(labels.shape)
    ((2, 3, 10), (2, 3, 1))
    """
    draw = _batch_drawer(batch_size)
    seed = tf.constant(seed, tf.int64)
    drawn = [draw(seed, tf.constant(first_step + i, tf.int64)) for i in range(batches)]
    return tf.stack([scores for scores, _ in drawn]), tf.stack([labels for _, labels in drawn])


def score_dataset(batch_size: int, steps: int, seed: int, first_step: int = 0) -> tf.data.Dataset:
    """`steps` batches of scores; batch `i` is `score_batch` of the pair `(seed, first_step + i)`.

    TensorFlow's kernel draws these (not the training stream): for `model.fit` and the
    keras-tuner search.

    Args:
        batch_size: scores per batch.
        steps: batches in the dataset.
        seed: the run's seed.
        first_step: the global step of the first batch (a resumed run starts past 0).

    Example:

    >>> [tuple(scores.shape) for scores, _ in score_dataset(3, 2, seed=0)]
    [(3, 10), (3, 10)]
    """
    steps_ds = tf.data.Dataset.range(first_step, first_step + steps)
    # Fixed parallelism: an AUTOTUNE pipeline can stall for minutes when fit drops it.
    dataset = steps_ds.map(
        lambda step: score_batch(batch_size, tf.stack([tf.cast(seed, tf.int64), step])),
        num_parallel_calls=2,
    )
    return dataset.prefetch(8)
