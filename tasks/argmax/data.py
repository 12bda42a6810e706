"""ArgMaxNet's data: fresh softmax scores every batch, a pure function of (seed, step).

Batch `step` of a run seeded `seed` is drawn from the stateless seed pair `(seed, step)`, so
a run resumed at any episode sees exactly the batches an uninterrupted run would have seen.
"""

import tensorflow as tf

from zoo.tasks.argmax.config import SCORES


def score_batch(batch_size: int, seed) -> tuple:
    """`softmax(randn(batch_size, 10))` and the argmax as a float, from a stateless seed pair.

    Args:
        batch_size: scores in the batch.
        seed: a shape-`(2,)` int tensor, `(run seed, step)`.

    Returns:
        `(scores, labels)` of shapes `(batch_size, 10)` and `(batch_size, 1)`.

    Example:

    >>> scores, labels = score_batch(4, tf.constant([0, 7], tf.int64))
    >>> scores.shape, labels.shape
    (TensorShape([4, 10]), TensorShape([4, 1]))
    """
    logits = tf.random.stateless_normal((batch_size, SCORES), seed=seed)
    scores = tf.nn.softmax(logits)
    labels = tf.cast(tf.argmax(scores, axis=-1), tf.float32)[:, None]
    return scores, labels


def score_dataset(batch_size: int, steps: int, seed: int, first_step: int = 0) -> tf.data.Dataset:
    """`steps` batches of scores; batch `i` is drawn from the seed pair `(seed, first_step + i)`.

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
