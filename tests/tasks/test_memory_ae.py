"""Memory-informed AE and set-min AE: models, measures, configs, and short real-MNIST runs
through the run-folder contract (resume, extension, divergence, foreign folders)."""

import json
import os
import shutil
import subprocess
import sys

import keras
import numpy as np
import pytest
from keras import ops

from tests.testing import run_layer_test
from zoo.cli import main
from zoo.errors import UsageError
from zoo.losses import SetMinRandomLoss
from zoo.tasks.memory_ae import (
    VARIANTS,
    CompareConfig,
    MemoryAEConfig,
    MemoryInformedAE,
    SetMinAE,
    SigmaSchedule,
    epoch_batches,
    load_images,
    mean_pairwise_distance,
    selection_perplexity,
    slots_used,
    train,
    winner_histogram,
)

TINY = {"epochs": 2, "train_limit": 300, "hidden": 16, "batch_size": 50, "code_dims": 4}
TINY_FLAGS = [
    "--epochs",
    "2",
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


@pytest.fixture
def mnist_env(mnist_dir, tfds_dir, monkeypatch):
    monkeypatch.setenv("ZOO_TFDS_DIR", tfds_dir)
    monkeypatch.setenv("ZOO_MNIST_DIR", str(mnist_dir))


@pytest.fixture(scope="module")
def images(mnist_dir, tfds_dir):
    os.environ.setdefault("ZOO_TFDS_DIR", tfds_dir)
    os.environ.setdefault("ZOO_MNIST_DIR", str(mnist_dir))
    return load_images(TINY["train_limit"])


def test_models_pass_the_layer_checks():
    codes = np.random.default_rng(0).normal(size=(3, 6)).astype("float32")
    run_layer_test(
        MemoryInformedAE,
        {"slots": 4, "hidden": 8, "floss_weight": 0.1},
        codes,
        [(None, 784), (None, 784)],
        run_precision_checks=False,
    )
    run_layer_test(
        SetMinAE,
        {"subnets": 3, "hidden": 8},
        codes,
        (None, 3, 784),
        expected_num_trainable_weights=3 * 4,
        run_precision_checks=False,
    )


def test_memory_output_is_selection_dot_sigmoid_memory():
    model = MemoryInformedAE(slots=4, units=5, hidden=8)
    codes = np.random.default_rng(1).normal(size=(3, 6)).astype("float32")
    memory_output, informed = model(codes)
    selection = ops.convert_to_numpy(model.selection(codes))
    array = ops.convert_to_numpy(model.memory.memory)
    np.testing.assert_allclose(memory_output, selection @ (1 / (1 + np.exp(-array))), rtol=1e-5)
    candidates = 1 / (1 + np.exp(-ops.convert_to_numpy(model.candidates(codes))))
    np.testing.assert_allclose(informed, np.einsum("bs,bsu->bu", selection, candidates), rtol=1e-5)
    np.testing.assert_allclose(selection.sum(axis=1), 1.0, rtol=1e-5)


def test_setmin_loss_trains_the_best_subnet_at_sigma_zero():
    model = SetMinAE(subnets=3, units=4, hidden=8)
    codes = np.random.default_rng(2).normal(size=(5, 6)).astype("float32")
    outputs = ops.convert_to_numpy(model(codes))
    targets = outputs[:, 1] + 0.001  # subnet 1 is nearly exact for every example
    loss = SetMinRandomLoss(sigma=0.0)
    assert list(ops.convert_to_numpy(loss.select(loss.subnet_losses(targets, outputs)))) == [1] * 5
    assert list(winner_histogram(outputs, targets)) == [0, 5, 0]


def test_measures_on_hand_made_selections():
    one_hot = np.eye(4)[[0, 0, 2, 2]]
    assert slots_used(one_hot) == 2
    assert selection_perplexity(one_hot) == pytest.approx(2.0)
    assert selection_perplexity(np.full((3, 4), 0.25)) == pytest.approx(4.0)
    outputs = np.zeros((2, 3, 4))
    outputs[:, 1] = 1.0
    assert mean_pairwise_distance(outputs) == pytest.approx(2 / 3)  # pairs 1, 0, 1


def test_sigma_schedule_splits_one_two_one():
    schedule = SigmaSchedule(SetMinRandomLoss(), epochs=8)
    assert [schedule.sigma_at(e) for e in range(8)] == [1, 1, 10, 10, 10, 10, 100, 100]


def test_epoch_batches_order_depends_only_on_seed_and_epoch():
    x = np.arange(10)

    def epoch_rows(seed, epoch):
        _, follow = epoch_batches(x, (x, x), batch_size=3, seed=seed)
        follow.on_epoch_begin(epoch)  # what fit(initial_epoch=epoch) does first
        return np.concatenate([follow.data[i][0] for i in range(len(follow.data))]).tolist()

    orders = [epoch_rows(7, epoch) for epoch in range(3)]
    assert all(sorted(order) == list(range(10)) for order in orders)
    assert orders[0] != orders[1]
    # Epoch 2 of a run resumed there equals epoch 2 of the uninterrupted run.
    assert epoch_rows(7, 2) == orders[2] and epoch_rows(8, 2) != orders[2]
    data, follow = epoch_batches(x, (x, x), batch_size=3, seed=7)
    follow.on_epoch_begin(2)
    if keras.backend.backend() == "tensorflow":  # the batches computed inside tf.data
        served = [(a.tolist(), (b.tolist(), c.tolist())) for a, (b, c) in data.as_numpy_iterator()]
        assert served == [
            (a.tolist(), (b.tolist(), c.tolist()))
            for a, (b, c) in (follow.data[i] for i in range(len(follow.data)))
        ]


def test_save_load_round_trip(tmp_path):
    codes = np.random.default_rng(3).normal(size=(3, 6)).astype("float32")
    for model in (
        MemoryInformedAE(slots=3, hidden=8, floss_weight=0.1),
        SetMinAE(subnets=2, hidden=8),
    ):
        expected = model.predict(codes, verbose=0)
        model.save(tmp_path / "m.keras")
        restored = keras.saving.load_model(tmp_path / "m.keras")
        for got, want in zip(
            np.atleast_1d(restored.predict(codes, verbose=0)), np.atleast_1d(expected)
        ):
            np.testing.assert_array_equal(got, want)


def test_every_compare_variant_has_its_own_title():
    titles = [CompareConfig().variant_config(name).describe() for name in VARIANTS]
    assert len(set(titles)) == len(VARIANTS)
    assert "SignSGD" in CompareConfig().variant_config("memory-signsgd").describe()
    assert "1 - max F" in CompareConfig().variant_config("memory-adam-floss").describe()
    assert "sigma 0" in CompareConfig().variant_config("setmin-sigma0").describe()


@pytest.mark.parametrize(
    "changes, flag",
    [
        ({"code_dims": 0}, "--code-dims"),
        ({"code_dims": 785}, "--code-dims"),
        ({"sigma": "big"}, "--sigma"),
        ({"sigma": "nan"}, "--sigma"),
        ({"floss_weight": -1.0}, "--floss-weight"),
        ({"learning_rate": float("inf")}, "--learning-rate"),
        ({"batch_size": 99999999999}, "--batch-size"),
        ({"epochs": 0}, "--epochs"),
    ],
)
def test_bad_settings_name_the_flag(changes, flag):
    with pytest.raises(UsageError, match=flag):
        MemoryAEConfig(**changes)


@pytest.mark.parametrize(
    "flags, name",
    [
        (["train", "--sigma", "big"], "--sigma"),
        (["train", "--batch-size", "99999999999"], "--batch-size"),
        (["compare", "--variants", "memory-adam,fast"], "--variants"),
        (["compare", "--target-mse", "0"], "--target-mse"),
    ],
)
def test_bad_flags_are_one_line_errors(flags, name, capsys, tmp_path):
    assert main(["memory-ae", *flags, "--run", str(tmp_path / "r")]) == 2
    error = capsys.readouterr().err
    assert name in error and error.count("\n") == 1
    assert not (tmp_path / "r").exists()


def test_compare_lists_no_flag_it_ignores(capsys):
    with pytest.raises(SystemExit):
        main(["memory-ae", "compare", "--help"])
    text = capsys.readouterr().out
    for ignored in ("--model", "--optimizer", "--learning-rate", "--sigma", "--floss-weight"):
        assert ignored not in text


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, mnist_dir, tfds_dir):
    """A tiny memory-AE run trained through the CLI (2 epochs of 300 images)."""
    os.environ.setdefault("ZOO_TFDS_DIR", tfds_dir)
    os.environ.setdefault("ZOO_MNIST_DIR", str(mnist_dir))
    run = tmp_path_factory.mktemp("memory_ae") / "run"
    assert main(["memory-ae", "train", "--run", str(run), *TINY_FLAGS]) == 0
    return run


def test_a_run_writes_its_files_and_learns(finished_run):
    history = json.loads((finished_run / "metrics.json").read_text())
    assert history["status"] == "finished" and history["epochs"] == 2
    for name in ("grid.png", "curves.png", "pca.npz", "model.keras", "history.csv"):
        assert (finished_run / name).exists(), name
    import pandas as pd

    rows = pd.read_csv(finished_run / "history.csv")
    assert list(rows["epoch"]) == [1, 2]
    # an untrained decoder outputs about 0.5 everywhere: MSE about 0.2 on MNIST
    assert rows["test_mse_informed"].iloc[-1] < rows["test_mse_informed"].iloc[0] < 0.3


def test_finished_run_rerun_trains_nothing(finished_run, capsys):
    before = (finished_run / "history.csv").read_bytes()
    assert main(["memory-ae", "train", "--run", str(finished_run), *TINY_FLAGS]) == 0
    assert "nothing to do" in capsys.readouterr().out
    assert (finished_run / "history.csv").read_bytes() == before


def test_resume_with_a_changed_flag_names_it_and_changes_nothing(finished_run, capsys):
    files = {path.name: path.read_bytes() for path in finished_run.iterdir() if path.is_file()}
    assert (
        main(
            [
                "memory-ae",
                "train",
                "--run",
                str(finished_run),
                *TINY_FLAGS,
                "--learning-rate",
                "0.01",
                "--seed",
                "3",
            ]
        )
        == 2
    )
    error = capsys.readouterr().err
    assert "--learning-rate: saved 0.001, given 0.01" in error
    assert "--seed: saved 0, given 3" in error
    assert error.count("\n") == 1
    after = {path.name: path.read_bytes() for path in finished_run.iterdir() if path.is_file()}
    assert after == files


def test_show_redraws_the_pictures(finished_run, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(finished_run, copy)
    (copy / "grid.png").unlink()
    assert main(["memory-ae", "show", "--run", str(copy)]) == 0
    assert (copy / "grid.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.slow
def test_extending_a_run_equals_training_it_longer(tmp_path, images, mnist_env):
    whole = train(
        MemoryAEConfig(**{**TINY, "epochs": 3}), tmp_path / "whole", images=images, verbose=0
    )
    part = train(MemoryAEConfig(**TINY), tmp_path / "part", images=images, verbose=0)
    assert part.status == "finished"
    extended = train(
        MemoryAEConfig(**{**TINY, "epochs": 3}),
        tmp_path / "part",
        given={"epochs": 3},
        images=images,
        verbose=0,
    )
    history, resumed = whole.history(), extended.history()
    assert list(resumed["epoch"]) == [1, 2, 3]
    columns = [column for column in history if column != "wall_seconds"]
    np.testing.assert_array_equal(resumed[columns].to_numpy(), history[columns].to_numpy())
    assert resumed["wall_seconds"].is_monotonic_increasing
    for got, want in zip(extended.load_model().get_weights(), whole.load_model().get_weights()):
        np.testing.assert_array_equal(got, want)


def test_another_tasks_folder_is_refused_untouched(tmp_path, capsys):
    run = tmp_path / "argmax_run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"task": "argmax", "config": {}}))
    (run / "model.keras").write_bytes(b"argmax's model")
    assert main(["memory-ae", "train", "--run", str(run), *TINY_FLAGS]) == 2
    assert "holds a 'argmax' run" in capsys.readouterr().err
    assert (run / "model.keras").read_bytes() == b"argmax's model"
    assert sorted(path.name for path in run.iterdir()) == [".lock", "config.json", "model.keras"]


def test_a_second_process_on_the_folder_fails_at_once(tmp_path, capsys):
    run = tmp_path / "r"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            (
                "import sys, time\n"
                "from zoo.runs import RunFolder\n"
                "from zoo.tasks.memory_ae.config import MemoryAEConfig\n"
                f"run = RunFolder.open({str(run)!r}, 'memory-ae', MemoryAEConfig())\n"
                "print('locked', flush=True)\n"
                "time.sleep(60)\n"
            ),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        assert main(["memory-ae", "train", "--run", str(run), *TINY_FLAGS]) == 2
        assert f"in use by another process (pid {holder.pid})" in capsys.readouterr().err
    finally:
        holder.kill()
        holder.wait()


@pytest.mark.slow
def test_nan_learning_rate_fails_the_run(tmp_path, mnist_env, capsys):
    run = tmp_path / "r"
    code = main(["memory-ae", "train", "--run", str(run), *TINY_FLAGS, "--learning-rate", "1e30"])
    assert code == 3
    assert "the learning rate is likely too high" in capsys.readouterr().err
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["status"] == "failed" and "epoch 1" in metrics["error"]
    assert not (run / "grid.png").exists() and not (run / "model.keras").exists()
