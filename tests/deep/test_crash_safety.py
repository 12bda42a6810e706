"""A deep run killed at any instant resumes to exactly the run it would have been.

The fast cases run `zoo deep train` in this process and "kill" it at seeded random crash points
inside steps, commits, history writes and in-memory saves (the crash hook raises an exception no
handler catches, and nothing is flushed that a kill -9 would not have left); the slow ones run
it in a subprocess ended by `os._exit` (`ZOO_TEST_CRASH_AT`) or by SIGKILL at a random moment.
Each time, the resumed run's history and weights (core, stem and head) must equal those of an
uninterrupted run.
"""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest

import zoo.commits
import zoo.deep.memory
import zoo.deep.weights_file
import zoo.files
import zoo.runs
from zoo.cli import main
from zoo.deep import DeepNetwork, FileWeights
from zoo.tasks.deep_mnist import training as train_module

TINY = [
    "--layers",
    "40",
    "--chunk-layers",
    "16",
    "--width",
    "3",
    "--steps",
    "12",
    "--report-every",
    "3",
    "--layer-lr",
    "0.05",
    "--head-lr",
    "0.05",
    "--kernels",
    "xla",
    "--quiet",
]
IN_MEMORY = ["--in-memory", "--save-every", "4"]
STEP_POINTS = [
    "deep-chunk-written",
    "deep-before-commit",
    "deep-after-commit",
    "deep-history-written",
    "atomic-write-tmp",
    "deep-step-done",
]
SAVE_POINTS = [
    "deep-save-piece",
    "deep-before-commit",
    "deep-after-commit",
    "deep-history-written",
    "atomic-write-tmp",
    "deep-step-done",
]


class Killed(BaseException):
    """What the in-process crash hook raises: nothing in zoo catches a BaseException subclass
    other than KeyboardInterrupt."""


@pytest.fixture
def synthetic_mnist(monkeypatch):
    """200 fixed 'images' instead of MNIST (the crash protocol does not depend on the data)."""
    rng = np.random.default_rng(0)
    images, labels = rng.random((200, 784)).astype(np.float32), rng.integers(0, 10, 200)
    monkeypatch.setattr(train_module, "mnist_arrays", lambda split: (images, labels))


@pytest.fixture
def crash_at(monkeypatch):
    """`crash_at(point, n)`: the n-th call of `crash_point(point)` raises `Killed`."""

    def arm(point, n):
        counts = {}

        def crash_point(name):
            counts[name] = counts.get(name, 0) + 1
            if name == point and counts[name] == n:
                raise Killed(f"{point}:{n}")

        modules = (zoo.files, zoo.commits, zoo.runs, zoo.deep.weights_file, zoo.deep.memory)
        for module in (*modules, train_module):
            monkeypatch.setattr(module, "crash_point", crash_point)
        return counts

    return arm


def outcome(run):
    """History (without timings) and every committed weight of a run folder."""
    history = pd.read_csv(run / "history.csv")[["step", "loss", "accuracy"]]
    with FileWeights.open(run / "weights.bin", "r") as weights:
        network = DeepNetwork(weights, chunk_layers=16, kernels="xla")
        W, b = weights.load(0, weights.layers)
        arrays = {"W": W, "b": b, **{name: value.numpy() for name, value in network.params.items()}}
        return history, arrays, weights.steps


def assert_same_run(got, want):
    pd.testing.assert_frame_equal(got[0], want[0])
    assert got[2] == want[2]
    for name, value in want[1].items():
        np.testing.assert_array_equal(got[1][name], value, err_msg=name)


def crash_then_resume(run, flags, point, n, crash_at):
    counts = crash_at(point, n)
    try:
        main(["deep", "train", *flags, "--run", str(run)])
    except Killed:
        pass
    else:
        pytest.fail(f"{point}:{n} was never reached (calls: {counts})")
    crash_at("none", 0)
    # the same command again (a kill before config.json exists leaves no run to resume)
    assert main(["deep", "train", *flags, "--run", str(run)]) == 0


def seeded_cases(points, seed, count, most):
    rng = np.random.default_rng(seed)
    return [(points[rng.integers(len(points))], int(rng.integers(1, most))) for _ in range(count)]


@pytest.mark.parametrize("in_memory", [False, True], ids=["streamed", "in-memory"])
def test_kills_at_seeded_points_resume_to_the_uninterrupted_run(
    tmp_path, synthetic_mnist, crash_at, in_memory
):
    flags = TINY + (IN_MEMORY if in_memory else [])
    assert main(["deep", "train", *flags, "--run", str(tmp_path / "straight")]) == 0
    want = outcome(tmp_path / "straight")
    points = SAVE_POINTS if in_memory else STEP_POINTS
    for index, (point, n) in enumerate(seeded_cases(points, seed=int(in_memory), count=1, most=4)):
        run = tmp_path / f"killed-{index}"
        crash_then_resume(run, flags, point, n, crash_at)
        assert_same_run(outcome(run), want)


@pytest.mark.slow
@pytest.mark.parametrize("in_memory", [False, True], ids=["streamed", "in-memory"])
def test_kills_at_every_point_resume_to_the_uninterrupted_run(
    tmp_path, synthetic_mnist, crash_at, in_memory
):
    flags = TINY + (IN_MEMORY if in_memory else [])
    assert main(["deep", "train", *flags, "--run", str(tmp_path / "straight")]) == 0
    want = outcome(tmp_path / "straight")
    for point in SAVE_POINTS if in_memory else STEP_POINTS:
        for n in (1, 2, 3):
            run = tmp_path / f"{point}-{n}"
            crash_then_resume(run, flags, point, n, crash_at)
            assert_same_run(outcome(run), want)


def test_two_kills_in_a_row_and_an_interrupted_create(tmp_path, synthetic_mnist, crash_at):
    flags = TINY + IN_MEMORY
    assert main(["deep", "train", *flags, "--run", str(tmp_path / "straight")]) == 0
    run = tmp_path / "killed"
    counts = crash_at("deep-before-commit", 1)  # inside the very first commit: the file's creation
    with pytest.raises(Killed):
        main(["deep", "train", *flags, "--run", str(run)])
    assert not (run / "weights.bin").exists()
    crash_at("deep-save-piece", 2)
    with pytest.raises(Killed):
        main(["deep", "train", "--run", str(run), "--kernels", "xla", "--quiet"])
    crash_at("none", 0)
    assert main(["deep", "train", "--run", str(run), "--kernels", "xla", "--quiet"]) == 0
    assert counts  # the hook was live
    assert_same_run(outcome(run), outcome(tmp_path / "straight"))


# --- subprocesses: real kills ----------------------------------------------------------------


def zoo_process(args, env_extra=None):
    env = {
        **os.environ,
        "KERAS_BACKEND": "tensorflow",
        "TF_CPP_MIN_LOG_LEVEL": "3",
        **(env_extra or {}),
    }
    return [sys.executable, "-m", "zoo.cli", "deep", "train", *args], env


@pytest.fixture
def mnist_env(monkeypatch, mnist_dir, tfds_dir):
    monkeypatch.setenv("ZOO_MNIST_DIR", str(mnist_dir))
    monkeypatch.setenv("ZOO_TFDS_DIR", tfds_dir)


@pytest.mark.slow
@pytest.mark.parametrize("in_memory", [False, True], ids=["streamed", "in-memory"])
def test_os_exit_and_sigkill_in_subprocesses(tmp_path, mnist_env, in_memory):
    flags = TINY + (IN_MEMORY if in_memory else [])
    command, env = zoo_process([*flags, "--run", str(tmp_path / "straight")])
    subprocess.run(command, env=env, check=True, capture_output=True)
    want = outcome(tmp_path / "straight")
    points = SAVE_POINTS if in_memory else STEP_POINTS
    for index, (point, n) in enumerate(seeded_cases(points, seed=10 + in_memory, count=3, most=6)):
        run = tmp_path / f"exit-{index}"
        command, env = zoo_process(
            [*flags, "--run", str(run)], {"ZOO_TEST_CRASH_AT": f"{point}:{n}"}
        )
        assert subprocess.run(command, env=env, capture_output=True).returncode == 137
        command, env = zoo_process([*flags, "--run", str(run)])
        subprocess.run(command, env=env, check=True, capture_output=True)
        assert_same_run(outcome(run), want)
    # SIGKILL at seeded random moments while steps run (several kills, then a clean finish)
    rng = np.random.default_rng(20 + in_memory)
    run = tmp_path / "sigkill"
    command, env = zoo_process([*flags, "--run", str(run)])
    for _ in range(3):
        process = subprocess.Popen(
            command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.time() + 120
        while (
            not (run / "history.csv").exists() and process.poll() is None and time.time() < deadline
        ):
            time.sleep(0.05)
        time.sleep(float(rng.uniform(0, 1.5)))
        process.send_signal(signal.SIGKILL)
        process.wait()
    subprocess.run(command, env=env, check=True, capture_output=True)
    assert_same_run(outcome(run), want)


def test_a_run_whose_weights_file_is_gone_is_refused_not_restarted(
    tmp_path, synthetic_mnist, capsys
):
    run = tmp_path / "run"
    assert main(["deep", "train", *TINY, "--steps", "3", "--run", str(run)]) == 0
    (run / "weights.bin").unlink()
    capsys.readouterr()
    assert main(["deep", "train", *TINY, "--run", str(run)]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "weights.bin is missing" in error[0]
    assert not (run / "weights.bin").exists()


def test_a_corrupt_weight_stops_training_in_one_line(tmp_path, synthetic_mnist, capsys):
    run = tmp_path / "run"
    assert main(["deep", "train", *TINY, "--steps", "3", "--run", str(run)]) == 0
    with FileWeights.open(run / "weights.bin", "r") as weights:
        offset = weights.layout.W_offset(weights.current, 17)
    with open(run / "weights.bin", "r+b") as file:
        file.seek(offset)
        file.write(np.float32(-3592.0).tobytes())
    capsys.readouterr()
    assert main(["deep", "train", *TINY, "--run", str(run)]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "weights.bin" in error[0] and "fail their checksum" in error[0]


@pytest.mark.parametrize("in_memory", [False, True], ids=["streamed", "in-memory"])
def test_one_ctrl_c_commits_the_step_in_flight_and_exits_130(
    tmp_path, synthetic_mnist, monkeypatch, capsys, in_memory
):
    flags = TINY + (IN_MEMORY if in_memory else [])
    whole = tmp_path / "whole"
    assert main(["deep", "train", *flags, "--run", str(whole)]) == 0
    run = tmp_path / "run"
    monkeypatch.setenv("ZOO_TEST_CRASH_AT", "deep-step-done:5")
    monkeypatch.setenv("ZOO_TEST_CRASH_SIGNAL", "SIGINT")
    zoo.files._crash_counts.clear()
    capsys.readouterr()
    assert main(["deep", "train", *flags, "--run", str(run)]) == 130
    error = capsys.readouterr().err.strip().splitlines()
    assert "finishing the step in flight" in error[0]
    assert "interrupted after committing step 5" in error[-1]
    assert json.loads((run / "metrics.json").read_text())["status"] == "interrupted"
    with FileWeights.open(run / "weights.bin", "r") as weights:
        assert weights.steps == 5
    monkeypatch.delenv("ZOO_TEST_CRASH_AT")
    assert main(["deep", "train", *flags, "--run", str(run)]) == 0
    assert_same_run(outcome(run), outcome(whole))


@pytest.mark.parametrize("command", ["train", "eval"])
def test_a_history_torn_inside_its_committed_rows_is_refused(
    tmp_path, synthetic_mnist, capsys, command
):
    from tests import faults

    run = tmp_path / "run"
    assert main(["deep", "train", *TINY, "--run", str(run)]) == 0
    faults.tear_history_row(run / "history.csv", row=1)
    capsys.readouterr()
    extra = ["--steps", "15"] if command == "train" else ["--samples", "10"]
    flags = TINY if command == "train" else ["--kernels", "xla", "--quiet"]
    assert main(["deep", command, *flags, *extra, "--run", str(run)]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "history.csv" in error[0] and "changed or torn" in error[0]
