"""The reasoning-operations sweep: data, targets, networks, the protocol and its divergence rule,
the HyperModel, the sweep on keras-tuner and its report."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import keras
import keras_tuner
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from zoo.cli import main
from zoo.errors import DivergenceError, UsageError
from zoo.runs import RunFolder
from zoo.tasks.reasoning_ops import (
    COLUMNS,
    PROFILES,
    TASK_NAMES,
    TASKS,
    Experiment,
    Protocol,
    ReasoningHyperModel,
    ReasoningNet,
    SweepConfig,
    build_network,
    collect,
    complete_cells,
    evaluation_set,
    operands,
    output_width,
    parse_network,
    plot_heatmap,
    report_sweep,
    run_experiment,
    run_protocol,
    run_sweep,
    summarize,
    sweep_counts,
    target,
    train_batch,
)

SEED = 3
ROOT = Path(__file__).resolve().parents[2]
TINY = {
    "profile": "test",
    "tasks": ("reduce_max",),
    "datasets": ("one_hot",),
    "networks": ("multiply_simple-1-linear", "dense-1-linear"),
}


def cli_env():
    return {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "KERAS_BACKEND": "tensorflow",
        "TF_CPP_MIN_LOG_LEVEL": "2",
    }


# --- data and targets -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "dataset, low, high",
    [
        ("one_hot", 0, 1),
        ("many_hot", 0, 1),
        ("random", -1, 1),
        ("random_pos", 0, 1),
        ("random_pos_seed", -1, 1),
    ],
)
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
    assert not np.array_equal(operands("random", tf.range(10), SEED + 1)[0], a)  # and seeds
    assert abs(float(tf.reduce_mean(operands("random_pos", tf.range(4000), SEED)[0])) - 0.5) < 0.01


def test_training_batches_come_from_the_training_examples_and_the_test_set_after_them():
    (a, b), y = train_batch(
        "elementwise_add", "one_hot", tf.constant(7), 32, train_size=50, seed=SEED
    )
    assert a.shape == (32, 128) and y.shape == (32, 128)
    train_a = operands("one_hot", tf.range(50), SEED)[0].numpy()
    assert all(any(np.array_equal(row, example) for example in train_a) for row in a.numpy())
    (test_a, _), _ = evaluation_set(
        "elementwise_add", "random", train_size=50, test_size=20, seed=SEED
    )
    np.testing.assert_array_equal(test_a, operands("random", tf.range(50, 70), SEED)[0])
    again = train_batch("elementwise_add", "one_hot", tf.constant(7), 32, train_size=50, seed=SEED)
    np.testing.assert_array_equal(again[0][0], a)  # a step's batch is fixed: comparable


def test_each_task_on_a_hand_made_pair():
    assert tuple(TASKS) == TASK_NAMES
    a = np.zeros((1, 128), "float32")
    b = np.zeros((1, 128), "float32")
    a[0, :3] = [1.0, 0.5, 0.0]
    b[0, :3] = [1.0, 0.0, 2.0]
    a[0, 100] = 3.0  # argmax a = 100, argmax b = 2
    for task, value in {"reduce_sum": [[7.5]], "reduce_max": [[3.0]], "dot": [[1.0]]}.items():
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


# --- networks -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "network, depth, units, params",
    [
        ("dense", 1, 128, 256 * 128 + 128),
        ("dense", 3, 1, (256 * 256 + 256) * 2 + 257),
        ("dense_residual", 2, 128, (256 * 256 + 256) * 2 + 256 * 128 + 128),
        ("multiply", 1, 1, (128 * 256 + 256) * 2 + 257),
        ("multiply_simple", 1, 128, 128 * 128 + 128),
    ],
)
def test_network_shapes_parameter_counts_and_config(network, depth, units, params):
    model = ReasoningNet(network, units, depth, "relu", name="net", trainable=False)
    out = model([np.ones((2, 128), "float32"), np.ones((2, 128), "float32")])
    assert out.shape == (2, units) and model.count_params() == params
    config = json.loads(json.dumps(model.get_config()))
    assert config["trainable"] is False and config["name"] == "net"
    assert ReasoningNet.from_config(config).get_config() == model.get_config()


def test_build_network_fixes_the_initial_weights_by_seed():
    first, again = (
        build_network("dense", 3, 2, "tanh", seed=5),
        build_network("dense", 3, 2, "tanh", seed=5),
    )
    other = build_network("dense", 3, 2, "tanh", seed=6)
    for mine, theirs in zip(first.get_weights(), again.get_weights()):
        np.testing.assert_array_equal(mine, theirs)
    assert not np.array_equal(first.get_weights()[0], other.get_weights()[0])


@pytest.mark.parametrize(
    "bad", ["dense-4-relu", "conv-1-relu", "dense-1-swish", "dense-1", "multiply-2-linear"]
)
def test_bad_network_names_are_one_line_usage_errors(bad):
    with pytest.raises(UsageError, match="--networks"):
        parse_network(bad)


# --- the protocol and its divergence rule ---------------------------------------------------


def test_the_compiled_loop_is_keras_adam_on_the_mse():
    protocol = PROFILES["test"]
    model = build_network("multiply", 128, seed=SEED)
    experiment = Experiment(model, "elementwise_mul", "random", protocol, seed=SEED)
    reference = ReasoningNet("multiply", 128)
    reference([tf.zeros((1, 128))] * 2)
    reference.set_weights(experiment.initial)
    optimizer = keras.optimizers.Adam(0.01)
    experiment.reset(0.01)
    step, _ = experiment.train(tf.constant(0), tf.constant(6))
    assert int(step) == 6
    for step in range(6):
        inputs, targets = train_batch(
            "elementwise_mul",
            "random",
            tf.constant(step),
            protocol.batch,
            protocol.train_size,
            SEED,
        )
        with tf.GradientTape() as tape:
            loss = keras.losses.MeanSquaredError()(targets, reference(inputs))
        optimizer.apply(
            tape.gradient(loss, reference.trainable_variables), reference.trainable_variables
        )
    for ours, theirs in zip(experiment.model.get_weights(), reference.get_weights()):
        np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-6)
    # a second attempt starts again from the same weights and a fresh Adam
    experiment.reset(0.01)
    assert int(experiment.optimizer.iterations) == 0
    for ours, initial in zip(experiment.model.get_weights(), experiment.initial):
        np.testing.assert_array_equal(ours, initial)
    # the loop stops at the first non-finite loss and says where
    experiment.reset(1e30)
    step, loss = experiment.train(tf.constant(0), tf.constant(50))
    assert not np.isfinite(float(loss)) and 1 <= int(step) < 50


@pytest.mark.slow
def test_the_protocol_stops_once_solved_and_reports_where():
    protocol = Protocol(
        lrs=(1e-2,),
        search_steps=2000,
        final_steps=10,
        train_size=5000,
        test_size=500,
        eval_every=50,
    )
    result = run_experiment("elementwise_add", "random", "dense", 1, "linear", protocol, SEED)
    assert result["accuracy"] >= 0.99 and result["global_step"] < 2000
    assert result["global_step"] % 50 == 0 and result["diverged_lrs"] == 0
    unsolvable = run_experiment("dot", "random", "dense", 1, "sigmoid", PROFILES["test"], SEED)
    assert unsolvable["accuracy"] < 0.99
    assert unsolvable["global_step"] == PROFILES["test"].final_steps


@pytest.mark.slow
def test_a_diverged_rate_is_a_failed_candidate_and_all_diverged_fails_the_experiment():
    protocol = Protocol(
        lrs=(1e30, 1e-2),
        search_steps=20,
        final_steps=20,
        train_size=2000,
        test_size=200,
        eval_every=10,
        final_eval_every=10,
    )
    result = run_experiment("reduce_sum", "random", "dense", 1, "linear", protocol, SEED)
    assert result["lr"] == 1e-2 and result["diverged_lrs"] == 1
    assert np.isfinite(result["loss"]) and np.isfinite(result["accuracy"])
    diverging = Protocol(
        lrs=(1e30, 1e32),
        search_steps=20,
        final_steps=20,
        train_size=2000,
        test_size=200,
        eval_every=10,
    )
    with pytest.raises(DivergenceError, match="every learning rate of the search diverged"):
        run_experiment("reduce_sum", "random", "dense", 1, "linear", diverging, SEED)


class _ScriptedExperiment:
    """Stands in for `Experiment`: attempts return what the test scripted."""

    def __init__(self, protocol, outcomes):
        self.protocol, self.outcomes, self.calls = protocol, list(outcomes), []

    def attempt(self, lr, steps, eval_every):
        self.calls.append((lr, steps))
        accuracy, diverged, step = self.outcomes.pop(0)
        return {
            "accuracy": None if diverged else accuracy,
            "loss": None if diverged else 0.1,
            "lr": lr,
            "global_step": step,
            "diverged": diverged,
        }


def test_the_final_run_diverging_fails_the_experiment():
    protocol = Protocol(lrs=(1e-3, 1e-2, 1e-1), search_steps=10, final_steps=100)
    experiment = _ScriptedExperiment(
        protocol, [(0.5, False, 10), (0.7, False, 10), (0.0, True, 4), (0.0, True, 73)]
    )
    with pytest.raises(DivergenceError, match="final 100-step run at lr 0.01 diverged.*step 73"):
        run_protocol(experiment)
    assert experiment.calls == [(1e-3, 10), (1e-2, 10), (1e-1, 10), (1e-2, 100)]
    solved_later = _ScriptedExperiment(protocol, [(0.0, True, 3), (0.995, False, 10)])
    result = run_protocol(solved_later)
    assert (result["lr"], result["diverged_lrs"], result["accuracy"]) == (1e-2, 1, 0.995)


@pytest.mark.parametrize(
    "field, value",
    [("batch", 0), ("search_steps", -1), ("train_size", 2**24), ("lrs", (float("nan"),))],
)
def test_bad_protocol_values_are_refused(field, value):
    with pytest.raises(UsageError, match=field):
        Protocol(**{field: value})


# --- the config -----------------------------------------------------------------------------


def test_the_config_resolves_the_profile_grid_and_refuses_bad_values():
    assert SweepConfig(profile="seed").experiments == 11 * 4 * 32
    assert SweepConfig(profile="quick").experiments == 12 * 2 * 4
    config = SweepConfig(**TINY)
    assert config.experiments == 2 and config.protocol == PROFILES["test"]
    for bad, flag in [
        ({"tasks": ("divide",)}, "--tasks"),
        ({"datasets": ("gauss",)}, "--datasets"),
        ({"seed": -1}, "--seed"),
        ({"seed": 2**40}, "--seed"),
        ({"profile": "huge"}, "--profile"),
        ({"tasks": ("dot", "dot")}, "--tasks"),
    ]:
        with pytest.raises(UsageError, match=flag):
            SweepConfig(**bad)


@pytest.mark.parametrize(
    "argv, flag",
    [
        (["--tasks", "reduce_sum,divide"], "--tasks"),
        (["--workers", "-1"], "--workers"),
        (["--trials-per-process", "-1"], "--trials-per-process"),
        (["--port", "0"], "--port"),
        (["--networks", "dense-9-relu"], "--networks"),
        (["--seed", "-4"], "--seed"),
    ],
)
def test_bad_flags_are_one_line_errors(tmp_path, capsys, argv, flag):
    assert main(["reasoning-ops", "run", "--run", str(tmp_path / "r"), *argv]) == 2
    error = capsys.readouterr().err.strip()
    assert flag in error and len(error.splitlines()) == 1
    assert not (tmp_path / "r").exists()  # nothing written


def test_the_cli_module_is_light():
    code = (
        "import sys, zoo.tasks.reasoning_ops.cli; heavy = [m for m in ('tensorflow', "
        "'keras', 'keras_tuner', 'pandas', 'matplotlib') if m in sys.modules]; print(heavy)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], env=cli_env(), capture_output=True, text=True, timeout=60
    )
    assert done.stdout.strip() == "[]", done.stderr


# --- the HyperModel -------------------------------------------------------------------------


def test_a_users_own_search_over_the_network_space(tmp_path):
    hypermodel = ReasoningHyperModel(
        tasks=["reduce_max"],
        datasets=["one_hot"],
        networks=["dense-1-linear", "multiply_simple-1-linear"],
        protocol=PROFILES["test"],
        seed=SEED,
    )
    tuner = keras_tuner.GridSearch(
        hypermodel,
        objective=keras_tuner.Objective("accuracy", "max"),
        directory=str(tmp_path),
        project_name="mine",
    )
    tuner.search(verbose=0)
    trials = tuner.oracle.get_best_trials(2)
    assert len(trials) == 2
    best = trials[0]
    assert best.hyperparameters.values["network"] == "multiply_simple-1-linear"
    expected = run_experiment(
        "reduce_max", "one_hot", "multiply_simple", 1, "linear", PROFILES["test"], SEED
    )
    assert best.score == expected["accuracy"]  # the HyperModel trains what build() returned


def test_a_diverged_experiment_is_a_failed_trial_shown_as_failed(tmp_path):
    config = SweepConfig(
        profile="test", tasks=("reduce_sum",), datasets=("random",), networks=("dense-1-linear",)
    )
    diverging = Protocol(
        lrs=(1e30,), search_steps=10, final_steps=10, train_size=2000, test_size=200, eval_every=10
    )
    with RunFolder.open(tmp_path / "run", "reasoning-ops", config) as run:
        run_sweep(run, config, protocol=diverging, quiet=True)
        assert run.status == "finished" and sweep_counts(run.path) == {"finished": 0, "failed": 1}
    json.loads((tmp_path / "run" / "metrics.json").read_text())  # valid JSON
    frame = collect(tmp_path / "run")
    assert frame["status"].tolist() == ["failed"] and frame["accuracy"].isna().all()
    assert "every learning rate of the search diverged" in frame["error"][0]
    finished = frame.iloc[[0]].assign(
        network_type="multiply", status="finished", accuracy=0.5, accuracy_pct="50.0%", error=""
    )
    both = pd.concat([frame, finished], ignore_index=True)
    pivot = summarize(both)
    assert pivot.loc["dense-1-linear", "failed"] == 1 and np.isnan(
        pivot.loc["dense-1-linear", "mean"]
    )
    assert pivot.index[0] == "multiply-1-linear"  # a failure never outranks a result
    figure = plot_heatmap(both, "test profile")
    texts = [text.get_text() for text in figure.axes[0].texts]
    assert texts.count("failed") == 2 and "0.50" in texts  # its cell and its mean
    import matplotlib.pyplot as plt

    plt.close(figure)


# --- the sweep and its report ---------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_sweep(tmp_path_factory):
    """A finished two-experiment sweep (run in this process), copied by tests that damage it."""
    path = tmp_path_factory.mktemp("reasoning") / "sweep"
    config = SweepConfig(**TINY)
    with RunFolder.open(path, "reasoning-ops", config) as run:
        run_sweep(run, config)
    return path


def test_a_sweep_prints_a_progress_line_per_experiment_and_reports(tiny_sweep, capsys):
    pivot = report_sweep(tiny_sweep)
    frame = collect(tiny_sweep)
    assert list(frame.columns) == COLUMNS and len(frame) == 2
    assert (frame["status"] == "finished").all() and frame["accuracy"].between(0, 1).all()
    assert (tiny_sweep / "heatmap.png").read_bytes()[:4] == b"\x89PNG"
    assert list(pd.read_csv(tiny_sweep / "results.csv").columns) == COLUMNS
    assert pivot["cells"].sum() == 2 and pivot["mean"].is_monotonic_decreasing
    assert json.loads((tiny_sweep / "metrics.json").read_text())["status"] == "finished"


def test_a_finished_sweep_rerun_says_so_and_does_nothing(tiny_sweep, tmp_path, capsys):
    run = tmp_path / "copy"
    shutil.copytree(tiny_sweep, run)
    before = {path: path.stat().st_mtime_ns for path in run.rglob("*") if path.is_file()}
    assert main(["reasoning-ops", "run", "--run", str(run)]) == 0
    assert "already finished" in capsys.readouterr().out
    after = {
        path: path.stat().st_mtime_ns
        for path in run.rglob("*")
        if path.is_file() and path.name != ".lock"
    }
    assert after == {path: time for path, time in before.items() if path.name != ".lock"}


def test_the_pivot_of_a_running_sweep_compares_networks_on_the_cells_all_have_finished():
    frame = pd.DataFrame(
        {
            "task": ["dot", "dot", "concat", "concat", "concat"],
            "dataset": ["random", "random", "random", "one_hot", "one_hot"],
            "network": ["a", "b", "a", "a", "b"],
            "accuracy": [0.1, 0.2, 0.3, 0.4, 0.5],
        }
    )
    compared = complete_cells(frame)
    assert sorted(zip(compared.task, compared.dataset)) == (
        [("concat", "one_hot")] * 2 + [("dot", "random")] * 2
    )


def test_the_report_of_a_results_csv_sorts_networks_and_writes_beside_it(tmp_path, capsys):
    results = tmp_path / "mine_results.csv"
    rows = [
        {
            "task": task,
            "dataset": "one_hot",
            "network_type": kind,
            "network_depth": 1,
            "network_activation": "linear",
            "accuracy_pct": "",
            "accuracy": accuracy,
            "loss": 0.1,
            "lr": 0.01,
            "global_step": 10,
            "datetime": "",
        }
        for task, kind, accuracy in [
            ("dot", "dense", 0.2),
            ("dot", "multiply", 0.9),
            ("concat", "dense", 0.4),
            ("concat", "multiply", 0.7),
        ]
    ]
    pd.DataFrame(rows).to_csv(results, index=False)
    assert main(["reasoning-ops", "report", "--results", str(results)]) == 0
    pivot = pd.read_csv(tmp_path / "mine_pivot.csv", index_col=0)
    assert list(pivot.index) == ["multiply-1-linear", "dense-1-linear"]
    np.testing.assert_allclose(pivot["mean"], [0.8, 0.3])
    assert (tmp_path / "mine_heatmap.png").read_bytes()[:4] == b"\x89PNG"


# --- processes: kill and resume, re-exec, chief and workers ---------------------------------


def start(directory, log, tuner_id=None, port=None, extra=()):
    env = cli_env()
    if tuner_id:
        env.update(
            KERASTUNER_TUNER_ID=tuner_id,
            KERASTUNER_ORACLE_IP="127.0.0.1",
            KERASTUNER_ORACLE_PORT=str(port),
        )
    command = [
        sys.executable,
        "-m",
        "zoo.cli",
        "reasoning-ops",
        "run",
        "--profile",
        "test",
        "--datasets",
        "one_hot",
        "--run",
        str(directory),
        "--audit-log",
        str(log),
        "--quiet",
        *extra,
    ]
    return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def events(log):
    if not Path(log).exists():
        return []
    return [json.loads(line) for line in Path(log).read_text().splitlines() if line.strip()]


def wait_for(condition, timeout=300):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    raise AssertionError("timed out")


def key(event):
    return tuple(sorted(event["values"].items()))


def recorded(directory):
    """The experiments keras-tuner has recorded as finished, as audit keys."""
    frame = collect(directory)
    return {
        tuple(
            sorted(
                {
                    "task": row.task,
                    "dataset": row.dataset,
                    "network": f"{row.network_type}-{row.network_depth}-{row.network_activation}",
                }.items()
            )
        )
        for row in frame.itertuples()
    }


def assert_each_trial_finished_once(directory, log, expected):
    ends = {key(e) for e in events(log) if e["event"] == "end"}
    assert len(ends) == expected, ends
    results = collect(directory)
    assert len(results) == expected and recorded(directory) == ends
    identity = ["task", "dataset", "network_type", "network_depth", "network_activation"]
    assert len(results.drop_duplicates(identity)) == expected


@pytest.mark.slow
def test_interrupted_sweep_resumes_without_redoing_finished_trials(tmp_path):
    directory, log = tmp_path / "sweep", tmp_path / "audit.log"
    process = start(directory, log, extra=("--tasks", "reduce_sum,dot"))
    wait_for(lambda: sum(e["event"] == "end" for e in events(log)) >= 3)
    process.send_signal(signal.SIGKILL)
    process.wait()
    finished, seen = recorded(directory), len(events(log))
    assert len(finished) >= 2
    assert start(directory, log, extra=("--tasks", "reduce_sum,dot")).wait(timeout=600) == 0
    assert_each_trial_finished_once(directory, log, 8)
    restarted = {key(e) for e in events(log)[seen:] if e["event"] == "start"}
    assert not restarted & finished  # no recorded experiment ran again
    pivot = report_sweep(directory)
    assert set(pivot.columns) >= {"one_hot", "mean", "solved_cells", "failed", "cells"}
    assert pivot["cells"].sum() == 8


@pytest.mark.slow
def test_a_process_restarts_itself_after_its_share_of_trials_and_the_sweep_completes(tmp_path):
    directory, log = tmp_path / "sweep", tmp_path / "audit.log"
    command = [
        sys.executable,
        "-m",
        "zoo.cli",
        "reasoning-ops",
        "run",
        "--profile",
        "test",
        "--tasks",
        "reduce_max",
        "--datasets",
        "one_hot",
        "--run",
        str(directory),
        "--audit-log",
        str(log),
        "--trials-per-process",
        "3",
    ]
    done = subprocess.run(command, env=cli_env(), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.count("restarting this process after 3 experiments") == 1
    assert "sweep finished" in done.stdout
    assert_each_trial_finished_once(directory, log, 4)


@pytest.mark.slow
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
        assert process.wait(timeout=600) == 0
    assert chief.wait(timeout=120) == 0
    assert_each_trial_finished_once(directory, log, 12)
    pids = {e["pid"] for e in events(log) if e["event"] == "end"}
    assert len(pids) >= 2  # the work really was spread over workers
    assert json.loads((directory / "metrics.json").read_text())["status"] == "finished"
