"""ArgMaxNet's training recipes and the resumable training loop of `zoo argmax train`.

An episode is a Keras epoch of `steps_per_episode` steps. After each episode the run folder
gets, in this order: the history row (with the evaluation on fresh scores), then the committed
checkpoint (weights and the optimizer's step count; the momentum restarts every episode, so
nothing else carries over). A resumed run truncates the history to the committed episode and
continues with the batches of the same global steps, so it equals an uninterrupted run.
"""

from pathlib import Path
from typing import Optional, Union

import keras
import numpy as np

from zoo.callbacks import ExpDecay
from zoo.errors import CorruptFileError, DivergenceError
from zoo.metrics import RoundedIndexError
from zoo.runs import RunFolder, load_npz
from zoo.tasks.argmax.config import SCORES, ArgMaxConfig
from zoo.tasks.argmax.data import score_dataset
from zoo.tasks.argmax.evaluation import evaluate, seed_test_protocol
from zoo.tasks.argmax.models import ArgMaxNet
from zoo.tasks.argmax.plots import plot_history
from zoo.training import RunHistory, StopOnNonFinite, WallTime

TASK = "argmax"
EVAL_SEED_OFFSET = 1_000_003
"""Evaluation scores come from the seed `config.seed + EVAL_SEED_OFFSET`, never a training
batch's."""


def make_optimizer(config: ArgMaxConfig) -> keras.optimizers.Optimizer:
    """SGD with momentum (the seed's recipe) or Adam (the improved recipe)."""
    if config.recipe == "improved":
        return keras.optimizers.Adam(config.learning_rate)
    return keras.optimizers.SGD(config.learning_rate, momentum=config.momentum)


def make_loss(config: ArgMaxConfig) -> keras.losses.Loss:
    """Squared error summed over the batch (the seed's) or averaged (the improved recipe)."""
    reduction = "sum_over_batch_size" if config.recipe == "improved" else "sum"
    return keras.losses.MeanSquaredError(reduction=reduction)


def build_model(config: ArgMaxConfig) -> ArgMaxNet:
    """The compiled ArgMaxNet of `config`, its weights drawn from `config.seed`."""
    keras.utils.set_random_seed(config.seed)
    model = ArgMaxNet(config.depth, config.hidden, config.block)
    model.compile(
        optimizer=make_optimizer(config),
        loss=make_loss(config),
        metrics=[RoundedIndexError()],
        steps_per_execution=config.execution_steps,
        jit_compile=True,
    )
    return model


class FreshOptimizerState(keras.callbacks.Callback):
    """Zeroes the optimizer's slots (momentum, Adam moments) at each episode's start: the seed
    built a new optimizer every episode. The step count and the learning rate are kept."""

    def on_epoch_begin(self, epoch, logs=None):
        optimizer = self.model.optimizer
        keep = {id(optimizer.iterations), id(optimizer.learning_rate)}
        for variable in optimizer.variables:
            if id(variable) not in keep:
                variable.assign(keras.ops.zeros_like(variable))


class EpisodeEvaluation(keras.callbacks.Callback):
    """After each episode, evaluates on `eval_batches` batches of fresh scores and logs
    `eval_loss` (squared error per instance), `eval_err` and `elapsed_hours`.

    Args:
        config: the run's config.
        wall_time: the run's `WallTime`, for the hours elapsed across resumes.
    """

    def __init__(self, config: ArgMaxConfig, wall_time: WallTime):
        super().__init__()
        self.config = config
        self.wall_time = wall_time

    def on_epoch_end(self, epoch, logs=None):
        data = score_dataset(
            self.config.eval_batch_size,
            self.config.eval_batches,
            seed=self.config.seed + EVAL_SEED_OFFSET,
            first_step=epoch * self.config.eval_batches,
        )
        loss, err = evaluate(self.model, data)
        if logs is not None:
            logs.update(
                {
                    "eval_loss": loss,
                    "eval_err": err,
                    "elapsed_hours": self.wall_time.elapsed() / 3600,
                }
            )


class EpisodeCheckpoint(keras.callbacks.Callback):
    """Commits the weights and the optimizer's step count after each episode (after the
    history row): `checkpoints/ckpt-<episode>.npz` and `checkpoint.json`.

    Args:
        run: the run folder.
        wall_time: the run's `WallTime`; its seconds are stored with the checkpoint.
    """

    def __init__(self, run: RunFolder, wall_time: WallTime):
        super().__init__()
        self.run = run
        self.wall_time = wall_time

    def on_epoch_end(self, epoch, logs=None):
        arrays = {f"weight_{i}": weight for i, weight in enumerate(self.model.get_weights())}
        arrays["iterations"] = np.asarray(
            keras.ops.convert_to_numpy(self.model.optimizer.iterations), np.int64
        )
        self.run.save_checkpoint(
            epoch + 1,
            lambda path: np.savez(path, **arrays),
            ".npz",
            {"wall_seconds": self.wall_time.elapsed()},
        )


class EpisodeLine(keras.callbacks.Callback):
    """Prints the seed's line `[ep] Loss Err elapsed lr` from the episode's logs. It comes after
    the progress bar in the callback list, so the line always starts a line of its own."""

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        print(
            f"[{epoch + 1:5d}] Loss: {logs['eval_loss']:.6f}   Err: {logs['eval_err']:.6f}  "
            f"elapsed: {logs['elapsed_hours']:9.6f} hours, lr={logs['learning_rate']:.8f}",
            flush=True,
        )


def restore(model: ArgMaxNet, checkpoint_path: Path) -> None:
    """Loads a checkpoint's weights and step count into a compiled `model`."""
    arrays = load_npz(checkpoint_path)
    weights = model.get_weights()
    names = [f"weight_{i}" for i in range(len(weights))]
    missing = [name for name in names + ["iterations"] if name not in arrays]
    if missing or len(arrays) != len(names) + 1:
        raise CorruptFileError(
            checkpoint_path,
            f"holds {len(arrays)} arrays, this model needs {len(weights)} weights and the step "
            "count",
        )
    for name, weight in zip(names, weights):
        if arrays[name].shape != weight.shape:
            raise CorruptFileError(
                checkpoint_path, f"{name} has shape {arrays[name].shape}, not {weight.shape}"
            )
    model.set_weights([arrays[name] for name in names])
    model.optimizer.iterations.assign(int(arrays["iterations"]))


def describe(config: ArgMaxConfig, model: ArgMaxNet) -> str:
    """The header `zoo argmax train` prints (the seed's first lines, and the recipe)."""
    optimizer = type(model.optimizer).__name__
    momentum = f", momentum {config.momentum}" if config.recipe == "seed" else ""
    return (
        f"ArgMaxNet : StackDepth={config.depth}, Block({SCORES},{config.hidden}) "
        f"[{config.block}]\n"
        f"            recipe={config.recipe}: {optimizer}(lr={config.learning_rate:g} x "
        f"{config.lr_decay:g} each episode{momentum}), batch {config.batch_size}, "
        f"{config.steps_per_episode} steps/episode\n"
        f"Parameter count = {model.count_params()}"
    )


def train(
    config: ArgMaxConfig,
    run: Union[RunFolder, str, Path, None] = None,
    *,
    given: Optional[dict] = None,
    verbose: int = 1,
) -> RunFolder:
    """Trains ArgMaxNet in a run folder, resuming it if it holds a run; returns the folder.

    Args:
        config: the settings (`ArgMaxConfig.for_recipe(...)`); when `run` is an open
            `RunFolder`, its config (the saved one on resume) is used instead.
        run: an open `RunFolder`, or a path (None: a new `runs/argmax/<UTC time>/`), opened
            with `RunFolder.open` and closed again at the end.
        given: the settings the caller chose explicitly, checked against a resumed run's
            saved config (None: all of `config`).
        verbose: 1 shows Keras's progress bar; 0 does not. The per-episode line is printed
            either way.

    Raises:
        DivergenceError: the loss became NaN or infinite; the run is marked failed.
    """
    if isinstance(run, RunFolder):
        return _train(run, verbose)
    with RunFolder.open(run, TASK, config, given=given) as opened:
        return _train(opened, verbose)


def _train(run: RunFolder, verbose: int) -> RunFolder:
    config = run.config
    checkpoint = run.load_checkpoint()
    done = checkpoint.step if checkpoint else 0
    if done >= config.episodes and run.status == "finished":
        metrics = run.metrics()
        print(
            f"Run folder {run.path} already finished its {done} episodes (test Err "
            f"{metrics.get('test_err')}); raise --episodes to train further."
        )
        return run
    run.mark_running()
    run.truncate_history("epoch", done)
    model = build_model(config)
    if checkpoint:
        restore(model, checkpoint.path)
    print(describe(config, model))
    print(
        f"Run folder: {run.path}" + (f" (resuming after episode {done})" if done else ""),
        flush=True,
    )

    wall_time = WallTime(offset=checkpoint.state.get("wall_seconds", 0.0) if checkpoint else 0.0)
    first_step = done * config.steps_per_episode
    remaining_steps = (config.episodes - done) * config.steps_per_episode
    callbacks = [
        FreshOptimizerState(),
        ExpDecay(config.lr_decay, initial_learning_rate=config.learning_rate),
        wall_time,
        StopOnNonFinite(),
        EpisodeEvaluation(config, wall_time),
        RunHistory(run),
        EpisodeCheckpoint(run, wall_time),
    ]
    if verbose:
        callbacks.append(keras.callbacks.ProgbarLogger())
    callbacks.append(EpisodeLine())
    try:
        if remaining_steps:
            model.fit(
                score_dataset(config.batch_size, remaining_steps, config.seed, first_step),
                initial_epoch=done,
                epochs=config.episodes,
                steps_per_epoch=config.steps_per_episode,
                shuffle=False,
                verbose=verbose,
                callbacks=callbacks,
            )
    except DivergenceError as error:
        run.mark_failed(str(error))
        raise
    run.save_model(model)
    metrics = seed_test_protocol(model)
    history = run.history()
    plot_history(history, config, run)
    last = history.iloc[-1]
    run.mark_finished(
        **metrics,
        episodes=config.episodes,
        parameters=model.count_params(),
        final_eval_err=float(last["eval_err"]),
        final_eval_loss=float(last["eval_loss"]),
        train_seconds=float(last["wall_seconds"]),
    )
    print(
        f"Finished {config.episodes} episodes in {float(last['wall_seconds']):.0f} s of "
        f"training: test Err {metrics['test_err']:.6f}; run folder {run.path}"
    )
    return run
