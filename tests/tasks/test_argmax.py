"""ArgMaxNet: the model, its data, its settings, and `zoo argmax train/test/tune` in-process."""

import json
import re

import keras
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from zoo.cli import main
from zoo.errors import UsageError
from zoo.tasks.argmax import (
    ArgMaxConfig,
    ArgMaxNet,
    ArgMaxTuneConfig,
    TrainingLoop,
    build_model,
    compiled_batches,
    count_parameters,
    largest_divisor,
    load,
    make_loss,
    score_batch,
    score_dataset,
    stream_evaluation,
    train,
    widest_hidden,
    within_budget,
)

TINY = [
    "--episodes",
    "2",
    "--steps-per-episode",
    "60",
    "--steps-per-execution",
    "30",
    "--eval-batches",
    "2",
    "--eval-batch-size",
    "500",
]
TIMING = ("wall_seconds", "elapsed_hours")


def test_seed_parameter_count():
    model = ArgMaxNet()
    assert model.count_params() == 3821 == count_parameters(3, 60)
    assert model(np.random.rand(4, 10).astype("float32")).shape == (4, 1)


def test_multiply_block_variant_parameter_count():
    model = ArgMaxNet(depth=2, hidden=20, block="multiply")
    assert model.count_params() == count_parameters(2, 20, "multiply")


@pytest.mark.parametrize(
    "depth, block, budget",
    [(1, "residual", 500), (3, "residual", 3821), (4, "multiply", 1459), (6, "multiply", 5000)],
)
def test_widest_hidden_is_the_budget_edge(depth, block, budget):
    hidden = widest_hidden(depth, block, budget)
    assert within_budget(depth, hidden, block, budget)
    assert not within_budget(depth, hidden + 1, block, budget)
    assert ArgMaxNet(depth, hidden, block).count_params() == count_parameters(depth, hidden, block)
    assert widest_hidden(depth, block, count_parameters(depth, 1, block) - 1) is None


def test_output_is_non_negative():
    assert np.all(np.asarray(ArgMaxNet()(np.random.randn(64, 10).astype("float32"))) >= 0)


def test_score_batches_are_softmax_with_argmax_labels_and_reproducible():
    scores, labels = score_batch(500, tf.constant([3, 4], tf.int64))
    np.testing.assert_allclose(np.sum(scores, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(labels[:, 0], np.argmax(scores, axis=1))
    again, _ = score_batch(500, tf.constant([3, 4], tf.int64))
    np.testing.assert_array_equal(scores, again)


def test_batches_depend_only_on_seed_and_global_step():
    whole = [scores.numpy() for scores, _ in score_dataset(5, 6, seed=3)]
    tail = [scores.numpy() for scores, _ in score_dataset(5, 2, seed=3, first_step=4)]
    np.testing.assert_array_equal(np.stack(whole[4:]), np.stack(tail))
    other = next(iter(score_dataset(5, 1, seed=4)))[0].numpy()
    assert not np.allclose(other, whole[0])


def test_training_stream_depends_only_on_seed_and_global_step():
    scores, labels = compiled_batches(5, 6, seed=3)
    tail, _ = compiled_batches(5, 2, seed=3, first_step=4)
    np.testing.assert_array_equal(scores.numpy()[4:], tail.numpy())
    np.testing.assert_allclose(np.sum(scores, axis=-1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(labels[..., 0], np.argmax(scores, axis=-1))
    other, _ = compiled_batches(5, 1, seed=4)
    assert not np.allclose(other[0], scores[0])


def test_the_compiled_loop_takes_steps_on_the_batches_of_their_global_steps():
    # Three steps from global step 7 in one compiled call equal three eager SGD steps on the
    # stream's batches 7, 8, 9 (to rounding: XLA fuses the arithmetic differently).
    config = ArgMaxConfig(learning_rate=1e-3)
    compiled, eager = build_model(config), build_model(config)
    loss = make_loss(config)
    TrainingLoop(compiled, loss, 25, seed=11, steps=3)(7)
    scores, labels = compiled_batches(25, 3, seed=11, first_step=7)
    for step in range(3):
        with tf.GradientTape() as tape:
            batch_loss = loss(labels[step], eager(scores[step], training=True))
        eager.optimizer.apply(
            tape.gradient(batch_loss, eager.trainable_variables), eager.trainable_variables
        )
    assert int(compiled.optimizer.iterations.numpy()) == 3
    for got, want, start in zip(
        compiled.get_weights(), eager.get_weights(), build_model(config).get_weights()
    ):
        assert not np.array_equal(got, start)
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)


@pytest.mark.slow
def test_stream_evaluation_counts_what_the_model_gets_wrong():
    model = build_model(ArgMaxConfig())
    squared, wrong = stream_evaluation(model, 25)(seed=5, first_step=2, batches=3)
    scores, labels = compiled_batches(25, 3, seed=5, first_step=2)
    predictions = model.predict_on_batch(tf.reshape(scores, (75, 10)))
    expected = labels.numpy().reshape(75, 1)
    np.testing.assert_allclose(squared, np.sum((predictions - expected) ** 2), rtol=1e-5)
    assert wrong == np.sum(np.round(predictions) != expected)
    assert stream_evaluation(model, 25) is stream_evaluation(model, 25)


def test_config_keeps_trainable_and_dtype_and_round_trips(tmp_path):
    model = ArgMaxNet(depth=2, hidden=8, block="multiply", dtype="float32", trainable=False)
    config = json.loads(json.dumps(model.get_config()))
    assert config["trainable"] is False and config["block"] == "multiply"
    assert ArgMaxNet.from_config(config).get_config() == model.get_config()
    x = np.random.rand(5, 10).astype("float32")
    model.save(tmp_path / "m.keras")
    np.testing.assert_array_equal(load(tmp_path / "m.keras")(x), model(x))


def test_mixed_precision_model_computes_in_float16():
    model = ArgMaxNet(depth=1, hidden=4, dtype="mixed_float16")
    output = model(np.random.rand(3, 10).astype("float32"))
    assert keras.backend.standardize_dtype(output.dtype) == "float16"
    assert all(weight.dtype == "float32" for weight in model.weights)


def test_bad_model_arguments():
    with pytest.raises(ValueError, match="block"):
        ArgMaxNet(block="conv")
    with pytest.raises(ValueError, match="depth"):
        ArgMaxNet(depth=0)


def test_improved_recipe_replaces_only_the_values_not_given():
    improved = ArgMaxConfig.for_recipe("improved", batch_size=25)
    assert (improved.batch_size, improved.learning_rate, improved.episodes) == (25, 3e-3, 120)
    assert ArgMaxConfig.for_recipe("seed") == ArgMaxConfig()
    with pytest.raises(UsageError, match="--momentum"):
        ArgMaxConfig.for_recipe("improved", momentum=0.5)


def test_an_episode_runs_exactly_its_steps_per_compiled_call():
    assert largest_divisor(15000, 500) == 500
    assert largest_divisor(60, 500) == 60
    assert largest_divisor(1234, 500) == 2
    assert ArgMaxConfig(steps_per_episode=700, steps_per_execution=500).execution_steps == 350


@pytest.mark.parametrize(
    "flags, name",
    [
        (["--episodes", "0"], "--episodes"),
        (["--batch-size", "-1"], "--batch-size"),
        (["--batch-size", "99999999999"], "--batch-size"),
        (["--lr-decay", "1.5"], "--lr-decay"),
        (["--learning-rate", "inf"], "--learning-rate"),
        (["--learning-rate", "nan"], "--learning-rate"),
        (["--learning-rate", "0"], "--learning-rate"),
        (["--momentum", "1"], "--momentum"),
        (["--seed", "-1"], "--seed"),
        (["--recipe", "improved", "--momentum", "0.5"], "--momentum"),
    ],
)
def test_bad_train_flags_get_a_one_line_error(flags, name, tmp_path, capsys):
    assert main(["argmax", "train", "--run", str(tmp_path / "run"), *flags]) == 2
    err = capsys.readouterr().err
    assert err.startswith("zoo: error:") and name in err and err.count("\n") == 1
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    "flags, name",
    [
        (["--budget", "100"], "--budget"),
        (["--max-learning-rate", "1e-5"], "--max-learning-rate"),
        (["--blocks", "residual,conv"], "--blocks"),
        (["--trials", "0"], "--trials"),
    ],
)
def test_bad_tune_flags_get_a_one_line_error(flags, name, tmp_path, capsys):
    assert main(["argmax", "tune", "--run", str(tmp_path / "search"), *flags]) == 2
    err = capsys.readouterr().err
    assert err.startswith("zoo: error:") and name in err and err.count("\n") == 1
    assert not (tmp_path / "search").exists()


def comparable(history):
    return history.drop(columns=list(TIMING))


def weights_of(path):
    return load(path).get_weights()


def test_train_test_and_resume_through_the_cli(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["argmax", "train", "--run", str(run), *TINY]) == 0
    out = capsys.readouterr().out
    assert "Parameter count = 3821" in out
    # The seed's per-episode line starts a line of its own, never inside the progress bar.
    report = [line for line in re.split(r"[\r\n]", out) if "] Loss:" in line]
    assert [line[:7] for line in report] == ["[    1]", "[    2]"]
    assert all(
        re.fullmatch(r"\[ +\d+\] Loss: \S+ +Err: \S+ +elapsed: +\S+ hours, lr=\S+", line)
        for line in report
    )
    history = pd.read_csv(run / "history.csv")
    assert list(history["epoch"]) == [1, 2]
    np.testing.assert_allclose(history["learning_rate"], [1e-4, 0.98e-4], rtol=1e-6)
    assert history["wall_seconds"].is_monotonic_increasing
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["status"] == "finished" and metrics["test_instances"] == 50000
    assert metrics["parameters"] == 3821 and 0 <= metrics["test_err"] <= 1
    record = json.loads((run / "config.json").read_text())
    assert record["task"] == "argmax" and record["config"]["steps_per_episode"] == 60
    assert "run" not in record["config"] and set(record["versions"]) >= {"zoo", "keras"}
    assert (run / "training.png").stat().st_size > 10_000

    assert main(["argmax", "test", "--run", str(run), "--batches", "4", "--batch-size", "50"]) == 0
    assert "Testing 4 batches of 50 random scores" in capsys.readouterr().out
    assert main(["argmax", "test", "--model", str(run / "model.keras"), "--batches", "2"]) == 0
    assert "Err:" in capsys.readouterr().out

    # A finished run is not retrained; raising --episodes continues it.
    before = (run / "history.csv").read_bytes()
    assert main(["argmax", "train", "--run", str(run)]) == 0
    assert "already finished its 2 episodes" in capsys.readouterr().out
    assert (run / "history.csv").read_bytes() == before
    assert main(["argmax", "train", "--run", str(run), "--episodes", "3", "--quiet"]) == 0
    extended = pd.read_csv(run / "history.csv")
    assert list(extended["epoch"]) == [1, 2, 3]

    # ... and equals a run of 3 episodes from the start.
    straight = tmp_path / "straight"
    assert (
        main(["argmax", "train", "--run", str(straight), *TINY, "--episodes", "3", "--quiet"]) == 0
    )
    pd.testing.assert_frame_equal(
        comparable(extended), comparable(pd.read_csv(straight / "history.csv"))
    )
    for resumed, uninterrupted in zip(
        weights_of(run / "model.keras"), weights_of(straight / "model.keras")
    ):
        np.testing.assert_array_equal(resumed, uninterrupted)


@pytest.mark.slow
def test_improved_recipe_trains_and_lowers_the_loss(tmp_path, capsys):
    config = ArgMaxConfig.for_recipe("improved", episodes=2, steps_per_episode=600, eval_batches=2)
    run = train(config, tmp_path / "run", verbose=0)
    history = run.history()
    assert "Adam" in capsys.readouterr().out
    assert history["eval_loss"].iloc[-1] < 0.5 * untrained_loss()
    np.testing.assert_allclose(history["learning_rate"], [3e-3, 3e-3 * 0.96], rtol=1e-6)


def untrained_loss():
    model = ArgMaxNet()
    scores, labels = score_batch(2000, tf.constant([9, 9], tf.int64))
    return float(np.mean((model(scores).numpy() - labels.numpy()) ** 2))


def test_test_command_refuses_what_is_not_a_finished_argmax_run(tmp_path, capsys):
    assert main(["argmax", "test", "--run", str(tmp_path / "nothing")]) == 2
    assert "--run" in capsys.readouterr().err
    other = tmp_path / "other"
    other.mkdir()
    (other / "config.json").write_text(json.dumps({"task": "deep", "config": {}}))
    assert main(["argmax", "test", "--run", str(other)]) == 2
    assert "holds a 'deep' run" in capsys.readouterr().err
    assert main(["argmax", "test", "--model", str(tmp_path / "none.keras")]) == 2
    assert "none.keras: missing" in capsys.readouterr().err


def test_config_classes_are_cli_flags_with_defaults_shown_once(capsys):
    with pytest.raises(SystemExit):
        main(["argmax", "tune", "--help"])
    help_text = capsys.readouterr().out
    assert "--resume DIR" in help_text and "--seed" in help_text and "--quiet" in help_text
    assert help_text.count("(default: 3821)") == 1
    assert ArgMaxTuneConfig().blocks == ("residual", "multiply")
