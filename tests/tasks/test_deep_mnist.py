"""The deep task: the run-folder contract, resume, eval, flags; real MNIST where it matters."""

import json
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest

from zoo.cli import main
from zoo.deep import FileWeights
from zoo.deep.core import unpack_record
from zoo.tasks.deep_mnist import DeepConfig, batch_indices

SMALL = ["--layers", "200", "--chunk-layers", "64", "--kernels", "xla", "--quiet"]


@pytest.fixture
def mnist_env(monkeypatch, mnist_dir, tfds_dir):
    monkeypatch.setenv("ZOO_MNIST_DIR", str(mnist_dir))
    monkeypatch.setenv("ZOO_TFDS_DIR", tfds_dir)


def test_batches_are_drawn_with_replacement_reproducibly():
    first = batch_indices(0, 5, 16, 60000)
    assert np.array_equal(first, batch_indices(0, 5, 16, 60000))
    assert not np.array_equal(first, batch_indices(0, 6, 16, 60000))
    assert first.min() >= 0 and first.max() < 60000


@pytest.mark.slow  # 42 s; deep resumes in the default run: tests/deep/test_crash_safety.py
def test_resume_with_more_steps_continues_the_same_sequence(tmp_path, mnist_env):
    assert (
        main(
            [
                "deep",
                "train",
                *SMALL,
                "--steps",
                "6",
                "--report-every",
                "1",
                "--run",
                str(tmp_path / "a"),
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "deep",
                "train",
                *SMALL,
                "--steps",
                "3",
                "--report-every",
                "1",
                "--run",
                str(tmp_path / "b"),
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "deep",
                "train",
                "--steps",
                "6",
                "--run",
                str(tmp_path / "b"),
                "--quiet",
                "--kernels",
                "xla",
            ]
        )
        == 0
    )
    history_a = pd.read_csv(tmp_path / "a" / "history.csv")
    history_b = pd.read_csv(tmp_path / "b" / "history.csv")
    pd.testing.assert_frame_equal(
        history_b[["step", "loss", "accuracy"]], history_a[["step", "loss", "accuracy"]]
    )
    assert history_b["wall_seconds"].is_monotonic_increasing
    with (
        FileWeights.open(tmp_path / "a" / "weights.bin") as a,
        FileWeights.open(tmp_path / "b" / "weights.bin") as b,
    ):
        assert a.steps == b.steps == 6
        np.testing.assert_array_equal(a.load(0, 200)[0], b.load(0, 200)[0])
    config = json.loads((tmp_path / "b" / "config.json").read_text())
    assert config["task"] == "deep" and config["config"]["steps"] == 6
    assert set(config["versions"]) >= {"zoo", "tensorflow", "keras", "python"}


@pytest.mark.slow  # 31 s; one vs two threads bit for bit: tests/deep/test_native_kernels.py
def test_a_resume_with_another_thread_count_continues_bit_for_bit(tmp_path, mnist_env):
    """`--threads` is not part of the run: native kernels give the same bits with 1 or 2."""
    # 300-layer chunks: enough work per call for the kernels to use the second thread.
    native = ["--layers", "600", "--chunk-layers", "300", "--kernels", "native", "--quiet"]
    native += ["--report-every", "1"]
    straight, resumed = str(tmp_path / "a"), str(tmp_path / "b")
    assert (
        main(["deep", "train", *native, "--steps", "4", "--threads", "2", "--run", straight]) == 0
    )
    assert main(["deep", "train", *native, "--steps", "2", "--threads", "1", "--run", resumed]) == 0
    assert main(["deep", "train", *native, "--steps", "4", "--threads", "2", "--run", resumed]) == 0
    history_a = pd.read_csv(tmp_path / "a" / "history.csv")
    history_b = pd.read_csv(tmp_path / "b" / "history.csv")
    pd.testing.assert_frame_equal(
        history_b[["step", "loss", "accuracy"]], history_a[["step", "loss", "accuracy"]]
    )
    with (
        FileWeights.open(tmp_path / "a" / "weights.bin") as a,
        FileWeights.open(tmp_path / "b" / "weights.bin") as b,
    ):
        assert a.steps == b.steps == 4
        np.testing.assert_array_equal(a.load(0, a.layers)[0], b.load(0, b.layers)[0])
        head_a, head_b = unpack_record(a.record)[0], unpack_record(b.record)[0]
        for name in head_a:
            np.testing.assert_array_equal(head_a[name], head_b[name])


def test_in_memory_training_learns_and_eval_reports(tmp_path, mnist_env, capsys):
    run = tmp_path / "mem"
    assert (
        main(
            [
                "deep",
                "train",
                "--layers",
                "100",
                "--chunk-layers",
                "30",
                "--steps",
                "150",
                "--batch-size",
                "16",
                "--layer-lr",
                "0.05",
                "--head-lr",
                "0.05",
                "--in-memory",
                "--save-every",
                "50",
                "--kernels",
                "xla",
                "--quiet",
                "--run",
                str(run),
            ]
        )
        == 0
    )
    history = pd.read_csv(run / "history.csv")
    assert history["loss"].iloc[-3:].mean() < history["loss"].iloc[:3].mean() - 0.2
    assert (run / "curves.png").stat().st_size > 10_000
    assert (
        main(
            ["deep", "eval", "--run", str(run), "--samples", "1000", "--kernels", "xla", "--quiet"]
        )
        == 0
    )
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["status"] == "finished" and metrics["steps"] == 150
    assert (
        metrics["test_accuracy"] > 0.3
        and metrics["test_samples"] == 1000
        and metrics["test_steps"] == 150
    )
    # a finished run asked again trains nothing
    capsys.readouterr()
    assert main(["deep", "train", "--run", str(run), "--quiet", "--kernels", "xla"]) == 0
    assert "has finished its 150 steps" in capsys.readouterr().out


@pytest.mark.parametrize(
    "flags, name",
    [
        (["--layers", "0"], "--layers"),
        (["--width", "-2"], "--width"),
        (["--chunk-layers", "0"], "--chunk-layers"),
        (["--layer-lr", "inf"], "--layer-lr"),
        (["--head-lr", "nan"], "--head-lr"),
        (["--layer-lr", "0"], "--layer-lr"),
        (["--alpha", "-1"], "--alpha"),
        (["--batch-size", "99999999999"], "--batch-size"),
        (["--steps", "-1"], "--steps"),
        (["--threads", "3"], "--threads"),
    ],
)
def test_bad_flags_are_one_line_errors(flags, name, capsys, tmp_path):
    assert main(["deep", "train", *flags, "--run", str(tmp_path / "r")]) == 2
    error = capsys.readouterr().err.strip()
    assert name in error and len(error.splitlines()) == 1
    assert not (tmp_path / "r").exists()


def test_resume_with_other_settings_and_foreign_folders(tmp_path, capsys):
    run = tmp_path / "r"
    run.mkdir()
    (run / "config.json").write_text(
        json.dumps({"task": "deep", "versions": {}, "config": {**DeepConfig().__dict__}})
    )
    before = (run / "config.json").read_text()
    assert main(["deep", "train", "--run", str(run), "--layer-lr", "0.1"]) == 2
    assert "--layer-lr: saved 0.01, given 0.1" in capsys.readouterr().err
    assert (run / "config.json").read_text() == before and sorted(
        p.name for p in run.iterdir()
    ) == [".lock", "config.json"]
    other = tmp_path / "argmax"
    other.mkdir()
    (other / "config.json").write_text(json.dumps({"task": "argmax", "versions": {}, "config": {}}))
    for command in (["train"], ["eval"]):
        assert main(["deep", *command, "--run", str(other)]) == 2
        error = capsys.readouterr().err.strip()
        assert "holds a 'argmax' run, not a 'deep' run" in error and len(error.splitlines()) == 1
    assert main(["deep", "eval", "--run", str(tmp_path / "nothing")]) == 2
    assert "no such run folder" in capsys.readouterr().err


@pytest.mark.slow
def test_a_second_process_on_the_same_run_exits_at_once(tmp_path, mnist_env):
    run = tmp_path / "r"
    command = [
        sys.executable,
        "-m",
        "zoo.cli",
        "deep",
        "train",
        *SMALL,
        "--steps",
        "100000",
        "--run",
        str(run),
    ]
    first = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while not (run / "weights.bin").exists() and time.time() < deadline:
            time.sleep(0.1)
        second = subprocess.run(command, capture_output=True, text=True, timeout=120)
        assert second.returncode == 2
        assert "is in use by another process" in second.stderr.strip().splitlines()[-1]
    finally:
        first.kill()
        first.wait()


def test_divergence_stops_with_the_step_and_is_not_committed(tmp_path, mnist_env, capsys):
    run = tmp_path / "nan"
    flags = [
        "--layers",
        "10000",
        "--chunk-layers",
        "5000",
        "--steps",
        "20",
        "--layer-lr",
        "1e6",
        "--kernels",
        "xla",
        "--quiet",
    ]
    assert main(["deep", "train", *flags, "--run", str(run)]) == 3
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith("zoo: error: training diverged at step") and "--layer-lr" in error
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["status"] == "failed" and "at step" in metrics["error"]
    step = int(error.split("at step ")[1].split(":")[0])
    with FileWeights.open(run / "weights.bin", "r") as weights:
        assert weights.steps == step - 1  # the diverged step never reached the file
        assert np.isfinite(weights.load(0, weights.layers)[0]).all()
    assert not (run / "curves.png").exists()


def test_cli_module_is_light():
    code = (
        "import sys, zoo.tasks.deep_mnist.cli; "
        "print([m for m in ('tensorflow', 'keras') if m in sys.modules])"
    )
    assert (
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip()
        == "[]"
    )


@pytest.mark.parametrize(
    "flags, figure",
    [
        (["--layers", "10000000000"], "1.6 TB of disk"),
        (["--layers", "1000000", "--width", "64", "--in-memory"], "of memory"),
    ],
)
def test_sizes_the_machine_cannot_hold_are_refused_before_anything_is_made(
    tmp_path, capsys, monkeypatch, flags, figure
):
    monkeypatch.setenv("ZOO_FAKE_FREE_DISK", str(10**12))
    monkeypatch.setenv("ZOO_FAKE_AVAILABLE_MEMORY", str(8 * 10**9))
    run = tmp_path / "run"
    assert main(["deep", "train", *flags, "--run", str(run)]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and figure in error and "--layers" in error
    assert not run.exists()
