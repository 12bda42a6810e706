"""Deep-core speed and memory: seconds per exact SGD step (width 4, batch 16, softsign, chunk
100,000) at 1M and 10M layers, in memory and streamed from a file, nanoseconds per layer per
sample, peak RSS, and the C reference (`../shared/bench/deepcore_ref.sh`) on the same step.
Prints one JSON line. Each configuration runs in its own process so peak RSS is its own.

    python benchmarks/deep_core_bench.py                 # 1M and 10M layers
    python benchmarks/deep_core_bench.py --layers 1000000 --no-reference
    python benchmarks/deep_core_bench.py --width2-100m   # adds the 100M-layer width-2 streamed step
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


def measure(layers, width, batch, chunk, in_memory, steps, directory):
    """One configuration, in this process: returns its figures."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import numpy as np

    from zoo.deep import DeepNetwork, FileWeights, InMemoryWeights

    weights = FileWeights.open(weights_file(directory, layers, width))
    if in_memory:
        file_weights, weights = weights, InMemoryWeights.from_file(weights, piece_layers=chunk)
        file_weights.close()
    network = DeepNetwork(weights, chunk_layers=chunk, seed=0)
    rng = np.random.default_rng(0)
    x, y = rng.random((batch, 784)).astype(np.float32), rng.integers(0, 10, batch)
    network.train_step(x, y)  # compile
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        network.train_step(x, y)
        times.append(time.perf_counter() - start)
    weights.close()
    seconds = min(times)
    return {
        "layers": layers, "width": width, "batch": batch, "chunk_layers": chunk,
        "storage": "memory" if in_memory else "streamed",
        "seconds_per_step": round(seconds, 4),
        "seconds_per_step_median": round(sorted(times)[len(times) // 2], 4),
        "ns_per_layer_per_step": round(1e9 * seconds / layers, 1),
        "ns_per_layer_per_sample": round(1e9 * seconds / layers / batch, 2),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def weights_file(directory, layers, width):
    return Path(directory) / f"bench_{layers}_{width}.bin"


def create(layers, width, directory):
    """The weights file, in this process (a child of its own, so its memory is not measured)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from zoo.deep import FileWeights

    FileWeights.create(weights_file(directory, layers, width), layers, width, "softsign", seed=0).close()


def run_child(layers, width, batch, chunk, in_memory, steps, directory):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    if not weights_file(directory, layers, width).exists():
        subprocess.run([sys.executable, __file__, "--create", str(layers), str(width), directory], check=True, env=env)
    command = [sys.executable, __file__, "--child", str(layers), str(width), str(batch), str(chunk),
               str(int(in_memory)), str(steps), directory]
    output = subprocess.run(command, check=True, capture_output=True, text=True, env=env).stdout
    return json.loads(output.strip().splitlines()[-1])


def reference(layers, steps=3):
    """Seconds per step of the C reference on the same step (width 4, batch 16, chunk 100,000)."""
    if not REFERENCE.exists():
        return None
    result = subprocess.run(["sh", str(REFERENCE), "--layers", str(layers), "--width", "4", "--batch", "16",
                             "--chunk", "100000", "--steps", str(steps)], capture_output=True, text=True)
    median = re.search(r"median step ([0-9.]+) ms", result.stdout)
    return {"seconds_per_step": float(median.group(1)) / 1000 if median else None}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--child", nargs=7)
    parser.add_argument("--create", nargs=3)
    parser.add_argument("--layers", type=int, nargs="*", default=[1_000_000, 10_000_000])
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--no-reference", action="store_true")
    parser.add_argument("--width2-100m", action="store_true", help="also a 100M-layer width-2 streamed step")
    parser.add_argument("--directory", default=None, help="where the weights files go (default a temp dir)")
    args = parser.parse_args()
    if args.create:
        create(int(args.create[0]), int(args.create[1]), args.create[2])
        return
    if args.child:
        layers, width, batch, chunk, in_memory, steps, directory = args.child
        print(json.dumps(measure(int(layers), int(width), int(batch), int(chunk), bool(int(in_memory)), int(steps), directory)))
        return
    with tempfile.TemporaryDirectory(dir=args.directory) as directory:
        results = []
        for layers in args.layers:
            for in_memory in (True, False):
                results.append(run_child(layers, 4, 16, 100_000, in_memory, args.steps, directory))
            weights_file(directory, layers, 4).unlink()
            if not args.no_reference:
                ref = reference(layers)
                results[-1]["c_reference_seconds_per_step"] = ref and ref["seconds_per_step"]
                if ref and ref["seconds_per_step"]:
                    for row in results[-2:]:
                        row["ratio_to_c_reference"] = round(row["seconds_per_step"] / ref["seconds_per_step"], 1)
        if args.width2_100m:
            results.append(run_child(100_000_000, 2, 1, 1_000_000, False, 1, directory))
    print(json.dumps({"benchmark": "deep_core", "activation": "softsign", "results": results}))


if __name__ == "__main__":
    main()
