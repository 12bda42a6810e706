import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from zoo.tasks.reasoning_ops import (COLUMNS, PROFILES, Experiment, Protocol, ReasoningNet, collect, complete_cells,
                                 evaluation_set, operands, output_width, report, run_experiment, run_sweep, target,
                                 train_batch)
from zoo.cli import main

SEED = 3


@pytest.mark.parametrize("dataset, low, high", [("one_hot", 0, 1), ("many_hot", 0, 1), ("random", -1, 1),
                                                ("random_pos", 0, 1), ("random_pos_seed", -1, 1)])
def test_dataset_shapes_and_ranges(dataset, low, high):
    a, b = operands(dataset, tf.range(500), SEED)
    assert a.shape == b.shape == (500, 128) and a.dtype == tf.float32
    assert float(tf.reduce_min(a)) >= low and float(tf.reduce_max(a)) <= high
    if dataset == "one_hot":
        np.testing.assert_array_equal(tf.reduce_sum(a, 1), 1.0)
    if dataset == "many_hot":
        assert set(np.unique(a)) == {0.0, 1.0}
    if dataset in ("random", "random_pos_seed"):
        assert float(tf.reduce_min(a)) < -0.9
    if dataset == "random_pos":
        assert float(tf.reduce_min(a)) >= 0.0


def test_an_example_is_the_same_whichever_batch_asks_for_it():
    a, b = operands("random", tf.range(10), SEED)
    a2, b2 = operands("random", [9, 5], SEED)
    np.testing.assert_array_equal(a2, tf.gather(a, [9, 5]))
    np.testing.assert_array_equal(b2, tf.gather(b, [9, 5]))
    assert not np.array_equal(a, b)  # the operands differ
    assert not np.array_equal(operands("random", tf.range(10), SEED + 1)[0], a)  # and so do seeds
    assert abs(float(tf.reduce_mean(operands("random_pos", tf.range(4000), SEED)[0])) - 0.5) < 0.01


def test_training_batches_come_from_the_training_examples_and_the_test_set_after_them():
    (a, b), y = train_batch("elementwise_add", "one_hot", tf.constant(7), 32, train_size=50, seed=SEED)
    assert a.shape == (32, 128) and y.shape == (32, 128)
    train_a = operands("one_hot", tf.range(50), SEED)[0].numpy()
    assert all(any(np.array_equal(row, example) for example in train_a) for row in a.numpy())
    (test_a, _), _ = evaluation_set("elementwise_add", "random", train_size=50, test_size=20, seed=SEED)
    np.testing.assert_array_equal(test_a, operands("random", tf.range(50, 70), SEED)[0])
    again = train_batch("elementwise_add", "one_hot", tf.constant(7), 32, train_size=50, seed=SEED)
    np.testing.assert_array_equal(again[0][0], a)  # a step's batch is fixed: resumable, comparable


def test_the_compiled_loop_is_keras_adam_on_the_mse():
    protocol = PROFILES["test"]
    experiment = Experiment("elementwise_mul", "random", "multiply", 1, "linear", protocol, seed=SEED)
    reference = ReasoningNet("multiply", 128)
    reference([tf.zeros((1, 128))] * 2)
    reference.set_weights(experiment.initial)
    optimizer = keras.optimizers.Adam(0.01)
    experiment.reset(0.01)
    experiment.train(tf.constant(0), tf.constant(6))
    for step in range(6):
        inputs, targets = train_batch("elementwise_mul", "random", tf.constant(step), protocol.batch, protocol.train_size, SEED)
        with tf.GradientTape() as tape:
            loss = keras.losses.MeanSquaredError()(targets, reference(inputs))
        optimizer.apply(tape.gradient(loss, reference.trainable_variables), reference.trainable_variables)
    for ours, theirs in zip(experiment.model.get_weights(), reference.get_weights()):
        np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-6)
    # a second attempt starts again from the same weights and a fresh Adam
    experiment.reset(0.01)
    assert int(experiment.optimizer.iterations) == 0
    for ours, initial in zip(experiment.model.get_weights(), experiment.initial):
        np.testing.assert_array_equal(ours, initial)


def test_the_protocol_stops_once_solved_and_reports_where():
    protocol = Protocol(lrs=(1e-2,), search_steps=2000, final_steps=10, train_size=5000, test_size=500, eval_every=50)
    result = run_experiment("elementwise_add", "random", "dense", 1, "linear", protocol, seed=SEED)
    assert result["accuracy"] >= 0.99 and result["global_step"] < 2000 and result["global_step"] % 50 == 0
    unsolvable = run_experiment("dot", "random", "dense", 1, "sigmoid", PROFILES["test"], seed=SEED)
    assert unsolvable["accuracy"] < 0.99 and unsolvable["global_step"] == PROFILES["test"].final_steps


@pytest.mark.parametrize("field, value", [("batch", 0), ("search_steps", -1), ("train_size", 2**24)])
def test_bad_protocol_values_are_refused(field, value):
    with pytest.raises(ValueError, match=field):
        Protocol(**{field: value})


def test_each_task_on_a_hand_made_pair():
    a = np.zeros((1, 128), "float32")
    b = np.zeros((1, 128), "float32")
    a[0, :3] = [1.0, 0.5, 0.0]
    b[0, :3] = [1.0, 0.0, 2.0]
    a[0, 100] = 3.0  # argmax a = 100, argmax b = 2
    expected = {
        "reduce_sum": [[7.5]], "reduce_max": [[3.0]], "dot": [[1.0]],
    }
    for task, value in expected.items():
        np.testing.assert_allclose(target(task, a, b), value)
    assert target("concat", a, b).shape == (1, 256)
    np.testing.assert_allclose(target("elementwise_mul", a, b)[0, :3], [1.0, 0.0, 0.0])
    np.testing.assert_allclose(target("elementwise_add", a, b)[0, :3], [2.0, 0.5, 2.0])
    assert int(np.argmax(target("one_hot_sum", a, b)[0])) == 102
    np.testing.assert_array_equal(target("equality", a, b)[0, :4], [1, 0, 0, 1])
    np.testing.assert_array_equal(target("logical_and", a, b)[0, :4], [1, 0, 0, 0])
    np.testing.assert_array_equal(target("logical_or", a, b)[0, :4], [1, 1, 1, 0])
    np.testing.assert_array_equal(target("logical_xor", a, b)[0, :4], [0, 1, 1, 0])
    np.testing.assert_array_equal(target("almost_equal", a, b)[0, :4], [1, 0, 0, 1])
    assert [output_width(t) for t in ("reduce_sum", "concat", "logical_or")] == [1, 256, 128]


@pytest.mark.parametrize("network, depth, units, params", [
    ("dense", 1, 128, 256 * 128 + 128),
    ("dense", 3, 1, (256 * 256 + 256) * 2 + 257),
    ("dense_residual", 2, 128, (256 * 256 + 256) * 2 + 256 * 128 + 128),
    ("multiply", 1, 1, (128 * 256 + 256) * 2 + 257),
    ("multiply_simple", 1, 128, 128 * 128 + 128),
])
def test_network_shapes_and_parameter_counts(network, depth, units, params):
    model = ReasoningNet(network, units, depth, "relu")
    out = model([np.ones((2, 128), "float32"), np.ones((2, 128), "float32")])
    assert out.shape == (2, units) and model.count_params() == params


def start(directory, log, tuner_id=None, port=None, extra=()):
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    if tuner_id:
        env.update(KERASTUNER_TUNER_ID=tuner_id, KERASTUNER_ORACLE_IP="127.0.0.1", KERASTUNER_ORACLE_PORT=str(port))
    command = [sys.executable, "-m", "zoo.cli", "reasoning-ops", "run", "--profile", "test", "--datasets", "one_hot",
               "--directory", str(directory), "--audit-log", str(log), *extra]
    return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def events(log):
    if not Path(log).exists():
        return []
    return [json.loads(line) for line in Path(log).read_text().splitlines() if line.strip()]


def wait_for(condition, timeout=180):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    raise AssertionError("timed out")


def key(event):
    return tuple(sorted(event["values"].items()))


def assert_each_trial_finished_once(directory, log, expected):
    ends = [key(e) for e in events(log) if e["event"] == "end"]
    assert len(ends) == expected and len(set(ends)) == expected, ends
    results = collect(directory)
    assert len(results) == expected
    assert len(results.drop_duplicates(["task", "dataset", "network_type", "network_depth", "network_activation"])) == expected


def test_interrupted_sweep_resumes_without_redoing_finished_trials(tmp_path):
    directory, log = tmp_path / "sweep", tmp_path / "audit.log"
    process = start(directory, log, extra=("--tasks", "reduce_sum,dot"))
    wait_for(lambda: sum(e["event"] == "end" for e in events(log)) >= 3)
    process.send_signal(signal.SIGKILL)
    process.wait()
    finished = {key(e) for e in events(log) if e["event"] == "end"}
    assert start(directory, log, extra=("--tasks", "reduce_sum,dot")).wait(timeout=300) == 0
    assert_each_trial_finished_once(directory, log, 8)
    restarted = [key(e) for e in events(log) if e["event"] == "start"]
    assert all(restarted.count(k) == 1 for k in finished)  # no finished trial ran again
    # the report: the seed's columns, a pivot and a heat-map
    pivot = report(directory)
    assert list(collect(directory).columns) == COLUMNS
    assert (directory / "heatmap.png").read_bytes()[:4] == b"\x89PNG"
    assert set(pivot.columns) >= {"one_hot", "mean", "solved_cells", "cells"} and pivot["cells"].sum() == 8


def test_the_pivot_of_a_running_sweep_compares_networks_on_the_cells_all_have_finished():
    import pandas as pd

    frame = pd.DataFrame({"task": ["dot", "dot", "concat", "concat", "concat"],
                          "dataset": ["random", "random", "random", "one_hot", "one_hot"],
                          "network": ["a", "b", "a", "a", "b"], "accuracy": [0.1, 0.2, 0.3, 0.4, 0.5]})
    compared = complete_cells(frame)
    assert sorted(zip(compared.task, compared.dataset)) == [("concat", "one_hot")] * 2 + [("dot", "random")] * 2


def test_a_sweep_prints_a_progress_line_per_experiment(tmp_path, capsys):
    run_sweep(tmp_path / "sweep", "test", tasks=("reduce_max",), datasets=("many_hot",))
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("[")]
    assert [line[:5] for line in lines] == ["[1/4]", "[2/4]", "[3/4]", "[4/4]"]
    assert "reduce_max" in lines[0] and "many_hot" in lines[0] and "accuracy " in lines[0]


def test_a_process_restarts_itself_after_its_share_of_trials_and_the_sweep_completes(tmp_path):
    directory, log = tmp_path / "sweep", tmp_path / "audit.log"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    command = [sys.executable, "-m", "zoo.cli", "reasoning-ops", "run", "--profile", "test", "--tasks", "reduce_max",
               "--datasets", "one_hot", "--directory", str(directory), "--audit-log", str(log), "--trials-per-process", "3"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.count("restarting this process after 3 experiments") == 1
    assert "sweep finished" in done.stdout
    assert_each_trial_finished_once(directory, log, 4)


def test_distributed_chief_and_two_workers_survive_a_killed_worker(tmp_path):
    directory, log, port = tmp_path / "sweep", tmp_path / "audit.log", 8700 + os.getpid() % 1000
    extra = ("--tasks", "reduce_sum,dot,concat")
    chief = start(directory, log, "chief", port, extra)
    time.sleep(3)
    workers = {name: start(directory, log, name, port, extra) for name in ("tuner0", "tuner1")}
    victim = workers["tuner1"].pid
    # kill tuner1 in the middle of a trial: after it started one and before that one ended
    wait_for(lambda: any(e["event"] == "start" and e["pid"] == victim for e in events(log)))
    workers["tuner1"].send_signal(signal.SIGKILL)
    workers["tuner1"].wait()
    interrupted = [key(e) for e in events(log) if e["pid"] == victim]
    assert len(interrupted) % 2 == 1  # a start without its end
    workers["tuner1"] = start(directory, log, "tuner1", port, extra)
    for process in workers.values():
        assert process.wait(timeout=300) == 0
    assert chief.wait(timeout=120) == 0
    assert_each_trial_finished_once(directory, log, 12)
    pids = {e["pid"] for e in events(log) if e["event"] == "end"}
    assert len(pids) >= 2  # the work really was spread over workers


def test_bad_flags(capsys):
    assert main(["reasoning-ops", "run", "--tasks", "reduce_sum,divide"]) == 2
    assert "--tasks" in capsys.readouterr().err
    assert main(["reasoning-ops", "run", "--workers", "-1"]) == 2
    assert main(["reasoning-ops", "run", "--trials-per-process", "-1"]) == 2
