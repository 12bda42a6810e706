"""ArgMaxNet's training recipes and the resumable training loop of `zoo argmax train`.

An episode is a Keras epoch of `steps_per_episode` steps, run `execution_steps` at a time by
the compiled `TrainingLoop` (the batches drawn inside it), with Keras callbacks around it as
in `fit`. After each episode the run folder gets, in this order: the history row (with the
evaluation on fresh scores), then the committed checkpoint (weights, the optimizer's step count
and the data stream's version; the momentum restarts every episode, so nothing else carries
over), through the run lifecycle (`zoo.lifecycle`). A resumed run cuts the history back to the
committed episode and continues with the batches of the same global steps, so it equals an
uninterrupted run.
"""

from pathlib import Path
from typing import Callable, Optional, Union

import keras

from zoo.callbacks import ExpDecay
from zoo.errors import ResumeMismatchError
from zoo.lifecycle import TrainingRun, TrainingState
from zoo.metrics import RoundedIndexError
from zoo.runs import RunFolder
from zoo.tasks.argmax.config import SCORES, ArgMaxConfig, require_memory_for
from zoo.tasks.argmax.data import DATA_STREAM
from zoo.tasks.argmax.evaluation import seed_test_protocol
from zoo.tasks.argmax.loops import TrainingLoop, stream_evaluation
from zoo.tasks.argmax.models import ArgMaxNet
from zoo.tasks.argmax.plots import plot_history

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
        elapsed: returns the training seconds so far, across resumes.
    """

    def __init__(self, config: ArgMaxConfig, elapsed: Callable[[], float]):
        super().__init__()
        self.config = config
        self.elapsed = elapsed

    def on_epoch_end(self, epoch, logs=None):
        batches = self.config.eval_batches
        evaluation = stream_evaluation(self.model, self.config.eval_batch_size)
        squared, wrong = evaluation(self.config.seed + EVAL_SEED_OFFSET, epoch * batches, batches)
        instances = batches * self.config.eval_batch_size
        loss, err = squared / instances, wrong / instances
        if logs is not None:
            logs.update(
                {"eval_loss": loss, "eval_err": err, "elapsed_hours": self.elapsed() / 3600}
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


def training_state(model: ArgMaxNet) -> TrainingState:
    """What the next episode depends on: the weights and the optimizer's step count (the
    momentum restarts every episode, so nothing else carries over)."""
    return TrainingState(model, optimizer=False, extra={"iterations": model.optimizer.iterations})


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


def run_episodes(
    model: ArgMaxNet,
    config: ArgMaxConfig,
    callbacks: list,
    initial_episode: int = 0,
    verbose: int = 1,
) -> None:
    """Trains episodes `initial_episode + 1 .. config.episodes` as `model.fit` would, with the
    compiled `TrainingLoop` and Keras callbacks around it.

    Episode `e` (from 0) runs the global steps `e * steps_per_episode ..`, `execution_steps`
    per call; after each call the callbacks get `on_train_batch_end` with the episode's running
    `loss` (squared error per instance, the scale of `eval_loss`) and `err`.
    A callback may stop the run with `model.stop_training`, as in `fit`.
    """
    loop = TrainingLoop(
        model, make_loss(config), config.batch_size, config.seed, config.execution_steps
    )
    callback_list = keras.callbacks.CallbackList(
        callbacks,
        model=model,
        verbose=verbose,
        epochs=config.episodes,
        steps=config.steps_per_episode,
    )
    # `loss` is logged per instance, on the scale of `eval_loss`, whatever the recipe's
    # reduction (the seed's loss is summed over the batch).
    scale = config.batch_size if make_loss(config).reduction == "sum" else 1
    model.stop_training = False
    callback_list.on_train_begin()
    logs = {}
    for episode in range(initial_episode, config.episodes):
        callback_list.on_epoch_begin(episode)
        loss_sum = 0.0
        wrong = steps = 0
        for offset in range(0, config.steps_per_episode, loop.steps):
            last_batch = offset + loop.steps - 1
            callback_list.on_train_batch_begin(last_batch)
            call_loss, call_wrong = loop(episode * config.steps_per_episode + offset)
            loss_sum += call_loss
            wrong += call_wrong
            steps += loop.steps
            logs = {"err": wrong / (steps * config.batch_size), "loss": loss_sum / steps / scale}
            callback_list.on_train_batch_end(last_batch, logs)
            if model.stop_training:
                break
        logs = dict(logs)
        callback_list.on_epoch_end(episode, logs)
        if model.stop_training:
            break
    callback_list.on_train_end(logs)


def train(
    config: ArgMaxConfig,
    run: Union[RunFolder, str, Path, None] = None,
    *,
    given: Optional[dict] = None,
    verbose: Optional[int] = None,
) -> RunFolder:
    """Trains ArgMaxNet in a run folder, resuming it if it holds a run; returns the folder.
    The lifecycle (`zoo.lifecycle.TrainingRun`) keeps the run folder's promises.

    Args:
        config: the settings (`ArgMaxConfig.for_recipe(...)`); on resume the saved config wins.
        run: the run folder (None: a new `runs/argmax/<UTC time>/`), or a `RunFolder` the
            caller opened already.
        given: the settings the caller chose explicitly, checked against a resumed run's
            saved config (None: all of `config`).
        verbose: 0: no progress bar; None: a bar on a terminal, a line per episode when piped.
            The seed's per-episode line is printed either way.

    Raises:
        ResourceError: the settings need more memory than this machine has (before any
            folder is made).
        ResumeMismatchError: the folder holds a run of another data stream.
        DivergenceError: the loss became NaN or infinite; the run is marked failed.
        Interrupted: a signal stopped the run after committing its episode in flight.
    """
    require_memory_for(config)
    with TrainingRun(
        TASK,
        config,
        run,
        given=given,
        verbose=verbose,
        steps_field="episodes",
        check_resume=check_data_stream,
    ) as session:
        if session.finished:
            print(
                f"Run folder {session.run.path} already finished its {session.step} episodes "
                f"(test Err {session.run.metrics().get('test_err')}); raise --episodes to train "
                "further."
            )
            return session.run
        _train(session)
    return session.run


def check_data_stream(session: TrainingRun) -> None:
    """Refuses a committed run drawn from another data stream than `DATA_STREAM`: continuing
    it would not equal its uninterrupted run."""
    if session.checkpoint is None:
        return
    stream = session.state.get("data_stream", 1)
    if stream != DATA_STREAM:
        raise ResumeMismatchError(
            f"{session.run.path} was trained on data stream {stream} (batches from a tf.data "
            f"pipeline, zoo 0.2); this version draws stream {DATA_STREAM} inside the compiled "
            "loop, so the run cannot continue identically: start a new --run."
        )


def _train(session: TrainingRun) -> None:
    run, config = session.run, session.config
    require_memory_for(config)
    model = build_model(config)
    state = training_state(model)
    done = session.restore(state)
    print(describe(config, model))
    print(
        f"Run folder: {run.path}" + (f" (resuming after episode {done})" if done else ""),
        flush=True,
    )
    callbacks = session.callbacks(
        state,
        [
            FreshOptimizerState(),
            ExpDecay(config.lr_decay, initial_learning_rate=config.learning_rate),
            EpisodeEvaluation(config, lambda: session.wall_time.elapsed()),
        ],
        state=lambda: {"data_stream": DATA_STREAM},
    )
    if session.verbose:
        callbacks.append(keras.callbacks.ProgbarLogger())
    callbacks.append(EpisodeLine())
    run_episodes(model, config, callbacks, initial_episode=done, verbose=session.verbose)
    run.save_model(model)
    metrics = seed_test_protocol(model)
    history = run.history()
    plot_history(history, config, run)
    last = history.iloc[-1]
    session.finish(
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
