import numpy as np
import pytest
import tensorflow as tf

from zoo.tasks import argmax
from zoo.tasks.argmax import ArgMaxConfig, ArgMaxNet, count_parameters, score_batch
from zoo.cli import main


def test_seed_parameter_count():
    model = ArgMaxNet()
    assert model.count_params() == 3821 == count_parameters(3, 60)
    assert model(np.random.rand(4, 10).astype("float32")).shape == (4, 1)


def test_multiply_block_variant_parameter_count():
    model = ArgMaxNet(depth=2, hidden=20, block="multiply")
    assert model.count_params() == count_parameters(2, 20, "multiply")


def test_output_is_non_negative():
    assert np.all(np.asarray(ArgMaxNet()(np.random.randn(64, 10).astype("float32"))) >= 0)


def test_score_batches_are_softmax_with_argmax_labels_and_reproducible():
    scores, labels = score_batch(500, tf.constant([3, 4], tf.int64))
    np.testing.assert_allclose(np.sum(scores, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(labels[:, 0], np.argmax(scores, axis=1))
    again, _ = score_batch(500, tf.constant([3, 4], tf.int64))
    np.testing.assert_array_equal(scores, again)


def test_save_load_round_trip(tmp_path):
    model = ArgMaxNet(depth=2, hidden=8, block="multiply")
    x = np.random.rand(5, 10).astype("float32")
    model.save(tmp_path / "m.keras")
    np.testing.assert_array_equal(argmax.load(tmp_path / "m.keras")(x), model(x))


def test_short_training_lowers_the_loss_then_test_and_resume(tmp_path, capsys):
    run_dir = tmp_path / "run"
    config = ArgMaxConfig(recipe="improved", episodes=2, steps_per_episode=1500, run=str(run_dir))
    run = argmax.train(config, verbose=0)
    history = run.history()
    out = capsys.readouterr().out
    assert "[    1] Loss:" in out and "Parameter count = 3821" in out
    assert history["eval_loss"].iloc[-1] < 0.5 * untrained_loss()
    metrics = run.load_metrics()
    assert metrics["test_err"] < 0.5 and metrics["test_instances"] == 50000
    # `zoo argmax test` on the saved run
    assert main(["argmax", "test", str(run_dir), "--batches", "4", "--batch-size", "50"]) == 0
    assert "Testing 4 batches of 50 random scores" in capsys.readouterr().out
    # resume: the finished episodes are restored, only the new ones train
    more = ArgMaxConfig(recipe="improved", episodes=3, steps_per_episode=1500, run=str(run_dir))
    argmax.train(more, verbose=0)
    assert list(run.history()["epoch"]) == [1, 2, 3]


def untrained_loss():
    model = ArgMaxNet()
    scores, labels = score_batch(2000, tf.constant([9, 9], tf.int64))
    return float(np.mean((model(scores).numpy() - labels.numpy()) ** 2))


@pytest.mark.parametrize("flags, name", [
    (["--episodes", "0"], "--episodes"),
    (["--batch-size", "-1"], "--batch-size"),
    (["--lr-decay", "1.5"], "--lr-decay"),
])
def test_bad_flags_get_a_clear_error(flags, name, capsys):
    assert main(["argmax", "train", *flags]) == 2
    err = capsys.readouterr().err
    assert err.startswith("zoo: error:") and name in err and "Traceback" not in err


def test_missing_model_is_a_clear_error(tmp_path, capsys):
    assert main(["argmax", "test", str(tmp_path / "nothing")]) == 2
    assert "run_or_model" in capsys.readouterr().err


def test_bad_arguments():
    with pytest.raises(ValueError, match="block"):
        ArgMaxNet(block="conv")
    with pytest.raises(ValueError, match="depth"):
        ArgMaxNet(depth=0)


def test_tune_writes_every_trial_within_the_budget(tmp_path):
    frame = argmax.tune(trials=2, steps=100, budget=2000, directory=str(tmp_path / "tune"), overwrite=True)
    assert len(frame) == 2 and (tmp_path / "tune" / "trials.csv").exists()
    assert (frame["parameters"] <= 2000).all()
    assert set(frame.columns) >= {"depth", "block", "hidden", "learning_rate", "parameters", "val_err"}
    for _, row in frame.iterrows():
        assert row["parameters"] == count_parameters(row["depth"], row["hidden"], row["block"])
