"""The deep task's run: open or create the weights, train with exact SGD, commit, evaluate.

A run folder (task "deep") holds `config.json`, `weights.bin` (the core, stem and head with the
step they reached, committed together; see `zoo.deep.storage`), `history.csv` (a row every
`--report-every` steps and at the last step), `metrics.json` and `curves.png` (loss and accuracy).

Streamed (the default), every step is a commit. With `--in-memory` the core lives in RAM and is
committed every `--save-every` steps and at the end. Either way a resumed run restarts from the
last commit: history rows beyond it are dropped and recomputed, and the partial report window
and the wall time are part of the commit, so a run killed at any instant and resumed gives the
history and weights of an uninterrupted run.

The run lives in the run lifecycle (`zoo.lifecycle.TrainingRun`), the weights file being its
checkpoint kind: Ctrl-C (or SIGTERM) finishes the step in flight, commits and exits 130; a
second Ctrl-C stops at once, which is safe at any instant (the committed copy is never written
in place).
"""

import math
import time
from pathlib import Path
from typing import Optional

import keras
import numpy as np

from zoo.commits import Checkpoint
from zoo.deep import (
    DeepNetwork,
    FileWeights,
    InMemoryWeights,
    initial_head,
    pack_record,
    record_capacity,
    unpack_record,
)
from zoo.deep.checksums import block_layers_for
from zoo.errors import DivergenceError, RunFolderError
from zoo.lifecycle import TrainingRun
from zoo.runs import RunFolder, crash_point, matplotlib_agg
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
    run: RunFolder,
    config: DeepConfig,
    create: bool = True,
    mode: str = "r+",
    verbose: int = 1,
    started: Optional[bool] = None,
) -> FileWeights:
    """The run's committed weights, created if missing (and `create`); they must fit `config`.
    A run that has `started` (default: its status or history says so) and lost its weights is
    an error, not a restart from step 0."""
    path = run.file(WEIGHTS)
    if not path.exists():
        if not create:
            raise RunFolderError(
                f"--run {run.path} has no {WEIGHTS}; train it first (`zoo deep train`)."
            )
        if started is None:
            started = bool(run.metrics().get("weights_created")) or not run.history().empty
        if started:
            raise RunFolderError(
                f"--run {run.path} has started (status {run.status!r}) but its {WEIGHTS} is "
                "missing: its commits are lost; restore the file or train a new --run."
            )
        weights = create_weights(config, path, verbose)
        run.update_metrics(weights_created=True)
        return weights
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


def describe_kernels(kernels) -> str:
    """ "native kernels, 2 threads" or "xla kernels"."""
    threads = getattr(kernels, "threads", None)
    plural = "" if threads == 1 else "s"
    return f"{kernels.kind} kernels" + (f", {threads} thread{plural}" if threads else "")


class Trainer:
    """One session of a deep run: the steps from the last commit to `config.steps`, inside the
    run's lifecycle (`zoo.lifecycle.TrainingRun`, with the weights file as its checkpoint kind).

    Args:
        session: the run's `TrainingRun` (its config is the saved one).
        kernels: `"auto"`, `"native"` or `"xla"`.
        verbose: 0 for no progress bar.
        threads: threads of the native kernels (default: `zoo.deep.native.default_threads()`).
        started: whether the run had started before this session (see `open_weights`).
    """

    def __init__(
        self,
        session,
        kernels: str = "auto",
        verbose: int = 1,
        threads: Optional[int] = None,
        started: Optional[bool] = None,
    ):
        self.session = session
        self.run, self.config, self.verbose = session.run, session.config, verbose
        self.file = open_weights(self.run, self.config, verbose=verbose, started=started)
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
        self.history_record = session.history_record()
        self.started = time.perf_counter()
        self.step_started = self.started

    def commit_state(self) -> dict:
        """The state committed with the weights: wall time, the partial report window, and
        the history's committed rows (count and checksum) that a resume verifies."""
        return {
            "wall_seconds": self.wall_seconds(),
            "window": dict(self.window),
            **self.history_record,
        }

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
            row = {
                "step": step,
                "loss": window["loss"] / count,
                "accuracy": window["accuracy"] / count,
                "seconds_per_step": window["seconds"] / count,
                "wall_seconds": self.wall_seconds(),
            }
            self.run.append_history(row)
            self.history_record = self.session.history_record()
            self.session.board.add_rows([row])
            self.window = {"loss": 0.0, "accuracy": 0.0, "count": 0, "seconds": 0.0}
            crash_point("deep-history-written")
        self.network.state = self.commit_state()

    def save(self) -> None:
        """Commits in-memory weights (streamed ones commit every step)."""
        if self.network.weights is not self.file and self.steps != self.file.steps:
            self.network.state = self.commit_state()
            self.network.save(self.file)

    def fit(self) -> int:
        """Trains up to `config.steps`; returns the steps run in this session."""
        config, first = self.config, self.steps
        images, labels = mnist_arrays("train")
        self.started = self.step_started = time.perf_counter()  # wall time counts training only
        progress = keras.utils.Progbar(config.steps - first, unit_name="step", verbose=self.verbose)
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
            if self.session.stop_requested:  # a signal: commit this step, then stop (exit 130)
                self.save()
                state = dict(self.network.state)
                self.session.checkpoint = Checkpoint(self.file.steps, self.file.path, state, state)
                self.session.raise_if_interrupted()
        self.save()
        return self.steps - first

    def close(self) -> None:
        self.network.weights.close()
        self.file.close()


def committed_checkpoint(run: RunFolder) -> Optional[Checkpoint]:
    """The weights file as the lifecycle's checkpoint: its committed step and state (whose
    `history_rows` / `history_sha256` the resume verifies); None before it exists."""
    path = run.file(WEIGHTS)
    if not path.exists():
        return None
    with FileWeights.open(path, "r") as weights:
        steps, record = weights.steps, weights.record
    state = unpack_record(record, path)[2] if record else {}
    return Checkpoint(steps, path, state, state)


def train(
    run: RunFolder, kernels: str = "auto", verbose: int = 1, threads: Optional[int] = None
) -> dict:
    """Trains (or resumes) the run in `run` up to its config's steps inside the run
    lifecycle; returns the metrics.

    Raises:
        DivergenceError: on a non-finite loss (the run is marked failed; the diverged step is
            not committed).
        Interrupted: a signal stopped the run after committing its step in flight.
        StorageError: the disk filled up (the last commit stays intact).
    """
    started = bool(run.metrics().get("weights_created")) or not run.history().empty
    with TrainingRun(
        TASK,
        run.config,
        run,
        steps_field="steps",
        step_column="step",
        verbose=verbose,
        checkpoint_of=committed_checkpoint,
        divergence_hint=f"--layer-lr {run.config.layer_lr:g} or --head-lr "
        f"{run.config.head_lr:g} is likely too high",
    ) as session:
        config = session.config
        if session.finished:
            print(
                f"run {run.path} has finished its {config.steps} steps; raise --steps to continue."
            )
            return run.metrics()
        trainer = Trainer(session, kernels, verbose, threads, started=started)
        try:
            network = trainer.network
            if verbose:
                storage = "in memory" if config.in_memory else f"streamed from {trainer.file.path}"
                print(
                    f"deep core: {network.layers:,} layers, width {network.width}, "
                    f"{config.activation}, alpha {network.alpha:.3g}, chunk "
                    f"{network.chunk_layers:,}, {storage}, {describe_kernels(network.kernels)}; "
                    f"steps {trainer.steps} -> {config.steps}",
                    flush=True,
                )
            steps_run = trainer.fit()
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
        session.finish(**metrics)
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


def open_run(path) -> RunFolder:
    """An existing deep run folder, locked (eval writes its metrics), its committed history
    verified against the weights' commit; one-line errors for a missing or foreign folder."""
    run = RunFolder.existing(path, TASK, DeepConfig(), needs=WEIGHTS)
    try:
        run.verify_history(committed_checkpoint(run))
    except BaseException:
        run.close()
        raise
    return run


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
