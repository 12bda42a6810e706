"""Absurdly deep residual networks on MNIST (seed `003`, Andrewp2/deep_net).

`zoo deep init | train | eval`: a core of L layers `h <- h + alpha * act(h W_i + b_i)` of width w
between a tanh stem (784 -> w) and a linear head (w -> 10), trained by exact minibatch SGD with
chunked checkpointing (`zoo.deep`). Weights live in a file (streamed chunk by chunk) or, with
`--in-memory`, in RAM and are written back every `--save-every` steps and at the end.

Minibatches are drawn with replacement; step s draws from the seed `(seed, s)`, so a resumed run
continues the very sequence of batches it would have seen.

Reads top to bottom: config -> data -> open or create the weights -> train -> eval -> CLI.
"""

import dataclasses
import signal
import time
from contextlib import contextmanager
from pathlib import Path

import keras
import numpy as np

from zoo.data import load_mnist
from zoo.deep import ACTIVATIONS, DeepNetwork, DeepResidualCore, FileWeights, InMemoryWeights
from zoo._legacy_runs import LegacyRunFolder as RunFolder, add_config_arguments, check_config, config_from_args
from zoo.validation import check_positive_int

WEIGHTS, HEAD = "weights.bin", "head.npz"


# --- model --------------------------------------------------------------------------------


@keras.saving.register_keras_serializable(package="zoo")
class DeepMNIST(keras.Model):
    """Stem (784 -> width, tanh), `DeepResidualCore`, head (width -> 10 logits).

    With `fused_sgd=True` (default) `train_step` is the exact chunked SGD step of
    `zoo.deep.DeepNetwork` on the model's own weights (`layer_lr` for stem and
    core, `head_lr` for the head; the compiled optimizer is not used), so
    `model.fit` brings progress bars, history and callbacks at any depth. With
    `fused_sgd=False` it trains like any Keras model, with any optimizer,
    through the core's checkpointed custom gradient.

    Args:
        layers, width, activation, alpha, chunk_layers: the core (see `DeepResidualCore`).
        fused_sgd: use the fused exact-SGD step. Defaults to True.
        layer_lr, head_lr: learning rates of the fused step (0.01 each).

    Example:

    >>> model = DeepMNIST(layers=100, width=4)
    >>> model.compile()
    >>> model(keras.ops.zeros((2, 784))).shape
    (2, 10)

    References:
        Andrewp2/deep_net (seed `003`).
    """

    def __init__(self, layers=100, width=4, activation="softsign", alpha=None, chunk_layers=1000,
                 fused_sgd=True, layer_lr=0.01, head_lr=0.01, **kwargs):
        super().__init__(**kwargs)
        check_positive_int("width", width)
        self.width, self.fused_sgd, self.layer_lr, self.head_lr = width, fused_sgd, layer_lr, head_lr
        self.stem = keras.layers.Dense(width, activation="tanh", name="stem")
        self.core = DeepResidualCore(layers, activation, alpha, chunk_layers, name="core")
        self.head = keras.layers.Dense(10, name="head")
        self._network = None
        self.build((None, 784))

    def build(self, input_shape):
        self.stem.build(input_shape)
        self.core.build((None, self.width))
        self.head.build((None, self.width))
        self.built = True

    def call(self, inputs):
        return self.head(self.core(self.stem(inputs)))

    def compile(self, optimizer="sgd", loss=None, metrics=None, **kwargs):
        if self.fused_sgd:
            # The fused step walks the chunks in Python around compiled kernels.
            kwargs["run_eagerly"] = True
            loss = loss or keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        super().compile(optimizer=optimizer, loss=loss, metrics=metrics, **kwargs)

    def train_step(self, data):
        if not self.fused_sgd:
            return super().train_step(data)
        x, y = data[0], data[1]
        if self._network is None:
            weights = InMemoryWeights.from_variables(self.core.kernel.value, self.core.bias.value, self.core.activation)
            head = {"W_in": self.stem.kernel.value, "b_in": self.stem.bias.value,
                    "W_out": self.head.kernel.value, "b_out": self.head.bias.value}
            self._network = DeepNetwork(weights, self.core.chunk_layers, alpha=self.core.kernels.alpha, head=head)
        loss, accuracy = self._network.train_step(x, keras.ops.cast(keras.ops.reshape(y, (-1,)), "int32"), self.layer_lr, self.head_lr)
        return {"loss": loss, "accuracy": accuracy}

    def get_config(self):
        core = self.core
        return {"layers": core.layers, "width": self.width, "activation": core.activation, "alpha": core.alpha,
                "chunk_layers": core.chunk_layers, "fused_sgd": self.fused_sgd, "layer_lr": self.layer_lr,
                "head_lr": self.head_lr, "name": self.name}


@dataclasses.dataclass
class DeepConfig:
    """A deep-core run; the defaults are a quick 10,000-layer look (the seed's smoke test)."""

    layers: int = dataclasses.field(default=10_000, metadata={"help": "core depth L"})
    width: int = dataclasses.field(default=4, metadata={"help": "core width w"})
    activation: str = dataclasses.field(default="softsign", metadata={"choices": ACTIVATIONS, "help": "core activation"})
    alpha: float = dataclasses.field(default=0.0, metadata={"help": "residual scale (0: 1/sqrt(L))"})
    chunk_layers: int = dataclasses.field(default=100_000, metadata={"help": "layers per checkpointed chunk"})
    steps: int = dataclasses.field(default=1000, metadata={"help": "total SGD steps (a resumed run trains up to this)"})
    batch: int = dataclasses.field(default=16, metadata={"help": "minibatch size (drawn with replacement)"})
    layer_lr: float = dataclasses.field(default=0.01, metadata={"help": "learning rate of the core and stem"})
    head_lr: float = dataclasses.field(default=0.01, metadata={"help": "learning rate of the head"})
    seed: int = dataclasses.field(default=0, metadata={"help": "seed of the init and the batches"})
    report_every: int = dataclasses.field(default=10, metadata={"help": "steps per history row"})
    in_memory: bool = dataclasses.field(default=False, metadata={"help": "train with the core in RAM"})
    save_every: int = dataclasses.field(default=100, metadata={"help": "with --in-memory: steps between write-backs"})
    float64: bool = dataclasses.field(default=False, metadata={"help": "float64 weights (exactness checks)"})
    weights: str = dataclasses.field(default="", metadata={"help": "weights file (default RUN/weights.bin)"})
    run: str = dataclasses.field(default="", metadata={"help": "run folder (default runs/deep/<UTC time>); an existing one resumes"})

    def __post_init__(self):
        positive = (lambda value: value > 0, "a positive integer")
        check_config(self, {
            "layers": positive, "width": positive, "chunk_layers": positive, "steps": (lambda v: v >= 0, ">= 0"),
            "batch": positive, "report_every": positive, "save_every": positive,
            "layer_lr": (lambda v: v > 0, "> 0"), "head_lr": (lambda v: v > 0, "> 0"),
            "alpha": (lambda v: v >= 0, ">= 0 (0 means 1/sqrt(L))"),
            "activation": (lambda v: v in ACTIVATIONS, f"one of {', '.join(ACTIVATIONS)}"),
        })


# --- data ---------------------------------------------------------------------------------


def mnist_arrays(split):
    """Flat MNIST images as pixels / 255 and labels."""
    return load_mnist(split, as_numpy=True, flatten=True)


def batch_indices(seed, step, batch, examples):
    """The examples of step `step`: `batch` draws with replacement from `(seed, step)`."""
    rng = np.random.Generator(np.random.Philox(key=seed + 1, counter=[0, 0, 0, step]))
    return rng.integers(0, examples, batch)


# --- weights ------------------------------------------------------------------------------


def weights_path(config, run):
    return Path(config.weights) if config.weights else run.file(WEIGHTS)


def init_weights(config, path):
    dtype = np.float64 if config.float64 else np.float32
    progress = keras.utils.Progbar(config.layers, unit_name="layer")
    progress_done = [0]

    def advance(count):
        progress_done[0] += count
        progress.update(progress_done[0])

    print(f"initialising {config.layers:,} layers of width {config.width} in {path}")
    return FileWeights.create(path, config.layers, config.width, config.activation, config.seed, dtype,
                              chunk_layers=max(config.chunk_layers, 100_000), progress=advance)


def open_network(config, run, create=True):
    """The network of a run: weights (created if missing) and head (fresh or loaded)."""
    path = weights_path(config, run)
    if path.exists():
        weights = FileWeights.open(path)
        for name in ("layers", "width", "activation"):
            if getattr(weights, name) != getattr(config, name):
                weights.close()
                raise ValueError(f"`--{name}` is {getattr(config, name)!r} but the weights file {path} has {getattr(weights, name)!r}.")
    elif create:
        weights = init_weights(config, path)
    else:
        raise ValueError(f"`weights` {path} does not exist; run `zoo deep init` or `zoo deep train` first.")
    head, alpha = None, config.alpha or None
    if run.file(HEAD).exists():
        head, alpha = DeepNetwork.load_head(run.file(HEAD), weights)
    elif weights.steps:
        raise ValueError(f"`weights` {path} has trained {weights.steps} steps but {run.file(HEAD)} is missing.")
    if config.in_memory:
        file_weights = weights
        weights = InMemoryWeights.from_file(file_weights, piece_layers=min(config.chunk_layers, config.layers))
        file_weights.close()
    return DeepNetwork(weights, config.chunk_layers, alpha=alpha, seed=config.seed, head=head), path


def save(network, run, path):
    """Writes the core (in-memory mode) and then the head, in that order."""
    if isinstance(network.weights, InMemoryWeights):
        network.weights.save(path)
    network.save_head(run.file(HEAD))


@contextmanager
def deferred_interrupt():
    """Ctrl-C finishes the step in flight instead of tearing it; `state["stop"]` says so."""
    state = {"stop": False}

    def handler(signum, frame):
        if state["stop"]:
            raise KeyboardInterrupt
        state["stop"] = True
        print("\ninterrupt: finishing this step and saving (Ctrl-C again to abort at once)", flush=True)

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield state
    finally:
        signal.signal(signal.SIGINT, previous)


# --- train --------------------------------------------------------------------------------


def train(config, verbose=1):
    run = RunFolder.create("deep", path=config.run or None)
    run.save_config(config)
    network, path = open_network(config, run)
    images, labels = mnist_arrays("train")
    first = network.weights.steps
    print(f"deep core: {network.layers:,} layers, width {network.width}, {network.weights.activation}, "
          f"alpha {network.alpha:.3g}, chunk {network.chunk_layers:,}, "
          f"{'in memory' if config.in_memory else 'streamed from ' + str(path)}; steps {first} -> {config.steps}", flush=True)
    progress = keras.utils.Progbar(config.steps - first, unit_name="step", verbose=verbose) if config.steps > first else None
    window_loss, window_accuracy, started, window_start = [], [], time.time(), time.time()
    with deferred_interrupt() as interrupt:
        for step in range(first, config.steps):
            rows = batch_indices(config.seed, step, config.batch, len(images))
            loss, accuracy = network.train_step(images[rows], labels[rows], config.layer_lr, config.head_lr)
            window_loss.append(loss)
            window_accuracy.append(accuracy)
            done = step + 1
            if not isinstance(network.weights, InMemoryWeights):
                network.save_head(run.file(HEAD))
            elif done % config.save_every == 0:
                save(network, run, path)
            if done % config.report_every == 0 or done == config.steps:
                now = time.time()
                run.append_history({"step": done, "loss": float(np.mean(window_loss)), "accuracy": float(np.mean(window_accuracy)),
                                    "seconds_per_step": (now - window_start) / len(window_loss)})
                window_loss, window_accuracy, window_start = [], [], now
            if progress is not None:
                progress.update(done - first, [("loss", loss), ("accuracy", accuracy)])
            if interrupt["stop"]:
                break
    save(network, run, path)
    steps_run = network.weights.steps - first
    seconds = time.time() - started
    run.save_metrics({"steps": network.weights.steps, "train_seconds_last_session": seconds,
                      "seconds_per_step": seconds / max(steps_run, 1)})
    print(f"trained {steps_run} steps in {seconds:.1f} s ({seconds / max(steps_run, 1):.3f} s/step); "
          f"{network.weights.steps} steps in total; run folder {run.path}")
    network.weights.close()
    return run


# --- eval ---------------------------------------------------------------------------------


def evaluate(run_path, samples=10_000, batch=256, chunk_layers=None, verbose=1):
    run = RunFolder(run_path)
    config = DeepConfig(**{**run.load_config(), "in_memory": False})
    if chunk_layers:
        config = dataclasses.replace(config, chunk_layers=chunk_layers)
    network, _ = open_network(config, run, create=False)
    images, labels = mnist_arrays("test")
    images, labels = images[:samples], labels[:samples]
    progress = keras.utils.Progbar(len(images), unit_name="image", verbose=verbose)
    seen = [0]

    def advance(count):
        seen[0] += count
        progress.update(seen[0])

    started = time.time()
    loss, accuracy = network.evaluate(images, labels, batch, progress=advance)
    seconds = time.time() - started
    network.weights.close()
    metrics = {"test_loss": loss, "test_accuracy": accuracy, "test_samples": len(images), "test_eval_seconds": seconds,
               "steps": network.weights.steps}
    run.save_metrics(metrics)
    print(f"test loss: {loss:.6f}\ntest acc:  {accuracy:.4f}\ntest eval time: {seconds:.2f}s ({len(images)} images)")
    return metrics


# --- CLI ----------------------------------------------------------------------------------


def register(subparsers):
    parser = subparsers.add_parser("deep", help="absurdly deep residual core on MNIST (seed 003)")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    init_parser = add_config_arguments(commands.add_parser("init", help="create a weights file"), DeepConfig)
    init_parser.set_defaults(handler=_init)
    train_parser = add_config_arguments(commands.add_parser("train", help="train (or resume) with exact SGD"), DeepConfig)
    train_parser.set_defaults(handler=_train)
    eval_parser = commands.add_parser("eval", help="evaluate a run on the MNIST test set")
    eval_parser.add_argument("--run", required=True, help="run folder of `zoo deep train`")
    eval_parser.add_argument("--samples", type=int, default=10_000, help="test images (default 10,000)")
    eval_parser.add_argument("--batch", type=int, default=256, help="images per forward pass")
    eval_parser.add_argument("--chunk-layers", type=int, default=0, help="override the run's chunk size")
    eval_parser.set_defaults(handler=_eval)


def _train(args):
    train(config_from_args(DeepConfig, args))


def _init(args):
    config = config_from_args(DeepConfig, args)
    run = RunFolder.create("deep", path=config.run or None)
    path = weights_path(config, run)
    if path.exists():
        raise ValueError(f"`--weights` {path} exists already; remove it to start over.")
    run.save_config(config)
    init_weights(config, path).close()
    print(f"weights written to {path}")


def _eval(args):
    for name in ("samples", "batch"):
        if getattr(args, name) <= 0:
            raise ValueError(f"`--{name}` must be a positive integer, got {getattr(args, name)}.")
    if not Path(args.run).is_dir():
        raise ValueError(f"`--run` {args.run} is not a run folder.")
    evaluate(args.run, args.samples, args.batch, args.chunk_layers or None)
