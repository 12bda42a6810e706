"""ArgMaxNet evaluation: the seed's test protocol (one compiled call), and `evaluate` for a
dataset of `(scores, labels)` batches."""

import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

import zoo.metrics  # noqa: F401 (registers RoundedIndexError for loading)
from zoo.runs import load_keras_model
from zoo.tasks.argmax import models  # noqa: F401 (registers ArgMaxNet for loading)
from zoo.tasks.argmax.config import SCORES, held_batches
from zoo.tasks.argmax.data import score_batch
from zoo.tasks.argmax.loops import HeldEvaluation, stream_evaluation

HELD_STREAM = 2**40
"""Second half of the seed pair of the inference-only pass's scores, far from any step."""


def evaluate(model: keras.Model, dataset) -> tuple:
    """`(squared error per instance, Err)` of `model` over a dataset of `(scores, labels)`."""
    squared, wrong, count = 0.0, 0.0, 0
    for scores, labels in dataset:
        predictions = np.asarray(model.predict_on_batch(scores))
        labels = labels.numpy()
        squared += float(np.sum((predictions - labels) ** 2))
        wrong += float(np.sum(np.round(predictions) != labels))
        count += len(labels)
    return squared / count, wrong / count


def seed_test_protocol(
    model: keras.Model,
    batches: int = 100,
    batch_size: int = 500,
    seed: int = 2024,
    verbose: bool = True,
) -> dict:
    """The seed's test: `batches` batches of `batch_size` fresh scores, in one compiled call.

    Reports the loss (squared error per instance), Err and milliseconds per instance, once
    including the generation of the scores (the seed timed generation, forward pass, loss and
    Err together: one XLA call draws every batch from `(seed, i)` and evaluates it), and once
    for inference alone (the same computation over scores of the same distribution already in
    memory: `held_batches(batches, batch_size)` batches, all of the seed's 100, cycled).
    Compilation happens before the timing.

    Args:
        model: a trained ArgMaxNet (or any model from 10 scores to 1 index).
        batches: batches of fresh scores.
        batch_size: scores per batch.
        seed: seed of the test scores (batch `i` is `draw_batch(batch_size, seed, i)`).
        verbose: print the seed's two lines.

    Returns:
        A dict with `test_loss`, `test_err`, `test_ms_per_instance_inference`,
        `test_ms_per_instance_with_generation` and `test_instances`.
    """
    fresh = stream_evaluation(model, batch_size)
    fresh(seed, 0, 1)  # compile outside the timing
    started = time.perf_counter()
    squared, wrong = fresh(seed, 0, batches)
    total_seconds = time.perf_counter() - started

    # The inference-only pass times the same computation on scores of the same distribution
    # already in memory (drawn by TensorFlow's kernel: nothing more to compile); its loss and
    # Err are not reported.
    held_count = held_batches(batches, batch_size)
    scores, labels = score_batch(
        held_count * batch_size, tf.constant([seed, HELD_STREAM], tf.int64)
    )
    held = HeldEvaluation(
        model,
        tf.reshape(scores, (held_count, batch_size, SCORES)),
        tf.reshape(labels, (held_count, batch_size, 1)),
    )
    held(1)
    started = time.perf_counter()
    held(batches)
    inference_seconds = time.perf_counter() - started

    instances = batches * batch_size
    metrics = {
        "test_loss": squared / instances,
        "test_err": wrong / instances,
        "test_ms_per_instance_inference": 1000 * inference_seconds / instances,
        "test_ms_per_instance_with_generation": 1000 * total_seconds / instances,
        "test_instances": instances,
    }
    if verbose:
        print(f"Testing {batches} batches of {batch_size} random scores ...")
        print(
            f"Loss: {metrics['test_loss']:.6f}   Err: {metrics['test_err']:.6f}  "
            f"elapsed: {total_seconds / 3600:.6f} hours  perInstance: "
            f"{metrics['test_ms_per_instance_inference']:.6f} ms (inference), "
            f"{metrics['test_ms_per_instance_with_generation']:.6f} ms (with generation)",
            flush=True,
        )
    return metrics


def load(path) -> keras.Model:
    """A saved ArgMaxNet from a `.keras` file; `CorruptFileError` naming the file if it is
    missing, truncated or not a `.keras` archive."""
    return load_keras_model(Path(path))
