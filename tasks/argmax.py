"""ArgMaxNet: a small residual MLP that learns the index of the largest of 10 scores.

Seed `000` (sparseinference/argmaxnet): 3 residual blocks Block(10, 60), a Dense(10 -> 1) with
`abs` output, 3,821 parameters; scores `softmax(randn(B, 10))`, target the argmax as a float,
summed squared error, batch 25, SGD momentum 0.9 with fresh momentum each 15,000-step episode and
`lr = 1e-4 * 0.98**(episode - 1)`. Err = mean(round(pred) != label).

Reads top to bottom: data -> model -> recipes -> train -> test -> tune -> CLI.
"""

import dataclasses
import math
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from zoo.callbacks import ExpDecay
from zoo.layers import MultiplyBlock, ResidualBlock
from zoo.metrics import RoundedIndexError
from zoo._legacy_runs import LegacyRunFolder as RunFolder, add_config_arguments, check_config, config_from_args
from zoo.validation import check_positive_int

SCORES = 10
PARAMETER_BUDGET = 3821

# --- data ---------------------------------------------------------------------------------


def score_batch(batch_size, seed):
    """`softmax(randn(batch, 10))` and the argmax as a float, from a stateless seed pair."""
    logits = tf.random.stateless_normal((batch_size, SCORES), seed=seed)
    scores = tf.nn.softmax(logits)
    labels = tf.cast(tf.argmax(scores, axis=-1), tf.float32)[:, None]
    return scores, labels


def score_dataset(batch_size, steps, seed, first_step=0):
    """`steps` batches, batch `i` drawn from the seed `(seed, first_step + i)`.

    Stateless seeds make every batch reproducible, so a resumed run sees
    the very batches it would have seen.
    """
    steps_ds = tf.data.Dataset.range(first_step, first_step + steps)
    # Fixed parallelism: an AUTOTUNE pipeline can stall for minutes when fit drops it.
    dataset = steps_ds.map(
        lambda step: score_batch(batch_size, tf.stack([tf.cast(seed, tf.int64), step])),
        num_parallel_calls=2,
    )
    return dataset.prefetch(8)


# --- model --------------------------------------------------------------------------------


@keras.saving.register_keras_serializable(package="zoo")
class MultiplyResidualBlock(keras.layers.Layer):
    """`y = act(MultiplyBlock([x, x]) + x)`: a residual block whose hidden layer is an
    element-wise product of two projections of the input.

    Args:
        hidden: width of the two projections.
        activation: applied after the residual sum. Defaults to `"relu"`.

    Example:

    >>> MultiplyResidualBlock(8)(keras.ops.ones((2, 10))).shape
    (2, 10)
    """

    def __init__(self, hidden, activation="relu", **kwargs):
        super().__init__(**kwargs)
        self.hidden = hidden
        self.activation = activation
        self._activation_fn = keras.activations.get(activation)

    def build(self, input_shape):
        self.multiply = MultiplyBlock(self.hidden, input_shape[-1], dtype=self.dtype_policy, name="multiply")
        self.multiply.build([input_shape, input_shape])

    def call(self, inputs):
        return self._activation_fn(self.multiply([inputs, inputs]) + inputs)

    def get_config(self):
        config = super().get_config()
        config.update({"hidden": self.hidden, "activation": self.activation})
        return config


BLOCKS = ("residual", "multiply")


def count_parameters(depth, hidden, block="residual", width=SCORES):
    """Parameters of an ArgMaxNet, without building it."""
    per_block = {
        "residual": (width * hidden + hidden) + (hidden * width + width),
        "multiply": 2 * (width * hidden + hidden) + (hidden * width + width),
    }[block]
    return depth * per_block + width + 1


@keras.saving.register_keras_serializable(package="zoo")
class ArgMaxNet(keras.Model):
    """Stacked residual blocks, then Dense(width -> 1) with `abs` output.

    The defaults are the seed's: 3 x `ResidualBlock(60)` on 10 scores, 3,821
    parameters, PyTorch-style `U(+-1/sqrt(fan_in))` initialisation.

    Args:
        depth: number of blocks (3).
        hidden: hidden width of each block (60).
        block: `"residual"` (ResidualBlock) or `"multiply"` (MultiplyResidualBlock).

    Example:

    >>> model = ArgMaxNet()
    >>> model(keras.ops.ones((2, 10))).shape, model.count_params()
    ((2, 1), 3821)

    References:
        sparseinference/argmaxnet (seed `000`).
    """

    def __init__(self, depth=3, hidden=60, block="residual", **kwargs):
        super().__init__(**kwargs)
        check_positive_int("depth", depth)
        check_positive_int("hidden", hidden)
        if block not in BLOCKS:
            raise ValueError(f"`block` must be one of {', '.join(BLOCKS)}, got {block!r}.")
        self.depth = depth
        self.hidden = hidden
        self.block = block
        if block == "residual":
            self.blocks = [
                ResidualBlock(hidden, kernel_initializer="fan_in_uniform", name=f"block_{i}")
                for i in range(depth)
            ]
        else:
            self.blocks = [MultiplyResidualBlock(hidden, name=f"block_{i}") for i in range(depth)]
        limit = 1.0 / math.sqrt(SCORES)
        uniform = keras.initializers.RandomUniform(-limit, limit)
        self.head = keras.layers.Dense(1, kernel_initializer=uniform, bias_initializer=uniform, name="head")
        self.build((None, SCORES))

    def build(self, input_shape):
        for block in self.blocks:
            block.build(input_shape)
        self.head.build(input_shape)
        self.built = True

    def call(self, inputs):
        hidden = inputs
        for block in self.blocks:
            hidden = block(hidden)
        return keras.ops.abs(self.head(hidden))

    def get_config(self):
        return {"depth": self.depth, "hidden": self.hidden, "block": self.block, "name": self.name}


# --- recipes ------------------------------------------------------------------------------

RECIPES = ("seed", "improved")


@dataclasses.dataclass
class ArgMaxConfig:
    """ArgMaxNet training; the defaults are the seed's recipe."""

    recipe: str = dataclasses.field(default="seed", metadata={"choices": RECIPES, "help": "seed: SGD as the original; improved: see README"})
    episodes: int = dataclasses.field(default=100, metadata={"help": "episodes (Keras epochs) to train"})
    steps_per_episode: int = dataclasses.field(default=15000, metadata={"help": "optimizer steps per episode"})
    batch_size: int = dataclasses.field(default=25, metadata={"help": "scores per training batch"})
    learning_rate: float = dataclasses.field(default=1e-4, metadata={"help": "learning rate of episode 1"})
    lr_decay: float = dataclasses.field(default=0.98, metadata={"help": "learning-rate factor per episode"})
    momentum: float = dataclasses.field(default=0.9, metadata={"help": "SGD momentum (reset every episode)"})
    depth: int = dataclasses.field(default=3, metadata={"help": "number of blocks"})
    hidden: int = dataclasses.field(default=60, metadata={"help": "hidden width of each block"})
    block: str = dataclasses.field(default="residual", metadata={"choices": BLOCKS, "help": "block kind"})
    eval_batches: int = dataclasses.field(default=10, metadata={"help": "batches of fresh scores evaluated after each episode"})
    eval_batch_size: int = dataclasses.field(default=500, metadata={"help": "scores per evaluation batch"})
    steps_per_execution: int = dataclasses.field(default=500, metadata={"help": "optimizer steps per compiled call"})
    seed: int = dataclasses.field(default=0, metadata={"help": "seed of weights and data"})
    run: str = dataclasses.field(default="", metadata={"help": "run folder (default runs/argmax/<UTC time>); an existing one resumes"})

    def __post_init__(self):
        positive = (lambda value: value > 0, "> 0")
        check_config(self, {
            "episodes": positive, "steps_per_episode": positive, "batch_size": positive,
            "learning_rate": positive, "depth": positive, "hidden": positive,
            "eval_batches": positive, "eval_batch_size": positive, "steps_per_execution": positive,
            "lr_decay": (lambda value: 0 < value <= 1, "in (0, 1]"),
            "momentum": (lambda value: 0 <= value < 1, "in [0, 1)"),
            "recipe": (lambda value: value in RECIPES, f"one of {RECIPES}"),
            "block": (lambda value: value in BLOCKS, f"one of {BLOCKS}"),
        })


# The improved recipe: Adam on the mean squared error at batch 250 (10x the seed's), lr 3e-3
# decayed by 0.96 per 10,000-step episode, 120 episodes. Same network and parameter count.
IMPROVED = dict(batch_size=250, learning_rate=3e-3, lr_decay=0.96, steps_per_episode=10000, episodes=120)


def resolve(config):
    """The config actually trained: the improved recipe replaces the seed's defaults."""
    if config.recipe != "improved":
        return config
    defaults = ArgMaxConfig()
    changes = {key: value for key, value in IMPROVED.items() if getattr(config, key) == getattr(defaults, key)}
    return dataclasses.replace(config, **changes)


def make_optimizer(config):
    if config.recipe == "improved":
        return keras.optimizers.Adam(config.learning_rate)
    return keras.optimizers.SGD(config.learning_rate, momentum=config.momentum)


def make_loss(config):
    # The seed sums the squared error over the batch; the improved recipe averages it.
    reduction = "sum_over_batch_size" if config.recipe == "improved" else "sum"
    return keras.losses.MeanSquaredError(reduction=reduction)


class FreshOptimizerState(keras.callbacks.Callback):
    """Zeroes the optimizer's slots (momentum, Adam moments) at each episode: the seed
    built a new optimizer every episode."""

    def on_epoch_begin(self, epoch, logs=None):
        optimizer = self.model.optimizer
        if not optimizer.built:
            return
        keep = {id(optimizer.iterations), id(optimizer._learning_rate)}
        for variable in optimizer.variables:
            if id(variable) not in keep:
                variable.assign(keras.ops.zeros_like(variable))


class EpisodeReport(keras.callbacks.Callback):
    """Evaluates on fresh scores after each episode and prints the seed's line
    `[ep] Loss Err elapsed lr`; the numbers go into the logs as `eval_loss` and `eval_err`."""

    def __init__(self, config, started):
        super().__init__()
        self.config = config
        self.started = started

    def on_epoch_end(self, epoch, logs=None):
        data = score_dataset(self.config.eval_batch_size, self.config.eval_batches, seed=self.config.seed + 1_000_003, first_step=epoch * self.config.eval_batches)
        loss, err = evaluate(self.model, data)
        lr = float(self.model.optimizer.learning_rate.numpy())
        hours = (time.time() - self.started) / 3600
        print(f"[{epoch + 1:5d}] Loss: {loss:.6f}   Err: {err:.6f}  elapsed: {hours:9.6f} hours, lr={lr:.8f}", flush=True)
        if logs is not None:
            logs.update({"eval_loss": loss, "eval_err": err, "elapsed_hours": hours})


def evaluate(model, dataset):
    """Mean squared error per instance and Err over a dataset of `(scores, labels)`."""
    squared, wrong, count = 0.0, 0.0, 0
    for scores, labels in dataset:
        predictions = model.predict_on_batch(scores)
        squared += float(np.sum((predictions - labels.numpy()) ** 2))
        wrong += float(np.sum(np.round(predictions) != labels.numpy()))
        count += len(labels)
    return squared / count, wrong / count


# --- train --------------------------------------------------------------------------------


def train(config, verbose=1):
    """Trains (or resumes) ArgMaxNet; returns the run folder."""
    config = resolve(config)
    run = RunFolder.create("argmax", path=config.run or None)
    resuming = (run.path / "backup").exists()
    run.save_config(config)
    keras.utils.set_random_seed(config.seed)
    model = ArgMaxNet(config.depth, config.hidden, config.block)
    model.compile(
        optimizer=make_optimizer(config),
        loss=make_loss(config),
        metrics=[RoundedIndexError()],
        steps_per_execution=min(config.steps_per_execution, config.steps_per_episode),
        jit_compile=True,
    )
    print(
        f"ArgMaxNet : StackDepth={config.depth}, Block({SCORES},{config.hidden}) [{config.block}]\n"
        f"            recipe={config.recipe}: {type(model.optimizer).__name__}(lr={config.learning_rate} "
        f"x {config.lr_decay} each episode), batch {config.batch_size}, {config.steps_per_episode} steps/episode\n"
        f"Parameter count = {model.count_params()}\nRun folder: {run.path}" + (" (resuming)" if resuming else ""),
        flush=True,
    )
    finished_episodes = len(run.history()) if resuming else 0
    first_step = finished_episodes * config.steps_per_episode
    total_steps = config.episodes * config.steps_per_episode
    data = score_dataset(config.batch_size, max(total_steps - first_step, 1), seed=config.seed, first_step=first_step)
    started = time.time()
    model.fit(
        data,
        epochs=config.episodes,
        steps_per_epoch=config.steps_per_episode,
        shuffle=False,
        verbose=verbose,
        callbacks=[
            # Kept after training, so a finished run can be extended with more episodes.
            keras.callbacks.BackupAndRestore(str(run.path / "backup"), delete_checkpoint=False),
            FreshOptimizerState(),
            ExpDecay(config.lr_decay, initial_learning_rate=config.learning_rate),
            EpisodeReport(config, started),
            run.history_logger(),
        ],
    )
    train_seconds = time.time() - started
    model.save(run.model_path)
    metrics = test(model, run=run)
    metrics.update({"train_seconds_this_session": train_seconds, "parameters": model.count_params()})
    run.save_metrics(metrics)
    plot_history(run)
    return run


def plot_history(run):
    from zoo.runs import matplotlib_agg

    history = run.history()
    if history.empty or "eval_err" not in history:
        return
    plt = matplotlib_agg()
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 3.5))
    left.semilogy(history["epoch"], history["eval_loss"])
    left.set(xlabel="episode", ylabel="eval loss (MSE per instance)")
    right.semilogy(history["epoch"], history["eval_err"])
    right.set(xlabel="episode", ylabel="eval Err")
    figure.suptitle("ArgMaxNet training")
    run.save_figure(figure, "training")


# --- test ---------------------------------------------------------------------------------


def test(model, batches=100, batch_size=500, seed=2024, run=None):
    """The seed's test protocol: `batches` batches of `batch_size` fresh scores.

    Reports loss (MSE per instance), Err and milliseconds per instance, once for
    inference alone and once including the generation of the scores.
    """
    if isinstance(model, (str, Path)):
        model = load(model)
    infer = tf.function(model, jit_compile=True, reduce_retracing=True)
    generate = tf.function(lambda step: score_batch(batch_size, tf.stack([tf.constant(seed, tf.int64), step])))
    infer(generate(tf.constant(0, tf.int64))[0])  # compile outside the timing
    squared = wrong = 0.0
    inference_seconds = 0.0
    started = time.perf_counter()
    for step in range(batches):
        scores, labels = generate(tf.constant(step, tf.int64))
        tick = time.perf_counter()
        predictions = infer(scores).numpy()
        inference_seconds += time.perf_counter() - tick
        squared += float(np.sum((predictions - labels.numpy()) ** 2))
        wrong += float(np.sum(np.round(predictions) != labels.numpy()))
    total_seconds = time.perf_counter() - started
    instances = batches * batch_size
    metrics = {
        "test_loss": squared / instances,
        "test_err": wrong / instances,
        "test_ms_per_instance_inference": 1000 * inference_seconds / instances,
        "test_ms_per_instance_with_generation": 1000 * total_seconds / instances,
        "test_instances": instances,
    }
    print(f"Testing {batches} batches of {batch_size} random scores ...")
    print(
        f"Loss: {metrics['test_loss']:.6f}   Err: {metrics['test_err']:.6f}  "
        f"elapsed: {total_seconds / 3600:.6f} hours  perInstance: "
        f"{metrics['test_ms_per_instance_inference']:.6f} ms (inference), "
        f"{metrics['test_ms_per_instance_with_generation']:.6f} ms (with generation)"
    )
    if run is not None:
        run.save_metrics(metrics)
    return metrics


def load(path):
    """A saved ArgMaxNet from a `.keras` file or a run folder."""
    path = Path(path)
    if path.is_dir():
        path = path / "model.keras"
    if not path.exists():
        raise ValueError(f"`run_or_model` {path} does not exist.")
    return keras.saving.load_model(path)


# --- tune ---------------------------------------------------------------------------------


def tune(trials=10, steps=3000, budget=PARAMETER_BUDGET, directory="runs/argmax-tune", seed=0, overwrite=False):
    """A keras-tuner random search over depth, hidden width, block kind and learning rate,
    every candidate within `budget` parameters; returns a DataFrame of all trials."""
    import keras_tuner
    import pandas as pd

    if budget < count_parameters(1, 1):
        raise ValueError(f"`budget` must be at least {count_parameters(1, 1)}, got {budget}.")

    class ArgMaxHyperModel(keras_tuner.HyperModel):
        def build(self, hp):
            depth = hp.Int("depth", 1, 6)
            block = hp.Choice("block", list(BLOCKS))
            widest = max(w for w in range(1, 513) if count_parameters(depth, w, block) <= budget)
            hidden = max(1, round(widest * hp.Float("width_fraction", 0.25, 1.0)))
            model = ArgMaxNet(depth, hidden, block)
            model.compile(keras.optimizers.Adam(hp.Float("learning_rate", 1e-4, 1e-2, sampling="log")),
                          keras.losses.MeanSquaredError(), metrics=[RoundedIndexError()],
                          steps_per_execution=250, jit_compile=True)
            return model

    tuner = keras_tuner.RandomSearch(
        ArgMaxHyperModel(), objective=keras_tuner.Objective("val_err", "min"), max_trials=trials,
        directory=directory, project_name="search", seed=seed, overwrite=overwrite,
    )
    tuner.search(
        score_dataset(250, steps, seed=seed), epochs=1, steps_per_epoch=steps,
        validation_data=score_dataset(500, 10, seed=seed + 7), shuffle=False, verbose=0,
    )
    rows = []
    for trial in tuner.oracle.trials.values():
        values = dict(trial.hyperparameters.values)
        model = ArgMaxHyperModel().build(trial.hyperparameters)
        rows.append({"trial": trial.trial_id, **values, "hidden": model.hidden, "parameters": model.count_params(),
                     "val_err": trial.metrics.get_best_value("val_err") if trial.metrics.exists("val_err") else None,
                     "status": trial.status})
    frame = pd.DataFrame(rows).sort_values("val_err")
    frame.to_csv(Path(directory) / "trials.csv", index=False)
    return frame


# --- CLI ----------------------------------------------------------------------------------


def register(subparsers):
    parser = subparsers.add_parser("argmax", help="ArgMaxNet: learn the argmax of 10 scores (seed 000)")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    train_parser = add_config_arguments(commands.add_parser("train", help="train with the seed's or the improved recipe"), ArgMaxConfig)
    train_parser.add_argument("--quiet", action="store_true", help="no Keras progress bar")
    train_parser.set_defaults(handler=_train_command)
    test_parser = commands.add_parser("test", help="the seed's test: 100 batches of 500 fresh scores")
    test_parser.add_argument("run_or_model", help="a run folder or a .keras file")
    test_parser.add_argument("--batches", type=int, default=100)
    test_parser.add_argument("--batch-size", type=int, default=500)
    test_parser.set_defaults(handler=_test_command)
    tune_parser = commands.add_parser("tune", help="keras-tuner search under a parameter budget")
    tune_parser.add_argument("--trials", type=int, default=10)
    tune_parser.add_argument("--steps", type=int, default=3000, help="training steps per trial")
    tune_parser.add_argument("--budget", type=int, default=PARAMETER_BUDGET, help="maximum parameters")
    tune_parser.add_argument("--directory", default="runs/argmax-tune")
    tune_parser.add_argument("--overwrite", action="store_true")
    tune_parser.set_defaults(handler=_tune_command)


def _train_command(args):
    train(config_from_args(ArgMaxConfig, args), verbose=0 if args.quiet else 1)


def _test_command(args):
    for name in ("batches", "batch_size"):
        if getattr(args, name) <= 0:
            raise ValueError(f"`--{name.replace('_', '-')}` must be > 0, got {getattr(args, name)}.")
    test(args.run_or_model, batches=args.batches, batch_size=args.batch_size)


def _tune_command(args):
    for name in ("trials", "steps"):
        if getattr(args, name) <= 0:
            raise ValueError(f"`--{name}` must be > 0, got {getattr(args, name)}.")
    frame = tune(args.trials, args.steps, args.budget, args.directory, overwrite=args.overwrite)
    print(frame.to_string(index=False))
    print(f"trials written to {Path(args.directory) / 'trials.csv'}")
