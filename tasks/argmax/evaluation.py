"""ArgMaxNet evaluation: the per-episode check and the seed's test protocol."""

import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

import zoo.metrics  # noqa: F401 (registers RoundedIndexError for loading)
from zoo.runs import load_keras_model
from zoo.tasks.argmax import models  # noqa: F401 (registers ArgMaxNet for loading)
from zoo.tasks.argmax.data import score_batch


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
    """The seed's test: `batches` batches of `batch_size` fresh scores.

    Reports the loss (squared error per instance), Err and milliseconds per instance, once
    for inference alone and once including the generation of the scores (the seed timed
    generation, forward pass, loss and Err together).

    Args:
        model: a trained ArgMaxNet (or any model from 10 scores to 1 index).
        batches: batches of fresh scores.
        batch_size: scores per batch.
        seed: seed of the test scores (batch `i` from the pair `(seed, i)`).
        verbose: print the seed's two lines.

    Returns:
        A dict with `test_loss`, `test_err`, `test_ms_per_instance_inference`,
        `test_ms_per_instance_with_generation` and `test_instances`.
    """
    infer = tf.function(model, jit_compile=True, reduce_retracing=True)
    generate = tf.function(
        lambda step: score_batch(batch_size, tf.stack([tf.constant(seed, tf.int64), step]))
    )
    infer(generate(tf.constant(0, tf.int64))[0])  # compile outside the timing
    squared = wrong = 0.0
    inference_seconds = 0.0
    started = time.perf_counter()
    for step in range(batches):
        scores, labels = generate(tf.constant(step, tf.int64))
        tick = time.perf_counter()
        predictions = infer(scores).numpy()
        inference_seconds += time.perf_counter() - tick
        labels = labels.numpy()
        squared += float(np.sum((predictions - labels) ** 2))
        wrong += float(np.sum(np.round(predictions) != labels))
    total_seconds = time.perf_counter() - started
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
