import numpy as np
import pandas as pd
import pytest

from zoo.callbacks import ExpDecay
from zoo.tasks.batch_schedules import ScheduleConfig, SimpleCNN, compare, schedule_callbacks
from zoo.cli import main


def test_layer_shapes_and_parameter_count_by_hand():
    model = SimpleCNN()
    model.build((None, 28, 28, 1))
    # 28 -> conv s2 VALID 13 -> conv s2 VALID 6 -> pool s1 5 -> 5x5x16 = 400 features
    conv1, conv2, conv3 = 3 * 3 * 1 * 32, 3 * 3 * 32 * 32, 32 * 16 + 16
    dense = 400 * 512 + 512 + 512 * 10 + 10
    assert model.count_params() == conv1 + conv2 + conv3 + dense
    assert model.conv1.compute_output_shape((None, 28, 28, 1)) == (None, 13, 13, 32)
    cifar = SimpleCNN(conv3_activation="relu")
    cifar.build((None, 32, 32, 3))
    assert cifar.count_params() == 3 * 3 * 3 * 32 + 3 * 3 * 32 * 32 + 32 * 16 + 16 + 576 * 512 + 512 + 5130


@pytest.mark.parametrize("schedule, batches, lrs", [
    ("lrd", [128, 128, 128, 128], [0.1, 0.09, 0.081, 0.0729]),
    ("ibs", [128, 132, 137, 142], [0.1] * 4),
    ("ibs-equivalent", [128, 142, 158, 175], [0.1] * 4),
    ("hybrid", [128, 134, 142, 149], [0.1 * 0.9 ** (e / 2) for e in range(4)]),
])
def test_schedule_formulas_for_the_first_epochs(schedule, batches, lrs):
    lr_callback, ibs = schedule_callbacks(schedule, 45000)
    assert [ibs.batch_size_at(e) for e in range(4)] == batches
    assert isinstance(lr_callback, ExpDecay)
    np.testing.assert_allclose([lr_callback.learning_rate_at(e) for e in range(4)], lrs, rtol=1e-9)


def test_ibs_is_capped_at_a_tenth_of_the_data():
    _, ibs = schedule_callbacks("ibs", 45235)
    assert ibs.batch_size_at(149) == 4523


def test_two_epochs_on_real_mnist_write_the_csv_and_plots(tmp_path, mnist_dir, tfds_dir, monkeypatch):
    monkeypatch.setenv("ZOO_TFDS_DIR", tfds_dir)
    config = ScheduleConfig(schedules="lrd,ibs-equivalent", dataset="mnist", epochs=2, train_limit=3000,
                            manual_dir=str(mnist_dir), run=str(tmp_path / "run"))
    run = compare(config, verbose=0)
    history = pd.read_csv(run.file("history.csv"))
    assert len(history) == 4 and history["learning_rate"].notna().all()
    assert list(history["schedule"]) == ["lrd", "lrd", "ibs-equivalent", "ibs-equivalent"]
    for column in ("epoch", "batch_size", "learning_rate", "parameter_updates", "loss", "test_loss", "test_accuracy", "wall_seconds"):
        assert column in history, column
    lrd = history[history["schedule"] == "lrd"]
    assert list(lrd["parameter_updates"]) == [24, 48]  # ceil(3000 / 128) per epoch
    assert history["test_accuracy"].iloc[1] > 0.5
    assert run.file("ibs_vs_lrd.png").read_bytes()[:4] == b"\x89PNG"
    summary = pd.read_csv(run.file("summary.csv"))
    assert list(summary["schedule"]) == ["lrd", "ibs-equivalent"]


def test_cifar10_path_under_tfds_mock_data(tmp_path, monkeypatch):
    import tensorflow_datasets as tfds

    monkeypatch.delenv("ZOO_TFDS_DIR", raising=False)
    with tfds.testing.mock_data(num_examples=300, policy=tfds.testing.MockPolicy.USE_CODE):
        run = compare(ScheduleConfig(schedules="ibs", epochs=1, run=str(tmp_path / "c")), verbose=0)
    history = pd.read_csv(run.file("history.csv"))
    assert len(history) == 1 and history["batch_size"][0] == 128


@pytest.mark.parametrize("flags, name", [
    (["--schedules", "lrd,fast"], "--schedules"),
    (["--epochs", "0"], "--epochs"),
    (["--lr-decay", "2"], "--lr-decay"),
])
def test_bad_flags(flags, name, capsys):
    assert main(["ibs-vs-lrd", *flags]) == 2
    assert name in capsys.readouterr().err
