"""Deep-core speed and memory: seconds per exact SGD step (width 4, batch 16, softsign, chunk
100,000) at 1M and 10M layers, in memory and streamed from a file, for the native kernels with
one and two threads and the XLA kernels, on every SIMD path of the machine (AVX-512 where the CPU
has it, and AVX2, forced with ZOO_DEEP_SIMD=avx2); nanoseconds per layer per sample; peak RSS;
the C reference (`../shared/bench/deepcore_ref.sh`, its AVX-512 and `--avx2` paths) on the same
step in the same run, with the ratios; evaluation throughput (forward only, batch 256, both
threads) against the machine's arithmetic floor; and the cost of checking the weights'
checksums beside a step. Prints one JSON line. Each configuration runs in its own process so its
peak RSS is its own; beside the 10M in-memory figure stand the RSS of an idle process that has
only imported TensorFlow and the weights' size, so the target "peak RSS <= idle TF + weights +
150 MiB" can be read off (`memory_check`).

The arithmetic floor of evaluation: each layer and sample is 16 multiply-adds (width 4: h W)
plus the activation; the floor counts the multiply-adds alone, at `lanes` x `fma_units` per cycle
per core (lanes: 8 float32 on AVX2, 16 on AVX-512; two FMA units per core assumed), on every core
(`--threads`, 2) at the clock of /proc/cpuinfo (or `--clock-ghz`). The benchmark times
`--eval-samples` images and scales to the 10,000 test images.

    python benchmarks/deep_core_bench.py                          # everything (many minutes)
    python benchmarks/deep_core_bench.py --layers-list 1000000 --kernels native1 --no-reference
    python benchmarks/deep_core_bench.py --storage memory --kernels native1 native2
    python benchmarks/deep_core_bench.py --simd avx2 --no-eval    # one SIMD path only
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


def cpu_simd_paths():
    """The SIMD paths of this CPU, widest first."""
    flags = set()
    with open("/proc/cpuinfo") as info:
        for line in info:
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                break
    return (["avx512"] if "avx512f" in flags else []) + (["avx2"] if "avx2" in flags else [])


def nominal_clock_ghz():
    with open("/proc/cpuinfo") as info:
        for line in info:
            if line.startswith("cpu MHz"):
                return float(line.split(":", 1)[1]) / 1000
    return None


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
        "simd": getattr(network.kernels, "simd", None),
        "threads": getattr(network.kernels, "threads", None),
        "seconds_per_step": round(seconds, 4),
        "seconds_per_step_median": round(sorted(times)[len(times) // 2], 4),
        "ns_per_layer_per_step": round(1e9 * seconds / layers, 1),
        "ns_per_layer_per_sample": round(1e9 * seconds / layers / batch, 2),
        "peak_rss_mib": peak_rss_mib(),
    }


def measure_eval(layers, samples, directory, threads):
    """Forward-only throughput at batch 256 over `samples` images (in memory), in this process."""
    quiet_tensorflow()
    import numpy as np

    from zoo.deep import DeepNetwork, FileWeights, InMemoryWeights

    with FileWeights.open(weights_file(directory, layers, 4)) as file:
        weights = InMemoryWeights.from_file(file, piece_layers=100_000)
    network = DeepNetwork(
        weights, chunk_layers=100_000, inputs=INPUTS, classes=CLASSES, seed=0, kernels="native"
    )
    network.kernels.threads = threads
    rng = np.random.default_rng(0)
    x = rng.random((samples, INPUTS)).astype(np.float32)
    y = rng.integers(0, CLASSES, samples)
    network.evaluate(x[:256], y[:256], batch_size=256)  # warm-up
    start = time.perf_counter()
    network.evaluate(x, y, batch_size=256)
    seconds = time.perf_counter() - start
    return {
        "layers": layers,
        "samples": samples,
        "threads": threads,
        "simd": network.kernels.simd,
        "seconds": round(seconds, 3),
        "ns_per_layer_per_sample": round(1e9 * seconds / layers / samples, 4),
        "seconds_for_10000_images": round(seconds * 10_000 / samples, 1),
    }


def measure_checksums(layers, directory):
    """Seconds to check every block of the committed core once (what a streamed step checks,
    and what an in-memory run's load and each save cost), in this process."""
    quiet_tensorflow()
    from zoo.deep import FileWeights

    with FileWeights.open(weights_file(directory, layers, 4), "r") as weights:
        W, b = weights.load(0, min(layers, 1_000_000))  # warm-up (and page cache)
        weights._verified[:] = False
        start = time.perf_counter()
        for first in range(0, layers, 100_000):
            weights.load(first, min(layers, first + 100_000))
        with_checks = time.perf_counter() - start
        weights._verified[:] = True  # the same reads, every block already checked
        start = time.perf_counter()
        for first in range(0, layers, 100_000):
            weights.load(first, min(layers, first + 100_000))
        reads_alone = time.perf_counter() - start
    return {
        "layers": layers,
        "block_layers": weights.block_layers,
        "read_and_check_seconds": round(with_checks, 3),
        "read_seconds": round(reads_alone, 3),
        "check_seconds": round(max(0.0, with_checks - reads_alone), 3),
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


def child(*arguments, simd=None):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    if simd:
        env["ZOO_DEEP_SIMD"] = simd
    output = subprocess.run(
        [sys.executable, __file__, *map(str, arguments)],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    ).stdout
    return json.loads(output.strip().splitlines()[-1])


def ensure_weights(layers, width, directory):
    if not weights_file(directory, layers, width).exists():
        subprocess.run(
            [sys.executable, __file__, "--create", str(layers), str(width), directory],
            check=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )


def run_child(layers, width, batch, chunk, in_memory, steps, directory, kernels, simd=None):
    ensure_weights(layers, width, directory)
    row = child(
        "--child", layers, width, batch, chunk, int(in_memory), steps, directory, kernels, simd=simd
    )
    row["simd_path"] = simd or "native"
    return row


def reference(layers, steps=3, simd=None):
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
            *(["--avx2"] if simd == "avx2" else []),
        ],
        capture_output=True,
        text=True,
    )
    median = re.search(r"median step ([0-9.]+) ms", result.stdout)
    return float(median.group(1)) / 1000 if median else None


def summary(results, idle_rss, reference_seconds, evaluations, checksums, clock_ghz, threads):
    """The targets of issue 23 (and 14's memory check), read off the rows."""
    rows = {(r["simd_path"], r["layers"], r["storage"], r["kernels"]): r for r in results}
    checks = {}
    for (simd, layers, storage, kernels), row in rows.items():
        c_reference = reference_seconds.get(simd, {}).get(layers)
        if c_reference:
            row["ratio_to_c_reference"] = round(row["seconds_per_step"] / c_reference, 2)
        memory = rows.get((simd, layers, "memory", kernels))
        if storage == "streamed" and memory:
            row["ratio_to_in_memory"] = round(
                row["seconds_per_step"] / memory["seconds_per_step"], 2
            )
        one = rows.get((simd, layers, storage, "native1"))
        if kernels == "native2" and one:
            row["speedup_over_one_thread"] = round(
                one["seconds_per_step"] / row["seconds_per_step"], 2
            )
        if storage == "memory" and idle_rss is not None:
            weights_mib = layers * (row["width"] ** 2 + row["width"]) * 4 / MIB
            row["weights_mib"] = round(weights_mib, 1)
            row["rss_over_idle_tf_and_weights_mib"] = round(
                row["peak_rss_mib"] - idle_rss - weights_mib, 1
            )
    ten = 10_000_000
    for simd in sorted({key[0] for key in rows}):
        path = {}
        one_thread = [
            r["ratio_to_c_reference"]
            for (s, _, storage, kernels), r in rows.items()
            if s == simd and kernels == "native1" and storage == "memory"
            if "ratio_to_c_reference" in r
        ]
        if one_thread:
            path["native1_ratio_to_c_reference_max"] = max(one_thread)
            path["target_native1_le_1.1x_c_reference"] = max(one_thread) <= 1.1
        two = rows.get((simd, ten, "memory", "native2"))
        if two and "speedup_over_one_thread" in two:
            path["two_threads_speedup_10M_in_memory"] = two["speedup_over_one_thread"]
            path["target_two_threads_ge_1.4x"] = two["speedup_over_one_thread"] >= 1.4
        streamed = [
            r["ratio_to_in_memory"]
            for (s, _, _, kernels), r in rows.items()
            if s == simd and "ratio_to_in_memory" in r and kernels != "xla"
        ]
        if streamed:
            path["streamed_over_in_memory_max"] = max(streamed)
            path["target_streamed_le_1.2x_in_memory"] = max(streamed) <= 1.2
        evaluation = evaluations.get(simd)
        if evaluation:
            lanes = 16 if evaluation["simd"] == "avx512" else 8
            fma_per_second = threads * 2 * lanes * clock_ghz * 1e9
            floor = 16 * evaluation["layers"] * 10_000 / fma_per_second
            path["eval"] = {
                **evaluation,
                "floor_assumes": {
                    "float32_lanes": lanes,
                    "fma_units_per_core": 2,
                    "cores": threads,
                    "clock_ghz": clock_ghz,
                    "multiply_adds_per_layer_and_sample": 16,
                },
                "floor_seconds_for_10000_images": round(floor, 1),
                "ratio_to_floor": round(evaluation["seconds_for_10000_images"] / floor, 2),
                "target_le_2x_floor": evaluation["seconds_for_10000_images"] <= 2 * floor,
            }
        checks[simd] = path
    if checksums:
        streamed = [r for r in results if r["storage"] == "streamed" and r["layers"] == ten]
        step = min((r["seconds_per_step"] for r in streamed), default=None)
        memory = [r for r in results if r["storage"] == "memory" and r["layers"] == ten]
        checks["checksums"] = {
            **checksums,
            "streamed_step_seconds": step,
            "check_share_of_streamed_step": round(checksums["check_seconds"] / step, 3)
            if step
            else None,
            "check_share_of_in_memory_save_every_50_steps": round(
                checksums["check_seconds"] / (50 * min(r["seconds_per_step"] for r in memory)), 4
            )
            if memory
            else None,
        }
    memory_rows = [
        r for r in results if r["storage"] == "memory" and "weights_mib" in r and r["layers"] == ten
    ]
    if memory_rows:
        checks["memory_check"] = {
            f"{r['simd_path']}/{r['kernels']}": {
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
    parser.add_argument("--eval-child", nargs=4, help=argparse.SUPPRESS)
    parser.add_argument("--checksum-child", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--idle", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--layers-list", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument(
        "--kernels", nargs="+", choices=sorted(KERNELS), default=["native1", "native2", "xla"]
    )
    parser.add_argument(
        "--storage", nargs="+", choices=["memory", "streamed"], default=["memory", "streamed"]
    )
    parser.add_argument(
        "--simd",
        nargs="+",
        choices=["avx512", "avx2"],
        default=None,
        help="SIMD paths to measure (default: every path of this CPU)",
    )
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--no-reference", action="store_true")
    parser.add_argument("--no-eval", action="store_true", help="skip the evaluation throughput")
    parser.add_argument(
        "--eval-samples", type=int, default=512, help="images timed for the evaluation figure"
    )
    parser.add_argument("--eval-layers", type=int, default=10_000_000)
    parser.add_argument("--threads", type=int, default=2, help="threads (cores) of evaluation")
    parser.add_argument("--clock-ghz", type=float, default=None, help="clock of the floor")
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
    if args.eval_child:
        layers, samples, directory, threads = args.eval_child
        print(json.dumps(measure_eval(int(layers), int(samples), directory, int(threads))))
        return
    if args.checksum_child:
        print(json.dumps(measure_checksums(int(args.checksum_child[0]), args.checksum_child[1])))
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
    paths = args.simd or cpu_simd_paths()
    native = cpu_simd_paths()[0] if cpu_simd_paths() else None
    simd_env = {path: (None if path == native else path) for path in paths}
    idle_rss = child("--idle")["idle_tf_rss_mib"]
    results, reference_seconds, evaluations, checksums = [], {}, {}, None
    with tempfile.TemporaryDirectory(dir=args.directory) as directory:
        for layers in args.layers_list:
            for path in paths:
                for kernels in args.kernels:
                    if kernels == "xla" and path != paths[0]:
                        continue  # the XLA kernels do not depend on the SIMD path
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
                                simd=simd_env[path],
                            )
                        )
                        results[-1]["simd_path"] = path
                if not args.no_reference:
                    reference_seconds.setdefault(path, {})[layers] = reference(
                        layers, simd=None if path == native else path
                    )
            if layers == 10_000_000 and "streamed" in args.storage:
                checksums = child("--checksum-child", layers, directory)
            if layers != args.eval_layers or args.no_eval:
                weights_file(directory, layers, 4).unlink()
        if not args.no_eval:
            ensure_weights(args.eval_layers, 4, directory)
            for path in paths:
                evaluations[path] = child(
                    "--eval-child",
                    args.eval_layers,
                    args.eval_samples,
                    directory,
                    args.threads,
                    simd=simd_env[path],
                )
            weights_file(directory, args.eval_layers, 4).unlink()
        if args.width2_100m:
            results.append(run_child(100_000_000, 2, 1, 1_000_000, False, 1, directory, "native1"))
    clock = args.clock_ghz or nominal_clock_ghz()
    print(
        json.dumps(
            {
                "benchmark": "deep_core",
                "activation": "softsign",
                "cpu_count": os.cpu_count(),
                "simd_paths": paths,
                "clock_ghz": clock,
                "idle_tf_rss_mib": idle_rss,
                "c_reference_seconds_per_step": {
                    path: {str(k): v for k, v in seconds.items()}
                    for path, seconds in reference_seconds.items()
                },
                "results": results,
                "targets": summary(
                    results,
                    idle_rss,
                    reference_seconds,
                    evaluations,
                    checksums,
                    clock,
                    args.threads,
                ),
                "wall_seconds": round(time.time() - started, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
