"""ArgMaxNet's compiled loops: many training steps in one XLA call, a whole evaluation in one.

A step of the seed's recipe is about 0.6 MFLOP, so what a framework spends around it (a host
round trip for the batch, a call per step) is most of its time. Here the batch of every step is
drawn inside the compiled call from `(seed, step)` (`zoo.tasks.argmax.data.draw_batch`), and
a `tf.while_loop` runs `steps` optimizer steps per call; an evaluation over fresh scores is one
call too. The model and its optimizer stay ordinary Keras objects: the loop calls the model and
`optimizer.apply`, so the learning rate a callback sets, the slots `FreshOptimizerState` zeroes
and the step count a checkpoint stores are the optimizer's own variables.
"""

import weakref

import keras
import tensorflow as tf

from zoo.tasks.argmax.data import draw_batch


def _wrong(predictions, labels):
    """How many rounded predictions miss their label (Err's numerator), as int64."""
    return tf.reduce_sum(tf.cast(tf.not_equal(tf.round(predictions), labels), tf.int64))


class TrainingLoop:
    """`steps` optimizer steps of `model` per call, on batches `first_step ..
    first_step + steps - 1` of the training stream.

    Args:
        model: a compiled model (its optimizer does the updates).
        loss: the loss of a batch, `loss(labels, predictions)` (a `keras.losses.Loss`).
        batch_size: scores per batch.
        seed: the run's seed; batch `s` is `draw_batch(batch_size, seed, s)`.
        steps: steps per call.

    Call arguments:
        first_step: the global step of the call's first batch.

    Returns:
        `(loss_sum, wrong)`: the sum of the `steps` batch losses (float) and how many rounded
        predictions missed (int).

    Example:

    >>> from zoo.tasks.argmax import ArgMaxConfig, build_model, make_loss
    >>> config = ArgMaxConfig()
    >>> model = build_model(config)
    >>> loop = TrainingLoop(model, make_loss(config), 25, seed=0, steps=10)
    >>> loss_sum, wrong = loop(0)
    >>> int(model.optimizer.iterations.numpy()), 0 <= wrong <= 250
    (10, True)
    """

    def __init__(self, model: keras.Model, loss, batch_size: int, seed: int, steps: int):
        self.model = model
        self.loss = loss
        self.batch_size = int(batch_size)
        self.seed = int(seed)
        self.steps = int(steps)
        self._variables = model.trainable_variables
        if not model.optimizer.built:
            model.optimizer.build(self._variables)
        self._run = tf.function(self._run_steps, jit_compile=True)

    def _run_steps(self, first_step):
        model, optimizer, variables = self.model, self.model.optimizer, self._variables

        def body(index, loss_sum, wrong):
            scores, labels = draw_batch(self.batch_size, self.seed, first_step + index)
            with tf.GradientTape() as tape:
                predictions = model(scores, training=True)
                loss = self.loss(labels, predictions)
            optimizer.apply(tape.gradient(loss, variables), variables)
            return index + 1, loss_sum + loss, wrong + _wrong(predictions, labels)

        _, loss_sum, wrong = tf.while_loop(
            lambda index, *_: index < self.steps,
            body,
            (tf.constant(0, tf.int64), tf.constant(0.0, tf.float32), tf.constant(0, tf.int64)),
        )
        return loss_sum, wrong

    def __call__(self, first_step: int) -> tuple:
        loss_sum, wrong = self._run(tf.constant(first_step, tf.int64))
        return float(loss_sum), int(wrong)


class StreamEvaluation:
    """Squared error and misses of `model` over fresh batches of the training stream, `batches`
    of them in one compiled call. Get one with `stream_evaluation(model, batch_size)`, which
    compiles it once per model and batch size (the per-episode evaluation and the test
    protocol share it when their batch sizes agree).

    Args:
        model: a model from 10 scores to 1 index.
        batch_size: scores per batch.

    Call arguments:
        seed: the seed of the evaluation stream (never a training run's own seed).
        first_step: the stream's step of the first batch.
        batches: how many batches (any number: the same compiled loop runs them all).

    Returns:
        `(squared_error_sum, wrong)`, summed over all `batches * batch_size` instances.
    """

    def __init__(self, model: keras.Model, batch_size: int):
        self.model = model
        self.batch_size = int(batch_size)
        self._run = tf.function(self._evaluate, jit_compile=True)

    def _evaluate(self, seed, first_step, batches):
        def body(index, squared, wrong):
            scores, labels = draw_batch(self.batch_size, seed, first_step + index)
            predictions = self.model(scores, training=False)
            error = tf.reduce_sum(tf.square(predictions - labels))
            return (
                index + 1,
                squared + tf.cast(error, tf.float64),
                wrong + _wrong(predictions, labels),
            )

        _, squared, wrong = tf.while_loop(
            lambda index, *_: index < batches,
            body,
            (tf.constant(0, tf.int64), tf.constant(0.0, tf.float64), tf.constant(0, tf.int64)),
        )
        return squared, wrong

    def __call__(self, seed: int, first_step: int, batches: int) -> tuple:
        squared, wrong = self._run(
            tf.constant(seed, tf.int64),
            tf.constant(first_step, tf.int64),
            tf.constant(batches, tf.int64),
        )
        return float(squared), int(wrong)


_EVALUATIONS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def stream_evaluation(model: keras.Model, batch_size: int) -> StreamEvaluation:
    """The `StreamEvaluation` of `model` at `batch_size`, compiled once per model and size."""
    per_size = _EVALUATIONS.setdefault(model, {})
    if batch_size not in per_size:
        per_size[batch_size] = StreamEvaluation(model, batch_size)
    return per_size[batch_size]


class HeldEvaluation:
    """Squared error and misses of `model` over batches already in memory, one compiled call:
    the test protocol's inference alone (no drawing). Batch `i` of the call is held batch
    `i % len(held)`, so a long protocol needs only a bounded copy of its scores.

    Args:
        model: a model from 10 scores to 1 index.
        scores: held scores, shape `(held, batch_size, 10)`.
        labels: their labels, shape `(held, batch_size, 1)`.

    Call arguments:
        batches: how many batches to run.
    """

    def __init__(self, model: keras.Model, scores, labels):
        self.model = model
        self.scores = tf.convert_to_tensor(scores)
        self.labels = tf.convert_to_tensor(labels)
        self._run = tf.function(self._evaluate, jit_compile=True)

    def _evaluate(self, scores, labels, batches):
        held = tf.shape(scores, out_type=tf.int64)[0]

        def body(index, squared, wrong):
            at = index % held
            predictions = self.model(tf.gather(scores, at), training=False)
            batch_labels = tf.gather(labels, at)
            error = tf.reduce_sum(tf.square(predictions - batch_labels))
            return (
                index + 1,
                squared + tf.cast(error, tf.float64),
                wrong + _wrong(predictions, batch_labels),
            )

        _, squared, wrong = tf.while_loop(
            lambda index, *_: index < batches,
            body,
            (tf.constant(0, tf.int64), tf.constant(0.0, tf.float64), tf.constant(0, tf.int64)),
        )
        return squared, wrong

    def __call__(self, batches: int) -> tuple:
        squared, wrong = self._run(self.scores, self.labels, tf.constant(batches, tf.int64))
        return float(squared), int(wrong)
