"""Memory AE under faults: kill -9 at seeded instants (inside epochs, inside history and
checkpoint writes), rerun, and the run equals an uninterrupted one; corrupt files are one-line
errors naming the file."""

import os
import random
import shutil

import pandas as pd
import pytest

from tests import faults
from zoo.cli import main

FLAGS = [
    "--model",
    "setmin",
    "--epochs",
    "3",
    "--train-limit",
    "300",
    "--hidden",
    "16",
    "--batch-size",
    "50",
    "--code-dims",
    "4",
    "--quiet",
]
BATCHES = 3 * 6  # 300 images in batches of 50, 3 epochs
SEEDS = random.Random(20260001)


COMMAND = faults.Command("zoo.cli", ("memory-ae", "train"), tuple(FLAGS))


def zoo(args, crash=None):
    """`zoo memory-ae ...` in a fresh process, optionally killed at crash point `crash`."""
    return faults.zoo("memory-ae", *args, crash=crash)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, mnist_dir, tfds_dir):
    os.environ.setdefault("ZOO_TFDS_DIR", tfds_dir)
    os.environ.setdefault("ZOO_MNIST_DIR", str(mnist_dir))
    run = tmp_path_factory.mktemp("memory_ae_faults") / "whole"
    assert main(["memory-ae", "train", "--run", str(run), *FLAGS]) == 0
    return run


def assert_same_run(run, reference):
    faults.assert_same_run(run, reference)
    assert list(pd.read_csv(run / "history.csv")["epoch"]) == [1, 2, 3]


def kill_and_resume(run, crash):
    faults.kill_and_resume(COMMAND, run, crash)


@pytest.mark.slow  # 48 s; the toy's suite kills inside an epoch in the default run
def test_kill_inside_an_epoch_resumes_exactly(uninterrupted, tmp_path):
    run = tmp_path / "run"
    kill_and_resume(run, f"train-batch:{SEEDS.randint(7, BATCHES - 1)}")
    assert_same_run(run, uninterrupted)


@pytest.mark.slow
@pytest.mark.parametrize(
    "crash",
    [
        "history-written:2",  # the row of epoch 2 written, its checkpoint not committed
        "checkpoint-before-commit:1",
        "checkpoint-after-commit:3",  # the last epoch committed, the model not yet saved
        f"atomic-write-tmp:{SEEDS.randint(3, 14)}",
        f"atomic-write-tmp:{SEEDS.randint(3, 14)}",
        f"train-batch:{SEEDS.randint(1, BATCHES - 1)}",
    ],
)
def test_kill_at_seeded_instants_resumes_exactly(uninterrupted, tmp_path, crash):
    run = tmp_path / "run"
    kill_and_resume(run, crash)
    assert_same_run(run, uninterrupted)


@pytest.mark.slow
def test_sigkill_at_a_seeded_time_resumes_exactly(uninterrupted, tmp_path):
    run = tmp_path / "run"
    faults.sigkill_after(COMMAND, run, SEEDS.uniform(8, 25))
    resumed = zoo(["train", "--run", str(run), *FLAGS])
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert_same_run(run, uninterrupted)


@pytest.mark.slow
def test_compare_skips_finished_variants_and_resumes_the_interrupted_one(
    tmp_path, mnist_dir, tfds_dir
):
    os.environ.setdefault("ZOO_TFDS_DIR", tfds_dir)
    os.environ.setdefault("ZOO_MNIST_DIR", str(mnist_dir))
    run = tmp_path / "compare"
    flags = [
        "--run",
        str(run),
        "--variants",
        "memory-adam,setmin-sigma0",
        "--epochs",
        "2",
        "--train-limit",
        "300",
        "--hidden",
        "16",
        "--batch-size",
        "100",
        "--quiet",
    ]
    killed = zoo(["compare", *flags], crash="train-batch:9")  # inside setmin-sigma0, epoch 1
    assert killed.returncode == 137
    first = (run / "memory-adam" / "history.csv").read_bytes()
    resumed = zoo(["compare", *flags])
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "is finished (2 epochs); nothing to do" in resumed.stdout
    assert (run / "memory-adam" / "history.csv").read_bytes() == first
    table = pd.read_csv(run / "compare.csv")
    assert list(table["variant"]) == ["memory-adam", "setmin-sigma0"]
    assert list(pd.read_csv(run / "setmin-sigma0" / "history.csv")["epoch"]) == [1, 2]
    grids = {variant: (run / variant / "grid.png").read_bytes() for variant in table["variant"]}
    assert grids["memory-adam"] != grids["setmin-sigma0"]


@pytest.mark.slow
@pytest.mark.parametrize(
    "name, damage",
    [
        ("checkpoint.json", lambda path: path.write_text('{"step": 3, "fi')),
        ("history.csv", lambda path: path.write_bytes(b'epoch,loss\n1,"0.5\n2')),
        ("pca.npz", lambda path: path.write_bytes(path.read_bytes()[:100])),
        ("config.json", lambda path: path.write_text("{not json")),
        (
            "checkpoints",
            lambda path: [file.write_bytes(file.read_bytes()[:200]) for file in path.iterdir()],
        ),
    ],
)
def test_corrupt_files_are_one_line_errors_naming_them(
    uninterrupted, tmp_path, capsys, name, damage
):
    run = tmp_path / "run"
    shutil.copytree(uninterrupted, run)
    damage(run / name)
    extend = [flag if flag != "3" else "4" for flag in FLAGS]  # --epochs 4 reads the state
    assert main(["memory-ae", "train", "--run", str(run), *extend]) == 2
    error = capsys.readouterr().err
    assert error.startswith("zoo: error: ") and error.count("\n") == 1
    assert name in error


@pytest.mark.slow
def test_truncated_model_is_named_by_show(uninterrupted, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(uninterrupted, run)
    model = run / "model.keras"
    model.write_bytes(model.read_bytes()[:1000])
    assert main(["memory-ae", "show", "--run", str(run)]) == 2
    error = capsys.readouterr().err
    assert "model.keras" in error and error.count("\n") == 1


@pytest.mark.parametrize("command", ["train", "show"])
def test_a_history_torn_inside_its_committed_rows_is_refused(
    uninterrupted, tmp_path, capsys, command
):
    run = faults.copy_run(uninterrupted, tmp_path / "run")
    faults.tear_history_row(run / "history.csv", row=1)
    extend = [flag if flag != "3" else "4" for flag in FLAGS] if command == "train" else []
    assert main(["memory-ae", command, "--run", str(run), *extend]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "history.csv" in error and "changed or torn" in error
