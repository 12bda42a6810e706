import keras
import numpy as np
import pytest
from keras import ops

from zoo.tasks.memory_ae import (
    MemoryAEConfig,
    MemoryInformedAE,
    SetMinAE,
    SigmaSchedule,
    mean_pairwise_distance,
    selection_perplexity,
    slots_used,
    train,
    winner_histogram,
)
from zoo.losses import SetMinRandomLoss
from zoo.cli import main


def test_output_shapes():
    memory, informed = MemoryInformedAE(slots=4, hidden=8)(np.zeros((3, 6), "float32"))
    assert memory.shape == informed.shape == (3, 784)
    assert SetMinAE(subnets=3, hidden=8)(np.zeros((2, 6), "float32")).shape == (2, 3, 784)


def test_memory_output_is_selection_dot_sigmoid_memory():
    model = MemoryInformedAE(slots=4, units=5, hidden=8)
    codes = np.random.randn(3, 6).astype("float32")
    memory_output, informed = model(codes)
    selection = ops.convert_to_numpy(model.selection(codes))
    array = ops.convert_to_numpy(model.memory.memory)
    np.testing.assert_allclose(memory_output, selection @ (1 / (1 + np.exp(-array))), rtol=1e-5)
    candidates = 1 / (1 + np.exp(-ops.convert_to_numpy(model.candidates(codes))))
    np.testing.assert_allclose(informed, np.einsum("bs,bsu->bu", selection, candidates), rtol=1e-5)
    np.testing.assert_allclose(selection.sum(axis=1), 1.0, rtol=1e-5)


def test_setmin_loss_trains_the_best_subnet_at_sigma_zero():
    model = SetMinAE(subnets=3, units=4, hidden=8)
    codes = np.random.randn(5, 6).astype("float32")
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
    # pairs (0,1)=1, (0,2)=0, (1,2)=1
    assert mean_pairwise_distance(outputs) == pytest.approx(2 / 3)


def test_sigma_schedule_splits_one_two_one():
    schedule = SigmaSchedule(SetMinRandomLoss(), epochs=8)
    assert [schedule.sigma_at(e) for e in range(8)] == [1.0, 1.0, 10.0, 10.0, 10.0, 10.0, 100.0, 100.0]


def test_save_load_round_trip(tmp_path):
    codes = np.random.randn(3, 6).astype("float32")
    for model in (MemoryInformedAE(slots=3, hidden=8, floss_weight=0.1), SetMinAE(subnets=2, hidden=8)):
        expected = model.predict(codes, verbose=0)
        model.save(tmp_path / "m.keras")
        restored = keras.saving.load_model(tmp_path / "m.keras")
        for got, want in zip(np.atleast_1d(restored.predict(codes, verbose=0)), np.atleast_1d(expected)):
            np.testing.assert_array_equal(got, want)


def test_short_real_mnist_training_lowers_both_outputs_mse(tmp_path, mnist_dir, tfds_dir, monkeypatch):
    monkeypatch.setenv("ZOO_TFDS_DIR", tfds_dir)
    monkeypatch.setenv("ZOO_MNIST_DIR", str(mnist_dir))
    config = MemoryAEConfig(epochs=3, train_limit=4000, hidden=64, learning_rate=3e-3, run=str(tmp_path / "m"))
    run = train(config, verbose=0)
    history = run.history()
    # an untrained decoder outputs about 0.5 everywhere: MSE about 0.2 on MNIST
    assert history["test_mse_informed"].iloc[-1] < 0.08
    assert history["test_mse_memory"].iloc[-1] < history["test_mse_memory"].iloc[0]
    assert history["test_mse_informed"].iloc[-1] < history["test_mse_informed"].iloc[0]
    for name in ("grid.png", "curves.png", "pca.npz", "model.keras", "metrics.json"):
        assert run.file(name).exists(), name
    # `zoo memory-ae show` redraws the grid from the saved model and reducer
    run.file("grid.png").unlink()
    assert main(["memory-ae", "show", str(run.path)]) == 0
    assert run.file("grid.png").exists()


@pytest.mark.parametrize("flags, name", [(["--code-dims", "0"], "--code-dims"), (["--sigma", "big"], "--sigma"),
                                         (["--floss-weight", "-1"], "--floss-weight")])
def test_bad_flags(flags, name, capsys):
    assert main(["memory-ae", "train", *flags]) == 2
    assert name in capsys.readouterr().err
