"""Memory-informed decoder and set-min random loss on MNIST (seed `001`, Mathematica notes).

Inputs are `dl`-dimensional PCA codes of MNIST images (fitted on the training images only, saved
in the run folder as `pca.npz`); targets are the images themselves as 784-vectors in [0, 1].

- `MemoryInformedAE`: `F = softmax(Approximator(512 -> mn)(code))`;
  `Output1 = F . sigmoid(M)` (the memory, `MemoryDotLayer`);
  `Output2 = F . sigmoid(Approximator(512 -> (mn, 784))(code))` (the memory-informed approximator);
  both trained on the image, plus an optional weighted `1 - max(F)` term.
- `SetMinAE`: K decoder subnets from the same code, trained with `SetMinRandomLoss`; sigma
  follows the notes' schedule (1 : 2 : 1 of the run at 10^0, 10^1, 10^2) by default.

Reads top to bottom: data -> models -> measures -> training -> pictures -> compare -> CLI.
"""

import dataclasses

import keras
import numpy as np
from keras import ops

from zoo.callbacks import SignSGD
from zoo.data import load_mnist
from zoo.layers import ApproximatorLayer, MemoryDotLayer
from zoo.losses import OneMinusMax, SetMinRandomLoss
from zoo.reduction import PCA
from zoo._legacy_runs import LegacyRunFolder as RunFolder, WallTime, add_config_arguments, check_config, config_from_args, matplotlib_agg
from zoo.validation import check_positive_int

PIXELS = 784

# --- data ---------------------------------------------------------------------------------


def load_codes(code_dims, train_limit=0, manual_dir=None):
    """`(pca, (train_codes, train_images, train_labels), (test_codes, test_images, test_labels))`."""
    train_images, train_labels = load_mnist("train", as_numpy=True, flatten=True, manual_dir=manual_dir)
    test_images, test_labels = load_mnist("test", as_numpy=True, flatten=True, manual_dir=manual_dir)
    if train_limit:
        train_images, train_labels = train_images[:train_limit], train_labels[:train_limit]
    pca = PCA(code_dims).fit(train_images)
    return (
        pca,
        (pca.transform(train_images), train_images, train_labels),
        (pca.transform(test_images), test_images, test_labels),
    )


# --- models -------------------------------------------------------------------------------


@keras.saving.register_keras_serializable(package="zoo")
class MemoryInformedAE(keras.Model):
    """Two decoders sharing one softmax selection `F` over `slots` memory slots.

    Returns `(memory_output, informed_output)`, each `(batch, units)`; train both on
    the same target. `selection(code)` gives `F`.

    Args:
        slots: `mn`, number of memory slots (10).
        units: output width (784).
        hidden: hidden width of both approximators (512).
        floss_weight: weight of the `1 - max(F)` term added to the loss (0: off).

    Example:

    >>> memory, informed = MemoryInformedAE()(keras.ops.zeros((2, 6)))
    >>> memory.shape, informed.shape
    ((2, 784), (2, 784))

    References:
        The memory-informed network notes (seed `001`).
    """

    def __init__(self, slots=10, units=PIXELS, hidden=512, floss_weight=0.0, **kwargs):
        super().__init__(**kwargs)
        if floss_weight < 0:
            raise ValueError(f"`floss_weight` must be >= 0, got {floss_weight!r}.")
        self.slots = slots
        self.units = units
        self.hidden = hidden
        self.floss_weight = floss_weight
        self.selector = ApproximatorLayer(hidden, slots, name="selector")
        self.memory = MemoryDotLayer(slots, units, name="memory")
        self.candidates = ApproximatorLayer(hidden, (slots, units), name="candidates")

    def build(self, input_shape):
        self.selector.build(input_shape)
        self.memory.build((input_shape[0], self.slots))
        self.candidates.build(input_shape)
        self.built = True

    def selection(self, codes):
        return ops.softmax(self.selector(codes), axis=-1)

    def call(self, codes):
        selection = self.selection(codes)
        if self.floss_weight:
            self.add_loss(self.floss_weight * ops.mean(OneMinusMax().call(None, selection)))
        memory_output = self.memory(selection)
        informed_output = ops.einsum("bs,bsu->bu", selection, ops.sigmoid(self.candidates(codes)))
        return memory_output, informed_output

    def get_config(self):
        return {"slots": self.slots, "units": self.units, "hidden": self.hidden,
                "floss_weight": self.floss_weight, "name": self.name}


@keras.saving.register_keras_serializable(package="zoo")
class SetMinAE(keras.Model):
    """K decoder subnets of the same code, stacked as `(batch, K, units)`; train with
    `zoo.losses.SetMinRandomLoss`, which updates one subnet per example.

    Args:
        subnets: K (5).
        units: output width (784).
        hidden: hidden width of each subnet's approximator (512).

    Example:

    >>> SetMinAE(subnets=3)(keras.ops.zeros((2, 6))).shape
    (2, 3, 784)

    References:
        The set-min random loss notes (seed `001`).
    """

    def __init__(self, subnets=5, units=PIXELS, hidden=512, **kwargs):
        super().__init__(**kwargs)
        check_positive_int("subnets", subnets)
        self.subnets = subnets
        self.units = units
        self.hidden = hidden
        self.decoders = [ApproximatorLayer(hidden, units, name=f"subnet_{k}") for k in range(subnets)]

    def build(self, input_shape):
        for decoder in self.decoders:
            decoder.build(input_shape)
        self.built = True

    def call(self, codes):
        return ops.stack([ops.sigmoid(decoder(codes)) for decoder in self.decoders], axis=1)

    def get_config(self):
        return {"subnets": self.subnets, "units": self.units, "hidden": self.hidden, "name": self.name}


# --- measures -----------------------------------------------------------------------------


def slots_used(selection):
    """How many slots are the argmax of F for at least one example."""
    return int(len(np.unique(np.argmax(selection, axis=1))))


def selection_perplexity(selection):
    """`exp(entropy(mean of F))`: 1 when every example uses one slot, `slots` when all share."""
    mean = np.clip(np.mean(selection, axis=0), 1e-12, None)
    return float(np.exp(-np.sum(mean * np.log(mean))))


def winner_histogram(subnet_outputs, targets):
    """How many examples each subnet reconstructs best (sigma 0)."""
    errors = np.mean((subnet_outputs - targets[:, None, :]) ** 2, axis=2)
    return np.bincount(np.argmin(errors, axis=1), minlength=subnet_outputs.shape[1])


def mean_pairwise_distance(subnet_outputs):
    """Mean over subnet pairs and examples of the RMS difference of their outputs."""
    k = subnet_outputs.shape[1]
    distances = [np.sqrt(np.mean((subnet_outputs[:, i] - subnet_outputs[:, j]) ** 2, axis=1)).mean()
                 for i in range(k) for j in range(i + 1, k)]
    return float(np.mean(distances)) if distances else 0.0


class MemoryMeasures(keras.callbacks.Callback):
    """Each epoch: test MSE of both outputs, slots used and selection perplexity."""

    def __init__(self, codes, images):
        super().__init__()
        self.codes, self.images = codes, images

    def on_epoch_end(self, epoch, logs=None):
        memory, informed = self.model.predict(self.codes, batch_size=1000, verbose=0)
        selection = ops.convert_to_numpy(self.model.selection(self.codes))
        logs.update({
            "test_mse_memory": float(np.mean((memory - self.images) ** 2)),
            "test_mse_informed": float(np.mean((informed - self.images) ** 2)),
            "slots_used": slots_used(selection),
            "selection_perplexity": selection_perplexity(selection),
        })


class SetMinMeasures(keras.callbacks.Callback):
    """Each epoch: test MSE of the best subnet, subnet win counts and their spread."""

    def __init__(self, codes, images, loss):
        super().__init__()
        self.codes, self.images, self.loss = codes, images, loss

    def on_epoch_end(self, epoch, logs=None):
        outputs = self.model.predict(self.codes, batch_size=1000, verbose=0)
        wins = winner_histogram(outputs, self.images)
        best = np.min(np.mean((outputs - self.images[:, None, :]) ** 2, axis=2), axis=1)
        logs.update({
            "sigma": float(ops.convert_to_numpy(self.loss.sigma)),
            "test_mse_best_subnet": float(best.mean()),
            "mean_pairwise_distance": mean_pairwise_distance(outputs),
            "subnets_winning": int(np.count_nonzero(wins)),
            **{f"wins_subnet_{k}": int(count) for k, count in enumerate(wins)},
        })


class SigmaSchedule(keras.callbacks.Callback):
    """Piecewise-constant sigma: `stages` is a list of `(fraction of epochs, sigma)`."""

    def __init__(self, loss, epochs, stages=((1, 1.0), (2, 10.0), (1, 100.0))):
        super().__init__()
        self.loss, self.epochs, self.stages = loss, epochs, stages

    def sigma_at(self, epoch):
        total = sum(share for share, _ in self.stages)
        position = (epoch + 0.5) / self.epochs * total
        for share, sigma in self.stages:
            if position < share:
                return sigma
            position -= share
        return self.stages[-1][1]

    def on_epoch_begin(self, epoch, logs=None):
        self.loss.sigma.assign(self.sigma_at(epoch))


# --- training -----------------------------------------------------------------------------

MODELS = ("memory", "setmin")
OPTIMIZERS = ("adam", "signsgd")


@dataclasses.dataclass
class MemoryAEConfig:
    """One training run of either model."""

    model: str = dataclasses.field(default="memory", metadata={"choices": MODELS, "help": "memory: MemoryInformedAE; setmin: SetMinAE"})
    code_dims: int = dataclasses.field(default=6, metadata={"help": "dl, the PCA code size"})
    slots: int = dataclasses.field(default=10, metadata={"help": "mn, memory slots"})
    subnets: int = dataclasses.field(default=5, metadata={"help": "K, SetMinAE subnets"})
    hidden: int = dataclasses.field(default=512, metadata={"help": "approximator hidden width"})
    floss_weight: float = dataclasses.field(default=0.0, metadata={"help": "weight of the 1 - max(F) term"})
    sigma: str = dataclasses.field(default="schedule", metadata={"help": "'schedule' (1:2:1 at 1, 10, 100) or a constant"})
    optimizer: str = dataclasses.field(default="adam", metadata={"choices": OPTIMIZERS, "help": "adam or signsgd"})
    learning_rate: float = dataclasses.field(default=1e-3, metadata={"help": "learning rate (signsgd: the step size)"})
    epochs: int = dataclasses.field(default=10, metadata={"help": "epochs over the training images"})
    batch_size: int = dataclasses.field(default=128, metadata={"help": "batch size"})
    train_limit: int = dataclasses.field(default=0, metadata={"help": "train on at most this many images (0: all 60,000)"})
    seed: int = dataclasses.field(default=0, metadata={"help": "seed"})
    run: str = dataclasses.field(default="", metadata={"help": "run folder (default runs/memory-ae/<UTC time>)"})

    def __post_init__(self):
        positive = (lambda value: value > 0, "> 0")
        check_config(self, {
            "code_dims": (lambda value: 0 < value <= PIXELS, f"in 1..{PIXELS}"), "slots": positive,
            "subnets": positive, "hidden": positive, "learning_rate": positive, "epochs": positive,
            "batch_size": positive, "floss_weight": (lambda value: value >= 0, ">= 0"),
            "train_limit": (lambda value: value >= 0, ">= 0"),
            "sigma": (lambda value: value == "schedule" or _is_non_negative_float(value), "'schedule' or a float >= 0"),
            "model": (lambda value: value in MODELS, f"one of {MODELS}"),
            "optimizer": (lambda value: value in OPTIMIZERS, f"one of {OPTIMIZERS}"),
        })


def _is_non_negative_float(text):
    try:
        return float(text) >= 0
    except ValueError:
        return False


def make_optimizer(config):
    if config.optimizer == "signsgd":
        return SignSGD(config.learning_rate, momentum=0.9)
    return keras.optimizers.Adam(config.learning_rate)


def train(config, data=None, verbose=2):
    """Trains one model; writes history, metrics, pictures and the model. Returns the run."""
    run = RunFolder.create("memory-ae", path=config.run or None)
    run.save_config(config)
    pca, (train_codes, train_images, _), (test_codes, test_images, test_labels) = data or load_codes(config.code_dims, config.train_limit)
    pca.save(run.file("pca.npz"))
    keras.utils.set_random_seed(config.seed)
    common = [WallTime(), run.history_logger()]
    if config.model == "memory":
        model = MemoryInformedAE(config.slots, PIXELS, config.hidden, config.floss_weight)
        model.compile(make_optimizer(config), loss=["mse", "mse"], jit_compile=True)
        callbacks = [MemoryMeasures(test_codes, test_images)] + common
        targets = (train_images, train_images)
    else:
        model = SetMinAE(config.subnets, PIXELS, config.hidden)
        sigma = 1.0 if config.sigma == "schedule" else float(config.sigma)
        loss = SetMinRandomLoss(sigma=sigma, seed=config.seed)
        model.compile(make_optimizer(config), loss=loss, jit_compile=True)
        schedule = [SigmaSchedule(loss, config.epochs)] if config.sigma == "schedule" else []
        callbacks = schedule + [SetMinMeasures(test_codes, test_images, loss)] + common
        targets = train_images
    model.build((None, config.code_dims))
    print(f"{type(model).__name__}: {model.count_params():,} parameters, optimizer {config.optimizer}, run folder {run.path}", flush=True)
    model.fit(train_codes, targets, epochs=config.epochs, batch_size=config.batch_size, shuffle=True, callbacks=callbacks, verbose=verbose)
    model.save(run.model_path)
    final = run.history().iloc[-1].to_dict()
    run.save_metrics({key: value for key, value in final.items() if key != "epoch"})
    draw_pictures(model, run, test_codes, test_images, test_labels)
    return run


# --- pictures -----------------------------------------------------------------------------


def draw_pictures(model, run, codes, images, labels, per_class=6):
    plt = matplotlib_agg()
    picks = np.concatenate([np.flatnonzero(labels == digit)[:per_class] for digit in range(10)])
    outputs = model.predict(codes[picks], verbose=0)
    if isinstance(model, MemoryInformedAE):
        rows, names = [images[picks], outputs[0], outputs[1]], ["target", "memory", "memory-informed"]
    else:
        rows = [images[picks]] + [outputs[:, k] for k in range(outputs.shape[1])]
        names = ["target"] + [f"subnet {k}" for k in range(outputs.shape[1])]
    figure = plt.figure(figsize=(2.2 * 5, 0.45 * len(rows) * 2 + 0.6))
    outer = figure.add_gridspec(2, 5, wspace=0.08, hspace=0.15)
    for digit in range(10):
        inner = outer[digit // 5, digit % 5].subgridspec(len(rows), per_class, wspace=0.02, hspace=0.02)
        for row, pictures in enumerate(rows):
            for column in range(per_class):
                axis = figure.add_subplot(inner[row, column])
                axis.imshow(pictures[digit * per_class + column].reshape(28, 28), cmap="gray", vmin=0, vmax=1)
                axis.set_xticks([]), axis.set_yticks([])
                for spine in axis.spines.values():
                    spine.set_edgecolor("red")
                if column == 0 and digit % 5 == 0:
                    axis.set_ylabel(names[row], rotation=0, ha="right", va="center", fontsize=7)
    figure.suptitle(f"{type(model).__name__}: rows = {', '.join(names)}", fontsize=9)
    run.save_figure(figure, "grid")
    history = run.history()
    figure, axis = plt.subplots(figsize=(6, 3.5))
    for column in [c for c in history.columns if c.startswith("test_mse")]:
        axis.semilogy(history["epoch"], history[column], label=column)
    axis.set(xlabel="epoch", ylabel="test MSE")
    axis.legend()
    run.save_figure(figure, "curves")


# --- compare ------------------------------------------------------------------------------


def compare(base, target_mse=0.03, verbose=0):
    """The notes' comparisons in one command; returns and prints a table."""
    import pandas as pd

    data = load_codes(base.code_dims, base.train_limit)
    root = RunFolder.create("memory-ae-compare", path=base.run or None)
    variants = {
        "memory, adam": dict(model="memory"),
        "memory, adam, 1-max": dict(model="memory", floss_weight=0.1),
        "memory, signsgd": dict(model="memory", optimizer="signsgd", learning_rate=1e-4),
        "setmin, schedule": dict(model="setmin", sigma="schedule"),
        "setmin, sigma 0": dict(model="setmin", sigma="0"),
    }
    rows = []
    for name, changes in variants.items():
        config = dataclasses.replace(base, run=str(root.path / name.replace(", ", "_").replace(" ", "-")), **changes)
        print(f"== {name}", flush=True)
        history = train(config, data, verbose=verbose).history()
        last = history.iloc[-1]
        row = {"variant": name, "wall_seconds": round(float(last["wall_seconds"]), 1)}
        if config.model == "memory":
            reached = history[history["test_mse_informed"] <= target_mse]
            reached_memory = history[history["test_mse_memory"] <= target_mse]
            row.update({
                "test_mse_memory": round(float(last["test_mse_memory"]), 5),
                "test_mse_informed": round(float(last["test_mse_informed"]), 5),
                f"seconds_to_{target_mse}_informed": round(float(reached["wall_seconds"].iloc[0]), 1) if len(reached) else None,
                f"seconds_to_{target_mse}_memory": round(float(reached_memory["wall_seconds"].iloc[0]), 1) if len(reached_memory) else None,
                "slots_used": int(last["slots_used"]),
                "selection_perplexity": round(float(last["selection_perplexity"]), 2),
            })
        else:
            row.update({
                "test_mse_best_subnet": round(float(last["test_mse_best_subnet"]), 5),
                "mean_pairwise_distance": round(float(last["mean_pairwise_distance"]), 4),
                "subnets_winning": int(last["subnets_winning"]),
            })
        rows.append(row)
    table = pd.DataFrame(rows)
    table.to_csv(root.file("compare.csv"), index=False)
    print(table.to_string(index=False))
    print(f"run folder: {root.path}")
    return table


# --- CLI ----------------------------------------------------------------------------------


def register(subparsers):
    parser = subparsers.add_parser("memory-ae", help="memory-informed decoder and set-min random loss on MNIST (seed 001)")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    train_parser = add_config_arguments(commands.add_parser("train", help="train one model"), MemoryAEConfig)
    train_parser.set_defaults(handler=_train)
    compare_parser = add_config_arguments(commands.add_parser("compare", help="the notes' comparisons, one table"), MemoryAEConfig)
    compare_parser.add_argument("--target-mse", type=float, default=0.03, help="MSE for the time-to-reach column")
    compare_parser.set_defaults(handler=_compare)
    show_parser = commands.add_parser("show", help="redraw the pictures of a finished run")
    show_parser.add_argument("run", help="a run folder of `zoo memory-ae train`")
    show_parser.set_defaults(handler=_show)


def _train(args):
    train(config_from_args(MemoryAEConfig, args))


def _compare(args):
    compare(config_from_args(MemoryAEConfig, args), args.target_mse)


def _show(args):
    run = RunFolder(args.run)
    if not run.model_path.exists():
        raise ValueError(f"`run` {run.path} holds no model.keras.")
    model = keras.saving.load_model(run.model_path)
    pca = PCA.load(run.file("pca.npz"))
    images, labels = load_mnist("test", as_numpy=True, flatten=True)
    draw_pictures(model, run, pca.transform(images), images, labels)
    print(f"pictures written to {run.path}")
