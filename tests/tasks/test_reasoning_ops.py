import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from tasks.reasoning_ops import COLUMNS, ReasoningNet, collect, operands, output_width, report, target
from zoo.cli import main

SEED = tf.constant([1, 2], tf.int64)


@pytest.mark.parametrize("dataset, low, high", [("one_hot", 0, 1), ("many_hot", 0, 1), ("random", -1, 1),
                                                ("random_pos", 0, 1), ("random_pos_seed", -1, 1)])
def test_dataset_shapes_and_ranges(dataset, low, high):
    a, b = operands(dataset, 500, SEED)
    assert a.shape == b.shape == (500, 128)
    assert float(tf.reduce_min(a)) >= low and float(tf.reduce_max(a)) <= high
    if dataset == "one_hot":
        np.testing.assert_array_equal(tf.reduce_sum(a, 1), 1.0)
    if dataset == "many_hot":
        assert set(np.unique(a)) == {0.0, 1.0}
    if dataset in ("random", "random_pos_seed"):
        assert float(tf.reduce_min(a)) < -0.9
    if dataset == "random_pos":
        assert float(tf.reduce_min(a)) >= 0.0


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
