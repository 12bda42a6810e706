"""The run lifecycle (`zoo.lifecycle`) through the toy experiment of `tests/toy_experiment.py`,
which has no lifecycle code of its own: kill -9 at exact instants, signals, a full disk, torn
files, divergence, bad paths and TensorBoard, with the fault harness every task's suite uses."""

import json
import os
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from tests import faults
from tests import toy_experiment as toy
from zoo.runs import RunFolder, atomic_write_bytes

TOY = faults.Command("tests.toy_experiment", ("train",), ("--quiet",))
EPOCHS = 4
BATCHES = 8  # 256 samples in batches of 32


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    run = tmp_path_factory.mktemp("toy") / "uninterrupted"
    assert toy.main(["train", "--run", str(run), "--quiet"]) == 0
    return run


def one_line_error(text: str) -> str:
    assert text.startswith("zoo: error: ") and text.count("\n") == 1, text
    return text


# --- kill -9 at exact instants ----------------------------------------------------------------


def test_a_kill_inside_an_epoch_resumes_to_the_uninterrupted_run(reference, tmp_path):
    run = tmp_path / "run"
    faults.kill_and_resume(TOY, run, f"train-batch:{2 * BATCHES + 3}")
    faults.assert_same_run(run, reference)


@pytest.mark.slow
@pytest.mark.parametrize(
    "crash",
    [
        "history-written:2",  # epoch 2's row written, its checkpoint not committed
        "checkpoint-before-commit:3",
        "checkpoint-after-commit:4",  # every epoch committed, the model not yet saved
        "atomic-write-tmp:5",
        "atomic-write-tmp:11",
    ],
)
def test_a_kill_at_each_commit_instant_resumes_to_the_uninterrupted_run(reference, tmp_path, crash):
    run = tmp_path / "run"
    faults.kill_and_resume(TOY, run, crash)
    faults.assert_same_run(run, reference)


# --- signals -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["SIGINT", pytest.param("SIGTERM", marks=pytest.mark.slow)])
def test_one_signal_commits_the_epoch_in_flight_and_exits_130(reference, tmp_path, name):
    run = tmp_path / "run"
    # the signal arrives during epoch 2 (after its third batch)
    stopped = faults.launch(
        TOY, run, crash=f"train-batch:{BATCHES + 3}", env={"ZOO_TEST_CRASH_SIGNAL": name}
    )
    assert stopped.returncode == 130, stopped.stderr[-3000:]
    assert "finishing the epoch in flight" in stopped.stderr
    assert "interrupted after committing epoch 2" in one_line_error(
        stopped.stderr.splitlines()[-1] + "\n"
    )
    assert faults.metrics(run)["status"] == "interrupted"
    assert json.loads((run / "checkpoint.json").read_text())["step"] == 2
    assert len(RunFolder(run, "toy").history_rows()[1]) == 2
    resumed = faults.launch(TOY, run)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    faults.assert_same_run(run, reference)


@pytest.mark.slow
def test_a_second_ctrl_c_stops_at_once_and_the_run_still_resumes(reference, tmp_path):
    run = tmp_path / "run"
    slow = TOY.with_flags("--quiet", "--samples", "200000", "--batch-size", "8")
    code, _, stderr = faults.signal_after(slow, run, signal.SIGINT, times=2)
    assert code == 130, stderr[-3000:]
    assert faults.metrics(run)["status"] == "interrupted"
    assert "second interrupt" in faults.metrics(run)["error"]


# --- files the disk or a user damaged ------------------------------------------------------


def test_a_history_torn_inside_its_committed_rows_is_refused_in_one_line(
    reference, tmp_path, capsys
):
    run = faults.copy_run(reference, tmp_path / "run")
    faults.tear_history_row(run / "history.csv", row=1)
    before = (run / "history.csv").read_bytes()
    assert toy.main(["train", "--run", str(run), "--quiet", "--epochs", "6"]) == 2
    error = one_line_error(capsys.readouterr().err)
    assert "history.csv" in error and "changed or torn" in error
    assert (run / "history.csv").read_bytes() == before  # nothing repaired behind the user's back
    with pytest.raises(Exception, match="changed or torn"):
        RunFolder.existing(run, "toy", toy.ToyConfig())


def test_a_shortened_history_is_refused_in_one_line(reference, tmp_path, capsys):
    run = faults.copy_run(reference, tmp_path / "run")
    lines = (run / "history.csv").read_text().splitlines()
    (run / "history.csv").write_text("\n".join(lines[:2]) + "\n")
    assert toy.main(["train", "--run", str(run), "--quiet", "--epochs", "6"]) == 2
    error = one_line_error(capsys.readouterr().err)
    assert f"holds 1 rows, but checkpoint.json committed {EPOCHS}" in error


@pytest.mark.parametrize("name", ["checkpoint.json", "checkpoints"])
def test_a_damaged_checkpoint_is_named_in_one_line(reference, tmp_path, capsys, name):
    run = faults.copy_run(reference, tmp_path / "run")
    target = run / name
    for path in target.iterdir() if target.is_dir() else [target]:
        faults.truncate(path)
    assert toy.main(["train", "--run", str(run), "--quiet", "--epochs", "6"]) == 2
    error = one_line_error(capsys.readouterr().err)
    assert name in error


# --- a full disk ------------------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path):
    """A 3 MB tmpfs (root only): the disk a run fills up."""
    mount = tmp_path / "disk"
    mount.mkdir()
    made = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mount)], capture_output=True
    )
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({made.stderr.decode().strip()}); needs root")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(disk: Path, leave: int) -> Path:
    """Fills `disk` up to `leave` free bytes with a file, returned."""
    filler = disk / "filler"
    free = shutil.disk_usage(disk).free
    with open(filler, "wb") as handle:
        handle.write(bytes(max(0, free - leave)))
    return filler


def test_a_full_disk_stops_the_run_in_one_line_and_the_same_command_resumes(
    reference, small_disk, capsys
):
    run = small_disk / "run"
    assert toy.main(["train", "--run", str(run), "--quiet", "--epochs", "1"]) == 0
    filler = fill(small_disk, leave=(1 << 20) + 4096)  # the reserve and a page
    extend = ["train", "--run", str(run), "--quiet", "--epochs", str(EPOCHS)]
    assert toy.main(extend) == 2
    error = one_line_error(capsys.readouterr().err)
    assert "No space left on device" in error and str(run) in error
    status = faults.metrics(run)
    assert status["status"] == "failed" and "No space left on device" in status["error"]
    filler.unlink()
    assert toy.main(extend) == 0
    faults.assert_same_run(run, reference)


def test_a_new_run_on_a_full_disk_is_one_line_and_leaves_no_folder(small_disk, capsys):
    fill(small_disk, leave=0)
    run = small_disk / "run"
    assert toy.main(["train", "--run", str(run), "--quiet"]) == 2
    error = one_line_error(capsys.readouterr().err)
    assert "No space left on device" in error
    assert not run.exists()


# --- divergence, bugs, bad paths ----------------------------------------------------------


def test_a_diverging_run_fails_loudly_and_is_marked_failed(tmp_path, capsys):
    run = tmp_path / "run"
    assert toy.main(["train", "--run", str(run), "--quiet", "--learning-rate", "1000"]) == 3
    error = one_line_error(capsys.readouterr().err)
    assert "the loss became" in error
    assert faults.metrics(run)["status"] == "failed"


def test_a_bug_keeps_its_traceback_and_the_run_is_marked_failed(tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("a bug in the recipe")

    monkeypatch.setattr(toy, "build_model", broken)
    run = tmp_path / "run"
    with pytest.raises(RuntimeError, match="a bug in the recipe"):
        toy.main(["train", "--run", str(run), "--quiet"])
    status = faults.metrics(run)
    assert status["status"] == "failed" and "a bug in the recipe" in status["error"]


@pytest.mark.parametrize(
    "path, message",
    [("", "must name a folder"), ("x" * 300, "this file system allows 255")],
)
def test_a_bad_run_path_is_one_line_and_creates_nothing(tmp_path, capsys, path, message):
    os.chdir(tmp_path)
    assert toy.main(["train", "--run", path, "--quiet"]) == 2
    assert message in one_line_error(capsys.readouterr().err)
    assert list(tmp_path.iterdir()) == []


# --- ordinary files ---------------------------------------------------------------------------


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o027, 0o640), (0o002, 0o664)])
def test_files_get_the_mode_a_plain_open_would_give(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        written = atomic_write_bytes(tmp_path / "file.json", b"{}")
        with open(tmp_path / "plain", "w"):
            pass
    finally:
        os.umask(old)
    assert written.stat().st_mode & 0o777 == mode
    assert (tmp_path / "plain").stat().st_mode & 0o777 == mode


def test_every_file_of_a_run_is_readable_by_others_under_umask_022(reference):
    for path in reference.rglob("*"):
        if path.is_file():
            assert path.stat().st_mode & 0o044 == 0o044, path


# --- TensorBoard ------------------------------------------------------------------------------


def tensorboard_events(run: Path) -> tuple:
    """`(scalars, tags)`: every scalar by tag as `[(step, value)]`, and every tag written."""
    import tensorflow as tf
    from tensorboard.backend.event_processing import event_accumulator

    accumulator = event_accumulator.EventAccumulator(str(run / "tensorboard"), size_guidance={})
    accumulator.Reload()
    found, tags = {}, accumulator.Tags()["tensors"]
    for tag in tags:
        for event in accumulator.Tensors(tag):
            value = tf.make_ndarray(event.tensor_proto)
            if value.ndim == 0 and value.dtype.kind == "f":
                found.setdefault(tag, []).append((event.step, float(value)))
    return found, tags


def test_tensorboard_shows_every_committed_epoch_and_the_config(reference):
    import pandas as pd

    history = pd.read_csv(reference / "history.csv")
    found, tags = tensorboard_events(reference)
    assert [step for step, _ in found["loss"]] == list(range(1, EPOCHS + 1))
    assert [value for _, value in found["loss"]] == pytest.approx(list(history["loss"]), rel=1e-6)
    assert "_hparams_/session_start_info" in tags  # the config, as HParams


@pytest.mark.slow
def test_tensorboard_never_shows_a_rolled_back_epoch(tmp_path):
    run = tmp_path / "run"
    faults.kill_and_resume(TOY, run, "history-written:3")
    found, _ = tensorboard_events(run)
    assert [step for step, _ in found["loss"]] == list(range(1, EPOCHS + 1))
