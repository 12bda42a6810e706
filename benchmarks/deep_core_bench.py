"""Deep-core speed and memory: seconds per exact SGD step (width 4, batch 16, softsign, chunk
100,000) at 1M and 10M layers, in memory and streamed from a file, for the native kernels with
one and two threads and the XLA kernels; nanoseconds per layer per sample; peak RSS; and the C
reference (`../shared/bench/deepcore_ref.sh`) on the same step in the same run, with the ratios.
Prints one JSON line. Each configuration runs in its own process so its peak RSS is its own;
beside the 10M in-memory figure stand the RSS of an idle process that has only imported
TensorFlow and the weights' size, so the target "peak RSS <= idle TF + weights + 150 MiB" can be
read off (`memory_check`).

    python benchmarks/deep_core_bench.py                          # everything (several minutes)
    python benchmarks/deep_core_bench.py --layers-list 1000000 --kernels native1 --no-reference
    python benchmarks/deep_core_bench.py --storage memory --kernels native1 native2
    python benchmarks/deep_core_bench.py --width2-100m  # adds 100M layers, width 2, streamed
"""

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT.parent / "shared" / "bench" / "deepcore_ref.sh"
INPUTS, CLASSES = 784, 10
KERNELS = {"native1": ("native", 1), "native2": ("native", 2), "xla": ("xla", None)}
MIB = 1024 * 1024


def peak_rss_mib():
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def quiet_tensorflow():
    """Imports TensorFlow alone (what the idle figure measures) without its C++ start-up lines
    on stderr."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from zoo.tf_quiet import silenced_stderr

    with silenced_stderr():
        import tensorflow  # noqa: F401


def measure(layers, width, batch, chunk, in_memory, steps, directory, kernels):
    """One configuration, in this process: returns its figures."""
    quiet_tensorflow()
    import numpy as np

    from zoo.deep import DeepNetwork, FileWeights, InMemoryWeights

    kind, threads = KERNELS[kernels]
    weights = FileWeights.open(weights_file(directory, layers, width))
    if in_memory:
        file_weights, weights = weights, InMemoryWeights.from_file(weights, piece_layers=chunk)
        file_weights.close()
    network = DeepNetwork(
        weights, chunk_layers=chunk, inputs=INPUTS, classes=CLASSES, seed=0, kernels=kind
    )
    if threads is not None:
        network.kernels.threads = threads
    rng = np.random.default_rng(0)
    x, y = rng.random((batch, INPUTS)).astype(np.float32), rng.integers(0, CLASSES, batch)
    network.train_step(x, y)  # compiles (XLA) and warms up
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        network.train_step(x, y)
        times.append(time.perf_counter() - start)
    weights.close()
    seconds = min(times)
    return {
        "layers": layers,
        "width": width,
        "batch": batch,
        "chunk_layers": chunk,
        "storage": "memory" if in_memory else "streamed",
        "kernels": kernels,
        "kernel_kind": network.kernels.kind,
        "threads": getattr(network.kernels, "threads", None),
        "seconds_per_step": round(seconds, 4),
        "seconds_per_step_median": round(sorted(times)[len(times) // 2], 4),
        "ns_per_layer_per_step": round(1e9 * seconds / layers, 1),
        "ns_per_layer_per_sample": round(1e9 * seconds / layers / batch, 2),
        "peak_rss_mib": peak_rss_mib(),
    }


def idle_tensorflow_rss():
    """Peak RSS of a process that has only imported TensorFlow (run as a child)."""
    quiet_tensorflow()

    return {"idle_tf_rss_mib": peak_rss_mib()}


def weights_file(directory, layers, width):
    return Path(directory) / f"bench_{layers}_{width}.bin"


def create(layers, width, directory):
    """The weights file, in this process (a child of its own, so its memory is not measured)."""
    quiet_tensorflow()
    import numpy as np

    from zoo.deep import FileWeights, record_capacity

    FileWeights.create(
        weights_file(directory, layers, width),
        layers,
        width,
        "softsign",
        seed=0,
        extra_capacity=record_capacity(INPUTS, width, CLASSES, np.float32),
    ).close()


def child(*arguments):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    output = subprocess.run(
        [sys.executable, __file__, *map(str, arguments)],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    ).stdout
    return json.loads(output.strip().splitlines()[-1])


def run_child(layers, width, batch, chunk, in_memory, steps, directory, kernels):
    if not weights_file(directory, layers, width).exists():
        subprocess.run(
            [sys.executable, __file__, "--create", str(layers), str(width), directory],
            check=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
    return child("--child", layers, width, batch, chunk, int(in_memory), steps, directory, kernels)


def reference(layers, steps=3):
    """Seconds per step of the C reference on the same step (width 4, batch 16, chunk 100,000)."""
    if not REFERENCE.exists():
        return None
    result = subprocess.run(
        [
            "sh",
            str(REFERENCE),
            "--layers",
            str(layers),
            "--width",
            "4",
            "--batch",
            "16",
            "--chunk",
            "100000",
            "--steps",
            str(steps),
        ],
        capture_output=True,
        text=True,
    )
    median = re.search(r"median step ([0-9.]+) ms", result.stdout)
    return float(median.group(1)) / 1000 if median else None


def summary(results, idle_rss, reference_seconds):
    """The targets of issue 14, read off the rows."""
    rows = {(r["layers"], r["storage"], r["kernels"]): r for r in results}
    checks = {}
    for (layers, storage, kernels), row in rows.items():
        if reference_seconds.get(layers):
            row["ratio_to_c_reference"] = round(
                row["seconds_per_step"] / reference_seconds[layers], 2
            )
        memory = rows.get((layers, "memory", kernels))
        if storage == "streamed" and memory:
            row["ratio_to_in_memory"] = round(
                row["seconds_per_step"] / memory["seconds_per_step"], 2
            )
        if storage == "memory" and idle_rss is not None:
            weights_mib = layers * (row["width"] ** 2 + row["width"]) * 4 / MIB
            row["weights_mib"] = round(weights_mib, 1)
            row["rss_over_idle_tf_and_weights_mib"] = round(
                row["peak_rss_mib"] - idle_rss - weights_mib, 1
            )
    ten = 10_000_000
    for kernels in ("native1", "native2"):
        row = rows.get((ten, "memory", kernels))
        if row:
            checks[f"10M_in_memory_{kernels}_s_per_step"] = row["seconds_per_step"]
    if (ten, "memory", "native1") in rows:
        checks["target_10M_in_memory_le_0.45s"] = (
            min(
                rows[(ten, "memory", k)]["seconds_per_step"]
                for k in ("native1", "native2")
                if (ten, "memory", k) in rows
            )
            <= 0.45
        )
    if (ten, "memory", "native2") in rows:
        checks["stretch_10M_in_memory_two_threads_le_0.30s"] = (
            rows[(ten, "memory", "native2")]["seconds_per_step"] <= 0.30
        )
    native1 = [
        r
        for r in results
        if r["kernels"] == "native1" and "ratio_to_c_reference" in r and r["storage"] == "memory"
    ]
    if native1:
        checks["native1_ratio_to_c_reference_max"] = max(r["ratio_to_c_reference"] for r in native1)
        checks["target_native1_le_1.3x_c_reference"] = (
            checks["native1_ratio_to_c_reference_max"] <= 1.3
        )
    streamed = [
        r["ratio_to_in_memory"]
        for r in results
        if "ratio_to_in_memory" in r and r["kernel_kind"] == "native"
    ]
    if streamed:
        checks["streamed_over_in_memory_max"] = max(streamed)
        checks["target_streamed_le_1.3x_in_memory"] = max(streamed) <= 1.3
    memory_rows = [
        r for r in results if r["storage"] == "memory" and "weights_mib" in r and r["layers"] == ten
    ]
    if memory_rows:
        checks["memory_check"] = {
            r["kernels"]: {
                "peak_rss_mib": r["peak_rss_mib"],
                "idle_tf_rss_mib": idle_rss,
                "weights_mib": r["weights_mib"],
                "limit_mib": round(idle_rss + r["weights_mib"] + 150, 1),
                "within_target": r["peak_rss_mib"] <= idle_rss + r["weights_mib"] + 150,
            }
            for r in memory_rows
        }
    width2 = [r for r in results if r["width"] == 2]
    if width2:
        checks["target_100M_width2_streamed_under_1GB"] = (
            width2[0]["peak_rss_mib"] < 1000 * 1e6 / MIB
        )
    return checks


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--child", nargs=8, help=argparse.SUPPRESS)
    parser.add_argument("--create", nargs=3, help=argparse.SUPPRESS)
    parser.add_argument("--idle", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--layers-list", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument(
        "--kernels", nargs="+", choices=sorted(KERNELS), default=["native1", "native2", "xla"]
    )
    parser.add_argument(
        "--storage", nargs="+", choices=["memory", "streamed"], default=["memory", "streamed"]
    )
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--no-reference", action="store_true")
    parser.add_argument(
        "--width2-100m", action="store_true", help="also a 100M-layer width-2 streamed step"
    )
    parser.add_argument(
        "--directory", default=None, help="where the weights files go (default a temp dir)"
    )
    args = parser.parse_args()
    if args.create:
        create(int(args.create[0]), int(args.create[1]), args.create[2])
        return
    if args.idle:
        print(json.dumps(idle_tensorflow_rss()))
        return
    if args.child:
        layers, width, batch, chunk, in_memory, steps, directory, kernels = args.child
        print(
            json.dumps(
                measure(
                    int(layers),
                    int(width),
                    int(batch),
                    int(chunk),
                    bool(int(in_memory)),
                    int(steps),
                    directory,
                    kernels,
                )
            )
        )
        return
    started = time.time()
    idle_rss = child("--idle")["idle_tf_rss_mib"]
    results, reference_seconds = [], {}
    with tempfile.TemporaryDirectory(dir=args.directory) as directory:
        for layers in args.layers_list:
            for kernels in args.kernels:
                for storage in args.storage:
                    results.append(
                        run_child(
                            layers,
                            4,
                            16,
                            100_000,
                            storage == "memory",
                            args.steps,
                            directory,
                            kernels,
                        )
                    )
            weights_file(directory, layers, 4).unlink()
            if not args.no_reference:
                reference_seconds[layers] = reference(layers)
        if args.width2_100m:
            results.append(run_child(100_000_000, 2, 1, 1_000_000, False, 1, directory, "native1"))
    print(
        json.dumps(
            {
                "benchmark": "deep_core",
                "activation": "softsign",
                "cpu_count": os.cpu_count(),
                "idle_tf_rss_mib": idle_rss,
                "c_reference_seconds_per_step": {str(k): v for k, v in reference_seconds.items()},
                "results": results,
                "targets": summary(results, idle_rss, reference_seconds),
                "wall_seconds": round(time.time() - started, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
