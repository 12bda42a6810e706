"""ArgMaxNet speed: inference microseconds per instance (batches of 500 and 50,000) and
training steps per second with the seed recipe. Prints one JSON line.

    python benchmarks/argmax_bench.py
"""

import json
import os
import platform
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

from zoo.tasks.argmax import ArgMaxConfig, ArgMaxNet, make_loss, make_optimizer, score_batch, score_dataset  # noqa: E402
from zoo.metrics import RoundedIndexError  # noqa: E402


def inference_us_per_instance(model, batch_size, repeats):
    infer = tf.function(model, jit_compile=True)
    scores, _ = score_batch(batch_size, tf.constant([0, 0], tf.int64))
    infer(scores).numpy()
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(repeats):
            infer(scores).numpy()
        best = min(best, (time.perf_counter() - start) / repeats)
    return 1e6 * best / batch_size


def train_steps_per_second(steps=30000):
    config = ArgMaxConfig()
    model = ArgMaxNet()
    model.compile(make_optimizer(config), make_loss(config), metrics=[RoundedIndexError()],
                  steps_per_execution=config.steps_per_execution, jit_compile=True)
    data = score_dataset(config.batch_size, steps + 5000, seed=0)
    model.fit(data, epochs=1, steps_per_epoch=5000, verbose=0)  # compile and warm up
    start = time.perf_counter()
    model.fit(data, epochs=1, steps_per_epoch=steps, verbose=0)
    return steps / (time.perf_counter() - start)


def main():
    model = ArgMaxNet()
    result = {
        "benchmark": "argmax",
        "inference_us_per_instance_batch_500": round(inference_us_per_instance(model, 500, 200), 4),
        "inference_us_per_instance_batch_50000": round(inference_us_per_instance(model, 50000, 10), 4),
        "seed_inference_us_per_instance": 72.66,
        "train_steps_per_second_seed_recipe": round(train_steps_per_second(), 1),
        "cpus": os.cpu_count(),
        "machine": platform.machine(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
