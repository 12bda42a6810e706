"""ibs-vs-lrd: the seed's CNN, the schedule formulas, and short real-MNIST runs through the
run-folder contract (finished reruns, changed flags, divergence, offline data, subcommands)."""

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.testing import run_layer_test
from zoo.callbacks import ExpDecay
from zoo.cli import main
from zoo.errors import UsageError
from zoo.tasks.batch_schedules import ScheduleConfig, SimpleCNN, schedule_callbacks
from zoo.tasks.batch_schedules.config import add_schedules

TINY_FLAGS = [
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


def test_layer_shapes_and_parameter_count_by_hand():
    model = SimpleCNN()
    model.build((None, 28, 28, 1))
    # 28 -> conv s2 VALID 13 -> conv s2 VALID 6 -> pool s1 5 -> 5x5x16 = 400 features
    conv1, conv2, conv3 = 3 * 3 * 1 * 32, 3 * 3 * 32 * 32, 32 * 16 + 16
    dense = 400 * 512 + 512 + 512 * 10 + 10
    assert model.count_params() == conv1 + conv2 + conv3 + dense
    cifar = SimpleCNN(conv3_activation="relu")
    cifar.build((None, 32, 32, 3))
    assert cifar.count_params() == (
        3 * 3 * 3 * 32 + 3 * 3 * 32 * 32 + 32 * 16 + 16 + 576 * 512 + 512 + 5130
    )


def test_simple_cnn_passes_the_layer_checks():
    images = np.random.default_rng(0).uniform(size=(2, 28, 28, 1)).astype("float32")
    run_layer_test(
        SimpleCNN,
        {"conv3_activation": "relu"},
        images,
        (None, 10),
        expected_num_trainable_weights=8,
        run_precision_checks=False,
    )


@pytest.mark.parametrize(
    "schedule, batches, lrs",
    [
        ("lrd", [128, 128, 128, 128], [0.1, 0.09, 0.081, 0.0729]),
        ("ibs", [128, 132, 137, 142], [0.1] * 4),
        ("ibs-equivalent", [128, 142, 158, 175], [0.1] * 4),
        ("hybrid", [128, 134, 142, 149], [0.1 * 0.9 ** (e / 2) for e in range(4)]),
    ],
)
def test_schedule_formulas_for_the_first_epochs(schedule, batches, lrs):
    lr_schedule, ibs = schedule_callbacks(schedule, 45000)
    assert [ibs.batch_size_at(e) for e in range(4)] == batches
    assert isinstance(lr_schedule, ExpDecay)
    np.testing.assert_allclose([lr_schedule.learning_rate_at(e) for e in range(4)], lrs, rtol=1e-9)


def test_ibs_is_capped_at_a_tenth_of_the_data():
    _, ibs = schedule_callbacks("ibs", 45235)
    assert ibs.batch_size_at(149) == 4523


@pytest.mark.parametrize(
    "changes, flag",
    [
        ({"batch_size": 99999999999}, "--batch-size"),
        ({"learning_rate": float("inf")}, "--learning-rate"),
        ({"learning_rate": 0.0}, "--learning-rate"),
        ({"lr_decay": 2.0}, "--lr-decay"),
        ({"ibs_growth": 0.5}, "--ibs-growth"),
        ({"schedules": ("lrd", "fast")}, "--schedules"),
        ({"schedules": ("lrd", "lrd")}, "--schedules"),
        ({"holdout": 1.0}, "--holdout"),
        ({"epochs": 0}, "--epochs"),
    ],
)
def test_bad_settings_name_the_flag(changes, flag):
    with pytest.raises(UsageError, match=flag):
        ScheduleConfig(**changes)


def test_a_resume_may_add_schedules_but_not_drop_them():
    assert add_schedules(("lrd", "ibs"), ("ibs", "hybrid", "lrd")) == ("lrd", "ibs", "hybrid")
    assert add_schedules(("lrd", "ibs"), ("lrd",)) == ("lrd",)


@pytest.mark.parametrize(
    "flags, name",
    [
        (["--schedules", "lrd,fast"], "--schedules"),
        (["--epochs", "0"], "--epochs"),
        (["--lr-decay", "2"], "--lr-decay"),
        (["--batch-size", "99999999999"], "--batch-size"),
    ],
)
def test_bad_flags_are_one_line_errors(flags, name, capsys, tmp_path):
    assert main(["ibs-vs-lrd", "run", "--run", str(tmp_path / "r"), *flags]) == 2
    error = capsys.readouterr().err
    assert name in error and error.count("\n") == 1
    assert not (tmp_path / "r").exists()


def test_quick_is_a_flag_of_the_command_and_explicit_flags_win():
    from zoo.cli import build_parser
    from zoo.tasks.batch_schedules.cli import run_config

    parser = build_parser()
    config, given, saved = run_config(parser.parse_args(["ibs-vs-lrd", "run", "--quick"]))
    assert (config.dataset, config.schedules, config.epochs) == (
        "mnist",
        ("lrd", "ibs-equivalent"),
        30,
    )
    assert given == {"dataset": "mnist", "schedules": ("lrd", "ibs-equivalent"), "epochs": 30}
    args = parser.parse_args(["ibs-vs-lrd", "run", "--quick", "--epochs", "2", "--seed", "3"])
    config, given, _ = run_config(args)
    assert (config.dataset, config.epochs, config.seed) == ("mnist", 2, 3)
    assert ScheduleConfig().epochs == 150  # without --quick, the seed's run


def test_the_example_is_the_command(tmp_path):
    example = Path(__file__).resolve().parents[2] / "examples" / "ibs_vs_lrd.py"
    result = subprocess.run(
        [sys.executable, str(example), "--quick", "--epochs", "0", "--run", str(tmp_path / "r")],
        env={**os.environ, "KERAS_BACKEND": "tensorflow"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert "--epochs" in result.stderr and result.stderr.count("\n") == 1
    assert not (tmp_path / "r").exists()


def test_unprepared_cifar10_fails_fast_without_downloads_and_creates_no_folder(tmp_path):
    # ZOO_NO_DOWNLOAD: a test never fetches from the internet (tests/test_download.py covers
    # the download path against a local server).
    env = {
        **os.environ,
        "KERAS_BACKEND": "tensorflow",
        "ZOO_TFDS_DIR": str(tmp_path / "tfds"),
        "ZOO_NO_DOWNLOAD": "1",
    }
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "zoo.cli", "ibs-vs-lrd", "run", "--run", str(tmp_path / "r")],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert time.monotonic() - started < 10
    assert result.returncode == 2
    assert "cifar10 is not prepared" in result.stderr and "--manual-dir" in result.stderr
    assert "downloads are off" in result.stderr and result.stderr.count("\n") == 1
    assert not (tmp_path / "r").exists() and not (tmp_path / "tfds" / "downloads").exists()


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, mnist_dir, tfds_dir):
    """lrd and ibs-equivalent, 2 epochs each on 300 MNIST images, through the CLI."""
    os.environ.setdefault("ZOO_TFDS_DIR", tfds_dir)
    os.environ.setdefault("ZOO_MNIST_DIR", str(mnist_dir))
    run = tmp_path_factory.mktemp("ibs") / "run"
    assert main(["ibs-vs-lrd", "run", "--run", str(run), *TINY_FLAGS]) == 0
    return run


def folder_bytes(run):
    return {path.name: path.read_bytes() for path in run.iterdir() if path.is_file()}


@pytest.mark.slow
def test_a_run_writes_history_summary_plot_and_models(finished_run):
    history = pd.read_csv(finished_run / "history.csv")
    assert list(history["schedule"]) == ["lrd", "lrd", "ibs-equivalent", "ibs-equivalent"]
    assert list(history["epoch"]) == [1, 2, 1, 2]
    for column in (
        "batch_size",
        "learning_rate",
        "parameter_updates",
        "loss",
        "test_loss",
        "test_accuracy",
        "wall_seconds",
    ):
        assert history[column].notna().all(), column
    lrd = history[history["schedule"] == "lrd"]
    assert list(lrd["parameter_updates"]) == [19, 38]  # ceil(300 / 16) per epoch
    np.testing.assert_allclose(lrd["learning_rate"], [0.1, 0.09], rtol=1e-6)
    ibs = history[history["schedule"] == "ibs-equivalent"]
    assert list(ibs["batch_size"]) == [16, 17]
    assert (finished_run / "ibs_vs_lrd.png").read_bytes()[:4] == b"\x89PNG"
    assert list(pd.read_csv(finished_run / "summary.csv")["schedule"]) == ["lrd", "ibs-equivalent"]
    done = json.loads((finished_run / "schedules.json").read_text())
    assert {name: record["epochs"] for name, record in done.items()} == {
        "lrd": 2,
        "ibs-equivalent": 2,
    }
    for schedule in ("lrd", "ibs-equivalent"):
        assert (finished_run / f"model_{schedule}.keras").exists()
    assert json.loads((finished_run / "metrics.json").read_text())["status"] == "finished"


@pytest.mark.slow
def test_finished_run_rerun_trains_nothing(finished_run, capsys):
    before = folder_bytes(finished_run)
    assert main(["ibs-vs-lrd", "run", "--run", str(finished_run), *TINY_FLAGS]) == 0
    assert "nothing to do" in capsys.readouterr().out
    assert folder_bytes(finished_run) == before


@pytest.mark.slow
def test_rerun_with_another_learning_rate_is_refused(finished_run, capsys):
    before = folder_bytes(finished_run)
    assert (
        main(
            [
                "ibs-vs-lrd",
                "run",
                "--run",
                str(finished_run),
                *TINY_FLAGS,
                "--learning-rate",
                "0.001",
            ]
        )
        == 2
    )
    error = capsys.readouterr().err
    assert "--learning-rate: saved 0.1, given 0.001" in error and error.count("\n") == 1
    assert folder_bytes(finished_run) == before


@pytest.mark.slow
def test_report_rewrites_summary_and_plot(finished_run, tmp_path, capsys):
    copy = tmp_path / "copy"
    shutil.copytree(finished_run, copy)
    (copy / "summary.csv").unlink()
    (copy / "ibs_vs_lrd.png").unlink()
    assert main(["ibs-vs-lrd", "report", "--run", str(copy)]) == 0
    assert list(pd.read_csv(copy / "summary.csv")["schedule"]) == ["lrd", "ibs-equivalent"]
    assert (copy / "ibs_vs_lrd.png").exists()


@pytest.mark.slow  # 30 s; foreign folders in the default run: tests/test_runs.py
def test_another_tasks_folder_is_refused_untouched(
    tmp_path, mnist_dir, tfds_dir, capsys, monkeypatch
):
    monkeypatch.setenv("ZOO_TFDS_DIR", tfds_dir)
    monkeypatch.setenv("ZOO_MNIST_DIR", str(mnist_dir))
    run = tmp_path / "memory_run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"task": "memory-ae", "config": {}}))
    assert main(["ibs-vs-lrd", "run", "--run", str(run), *TINY_FLAGS]) == 2
    assert "holds a 'memory-ae' run" in capsys.readouterr().err
    assert main(["ibs-vs-lrd", "report", "--run", str(run)]) == 2
    assert sorted(path.name for path in run.iterdir()) == [".lock", "config.json"]


@pytest.mark.slow  # a real training run (30 s on 2 cores); make test-all
def test_divergence_fails_the_run_without_results(
    tmp_path, mnist_dir, tfds_dir, capsys, monkeypatch
):
    monkeypatch.setenv("ZOO_TFDS_DIR", tfds_dir)
    monkeypatch.setenv("ZOO_MNIST_DIR", str(mnist_dir))
    run = tmp_path / "r"
    assert main(["ibs-vs-lrd", "run", "--run", str(run), *TINY_FLAGS, "--learning-rate", "50"]) == 3
    assert "learning rate is likely too high" in capsys.readouterr().err
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["status"] == "failed" and "epoch 1" in metrics["error"]
    for name in ("ibs_vs_lrd.png", "summary.csv", "schedules.json", "model_lrd.keras"):
        assert not (run / name).exists(), name


def test_resume_with_another_learning_rate_is_refused_before_anything(
    tmp_path, capsys, mnist_dir, tfds_dir, monkeypatch
):
    from zoo.runs import RunFolder

    monkeypatch.setenv("ZOO_TFDS_DIR", tfds_dir)
    monkeypatch.setenv("ZOO_MNIST_DIR", str(mnist_dir))
    run = tmp_path / "r"
    config = ScheduleConfig(
        dataset="mnist",
        schedules=("lrd", "ibs-equivalent"),
        epochs=2,
        train_limit=300,
        batch_size=16,
    )
    RunFolder.open(run, "ibs-vs-lrd", config).close()
    before = folder_bytes(run)
    assert (
        main(
            [
                "ibs-vs-lrd",
                "run",
                "--run",
                str(run),
                *TINY_FLAGS,
                "--learning-rate",
                "0.001",
                "--batch-size",
                "32",
            ]
        )
        == 2
    )
    error = capsys.readouterr().err
    assert "--learning-rate: saved 0.1, given 0.001" in error
    assert "--batch-size: saved 16, given 32" in error and error.count("\n") == 1
    assert folder_bytes(run) == before


@pytest.mark.slow
def test_a_resume_adds_a_schedule_and_trains_only_it(finished_run, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(finished_run, copy)
    before = pd.read_csv(copy / "history.csv")
    flags = [
        flag if flag != "lrd,ibs-equivalent" else "lrd,ibs-equivalent,hybrid" for flag in TINY_FLAGS
    ]
    assert main(["ibs-vs-lrd", "run", "--run", str(copy), *flags]) == 0
    after = pd.read_csv(copy / "history.csv")
    pd.testing.assert_frame_equal(after.iloc[:4], before)
    assert list(after["schedule"].iloc[4:]) == ["hybrid", "hybrid"]
    config = json.loads((copy / "config.json").read_text())["config"]
    assert config["schedules"] == ["lrd", "ibs-equivalent", "hybrid"]


@pytest.mark.slow
def test_simple_cnn_hypermodel_runs_a_keras_tuner_search(tmp_path, mnist_test_arrays):
    import keras_tuner

    from zoo.tasks.batch_schedules import SimpleCNNHyperModel

    images, labels = mnist_test_arrays
    tuner = keras_tuner.RandomSearch(
        SimpleCNNHyperModel((28, 28, 1), schedules=("lrd", "ibs-equivalent"), batch_sizes=(32,)),
        objective="val_accuracy",
        max_trials=2,
        directory=tmp_path,
        seed=0,
    )
    tuner.search(
        images[:256],
        labels[:256],
        epochs=2,
        validation_data=(images[256:512], labels[256:512]),
        verbose=0,
    )
    best = tuner.get_best_hyperparameters()[0]
    assert best.get("schedule") in ("lrd", "ibs-equivalent")
    assert len(tuner.oracle.trials) == 2


def test_a_data_set_this_machine_cannot_hold_is_refused_before_anything(
    tmp_path, capsys, monkeypatch
):
    monkeypatch.setenv("ZOO_FAKE_AVAILABLE_MEMORY", str(300 * 10**6))
    run = tmp_path / "run"
    assert main(["ibs-vs-lrd", "run", "--dataset", "cifar10", "--run", str(run), "--quiet"]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "--dataset cifar10 need about" in error
    assert not run.exists()
