"""Reasoning-operations speed: training steps per second of the dense and multiply networks at
batch 32 (the compiled training loop, data generation included), and experiments per hour under
the quick profile. Prints one JSON line.

    python benchmarks/reasoning_bench.py
"""

import json
import os
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

from zoo.tf_quiet import import_tensorflow  # noqa: E402

tf = import_tensorflow()

from zoo.tasks.reasoning_ops import (  # noqa: E402
    PROFILES,
    Experiment,
    build_network,
    run_experiment,
)


def steps_per_second(network, depth, activation, steps=5000):
    model = build_network(network, 128, depth, activation)
    experiment = Experiment(model, "elementwise_mul", "random", PROFILES["seed"])
    experiment.reset(1e-3)
    experiment.train(tf.constant(0), tf.constant(100))  # compile
    start = time.perf_counter()
    step, loss = experiment.train(tf.constant(100), tf.constant(steps))
    float(loss)
    assert int(step) == 100 + steps, "the benchmark's training diverged"
    return steps / (time.perf_counter() - start)


def experiments_per_hour():
    experiments = [
        ("elementwise_add", "one_hot", "dense", 1, "linear"),
        ("dot", "random_pos", "multiply", 1, "linear"),
        ("logical_xor", "one_hot", "dense_residual", 2, "relu"),
        ("reduce_max", "random_pos", "multiply_simple", 1, "linear"),
    ]
    start = time.perf_counter()
    for experiment in experiments:
        run_experiment(*experiment, PROFILES["quick"])
    return 3600 * len(experiments) / (time.perf_counter() - start)


if __name__ == "__main__":
    print(
        json.dumps(
            {
                "benchmark": "reasoning_ops",
                "train_steps_per_second_dense_1_linear_batch_32": round(
                    steps_per_second("dense", 1, "linear"), 1
                ),
                "train_steps_per_second_dense_3_relu_batch_32": round(
                    steps_per_second("dense", 3, "relu"), 1
                ),
                "train_steps_per_second_multiply_batch_32": round(
                    steps_per_second("multiply", 1, "linear"), 1
                ),
                "quick_profile_experiments_per_hour": round(experiments_per_hour(), 1),
            }
        )
    )
