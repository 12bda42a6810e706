"""ibs-vs-lrd under faults: kill -9 at seeded instants (inside epochs, inside history,
checkpoint and model writes, between a schedule's last row and its model), rerun, and every
schedule equals an uninterrupted run's; corrupt files are one-line errors naming the file."""

import os
import random
import shutil
import subprocess
import sys

import pandas as pd
import pytest

from tests import faults
from zoo.cli import main

FLAGS = [
    "--dataset",
    "mnist",
    "--schedules",
    "lrd,ibs-equivalent",
    "--epochs",
    "2",
    "--train-limit",
    "300",
    "--batch-size",
    "16",
    "--quiet",
]
SCHEDULES = ("lrd", "ibs-equivalent")
BATCHES = 19 + 19 + 19 + 18  # ceil(300 / 16) twice for lrd; batches 16 then 17 for ibs-eq.
SEEDS = random.Random(20260002)


COMMAND = faults.Command("zoo.cli", ("ibs-vs-lrd", "run"), tuple(FLAGS))


def zoo(args, crash=None):
    """`zoo ibs-vs-lrd ...` in a fresh process, optionally killed at crash point `crash`."""
    return faults.zoo("ibs-vs-lrd", *args, crash=crash)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, mnist_dir, tfds_dir):
    os.environ.setdefault("ZOO_TFDS_DIR", tfds_dir)
    os.environ.setdefault("ZOO_MNIST_DIR", str(mnist_dir))
    run = tmp_path_factory.mktemp("ibs_faults") / "whole"
    assert main(["ibs-vs-lrd", "run", "--run", str(run), *FLAGS]) == 0
    return run


def assert_same_run(run, reference):
    got = pd.read_csv(run / "history.csv")
    assert list(zip(got["schedule"], got["epoch"])) == [
        (schedule, epoch) for schedule in SCHEDULES for epoch in (1, 2)
    ]  # none lost/repeated
    faults.assert_same_run(
        run, reference, model_files=[f"model_{schedule}.keras" for schedule in SCHEDULES]
    )
    for schedule in SCHEDULES:
        assert got[got["schedule"] == schedule]["wall_seconds"].is_monotonic_increasing
    assert faults.metrics(run)["status"] == "finished"


def kill_and_resume(run, crash):
    return faults.kill_and_resume(COMMAND, run, crash)


@pytest.mark.slow
def test_kill_inside_an_epoch_resumes_from_the_last_committed_epoch(uninterrupted, tmp_path):
    run = tmp_path / "run"
    kill_and_resume(run, f"train-batch:{SEEDS.randint(20, BATCHES - 1)}")
    assert_same_run(run, uninterrupted)


@pytest.mark.slow
@pytest.mark.parametrize(
    "crash",
    [
        "checkpoint-after-commit:2",  # lrd's last row and commit written, its model not saved
        "history-written:3",  # ibs-equivalent's first row written, not committed
        "checkpoint-before-commit:1",
        f"atomic-write-tmp:{SEEDS.randint(3, 20)}",
        f"atomic-write-tmp:{SEEDS.randint(3, 20)}",
        f"train-batch:{SEEDS.randint(1, BATCHES - 1)}",
    ],
)
def test_kill_at_seeded_instants_resumes_exactly(uninterrupted, tmp_path, crash):
    run = tmp_path / "run"
    kill_and_resume(run, crash)
    assert_same_run(run, uninterrupted)


@pytest.mark.slow
def test_a_schedule_killed_before_its_model_is_saved_is_not_done(tmp_path, mnist_dir, tfds_dir):
    os.environ.setdefault("ZOO_TFDS_DIR", tfds_dir)
    os.environ.setdefault("ZOO_MNIST_DIR", str(mnist_dir))
    run = tmp_path / "run"
    killed = zoo(["run", "--run", str(run), *FLAGS], crash="checkpoint-after-commit:2")
    assert killed.returncode == 137
    assert not (run / "model_lrd.keras").exists() and not (run / "schedules.json").exists()
    resumed = zoo(["run", "--run", str(run), *FLAGS])
    assert "== lrd: 300 training examples, all 2 epochs committed; saving its model" in (
        resumed.stdout
    )
    assert (run / "model_lrd.keras").exists()


@pytest.mark.slow
def test_two_processes_on_one_folder(tmp_path, mnist_dir, tfds_dir):
    os.environ.setdefault("ZOO_TFDS_DIR", tfds_dir)
    os.environ.setdefault("ZOO_MNIST_DIR", str(mnist_dir))
    run = tmp_path / "run"
    env = {**os.environ, "KERAS_BACKEND": "tensorflow"}
    # Epochs enough that the first is still training when the second starts (it is killed).
    flags = [flag if flag != "2" else "1000" for flag in FLAGS]
    first = subprocess.Popen(
        [sys.executable, "-m", "zoo.cli", "ibs-vs-lrd", "run", "--run", str(run), *flags],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert first.stdout.readline().startswith("== lrd")
        second = zoo(["run", "--run", str(run), *flags])
        assert second.returncode == 2
        assert f"in use by another process (pid {first.pid})" in second.stderr
        assert second.stderr.count("\n") == 1
    finally:
        first.kill()
        first.wait()


@pytest.mark.slow
@pytest.mark.parametrize(
    "name, damage",
    [
        ("checkpoint.json", lambda path: path.write_text('{"step": 2, "fi')),
        ("history.csv", lambda path: path.write_bytes(b'schedule,epoch\nlrd,"1\n2')),
        ("schedules.json", lambda path: path.write_text("{")),
        ("config.json", lambda path: path.write_text("{not json")),
        ("model_lrd.keras", lambda path: path.write_bytes(path.read_bytes()[:1000])),
    ],
)
def test_corrupt_files_are_one_line_errors_naming_them(
    uninterrupted, tmp_path, capsys, name, damage
):
    run = tmp_path / "run"
    shutil.copytree(uninterrupted, run)
    damage(run / name)
    # --epochs 3 extends both schedules, reading every file the run keeps
    extend = [flag if flag != "2" else "3" for flag in FLAGS]
    assert main(["ibs-vs-lrd", "run", "--run", str(run), *extend]) == 2
    error = capsys.readouterr().err
    assert error.startswith("zoo: error: ") and error.count("\n") == 1
    assert name in error
