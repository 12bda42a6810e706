"""The seed's CNN on MNIST (ibs-vs-lrd), seconds per epoch, side by side in one run.

At each batch size (`--batch-sizes`), one epoch = the 54,000 training images of the 90/10 split
once, then the 10,000 test images (batches of 1,000), as `zoo ibs-vs-lrd run` does:

- `zoo`: the project's loop, `run_schedules` on an `lrd` run at that batch size in a temporary
  run folder (`IncreasingBatchSize` over `ResizableBatches.tf_dataset()`, `ExpDecay`, and the
  lifecycle's per-epoch commit: history row, `.npz` training state, TensorBoard): the
  differences of its logged `wall_seconds`;
- `keras_fit` / `keras_fit_xla`: plain `model.fit` on the same NumPy arrays and the same model,
  without and with `jit_compile=True`;
- `torch`: `../shared/bench/ibs_cnn_torch.sh --mnist-dir DIR` (the CNN restated in PyTorch, two
  threads, in its own virtualenv), when that script is present.

Each figure is the median over the epochs after the first (the first traces / compiles; it is
reported apart). Ratios: each loop over `keras_fit`, and `zoo` at the largest batch over `zoo` at
the smallest. Also the cost of one per-epoch checkpoint: `model.save(.keras)` against an `.npz` of
the weights and optimizer variables. Prints one JSON line (progress on stderr).

    python benchmarks/ibs_bench.py [--batch-sizes 128,512,2000] [--epochs 4] [--no-torch]
        [--loops zoo,keras_fit,keras_fit_xla,torch] [--train-limit N]
"""

import argparse
import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

from zoo.tf_quiet import import_tensorflow  # noqa: E402

tf = import_tensorflow()

import keras  # noqa: E402
import numpy as np  # noqa: E402

from zoo.tasks.batch_schedules import ScheduleConfig, run_schedules  # noqa: E402
from zoo.tasks.batch_schedules.data import load_split_data  # noqa: E402
from zoo.tasks.batch_schedules.training import new_model  # noqa: E402

TORCH_SCRIPT = Path(__file__).resolve().parents[1].parent / "shared" / "bench" / "ibs_cnn_torch.sh"
LOOPS = ("zoo", "keras_fit", "keras_fit_xla", "torch")
MNIST_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mnist"


def log(message):
    print(f"ibs_bench: {message}", file=sys.stderr, flush=True)


def steady(seconds):
    """`(median of the epochs after the first, first epoch)`, rounded."""
    rest = seconds[1:] or seconds
    return round(statistics.median(rest), 3), round(seconds[0], 3)


class EpochClock(keras.callbacks.Callback):
    """Seconds of every epoch, validation included (`on_epoch_end` to `on_epoch_end`)."""

    def on_train_begin(self, logs=None):
        self.marks = [time.perf_counter()]

    def on_epoch_end(self, epoch, logs=None):
        self.marks.append(time.perf_counter())

    def seconds(self):
        return list(np.diff(self.marks))


def zoo_epochs(batch_size, epochs, train_limit, folder):
    config = ScheduleConfig(
        dataset="mnist",
        schedules=("lrd",),
        epochs=epochs,
        batch_size=batch_size,
        train_limit=train_limit,
    )
    run = folder / f"zoo-{batch_size}"
    with contextlib.redirect_stdout(sys.stderr):
        run_schedules(config, run, verbose=0)
    import pandas as pd

    wall = pd.read_csv(run / "history.csv")["wall_seconds"].tolist()
    return list(np.diff([0.0, *wall]))


def keras_fit_epochs(data, batch_size, epochs, jit_compile):
    (x, y), _, (test_x, test_y) = data
    config = ScheduleConfig(dataset="mnist")
    model = new_model(config, x.shape[1:])
    model.compile(
        keras.optimizers.SGD(config.learning_rate),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
        jit_compile=jit_compile,
    )
    clock = EpochClock()
    model.fit(
        x,
        y,
        batch_size=batch_size,
        epochs=epochs,
        validation_data=(test_x, test_y),
        validation_batch_size=1000,
        callbacks=[clock],
        verbose=0,
    )
    return clock.seconds(), model


def torch_epochs(batch_size, epochs, mnist_dir):
    """Seconds per epoch of the PyTorch restatement, or a string saying why there are none."""
    if not TORCH_SCRIPT.is_file():
        return f"{TORCH_SCRIPT} not found"
    if not (Path(mnist_dir) / "train-images-idx3-ubyte.gz").is_file():
        return f"no MNIST files in {mnist_dir}"
    command = ["sh", str(TORCH_SCRIPT), "--mnist-dir", str(mnist_dir), "--threads", "2"]
    command += ["--batch-sizes", ",".join([str(batch_size)] * epochs)]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=1800)
    except subprocess.TimeoutExpired:
        return f"{TORCH_SCRIPT.name} ran past 30 minutes"
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    if result.returncode != 0 or not lines:
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        return f"{TORCH_SCRIPT.name} failed (exit {result.returncode}): {last}"
    report = json.loads(lines[-1])
    return [epoch["seconds"] for epoch in report["epochs"]], report["torch_version"]


def checkpoint_seconds(model, folder, repeats=5):
    """Median seconds of one `.keras` save and of one `.npz` of weights + optimizer state."""

    def timed(save):
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            save()
            times.append(time.perf_counter() - start)
        return round(statistics.median(times), 4)

    def npz():
        arrays = [keras.ops.convert_to_numpy(v) for v in model.variables]
        arrays += [keras.ops.convert_to_numpy(v) for v in model.optimizer.variables]
        np.savez(folder / "state.npz", *arrays)

    return {
        "keras": timed(lambda: model.save(folder / "state.keras")),
        "npz_weights_and_optimizer": timed(npz),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-sizes", default="128,512,2000", help="comma-separated")
    parser.add_argument("--epochs", type=int, default=4, help="epochs per loop and batch size")
    parser.add_argument("--train-limit", type=int, default=0, help="train on N images (0: all)")
    parser.add_argument(
        "--loops",
        default=",".join(LOOPS),
        help=f"comma-separated, out of {','.join(LOOPS)} (one alone: to time whole processes)",
    )
    parser.add_argument("--no-torch", action="store_true", help="skip the PyTorch restatement")
    parser.add_argument(
        "--mnist-dir",
        default=os.environ.get("ZOO_MNIST_DIR") or str(MNIST_DIR),
        help="MNIST's original files (for tfds offline and for the PyTorch script)",
    )
    args = parser.parse_args()
    batch_sizes = [int(size) for size in args.batch_sizes.split(",")]
    if args.epochs < 2 or min(batch_sizes) < 1:
        parser.error("--epochs must be at least 2 and every batch size positive")
    loops = args.loops.split(",")
    if not loops or not set(loops) <= set(LOOPS):
        parser.error(f"--loops must name loops out of {','.join(LOOPS)}")
    os.environ.setdefault("ZOO_MNIST_DIR", args.mnist_dir)

    if args.no_torch or "torch" not in loops:
        notes = {"torch": "skipped (--no-torch or --loops)"}
    elif args.train_limit:
        notes = {"torch": "skipped: it trains on 54,000 images whatever --train-limit says"}
    else:
        notes = {}
    data = load_split_data("mnist", 0.1, 0, args.train_limit)
    per_epoch = {"zoo": {}, "keras_fit": {}, "keras_fit_xla": {}, "torch": {}}
    first_epoch = {name: {} for name in per_epoch}
    torch_version = None
    model = None
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        for batch_size in batch_sizes:
            key = str(batch_size)
            runs = {}
            if "zoo" in loops:
                log(f"batch {batch_size}: zoo")
                runs["zoo"] = zoo_epochs(batch_size, args.epochs, args.train_limit, folder)
            for name, jit_compile in (("keras_fit", False), ("keras_fit_xla", True)):
                if name in loops:
                    log(f"batch {batch_size}: {name}")
                    runs[name], model = keras_fit_epochs(data, batch_size, args.epochs, jit_compile)
            if "torch" not in notes:
                log(f"batch {batch_size}: torch")
                torch = torch_epochs(batch_size, args.epochs, args.mnist_dir)
                if isinstance(torch, str):
                    notes["torch"] = torch
                else:
                    runs["torch"], torch_version = torch
            for name, seconds in runs.items():
                per_epoch[name][key], first_epoch[name][key] = steady(seconds)
        checkpoints = checkpoint_seconds(model, folder) if model is not None else None

    ratios = {}
    if per_epoch["keras_fit"]:
        for name in ("zoo", "keras_fit_xla", "torch"):
            for key, seconds in per_epoch[name].items():
                ratios[f"{name}_over_keras_fit_batch_{key}"] = round(
                    seconds / per_epoch["keras_fit"][key], 3
                )
    low, high = str(min(batch_sizes)), str(max(batch_sizes))
    for name, seconds in per_epoch.items():
        if low != high and seconds:
            ratios[f"{name}_batch_{high}_over_batch_{low}"] = round(seconds[high] / seconds[low], 3)
    result = {
        "benchmark": "ibs_cnn_mnist",
        "seconds_per_epoch": {name: values for name, values in per_epoch.items() if values},
        "first_epoch_seconds": {name: values for name, values in first_epoch.items() if values},
        "ratios": ratios,
        "checkpoint_seconds": checkpoints,
        "epochs_per_loop": args.epochs,
        "train_examples": len(data[0][0]),
        "test_examples": len(data[2][0]),
        "notes": notes,
        "torch_version": torch_version,
        "cpus": os.cpu_count(),
        "machine": platform.machine(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
