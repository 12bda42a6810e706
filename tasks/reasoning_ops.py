"""Reasoning operations sweep (seed `004`, Octavian-ai/reasoning-operations) on keras-tuner.

Can small networks learn arithmetic, logic and integer operations on two 128-wide operands?
Every experiment (task x dataset x network) is one keras-tuner trial of a grid search whose
`HyperModel.fit` runs the seed's protocol: Adam + MSE at batch 32, a learning-rate search
1e-6 .. 100 (x10, 1,000 steps each) stopping early once accuracy >= 0.99, and a 30,000-step run
at the best rate when nothing solved it. Accuracy is element-wise `|pred - label| < 10**-0.5 / 2`.
An experiment's training loop, data generation included, is one XLA-compiled `tf.while_loop`.

keras-tuner gives the rest: an interrupted sweep resumes without redoing finished trials, and
`--workers N` runs keras-tuner's own chief/worker mode (`KERASTUNER_TUNER_ID`,
`KERASTUNER_ORACLE_IP`, `KERASTUNER_ORACLE_PORT`); the same variables put workers elsewhere.

Reads top to bottom: data -> tasks -> networks -> protocol -> sweep -> report -> CLI.
"""

import dataclasses
import datetime
import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from zoo.layers import MultiplyBlock, MultiplySimple
from zoo.metrics import DEFAULT_TOLERANCE, ToleranceAccuracy
from zoo.runs import matplotlib_agg
from zoo.validation import check_positive_int

WIDTH = 128
MAX_EXAMPLES = 2**24  # example index x 256 positions must fit the 32-bit counters

# --- data ---------------------------------------------------------------------------------

DATASETS = ("one_hot", "many_hot", "random", "random_pos", "random_pos_seed")


def _hash32(x):
    """A bijective 32-bit integer hash (Wellons' "lowbias32"): counter -> random bits."""
    x = tf.bitwise.bitwise_xor(x, tf.bitwise.right_shift(x, 16)) * tf.constant(0x7FEB352D, tf.uint32)
    x = tf.bitwise.bitwise_xor(x, tf.bitwise.right_shift(x, 15)) * tf.constant(0x846CA68B, tf.uint32)
    return tf.bitwise.bitwise_xor(x, tf.bitwise.right_shift(x, 16))


def _key(seed, stream):
    return _hash32(tf.cast(seed, tf.uint32) * tf.constant(0x9E3779B9, tf.uint32) + stream)


def operands(dataset, indices, seed=0):
    """`(a, b)`, each `(len(indices), 128)` float32: the examples `indices` of a dataset.

    A dataset is a fixed sequence of examples in which every value is a hash of `(seed, example
    index, position)`: example `i` is the same whichever batch asks for it, nothing is stored,
    and the generation compiles into the training loop. Training uses indices
    `[0, train_size)`, the test set the `test_size` after them.

    `random_pos` is U[0, 1) as documented; `random_pos_seed` is U[-1, 1), what the original
    code actually generated under that name.
    """
    if dataset not in DATASETS:
        raise ValueError(f"`dataset` must be one of {', '.join(DATASETS)}, got {dataset!r}.")
    indices = tf.cast(indices, tf.uint32)
    counters = indices[:, None] * (2 * WIDTH) + tf.cast(tf.range(2 * WIDTH), tf.uint32)[None]
    bits = tf.bitwise.right_shift(_hash32(tf.bitwise.bitwise_xor(counters, _key(seed, 1))), 8)
    uniform = tf.cast(bits, tf.float32) * 2.0**-24  # U[0, 1), 24 bits
    if dataset == "one_hot":
        hot = tf.cast(uniform[:, ::WIDTH] * WIDTH, tf.int32)  # one position per operand
        values = tf.concat([tf.one_hot(hot[:, 0], WIDTH), tf.one_hot(hot[:, 1], WIDTH)], 1)
    elif dataset == "many_hot":
        values = tf.cast(uniform < 0.5, tf.float32)
    elif dataset == "random_pos":
        values = uniform
    else:
        values = 2.0 * uniform - 1.0
    return values[:, :WIDTH], values[:, WIDTH:]


# --- tasks --------------------------------------------------------------------------------


def _bool(x):
    return tf.cast(x, tf.float32)


TASKS = {
    "reduce_sum": lambda a, b: tf.reduce_sum(tf.concat([a, b], 1), 1, keepdims=True),
    "reduce_max": lambda a, b: tf.reduce_max(tf.concat([a, b], 1), 1, keepdims=True),
    "concat": lambda a, b: tf.concat([a, b], 1),
    "dot": lambda a, b: tf.reduce_sum(a * b, 1, keepdims=True),
    "elementwise_mul": lambda a, b: a * b,
    "elementwise_add": lambda a, b: a + b,
    # argmax a + argmax b past 127 has no slot: the target is then all zeros, as in the original.
    "one_hot_sum": lambda a, b: tf.one_hot(tf.argmax(a, 1) + tf.argmax(b, 1), WIDTH),
    "equality": lambda a, b: _bool(tf.equal(a, b)),
    "logical_and": lambda a, b: _bool(tf.logical_and(a != 0, b != 0)),
    "logical_or": lambda a, b: _bool(tf.logical_or(a != 0, b != 0)),
    "logical_xor": lambda a, b: _bool(tf.math.logical_xor(a != 0, b != 0)),
    "almost_equal": lambda a, b: _bool(tf.abs(a - b) < DEFAULT_TOLERANCE),
}
SEED_TASKS = tuple(name for name in TASKS if name != "almost_equal")


def target(task, a, b):
    if task not in TASKS:
        raise ValueError(f"`task` must be one of {', '.join(TASKS)}, got {task!r}.")
    return TASKS[task](a, b)


def output_width(task):
    return int(target(task, tf.zeros((1, WIDTH)), tf.zeros((1, WIDTH))).shape[1])


def train_batch(task, dataset, step, batch, train_size, seed):
    """Batch `step` of training: `batch` examples drawn with replacement from the first
    `train_size` of the dataset (the draw is a hash of the step, so it compiles too)."""
    draws = tf.cast(step * batch + tf.range(batch), tf.uint32)
    indices = tf.cast(_hash32(tf.bitwise.bitwise_xor(draws, _key(seed, 2))), tf.int64) % train_size
    a, b = operands(dataset, indices, seed)
    return (a, b), target(task, a, b)


def evaluation_set(task, dataset, train_size, test_size, seed):
    a, b = operands(dataset, tf.range(train_size, train_size + test_size), seed)
    return (a, b), target(task, a, b)


# --- networks -----------------------------------------------------------------------------

NETWORKS = ("dense", "dense_residual", "multiply", "multiply_simple")
ACTIVATIONS = ("linear", "tanh", "relu", "sigmoid", "selu")


@keras.saving.register_keras_serializable(package="zoo")
class ReasoningNet(keras.Model):
    """The sweep's networks on two operands `[a, b]`.

    - `dense`: concat(a, b) -> (depth - 1) x Dense(256, act) -> Dense(out, act); the activation
      is on every layer, the output's included, as in the seed.
    - `dense_residual`: concat -> Dense(256, act) -> (depth - 1) x [h + Dense(256, act)(h)] ->
      Dense(out).
    - `multiply`: `MultiplyBlock(256, out)`: Dense(a -> 256) * Dense(b -> 256) -> Dense(out).
    - `multiply_simple`: `MultiplySimple(out)`: Dense(a * b).

    Example:

    >>> ReasoningNet("multiply", units=1)([keras.ops.ones((2, 128))] * 2).shape
    (2, 1)
    """

    def __init__(self, network, units, depth=1, activation="linear", hidden=256, **kwargs):
        super().__init__(**kwargs)
        if network not in NETWORKS:
            raise ValueError(f"`network` must be one of {', '.join(NETWORKS)}, got {network!r}.")
        if activation not in ACTIVATIONS:
            raise ValueError(f"`activation` must be one of {', '.join(ACTIVATIONS)}, got {activation!r}.")
        if not 1 <= depth <= 3:
            raise ValueError(f"`depth` must be 1, 2 or 3, got {depth!r}.")
        self.network, self.units, self.depth, self.activation, self.hidden = network, units, depth, activation, hidden
        if network == "dense":
            self.stack = [keras.layers.Dense(hidden, activation=activation) for _ in range(depth - 1)]
            self.stack.append(keras.layers.Dense(units, activation=activation))
        elif network == "dense_residual":
            self.stem = keras.layers.Dense(hidden, activation=activation)
            self.stack = [keras.layers.Dense(hidden, activation=activation) for _ in range(depth - 1)]
            self.out = keras.layers.Dense(units)
        elif network == "multiply":
            self.block = MultiplyBlock(hidden, units)
        else:
            self.block = MultiplySimple(units)

    def call(self, inputs):
        a, b = inputs
        if self.network in ("multiply", "multiply_simple"):
            return self.block([a, b])
        h = keras.ops.concatenate([a, b], axis=1)
        if self.network == "dense":
            for layer in self.stack:
                h = layer(h)
            return h
        h = self.stem(h)
        for layer in self.stack:
            h = h + layer(h)
        return self.out(h)

    def get_config(self):
        return {"network": self.network, "units": self.units, "depth": self.depth,
                "activation": self.activation, "hidden": self.hidden, "name": self.name}


def network_configs(profile):
    """`(network, depth, activation)` of the grid: the seed's, or the quick profile's four."""
    if profile == "quick":
        return [("dense", 1, "linear"), ("dense_residual", 2, "relu"), ("multiply", 1, "linear"), ("multiply_simple", 1, "linear")]
    dense = [(kind, depth, act) for kind in ("dense", "dense_residual") for depth in (1, 2, 3) for act in ACTIVATIONS]
    return dense + [("multiply", 1, "linear"), ("multiply_simple", 1, "linear")]


# --- protocol -----------------------------------------------------------------------------


@dataclasses.dataclass
class Protocol:
    """The seed's per-experiment training protocol.

    Accuracy on the test set is checked every `eval_every` steps of the learning-rate search
    (every `final_eval_every` of the final run) and training stops once it reaches `solved`;
    the reported `global_step` is where it stopped, as in the seed's CSV.
    """

    lrs: tuple = tuple(10.0**e for e in range(-6, 3))
    search_steps: int = 1000
    final_steps: int = 30000
    solved: float = 0.99
    batch: int = 32
    train_size: int = 1_000_000
    test_size: int = 4000
    eval_every: int = 100
    final_eval_every: int = 1000

    def __post_init__(self):
        for name in ("search_steps", "final_steps", "batch", "train_size", "test_size", "eval_every", "final_eval_every"):
            check_positive_int(name, getattr(self, name))
        if self.train_size + self.test_size > MAX_EXAMPLES:
            raise ValueError(f"`train_size` + `test_size` must be at most {MAX_EXAMPLES:,}, got {self.train_size + self.test_size:,}.")


PROFILES = {
    "seed": Protocol(),
    "quick": Protocol(lrs=(1e-4, 1e-3, 1e-2, 1e-1), search_steps=300, final_steps=1500, train_size=100_000,
                      test_size=2000, final_eval_every=500),
    "test": Protocol(lrs=(1e-2, 1e-1), search_steps=20, final_steps=30, train_size=2000, test_size=200,
                     eval_every=10, final_eval_every=10),
}


class Experiment:
    """One experiment's network, Adam and compiled training loop.

    The whole training loop, data generation included, is one XLA-compiled `tf.while_loop`
    (`train(first_step, steps)`) over the model's and optimizer's own variables; `attempt(lr, ...)`
    resets both to the same initial state, so the learning-rate search compiles once.
    """

    def __init__(self, task, dataset, network, depth, activation, protocol, seed=0):
        self.protocol = protocol
        keras.utils.set_random_seed(seed)
        self.model = ReasoningNet(network, output_width(task), depth, activation)
        self.model([tf.zeros((1, WIDTH))] * 2)
        self.initial = [variable.numpy() for variable in self.model.trainable_variables]
        self.optimizer = keras.optimizers.Adam(protocol.lrs[0])
        self.optimizer.build(self.model.trainable_variables)
        self.test_inputs, self.test_targets = evaluation_set(task, dataset, protocol.train_size, protocol.test_size, seed)
        self.accuracy = ToleranceAccuracy()
        model, optimizer = self.model, self.optimizer

        @tf.function(jit_compile=True)
        def train(first_step, steps):
            def body(step, loss):
                inputs, targets = train_batch(task, dataset, step, protocol.batch, protocol.train_size, seed)
                with tf.GradientTape() as tape:
                    loss = tf.reduce_mean(tf.square(model(inputs, training=True) - targets))
                gradients = tape.gradient(loss, model.trainable_variables)
                optimizer.apply(gradients, model.trainable_variables)
                return step + 1, loss

            return tf.while_loop(lambda step, _: step < first_step + steps, body, (first_step, tf.constant(0.0)))[1]

        self.train = train
        self.predict = tf.function(lambda inputs: model(inputs), jit_compile=True)

    def reset(self, lr):
        for variable, value in zip(self.model.trainable_variables, self.initial):
            variable.assign(value)
        for variable in self.optimizer.variables:
            variable.assign(tf.zeros_like(variable))
        self.optimizer.learning_rate.assign(lr)

    def evaluate(self):
        predictions = self.predict(self.test_inputs)
        loss = float(tf.reduce_mean(tf.square(predictions - self.test_targets)))
        self.accuracy.reset_state()
        self.accuracy.update_state(self.test_targets, predictions)
        return float(self.accuracy.result()), loss if np.isfinite(loss) else float("inf")

    def attempt(self, lr, steps, eval_every):
        """Adam at `lr` from the initial weights for up to `steps`, stopping once solved."""
        self.reset(lr)
        done = 0
        while done < steps:
            chunk = min(eval_every, steps - done)
            self.train(tf.constant(done), tf.constant(chunk))
            done += chunk
            accuracy, loss = self.evaluate()
            if accuracy >= self.protocol.solved:
                break
        return {"accuracy": accuracy, "loss": loss, "lr": lr, "global_step": done}


def run_experiment(task, dataset, network, depth, activation, protocol, seed=0):
    """The protocol on one experiment; returns the seed's result columns (and wall time)."""
    started = time.time()
    experiment = Experiment(task, dataset, network, depth, activation, protocol, seed)
    best = None
    for lr in protocol.lrs:
        outcome = experiment.attempt(lr, protocol.search_steps, protocol.eval_every)
        if best is None or (outcome["accuracy"], -outcome["loss"]) > (best["accuracy"], -best["loss"]):
            best = outcome
        if outcome["accuracy"] >= protocol.solved:
            break
    if best["accuracy"] < protocol.solved:
        best = experiment.attempt(best["lr"], protocol.final_steps, protocol.final_eval_every)
    best["wall_seconds"] = time.time() - started
    return best


# --- sweep on keras-tuner -----------------------------------------------------------------


def _hypermodel_class():
    import keras_tuner

    class ReasoningHyperModel(keras_tuner.HyperModel):
        """One trial = one experiment; `fit` runs the whole protocol."""

        def __init__(self, tasks, datasets, configs, protocol, seed, log=None, directory=None):
            super().__init__()
            self.tasks, self.datasets, self.configs = tasks, datasets, configs
            self.protocol, self.seed, self.log, self.directory = protocol, seed, log, directory
            self.total = len(tasks) * len(datasets) * len(configs)
            self.finished = set()

        def build(self, hp):
            task = hp.Choice("task", list(self.tasks))
            hp.Choice("dataset", list(self.datasets))
            network, depth, activation = hp.Choice("network_config", ["-".join(map(str, c)) for c in self.configs]).split("-")
            return ReasoningNet(network, output_width(task), int(depth), activation)

        def fit(self, hp, model, *args, **kwargs):
            network, depth, activation = hp.get("network_config").split("-")
            self._note("start", hp)
            result = run_experiment(hp.get("task"), hp.get("dataset"), network, int(depth), activation, self.protocol, self.seed)
            self._note("end", hp)
            self._progress(hp, result)
            return result

        def _progress(self, hp, result):
            # One line per finished experiment, whichever process ran it (this one is not saved
            # yet). A finished trial stays finished, so only files not yet seen finished are read.
            if self.directory:
                self.finished |= {path for path, _ in completed_trials(self.directory, skip=self.finished)}
            done = 1 + len(self.finished)
            print(f"[{done:>{len(str(self.total))}}/{self.total}] {hp.get('task'):<15} {hp.get('dataset'):<15} "
                  f"{hp.get('network_config'):<24} accuracy {result['accuracy']:.3f}  lr {result['lr']:.0e}  "
                  f"step {result['global_step']:>5}  {result['wall_seconds']:5.1f} s", flush=True)

        def _note(self, event, hp):
            # An audit line per trial start/end, so tests can prove each ran exactly once.
            if self.log:
                with open(self.log, "a") as file:
                    file.write(json.dumps({"event": event, "pid": os.getpid(), "values": hp.values}) + "\n")

    return ReasoningHyperModel


def _grid_oracle_class():
    import keras_tuner

    class ExperimentGridOracle(keras_tuner.Oracle):
        """Hands out every combination of a fixed grid once, in order.

        keras-tuner's own `GridSearchOracle` does not save its traversal state, so
        a reloaded sweep fails; this one derives everything from the oracle's saved
        `tried_so_far` hashes, and reloaded running trials go to the retry queue."""

        def __init__(self, grid, **kwargs):
            super().__init__(max_trials=len(grid), **kwargs)
            self.grid = grid

        def populate_space(self, trial_id):
            for values in self.grid:
                if self._compute_values_hash(values) not in self._tried_so_far:
                    return {"status": keras_tuner.engine.trial.TrialStatus.RUNNING, "values": values}
            if self.ongoing_trials:
                return {"status": keras_tuner.engine.trial.TrialStatus.IDLE}
            return {"status": keras_tuner.engine.trial.TrialStatus.STOPPED}

    return ExperimentGridOracle


def _sweep_tuner_class():
    import keras_tuner

    class SweepTuner(keras_tuner.Tuner):
        """A `Tuner` that can stop between trials after `trials_per_process` of them.

        Every experiment compiles its own XLA loop, and TensorFlow keeps each compiled program
        for the life of the process (about 9 MB per experiment); a long sweep's process stops
        every so often and starts afresh (`zoo reasoning-ops run` re-executes itself), resuming
        the sweep with nothing lost."""

        def __init__(self, *args, trials_per_process=None, **kwargs):
            super().__init__(*args, **kwargs)
            self.trials_per_process, self.trials_run, self.stopped_to_restart = trials_per_process, 0, False

        def on_trial_end(self, trial):
            super().on_trial_end(trial)
            self.trials_run += 1

        def pre_create_trial(self):
            if self.trials_per_process and self.trials_run >= self.trials_per_process:
                self.stopped_to_restart = True
                raise _Restart
            super().pre_create_trial()

    return SweepTuner


class _Restart(Exception):
    pass


def make_tuner(directory, profile="quick", tasks=None, datasets=None, seed=0, log=None, trials_per_process=None):
    import keras_tuner

    protocol = PROFILES[profile]
    tasks = tuple(tasks or (TASKS if profile == "quick" else SEED_TASKS))
    datasets = tuple(datasets or (("one_hot", "random_pos") if profile == "quick" else ("one_hot", "many_hot", "random", "random_pos")))
    configs = network_configs("quick" if profile in ("quick", "test") else "seed")
    hypermodel = _hypermodel_class()(tasks, datasets, configs, protocol, seed, log, directory)
    grid = [{"task": task, "dataset": dataset, "network_config": "-".join(map(str, config))}
            for task in tasks for dataset in datasets for config in configs]
    oracle = _grid_oracle_class()(grid, objective=keras_tuner.Objective("accuracy", "max"), max_consecutive_failed_trials=1000)
    return _sweep_tuner_class()(oracle=oracle, hypermodel=hypermodel, directory=str(directory), project_name="sweep",
                                overwrite=False, trials_per_process=trials_per_process)


class _NoRetracingWarnings(logging.Filter):
    """Every experiment compiles its own loop by design; TensorFlow's "excessive retracing"
    warning about that would fill a sweep's log."""

    def filter(self, record):
        return "triggered tf.function retracing" not in record.getMessage()


def run_sweep(directory, profile="quick", tasks=None, datasets=None, seed=0, log=None, trials_per_process=None):
    """Runs (or resumes) the sweep in this process: alone, as the chief or as a worker,
    as keras-tuner's environment variables say. With `trials_per_process`, returns after that
    many trials with `tuner.stopped_to_restart` set (the sweep is not finished)."""
    logging.getLogger("tensorflow").addFilter(_NoRetracingWarnings())
    tuner = make_tuner(directory, profile, tasks, datasets, seed, log, trials_per_process)
    try:
        tuner.search(verbose=0)
    except _Restart:
        pass
    return tuner


def launch(directory, workers, profile="quick", port=8000, extra=()):
    """A chief and `workers` local worker processes of `zoo reasoning-ops run`."""
    command = [sys.executable, "-m", "zoo.cli", "reasoning-ops", "run", "--directory", str(directory),
               "--profile", profile, "--workers", "0", *extra]
    base = {**os.environ, "KERASTUNER_ORACLE_IP": "127.0.0.1", "KERASTUNER_ORACLE_PORT": str(port)}
    chief = subprocess.Popen(command, env={**base, "KERASTUNER_TUNER_ID": "chief"})
    time.sleep(3)
    processes = [subprocess.Popen(command, env={**base, "KERASTUNER_TUNER_ID": f"tuner{i}"}) for i in range(workers)]
    for process in processes:
        process.wait()
    chief.wait()
    return chief.returncode or max((p.returncode for p in processes), default=0)


# --- report -------------------------------------------------------------------------------

COLUMNS = ["task", "dataset", "network_type", "network_depth", "network_activation", "accuracy_pct",
           "accuracy", "loss", "lr", "global_step", "datetime", "wall_seconds"]


def completed_trials(directory, skip=frozenset()):
    """`(path, trial)` of every finished trial of a sweep, but for the paths in `skip`."""
    trials = []
    for path in sorted(Path(directory, "sweep").glob("trial_*/trial.json")):
        if path in skip:
            continue
        try:
            trial = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):  # being written by another process
            continue
        if trial.get("status") == "COMPLETED":
            trials.append((path, trial))
    return trials


def collect(directory):
    """Every finished trial as a row with the seed's columns."""
    import pandas as pd

    rows = []
    for path, trial in completed_trials(directory):
        values = trial["hyperparameters"]["values"]
        metrics = {name: entry["observations"][0]["value"][0] for name, entry in trial["metrics"]["metrics"].items()}
        network, depth, activation = values["network_config"].split("-")
        rows.append({
            "task": values["task"], "dataset": values["dataset"], "network_type": network,
            "network_depth": int(depth), "network_activation": activation,
            "accuracy_pct": f"{int(metrics['accuracy'] * 100)}.0%", "accuracy": metrics["accuracy"],
            "loss": metrics["loss"], "lr": metrics["lr"], "global_step": int(metrics["global_step"]),
            "datetime": datetime.datetime.fromtimestamp(path.stat().st_mtime).strftime("%Y-%m-%d %H:%M:%S"),
            "wall_seconds": metrics["wall_seconds"],
        })
    return pd.DataFrame(rows, columns=COLUMNS)


def complete_cells(frame):
    """The rows of the (task, dataset) cells in which every network of `frame` has finished, so
    that a sweep still running compares its networks on the same cells."""
    networks = frame["network"].nunique()
    return frame[frame.groupby(["task", "dataset"])["network"].transform("nunique") == networks]


def report(directory):
    """Writes results.csv (every finished trial), pivot.csv and heatmap.png (the cells every
    network has finished) next to the sweep; returns the pivot, with
    `pivot.attrs["cells"] = (cells compared, cells with any result)`."""
    frame = collect(directory)
    if frame.empty:
        raise ValueError(f"`directory` {directory} holds no finished trials yet.")
    directory = Path(directory)
    frame.to_csv(directory / "results.csv", index=False)
    frame["network"] = frame["network_type"] + "-" + frame["network_depth"].astype(str) + "-" + frame["network_activation"]
    cells = len(frame.groupby(["task", "dataset"]))
    frame = complete_cells(frame)
    pivot = frame.pivot_table(index="network", columns="dataset", values="accuracy", aggfunc="mean")
    pivot["mean"] = frame.groupby("network")["accuracy"].mean()
    pivot["solved_cells"] = frame.groupby("network")["accuracy"].apply(lambda acc: int((acc >= 0.99).sum()))
    pivot["cells"] = frame.groupby("network")["accuracy"].size()
    pivot = pivot.sort_values("mean", ascending=False)
    pivot.to_csv(directory / "pivot.csv")
    heat = frame.pivot_table(index="task", columns="network", values="accuracy", aggfunc="mean")
    plt = matplotlib_agg()
    figure, axis = plt.subplots(figsize=(1.2 + 0.9 * heat.shape[1], 1 + 0.45 * heat.shape[0]))
    image = axis.imshow(heat.values, cmap="viridis", vmin=0, vmax=1, aspect="auto")
    axis.set_xticks(range(heat.shape[1]), heat.columns, rotation=45, ha="right")
    axis.set_yticks(range(heat.shape[0]), heat.index)
    for (row, column), value in np.ndenumerate(heat.values):
        axis.text(column, row, f"{value:.2f}", ha="center", va="center", fontsize=7, color="white" if value < 0.5 else "black")
    figure.colorbar(image, label="mean accuracy over datasets")
    axis.set_title("Reasoning operations: accuracy (task x network)")
    figure.savefig(directory / "heatmap.png", dpi=120, bbox_inches="tight")
    plt.close(figure)
    pivot.attrs["cells"] = (len(frame.groupby(["task", "dataset"])), cells)
    return pivot


# --- CLI ----------------------------------------------------------------------------------


def register(subparsers):
    parser = subparsers.add_parser("reasoning-ops", help="reasoning-operations sweep on keras-tuner (seed 004)")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    run_parser = commands.add_parser("run", help="run or resume the sweep (--workers N: chief + N workers)")
    run_parser.add_argument("--directory", default="runs/reasoning-ops", help="the sweep's folder (resumes if it exists)")
    run_parser.add_argument("--profile", choices=tuple(PROFILES), default="quick", help="seed: the full grid and protocol; quick: all tasks x 2 datasets x 4 networks, short search")
    run_parser.add_argument("--workers", type=int, default=0, help="local worker processes (0: run in this process)")
    run_parser.add_argument("--port", type=int, default=8000, help="the chief's port with --workers")
    run_parser.add_argument("--tasks", default="", help="comma-separated subset of tasks")
    run_parser.add_argument("--datasets", default="", help="comma-separated subset of datasets")
    run_parser.add_argument("--trials-per-process", type=int, default=200,
                            help="a process restarts itself after this many experiments, freeing TensorFlow's compiled programs (0: never)")
    run_parser.add_argument("--audit-log", default="", help="append a line per trial start/end (tests)")
    run_parser.set_defaults(handler=_run)
    report_parser = commands.add_parser("report", help="CSV, pivot table and heat-map of a sweep")
    report_parser.add_argument("--directory", default="runs/reasoning-ops")
    report_parser.set_defaults(handler=_report)


def _split(text, allowed, name):
    values = tuple(v for v in text.split(",") if v)
    for value in values:
        if value not in allowed:
            raise ValueError(f"`--{name}` must list values from {', '.join(allowed)}, got {value!r}.")
    return values or None


def _run(args):
    tasks = _split(args.tasks, tuple(TASKS), "tasks")
    datasets = _split(args.datasets, DATASETS, "datasets")
    if args.workers < 0:
        raise ValueError(f"`--workers` must be >= 0, got {args.workers}.")
    if args.trials_per_process < 0:
        raise ValueError(f"`--trials-per-process` must be >= 0, got {args.trials_per_process}.")
    if args.workers:
        extra = [flag for name, flag in (("tasks", args.tasks), ("datasets", args.datasets), ("audit-log", args.audit_log)) if flag for flag in (f"--{name}", flag)]
        extra += ["--trials-per-process", str(args.trials_per_process)]
        return launch(args.directory, args.workers, args.profile, args.port, extra)
    started = time.time()
    tuner = run_sweep(args.directory, args.profile, tasks, datasets, log=args.audit_log or None, trials_per_process=args.trials_per_process)
    if tuner.stopped_to_restart:
        print(f"restarting this process after {tuner.trials_run} experiments (frees TensorFlow's compiled programs)", flush=True)
        os.execv(sys.executable, sys.orig_argv)
    if os.environ.get("KERASTUNER_TUNER_ID", "chief").startswith("chief"):
        print(f"sweep finished in {time.time() - started:.0f} s; `zoo reasoning-ops report --directory {args.directory}`")
    return 0


def _report(args):
    pivot = report(args.directory)
    print(pivot.round(3).to_string())
    compared, cells = pivot.attrs["cells"]
    if compared < cells:
        print(f"pivot and heat-map over the {compared} of {cells} task x dataset cells that every network has finished")
    print(f"written: {Path(args.directory) / 'results.csv'}, pivot.csv, heatmap.png")
