"""The seed's per-experiment protocol: Adam on the MSE, a learning-rate search, a final run.

An experiment's training loop, data generation included, is one XLA-compiled `tf.while_loop`
over the model's and optimizer's own variables. It stops at the first non-finite loss, so a
diverged learning rate is caught at the step it diverged.

Divergence rule (the seed's runs skipped a rate whose loss became NaN): in the learning-rate
search a diverged rate is a failed candidate, recorded in `diverged_lrs` and never chosen as
the best; if every rate diverges, or the final run at the best rate diverges, the experiment
fails with `zoo.errors.DivergenceError` (a sweep records it as a failed experiment, not as an
accuracy).
"""

import math
import time

import keras
import numpy as np
import tensorflow as tf

from zoo.errors import DivergenceError
from zoo.metrics import ToleranceAccuracy
from zoo.tasks.reasoning_ops.config import Protocol
from zoo.tasks.reasoning_ops.data import evaluation_set, output_width, train_batch
from zoo.tasks.reasoning_ops.models import build_network


class Experiment:
    """One experiment: a built network trained on one task and dataset with Adam.

    `train(first_step, steps)` is the XLA-compiled loop; `attempt(lr, ...)` resets the network
    and Adam to the same initial state first, so the learning-rate search compiles once.

    Args:
        model: a built `ReasoningNet` (its current weights are the initial ones).
        task: the task's name.
        dataset: the dataset's name.
        protocol: the `Protocol`.
        seed: the data seed.
    """

    def __init__(
        self, model: keras.Model, task: str, dataset: str, protocol: Protocol, seed: int = 0
    ):
        self.model = model
        self.protocol = protocol
        self.initial = [variable.numpy() for variable in model.trainable_variables]
        self.optimizer = keras.optimizers.Adam(protocol.lrs[0])
        self.optimizer.build(model.trainable_variables)
        self.test_inputs, self.test_targets = evaluation_set(
            task, dataset, protocol.train_size, protocol.test_size, seed
        )
        self.accuracy = ToleranceAccuracy()
        optimizer = self.optimizer

        @tf.function(jit_compile=True)
        def train(first_step, steps):
            """Steps `first_step ..` until `steps` are done or the loss is not finite;
            returns `(next step, last loss)`."""

            def body(step, loss):
                inputs, targets = train_batch(
                    task, dataset, step, protocol.batch, protocol.train_size, seed
                )
                with tf.GradientTape() as tape:
                    loss = tf.reduce_mean(tf.square(model(inputs, training=True) - targets))
                gradients = tape.gradient(loss, model.trainable_variables)
                optimizer.apply(gradients, model.trainable_variables)
                return step + 1, loss

            def running(step, loss):
                return tf.logical_and(step < first_step + steps, tf.math.is_finite(loss))

            return tf.while_loop(running, body, (first_step, tf.constant(0.0)))

        self.train = train
        self.predict = tf.function(lambda inputs: model(inputs), jit_compile=True)

    def reset(self, lr: float) -> None:
        """The initial weights, a fresh Adam state, and the learning rate `lr`."""
        for variable, value in zip(self.model.trainable_variables, self.initial):
            variable.assign(value)
        for variable in self.optimizer.variables:
            variable.assign(tf.zeros_like(variable))
        self.optimizer.learning_rate.assign(lr)

    def evaluate(self) -> tuple:
        """`(accuracy, loss)` on the test set (the loss may be non-finite)."""
        predictions = self.predict(self.test_inputs)
        loss = float(tf.reduce_mean(tf.square(predictions - self.test_targets)))
        self.accuracy.reset_state()
        self.accuracy.update_state(self.test_targets, predictions)
        return float(self.accuracy.result()), loss

    def attempt(self, lr: float, steps: int, eval_every: int) -> dict:
        """Adam at `lr` from the initial weights for up to `steps`, stopping once solved or
        diverged. Returns `{"accuracy", "loss", "lr", "global_step", "diverged"}`."""
        self.reset(lr)
        done = 0
        accuracy, loss = 0.0, math.inf
        while done < steps:
            chunk = min(eval_every, steps - done)
            step, train_loss = self.train(tf.constant(done), tf.constant(chunk))
            if not np.isfinite(float(train_loss)):
                return {
                    "accuracy": None,
                    "loss": None,
                    "lr": lr,
                    "global_step": int(step),
                    "diverged": True,
                }
            done += chunk
            accuracy, loss = self.evaluate()
            if not math.isfinite(loss):
                return {
                    "accuracy": None,
                    "loss": None,
                    "lr": lr,
                    "global_step": done,
                    "diverged": True,
                }
            if accuracy >= self.protocol.solved:
                break
        return {
            "accuracy": accuracy,
            "loss": loss,
            "lr": lr,
            "global_step": done,
            "diverged": False,
        }


def run_protocol(experiment: Experiment) -> dict:
    """The seed's protocol on `experiment`: the learning-rate search, then the final run if
    nothing solved the task.

    Returns the seed's result columns `{"accuracy", "loss", "lr", "global_step"}` and
    `diverged_lrs` (how many rates of the search diverged). Raises `DivergenceError` when every
    rate diverges or the final run does.
    """
    protocol = experiment.protocol
    best, diverged = None, []
    for lr in protocol.lrs:
        outcome = experiment.attempt(lr, protocol.search_steps, protocol.eval_every)
        if outcome["diverged"]:
            diverged.append(outcome)
            continue
        if best is None or (outcome["accuracy"], -outcome["loss"]) > (
            best["accuracy"],
            -best["loss"],
        ):
            best = outcome
        if outcome["accuracy"] >= protocol.solved:
            break
    if best is None:
        rates = ", ".join(f"{outcome['lr']:g}" for outcome in diverged)
        raise DivergenceError(
            f"every learning rate of the search diverged (the loss became non-finite at "
            f"lr {rates}); the task's targets are likely too large for these rates."
        )
    if best["accuracy"] < protocol.solved:
        best = experiment.attempt(best["lr"], protocol.final_steps, protocol.final_eval_every)
        if best["diverged"]:
            raise DivergenceError(
                f"the final {protocol.final_steps}-step run at lr {best['lr']:g} diverged: the "
                f"loss became non-finite at step {best['global_step']}; the learning rate is "
                f"likely too high for a run this long."
            )
    return {
        "accuracy": best["accuracy"],
        "loss": best["loss"],
        "lr": best["lr"],
        "global_step": best["global_step"],
        "diverged_lrs": len(diverged),
    }


def run_experiment(
    task: str,
    dataset: str,
    network: str,
    depth: int,
    activation: str,
    protocol: Protocol,
    seed: int = 0,
) -> dict:
    """The protocol on one experiment, built from scratch; returns `run_protocol`'s result
    and `wall_seconds`.

    Example:

    >>> from zoo.tasks.reasoning_ops.config import PROFILES
    >>> result = run_experiment("elementwise_add", "one_hot", "dense", 1, "linear",
    ...                         PROFILES["test"], seed=1)
    >>> sorted(result)
    ['accuracy', 'diverged_lrs', 'global_step', 'loss', 'lr', 'wall_seconds']
    """
    started = time.time()
    model = build_network(network, output_width(task), depth, activation, seed)
    result = run_protocol(Experiment(model, task, dataset, protocol, seed))
    result["wall_seconds"] = time.time() - started
    return result
