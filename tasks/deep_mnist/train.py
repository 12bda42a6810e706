"""The deep task's run: open or create the weights, train with exact SGD, commit, evaluate.

A run folder (task "deep") holds `config.json`, `weights.bin` (the core, stem and head with the
step they reached, committed together; see `zoo.deep.storage`), `history.csv` (a row every
`--report-every` steps and at the last step), `metrics.json` and `curves.png` (loss and accuracy).

Streamed (the default), every step is a commit. With `--in-memory` the core lives in RAM and is
committed every `--save-every` steps and at the end. Either way a resumed run restarts from the
last commit: history rows beyond it are dropped and recomputed, and the partial report window
and the wall time are part of the commit, so a run killed at any instant and resumed gives the
history and weights of an uninterrupted run.

Ctrl-C finishes the step in flight and commits; a second Ctrl-C stops at once, which is safe at
any instant (the committed copy is never written in place).
"""

import math
import signal
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Optional

import keras
import numpy as np

from zoo.deep import (
    DeepNetwork,
    FileWeights,
    InMemoryWeights,
    initial_head,
    pack_record,
    record_capacity,
)
from zoo.deep.checksums import block_layers_for
from zoo.errors import DivergenceError, RunFolderError
from zoo.runs import RunFolder, crash_point, matplotlib_agg, read_json
from zoo.tasks.deep_mnist.config import CLASSES, INPUTS, DeepConfig
from zoo.tasks.deep_mnist.data import batch_indices, mnist_arrays

TASK, WEIGHTS, PLOT = "deep", "weights.bin", "curves"


# --- weights ------------------------------------------------------------------------------


def _dtype(config: DeepConfig):
    return np.float64 if config.float64 else np.float32


def create_weights(config: DeepConfig, path: Path, verbose: int = 1) -> FileWeights:
    """The run's weights file: the seed's core init and a fresh stem and head, step 0."""
    dtype = _dtype(config)
    alpha = config.alpha or 1.0 / math.sqrt(config.layers)
    head = initial_head(INPUTS, config.width, CLASSES, config.seed, dtype)
    progress = keras.utils.Progbar(config.layers, unit_name="layer", verbose=verbose)
    done = [0]

    def advance(count):
        done[0] += count
        progress.update(done[0])

    if verbose:
        print(
            f"initialising {config.layers:,} layers of width {config.width} in {path}", flush=True
        )
    return FileWeights.create(
        path,
        config.layers,
        config.width,
        config.activation,
        config.seed,
        dtype,
        chunk_layers=max(config.chunk_layers, 100_000),
        progress=advance,
        extra_capacity=record_capacity(INPUTS, config.width, CLASSES, dtype),
        block_layers=block_layers_for(config.chunk_layers),
        record=pack_record(head, alpha, {"wall_seconds": 0.0}),
    )


def open_weights(
    run: RunFolder, config: DeepConfig, create: bool = True, mode: str = "r+", verbose: int = 1
) -> FileWeights:
    """The run's committed weights, created if missing (and `create`); they must fit `config`."""
    path = run.file(WEIGHTS)
    if not path.exists():
        if not create:
            raise RunFolderError(
                f"--run {run.path} has no {WEIGHTS}; train it first (`zoo deep train`)."
            )
        if run.status != "new" or not run.history().empty:
            raise RunFolderError(
                f"--run {run.path} has started (status {run.status!r}) but its {WEIGHTS} is "
                "missing: its commits are lost; restore the file or train a new --run."
            )
        return create_weights(config, path, verbose)
    weights = FileWeights.open(path, mode)
    expected = (config.layers, config.width, config.activation, np.dtype(_dtype(config)))
    found = (weights.layers, weights.width, weights.activation, weights.dtype)
    if found != expected:
        weights.close()
        raise RunFolderError(
            f"{path} holds (layers, width, activation, dtype) {found}, but the run's "
            f"config says {expected}."
        )
    return weights


# --- train --------------------------------------------------------------------------------


@contextmanager
def deferred_interrupt():
    """Ctrl-C asks to stop after the step in flight (`state["stop"]`); a second one raises
    `KeyboardInterrupt` at once, which the commit protocol makes safe at any instant."""
    state = {"stop": False}

    def handler(signum, frame):
        if state["stop"]:
            raise KeyboardInterrupt
        state["stop"] = True
        print(
            "\ninterrupt: finishing this step and committing (Ctrl-C again stops at once, keeping "
            "the last commit)",
            flush=True,
        )

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield state
    finally:
        signal.signal(signal.SIGINT, previous)


def describe_kernels(kernels) -> str:
    """ "native kernels, 2 threads" or "xla kernels"."""
    threads = getattr(kernels, "threads", None)
    plural = "" if threads == 1 else "s"
    return f"{kernels.kind} kernels" + (f", {threads} thread{plural}" if threads else "")


class Trainer:
    """One session of a deep run: the steps from the last commit to `config.steps`.

    Args:
        run: the open run folder (its config is the saved one).
        kernels: `"auto"`, `"native"` or `"xla"`.
        verbose: 0 for no progress bar.
        threads: threads of the native kernels (default: `zoo.deep.native.default_threads()`).
    """

    def __init__(
        self, run: RunFolder, kernels: str = "auto", verbose: int = 1, threads: Optional[int] = None
    ):
        self.run, self.config, self.verbose = run, run.config, verbose
        self.file = open_weights(run, self.config, verbose=verbose)
        self.committed = self.file.steps
        weights = self.file
        if self.config.in_memory:
            weights = InMemoryWeights.from_file(
                self.file, piece_layers=min(self.config.chunk_layers, 1_000_000)
            )
        self.network = DeepNetwork(
            weights, self.config.chunk_layers, kernels=kernels, threads=threads
        )
        state = self.network.state
        self.wall_offset = float(state.get("wall_seconds", 0.0))
        self.window = dict(
            state.get("window") or {"loss": 0.0, "accuracy": 0.0, "count": 0, "seconds": 0.0}
        )
        self.started = time.perf_counter()
        self.step_started = self.started

    @property
    def steps(self) -> int:
        return self.network.weights.steps

    def wall_seconds(self) -> float:
        return self.wall_offset + time.perf_counter() - self.started

    def before_commit(self, loss: float, accuracy: float) -> None:
        """Runs inside each step just before its commit: divergence check, history row,
        committed state."""
        step = self.steps + 1
        # A core gone non-finite shows in the stem's update (its gradient flows through every
        # layer), so checking the loss and the small stem and head covers the whole network.
        finite = all(
            np.isfinite(variable.numpy()).all() for variable in self.network.params.values()
        )
        if not (math.isfinite(loss) and finite):
            what = (
                f"the loss became {loss}"
                if not math.isfinite(loss)
                else "the weights became non-finite"
            )
            raise DivergenceError(
                f"training diverged at step {step}: {what}; --layer-lr "
                f"{self.config.layer_lr:g} or --head-lr {self.config.head_lr:g} is likely too high"
            )
        now = time.perf_counter()
        window = self.window
        window["loss"] += loss
        window["accuracy"] += accuracy
        window["count"] += 1
        window["seconds"] += now - self.step_started
        self.step_started = now
        if step % self.config.report_every == 0 or step == self.config.steps:
            count = window["count"]
            self.run.append_history(
                {
                    "step": step,
                    "loss": window["loss"] / count,
                    "accuracy": window["accuracy"] / count,
                    "seconds_per_step": window["seconds"] / count,
                    "wall_seconds": self.wall_seconds(),
                }
            )
            self.window = window = {"loss": 0.0, "accuracy": 0.0, "count": 0, "seconds": 0.0}
            crash_point("deep-history-written")
        self.network.state = {"wall_seconds": self.wall_seconds(), "window": dict(window)}

    def save(self) -> None:
        """Commits in-memory weights (streamed ones commit every step)."""
        if self.network.weights is not self.file and self.steps != self.file.steps:
            self.network.state = {"wall_seconds": self.wall_seconds(), "window": dict(self.window)}
            self.network.save(self.file)

    def fit(self) -> int:
        """Trains up to `config.steps`; returns the steps run in this session."""
        config, first = self.config, self.steps
        images, labels = mnist_arrays("train")
        self.started = self.step_started = time.perf_counter()  # wall time counts training only
        progress = keras.utils.Progbar(config.steps - first, unit_name="step", verbose=self.verbose)
        with deferred_interrupt() as interrupt:
            for step in range(first, config.steps):
                rows = batch_indices(config.seed, step, config.batch_size, len(images))
                loss, accuracy = self.network.train_step(
                    images[rows],
                    labels[rows],
                    config.layer_lr,
                    config.head_lr,
                    before_commit=self.before_commit,
                )
                crash_point("deep-step-done")
                if config.in_memory and self.steps % config.save_every == 0:
                    self.save()
                progress.update(self.steps - first, [("loss", loss), ("accuracy", accuracy)])
                if interrupt["stop"]:
                    break
            self.save()
        return self.steps - first

    def close(self) -> None:
        self.network.weights.close()
        self.file.close()


def train(
    run: RunFolder, kernels: str = "auto", verbose: int = 1, threads: Optional[int] = None
) -> dict:
    """Trains (or resumes) the run in `run` up to its config's steps; returns the metrics.

    Raises:
        DivergenceError: on a non-finite loss (the run is marked failed; the diverged step is
            not committed).
    """
    config = run.config
    trainer = Trainer(run, kernels, verbose, threads)
    try:
        run.truncate_history("step", trainer.committed)
        network = trainer.network
        if verbose:
            storage = "in memory" if config.in_memory else f"streamed from {trainer.file.path}"
            print(
                f"deep core: {network.layers:,} layers, width {network.width}, "
                f"{config.activation}, "
                f"alpha {network.alpha:.3g}, chunk {network.chunk_layers:,}, {storage}, "
                f"{describe_kernels(network.kernels)}; steps {trainer.steps} -> {config.steps}",
                flush=True,
            )
        if trainer.steps >= config.steps and run.status == "finished":
            print(
                f"run {run.path} has finished its {config.steps} steps; raise --steps to continue."
            )
            return run.metrics()
        run.mark_running()
        try:
            steps_run = trainer.fit()
        except DivergenceError as error:
            run.mark_failed(str(error))
            raise
    finally:
        trainer.close()
    seconds = time.perf_counter() - trainer.started
    metrics = {
        "steps": trainer.steps,
        "wall_seconds": trainer.wall_seconds(),
        "seconds_per_step_last_session": seconds / max(steps_run, 1),
        "kernels": network.kernels.kind,
        "threads": getattr(network.kernels, "threads", None),
    }
    plot_curves(run)
    if trainer.steps >= config.steps:
        run.mark_finished(**metrics)
    else:
        run.update_metrics(metrics)
    print(
        f"trained {steps_run} steps in {seconds:.1f} s ({seconds / max(steps_run, 1):.3f} s/step); "
        f"{trainer.steps} of {config.steps} steps done; run folder {run.path}"
    )
    return metrics


def plot_curves(run: RunFolder) -> Optional[Path]:
    """`curves.png`: training loss and accuracy (per report window) against the step."""
    history = run.history()
    if history.empty:
        return None
    config = run.config
    plt = matplotlib_agg()
    figure, (loss_axis, accuracy_axis) = plt.subplots(1, 2, figsize=(10, 3.8))
    loss_axis.plot(history["step"], history["loss"], color="tab:blue", label="training loss")
    accuracy_axis.plot(
        history["step"], history["accuracy"], color="tab:green", label="training accuracy"
    )
    loss_axis.set(xlabel="SGD step", ylabel="cross-entropy", title="loss")
    accuracy_axis.set(xlabel="SGD step", ylabel="accuracy", title="accuracy", ylim=(0, 1))
    for axis in (loss_axis, accuracy_axis):
        axis.legend()
        axis.xaxis.get_major_locator().set_params(integer=True)
    storage = "in memory" if config.in_memory else "streamed"
    figure.suptitle(
        f"Deep core on MNIST: {config.layers:,} layers, width {config.width}, {config.activation}, "
        f"batch {config.batch_size} ({storage}; mean over {config.report_every} steps)"
    )
    figure.tight_layout()
    return run.save_figure(figure, PLOT)


# --- eval ---------------------------------------------------------------------------------


def open_run(path, given: Optional[dict] = None) -> RunFolder:
    """An existing deep run folder, locked (eval writes its metrics); a one-line error for a
    missing folder or another task's."""
    path = Path(path)
    if not (path / "config.json").is_file():
        raise RunFolderError(f"--run {path} is not a run folder (no config.json).")
    record = read_json(path / "config.json")
    task = record.get("task") if isinstance(record, dict) else None
    if task != TASK:
        raise RunFolderError(f"--run {path} holds a {task!r} run, not a {TASK!r} run.")
    return RunFolder.open(path, TASK, DeepConfig(), given=given or {})


def evaluate(
    run: RunFolder,
    samples: int = 10_000,
    batch: int = 256,
    kernels: str = "auto",
    verbose: int = 1,
    threads: Optional[int] = None,
) -> dict:
    """Test loss and accuracy of the run's committed network on the first `samples` MNIST test
    images; merged into `metrics.json`."""
    config = run.config
    file = open_weights(run, config, create=False, mode="r")
    weights = (
        InMemoryWeights.from_file(file, min(config.chunk_layers, 1_000_000))
        if config.in_memory
        else file
    )
    network = DeepNetwork(weights, config.chunk_layers, kernels=kernels, threads=threads)
    images, labels = mnist_arrays("test")
    images, labels = images[:samples], labels[:samples]
    progress = keras.utils.Progbar(len(images), unit_name="image", verbose=verbose)
    seen = [0]

    def advance(count):
        seen[0] += count
        progress.update(seen[0])

    started = time.perf_counter()
    try:
        loss, accuracy = network.evaluate(images, labels, batch, progress=advance)
    finally:
        file.close()
    seconds = time.perf_counter() - started
    metrics = {
        "test_loss": loss,
        "test_accuracy": accuracy,
        "test_samples": len(images),
        "test_eval_seconds": seconds,
        "test_steps": file.steps,
    }
    run.update_metrics(metrics)
    print(
        f"test loss {loss:.4f}, test accuracy {accuracy:.4f} on {len(images):,} images after "
        f"{file.steps} steps ({seconds:.1f} s)"
    )
    return metrics
