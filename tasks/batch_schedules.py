"""Increasing batch size vs learning-rate decay (seed `002`, Smith et al. 2017, arXiv 1711.00489).

The seed's simple CNN trained with plain SGD under several schedules, all with plain
`model.fit`, `zoo.callbacks.ExpDecay` and `zoo.callbacks.IncreasingBatchSize`:

- `lrd`: batch 128, `lr = 0.1 * 0.9**(epoch - 1)`.
- `ibs`: lr 0.1, `batch = int(128 * 1.037**(epoch - 1))` capped at N / 10 (the seed's numbers).
- `ibs-equivalent`: lr 0.1, the batch grown by exactly the factor lrd decays the lr (1 / 0.9 per
  epoch, the paper's rule), capped at N / 10.
- `hybrid`: both halfway: lr decays by sqrt(0.9) and the batch grows by 1 / sqrt(0.9) each epoch,
  so the SGD noise scale `lr / batch` falls as fast as under lrd (the seed's TODO, our reading).

Reads top to bottom: data -> model -> schedules -> train -> plots and summary -> CLI.
"""

import dataclasses
import math

import keras
import numpy as np

from zoo.callbacks import ExpDecay, IncreasingBatchSize
from zoo.data import IMAGE_DATASETS, load_images
from zoo._legacy_runs import LegacyRunFolder as RunFolder, WallTime, add_config_arguments, check_config, config_from_args, matplotlib_agg

SCHEDULES = ("lrd", "ibs", "ibs-equivalent", "hybrid")

# --- data ---------------------------------------------------------------------------------


def load_split_data(dataset, holdout=0.1, seed=0, train_limit=0, manual_dir=None, data_dir=None):
    """Train (less a seeded `holdout` fraction, as the seed), held-out and full test arrays."""
    x, y = load_images(dataset, "train", as_numpy=True, manual_dir=manual_dir, data_dir=data_dir)
    test_x, test_y = load_images(dataset, "test", as_numpy=True, manual_dir=manual_dir, data_dir=data_dir)
    order = np.random.default_rng(seed).permutation(len(x))
    held = int(round(holdout * len(x)))
    train_rows, held_rows = order[held:], order[:held]
    if train_limit:
        train_rows = train_rows[:train_limit]
    return (x[train_rows], y[train_rows]), (x[held_rows], y[held_rows]), (test_x, test_y)


# --- model --------------------------------------------------------------------------------


@keras.saving.register_keras_serializable(package="zoo")
class SimpleCNN(keras.Model):
    """The seed's CNN: two strided 3x3 convolutions, a 2x2 max-pool, a 1x1 convolution,
    Dense 512, Dense 10 (logits; train with `from_logits=True`).

    conv 3x3x32 stride 2 VALID ReLU (no bias) -> conv 3x3x32 stride 2 VALID ReLU (no bias) ->
    maxpool 2x2 stride 1 VALID -> conv 1x1x16 SAME (`conv3_activation`; the seed's code has
    none, its README says ReLU) -> flatten -> Dense 512 ReLU -> Dense 10. Glorot-normal init.

    Args:
        conv3_activation: activation of the 1x1 convolution. Defaults to `None` (as coded).
        classes: number of outputs. Defaults to 10.

    Example:

    >>> SimpleCNN()(keras.ops.zeros((2, 28, 28, 1))).shape
    (2, 10)

    References:
        dboyliao/CardinalBlue_Interview_Q2 (seed `002`).
    """

    def __init__(self, conv3_activation=None, classes=10, **kwargs):
        super().__init__(**kwargs)
        if conv3_activation not in (None, "linear", "relu"):
            raise ValueError(f"`conv3_activation` must be None, 'linear' or 'relu', got {conv3_activation!r}.")
        self.conv3_activation = conv3_activation
        self.classes = classes
        init = "glorot_normal"
        self.conv1 = keras.layers.Conv2D(32, 3, strides=2, padding="valid", activation="relu", use_bias=False, kernel_initializer=init, name="conv1")
        self.conv2 = keras.layers.Conv2D(32, 3, strides=2, padding="valid", activation="relu", use_bias=False, kernel_initializer=init, name="conv2")
        self.pool = keras.layers.MaxPooling2D(2, strides=1, padding="valid", name="pool1")
        self.conv3 = keras.layers.Conv2D(16, 1, padding="same", activation=conv3_activation, kernel_initializer=init, name="conv3_1_by_1")
        self.flatten = keras.layers.Flatten()
        self.fc1 = keras.layers.Dense(512, activation="relu", kernel_initializer=init, name="fc1")
        self.fc2 = keras.layers.Dense(classes, kernel_initializer=init, name="fc2")

    def build(self, input_shape):
        shape = tuple(input_shape)
        for layer in (self.conv1, self.conv2, self.pool, self.conv3, self.flatten, self.fc1, self.fc2):
            layer.build(shape)
            shape = layer.compute_output_shape(shape)
        self.built = True

    def call(self, inputs):
        hidden = self.pool(self.conv2(self.conv1(inputs)))
        return self.fc2(self.fc1(self.flatten(self.conv3(hidden))))

    def get_config(self):
        return {"conv3_activation": self.conv3_activation, "classes": self.classes, "name": self.name}


# --- schedules ----------------------------------------------------------------------------


def schedule_callbacks(schedule, train_size, initial_batch=128, initial_lr=0.1, lr_decay=0.9, ibs_growth=1.037):
    """`(ExpDecay, IncreasingBatchSize)` for a schedule; epoch e counts from 0. A constant
    learning rate is `ExpDecay(1.0)`, so every schedule logs its rate."""
    cap = max(initial_batch, train_size // 10)
    if schedule == "lrd":
        return ExpDecay(lr_decay, initial_learning_rate=initial_lr), IncreasingBatchSize(initial_batch, 1.0, initial_batch)
    if schedule == "ibs":
        return ExpDecay(1.0, initial_learning_rate=initial_lr), IncreasingBatchSize(initial_batch, ibs_growth, cap)
    if schedule == "ibs-equivalent":
        return ExpDecay(1.0, initial_learning_rate=initial_lr), IncreasingBatchSize(initial_batch, 1.0 / lr_decay, cap)
    if schedule == "hybrid":
        half = math.sqrt(lr_decay)
        return ExpDecay(half, initial_learning_rate=initial_lr), IncreasingBatchSize(initial_batch, 1.0 / half, cap)
    raise ValueError(f"`schedule` must be one of {', '.join(SCHEDULES)}, got {schedule!r}.")


@dataclasses.dataclass
class ScheduleConfig:
    """The comparison; defaults are the seed's CIFAR-10 run."""

    schedules: str = dataclasses.field(default="lrd,ibs", metadata={"help": f"comma-separated subset of {','.join(SCHEDULES)}"})
    dataset: str = dataclasses.field(default="cifar10", metadata={"choices": IMAGE_DATASETS, "help": "tfds image dataset"})
    epochs: int = dataclasses.field(default=150, metadata={"help": "epochs per schedule"})
    initial_batch: int = dataclasses.field(default=128, metadata={"help": "batch size of epoch 1"})
    learning_rate: float = dataclasses.field(default=0.1, metadata={"help": "initial learning rate"})
    lr_decay: float = dataclasses.field(default=0.9, metadata={"help": "lrd's per-epoch learning-rate factor"})
    ibs_growth: float = dataclasses.field(default=1.037, metadata={"help": "ibs's per-epoch batch factor"})
    conv3_activation: str = dataclasses.field(default="none", metadata={"choices": ("none", "relu"), "help": "activation of the 1x1 conv"})
    holdout: float = dataclasses.field(default=0.1, metadata={"help": "fraction of train held out (seeded)"})
    train_limit: int = dataclasses.field(default=0, metadata={"help": "train on at most this many examples (0: all)"})
    seed: int = dataclasses.field(default=0, metadata={"help": "seed of weights, split and shuffling"})
    manual_dir: str = dataclasses.field(default="", metadata={"help": "folder with the original files (offline MNIST; default $ZOO_MNIST_DIR)"})
    run: str = dataclasses.field(default="", metadata={"help": "run folder (default runs/ibs-vs-lrd/<UTC time>)"})

    def __post_init__(self):
        positive = (lambda value: value > 0, "> 0")
        check_config(self, {
            "epochs": positive, "initial_batch": positive, "learning_rate": positive,
            "lr_decay": (lambda value: 0 < value <= 1, "in (0, 1]"),
            "ibs_growth": (lambda value: value >= 1, ">= 1"),
            "holdout": (lambda value: 0 <= value < 1, "in [0, 1)"),
            "train_limit": (lambda value: value >= 0, ">= 0"),
            "schedules": (lambda value: bool(value) and all(s in SCHEDULES for s in value.split(",")), f"a comma-separated subset of {','.join(SCHEDULES)}"),
            "dataset": (lambda value: value in IMAGE_DATASETS, f"one of {', '.join(IMAGE_DATASETS)}"),
        })


# --- train --------------------------------------------------------------------------------


class RenameTestMetrics(keras.callbacks.Callback):
    """`validation_data` here is the full test set: log `val_*` as `test_*`."""

    def on_epoch_end(self, epoch, logs=None):
        for key in [key for key in (logs or {}) if key.startswith("val_")]:
            logs["test_" + key[4:]] = logs.pop(key)


def train_schedule(schedule, config, data, run, verbose=1):
    (train_x, train_y), _, (test_x, test_y) = data
    keras.utils.set_random_seed(config.seed)
    model = SimpleCNN(None if config.conv3_activation == "none" else config.conv3_activation)
    model.compile(
        keras.optimizers.SGD(config.learning_rate),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
        jit_compile=True,
    )
    lr_callback, ibs = schedule_callbacks(schedule, len(train_x), config.initial_batch, config.learning_rate, config.lr_decay, config.ibs_growth)
    batches = ibs.dataset(train_x, train_y, seed=config.seed)
    print(f"== {schedule}: {len(train_x)} training examples, {config.epochs} epochs", flush=True)
    callbacks = [ibs, lr_callback, WallTime(), RenameTestMetrics(), run.history_logger(schedule=schedule)]
    model.fit(batches, epochs=config.epochs, validation_data=(test_x, test_y), validation_batch_size=1000, callbacks=callbacks, verbose=verbose)
    model.save(run.file(f"model_{schedule}.keras"))
    return model


def compare(config, verbose=1):
    """Trains every requested schedule; writes the CSV, the plots and a summary. Returns the run."""
    run = RunFolder.create("ibs-vs-lrd", path=config.run or None)
    run.save_config(config)
    data = load_split_data(config.dataset, config.holdout, config.seed, config.train_limit, manual_dir=config.manual_dir or None)
    history = run.history()
    done = set(history["schedule"]) if not history.empty else set()
    for schedule in config.schedules.split(","):
        if schedule in done and (history["schedule"] == schedule).sum() >= config.epochs:
            print(f"== {schedule}: already in {run.path}, skipped")
            continue
        if schedule in done:
            history = history[history["schedule"] != schedule]
            history.to_csv(run.file("history.csv"), index=False)
        train_schedule(schedule, config, data, run, verbose)
    summary = summarize(run.history())
    run.save_metrics({"summary": summary.to_dict(orient="records")})
    summary.to_csv(run.file("summary.csv"), index=False)
    plot(run.history(), run, config.dataset)
    print(summary.to_string(index=False))
    print(f"run folder: {run.path}")
    return run


def summarize(history):
    import pandas as pd

    rows = []
    for schedule, frame in history.groupby("schedule", sort=False):
        rows.append({
            "schedule": schedule,
            "epochs": int(frame["epoch"].max()),
            "final_test_accuracy": float(frame["test_accuracy"].iloc[-1]),
            "best_test_accuracy": float(frame["test_accuracy"].max()),
            "final_test_loss": float(frame["test_loss"].iloc[-1]),
            "final_train_loss": float(frame["loss"].iloc[-1]),
            "parameter_updates": int(frame["parameter_updates"].iloc[-1]),
            "final_batch_size": int(frame["batch_size"].iloc[-1]),
            "wall_seconds": float(frame["wall_seconds"].iloc[-1]),
        })
    return pd.DataFrame(rows)


def plot(history, run, dataset):
    plt = matplotlib_agg()
    figure, axes = plt.subplots(1, 3, figsize=(16, 4.5))
    for schedule, frame in history.groupby("schedule", sort=False):
        axes[0].plot(frame["parameter_updates"], frame["loss"], label=schedule)
        axes[1].plot(frame["epoch"], frame["test_accuracy"], label=schedule)
        axes[2].plot(frame["parameter_updates"], frame["test_accuracy"], label=schedule)
    axes[0].set(xlabel="parameter updates", ylabel="training loss (epoch mean)", yscale="log", title="training loss")
    axes[1].set(xlabel="epoch", ylabel="test accuracy", title="test accuracy per epoch")
    axes[2].set(xlabel="parameter updates", ylabel="test accuracy", title="test accuracy per update")
    for axis in axes:
        axis.legend()
        axis.grid(alpha=0.3)
    figure.suptitle(f"Increasing batch size vs learning-rate decay ({dataset})")
    return run.save_figure(figure, "ibs_vs_lrd")


# --- CLI ----------------------------------------------------------------------------------


def register(subparsers):
    parser = add_config_arguments(
        subparsers.add_parser("ibs-vs-lrd", help="increasing batch size vs learning-rate decay (seed 002)"),
        ScheduleConfig,
    )
    parser.add_argument("--quiet", action="store_true", help="no Keras progress bars")
    parser.set_defaults(handler=_command)


def _command(args):
    compare(config_from_args(ScheduleConfig, args), verbose=0 if args.quiet else 2)
