"""ArgMaxNet speed, side by side with the seed's recipe in PyTorch on the same machine.

Measures, in one run, prints one JSON line:
- ours: inference microseconds per instance (batches of 500 and 50,000), training steps per
  second with the seed recipe (SGD, batch 25, 500 steps per compiled call, the batches drawn
  inside it: the loop `zoo argmax train` runs), and microseconds per instance by the seed's
  test protocol (100 batches of 500 fresh scores: generation, forward pass, loss and Err, one
  compiled call);
- the seed's recipe restated in PyTorch (`../shared/bench/argmax_seed_torch.sh`, one thread,
  in its own virtualenv), when that script is present: the same two figures, and the ratios
  ours / seed-torch (steps per second: above 1 means we train faster; microseconds per
  instance: below 1 means we test faster);
- the seed write-up's own figures, measured on 2018 hardware, labelled as such
  (`seed_2018_hardware_*`): not comparable with numbers from this machine.

    python benchmarks/argmax_bench.py [--train-steps 30000] [--torch-steps 15000]
"""

import argparse
import json
import os
import platform
import subprocess
import time
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

from zoo.tf_quiet import import_tensorflow  # noqa: E402

tf = import_tensorflow()

import keras  # noqa: E402

from zoo.tasks.argmax import (  # noqa: E402
    ArgMaxConfig,
    ArgMaxNet,
    build_model,
    make_loss,
    score_batch,
    seed_test_protocol,
)
from zoo.tasks.argmax.loops import TrainingLoop  # noqa: E402

SEED_TORCH = (
    Path(__file__).resolve().parents[1].parent / "shared" / "bench" / "argmax_seed_torch.sh"
)
SEED_2018 = {
    "seed_2018_hardware_us_per_instance": 72.66,
    "seed_2018_hardware_train_hours_100_episodes": 0.98,
}


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


def train_steps_per_second(steps):
    """Seed recipe (SGD momentum 0.9, batch 25, summed loss), after a 5,000-step warm-up, by
    the compiled loop of `zoo argmax train` (500 steps per call)."""
    config = ArgMaxConfig()
    model = build_model(config)
    loop = TrainingLoop(
        model, make_loss(config), config.batch_size, config.seed, config.execution_steps
    )
    calls = max(1, steps // loop.steps)
    for call in range(5000 // loop.steps):
        loop(call * loop.steps)
    start = time.perf_counter()
    for call in range(calls):
        loop((10 + call) * loop.steps)
    return calls * loop.steps / (time.perf_counter() - start)


def seed_torch(steps):
    """The PyTorch seed recipe's JSON line, or a dict saying why there is none."""
    if not SEED_TORCH.is_file():
        return {"skipped": f"{SEED_TORCH} not found"}
    try:
        result = subprocess.run(
            ["sh", str(SEED_TORCH), "--steps", str(steps), "--threads", "1"],
            capture_output=True,
            text=True,
            timeout=1800,
        )
    except subprocess.TimeoutExpired:
        return {"skipped": f"{SEED_TORCH.name} ran past 30 minutes"}
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    if result.returncode != 0 or not lines:
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        return {"skipped": f"{SEED_TORCH.name} failed (exit {result.returncode}): {last}"}
    return json.loads(lines[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-steps", type=int, default=30000)
    parser.add_argument("--torch-steps", type=int, default=15000)
    args = parser.parse_args()

    model = ArgMaxNet()
    protocol = seed_test_protocol(model, verbose=False)
    ours = {
        "inference_us_per_instance_batch_500": round(inference_us_per_instance(model, 500, 200), 4),
        "inference_us_per_instance_batch_50000": round(
            inference_us_per_instance(model, 50000, 10), 4
        ),
        "seed_protocol_us_per_instance": round(
            1000 * protocol["test_ms_per_instance_with_generation"], 4
        ),
        "train_steps_per_second_seed_recipe": round(train_steps_per_second(args.train_steps), 1),
    }
    torch = seed_torch(args.torch_steps)
    result = {"benchmark": "argmax", **ours}
    if "skipped" in torch:
        result["seed_torch_skipped"] = torch["skipped"]
    else:
        result.update(
            {
                "seed_torch_train_steps_per_second": torch["train_steps_per_second"],
                "seed_torch_seed_protocol_us_per_instance": torch["seed_protocol_us_per_instance"],
                "seed_torch_version": torch["torch"],
                "seed_torch_threads": torch["threads"],
                "ratio_train_steps_per_second_ours_over_seed_torch": round(
                    ours["train_steps_per_second_seed_recipe"] / torch["train_steps_per_second"], 3
                ),
                "ratio_seed_protocol_us_per_instance_ours_over_seed_torch": round(
                    ours["seed_protocol_us_per_instance"] / torch["seed_protocol_us_per_instance"],
                    3,
                ),
            }
        )
    result.update(SEED_2018)
    result.update(
        {
            "cpus": os.cpu_count(),
            "ours_threads": "tensorflow default",
            "machine": platform.machine(),
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
        }
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
