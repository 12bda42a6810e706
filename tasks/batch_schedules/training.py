"""Training every schedule of a comparison in one run folder, each resumable on its own.

The run lives in one lifecycle (`zoo.lifecycle.TrainingRun`). Per schedule `s`, every epoch
appends its history row (tagged `schedule=s`) and then commits the checkpoint
(`checkpoint.json` names `s`; the payload is the model's `TrainingState`). When
the last epoch is committed, `model_<s>.keras` is saved and only then is `s` recorded as done
in `schedules.json` (with its epochs and wall time). A rerun:

- skips a schedule done at the requested epochs;
- resumes an interrupted one from its committed epoch (the history cut back there), or from
  `model_<s>.keras` when `--epochs` extends a finished one;
- restarts from epoch 1 a schedule with no commit of its own.

The batches of epoch `e` depend only on `(seed, e)` (`IncreasingBatchSize.dataset`), the
learning rate and batch size only on `e`, so a resumed schedule equals an uninterrupted one.
"""

from typing import Optional

import keras

from zoo.commits import Checkpoint
from zoo.lifecycle import TrainingRun, TrainingState
from zoo.runs import RunFolder

from .config import TASK, ScheduleConfig
from .data import load_split_data
from .models import SimpleCNN
from .report import DONE_FILE, done_schedules, write_report
from .schedules import schedule_callbacks

DIVERGENCE_HINT = "the learning rate is likely too high for plain SGD"


def model_file(schedule: str) -> str:
    return f"model_{schedule}.keras"


def new_model(config: ScheduleConfig, input_shape) -> keras.Model:
    """A fresh `SimpleCNN` (seeded), compiled for plain SGD at `config.learning_rate`.

    `jit_compile="auto"`, Keras's own choice: no XLA on a CPU-only machine, where XLA made this
    CNN's epochs about twice as slow and compiled the step again for every batch size (the
    ibs schedules meet a new one every epoch); XLA where a GPU is, with
    `IncreasingBatchSize` padding the batches to a few shapes.
    """
    keras.utils.set_random_seed(config.seed)
    activation = None if config.conv3_activation == "none" else config.conv3_activation
    model = SimpleCNN(activation)
    model.compile(
        keras.optimizers.SGD(config.learning_rate),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
        jit_compile="auto",
    )
    model.build((None, *input_shape))
    return model


class RenameTestMetrics(keras.callbacks.Callback):
    """`validation_data` here is the full test set: logs `val_*` as `test_*`."""

    def on_epoch_end(self, epoch, logs=None):
        for key in [key for key in (logs or {}) if key.startswith("val_")]:
            logs["test_" + key[4:]] = logs.pop(key)


def train_schedule(
    session: TrainingRun, schedule: str, data, checkpoint: Optional[Checkpoint]
) -> keras.Model:
    """Trains (or resumes) one schedule up to `config.epochs` inside the run's lifecycle,
    saves its model, marks it done.

    Args:
        session: the run's `TrainingRun`.
        schedule: the schedule's name.
        data: `load_split_data`'s result.
        checkpoint: the run's committed checkpoint (it may be another schedule's).
    """
    run, config = session.run, session.config
    (train_x, train_y), _, (test_x, test_y) = data
    done = done_schedules(run).get(schedule, {})
    model = new_model(config, train_x.shape[1:])
    state = TrainingState(model)
    if (
        checkpoint is not None
        and checkpoint.state.get("schedule") == schedule
        and (checkpoint.step >= done.get("epochs", 0))
    ):
        state.restore(checkpoint.path)
        first_epoch, wall_seconds = checkpoint.step, float(checkpoint.state.get("wall_seconds", 0))
    elif done:  # --epochs extends a finished schedule: from its saved model
        state.restore(run.file(model_file(schedule)))
        first_epoch, wall_seconds = int(done["epochs"]), float(done.get("wall_seconds", 0.0))
    else:
        first_epoch, wall_seconds = 0, 0.0
    lr_schedule, ibs = schedule_callbacks(
        schedule,
        len(train_x),
        config.batch_size,
        config.learning_rate,
        config.lr_decay,
        config.ibs_growth,
    )
    batches = ibs.dataset(train_x, train_y, seed=config.seed)
    callbacks = session.callbacks(
        state,
        [ibs, lr_schedule, RenameTestMetrics()],
        columns={"schedule": schedule},
        state=lambda: {"schedule": schedule},
        wall_seconds=wall_seconds,
    )
    if first_epoch >= config.epochs:
        action = f"all {config.epochs} epochs committed; saving its model"
    elif first_epoch:
        action = f"resuming at epoch {first_epoch + 1} of {config.epochs}"
    else:
        action = f"starting, {config.epochs} epochs"
    print(f"== {schedule}: {len(train_x):,} training examples, {action}", flush=True)
    if first_epoch < config.epochs:
        model.fit(
            batches.for_fit(),  # on TensorFlow the batches are computed inside tf.data
            epochs=config.epochs,
            initial_epoch=first_epoch,
            shuffle=False,  # the order of epoch e is the dataset's own, from (seed, e)
            validation_data=(test_x, test_y),
            validation_batch_size=1000,
            callbacks=callbacks,
            verbose=session.verbose,
        )
        wall_seconds = session.wall_time.elapsed()
    run.save_model(model, model_file(schedule))
    done = done_schedules(run)
    done[schedule] = {"epochs": config.epochs, "wall_seconds": wall_seconds}
    run.write_json(DONE_FILE, done)
    return model


def pending_schedules(run: RunFolder, config: ScheduleConfig) -> list:
    """The schedules of `config` not yet done at `config.epochs`."""
    done = done_schedules(run)
    return [s for s in config.schedules if done.get(s, {}).get("epochs", 0) < config.epochs]


def run_schedules(
    config: ScheduleConfig,
    run_path=None,
    *,
    given: Optional[dict] = None,
    data_dir: Optional[str] = None,
    manual_dir: Optional[str] = None,
    verbose: Optional[int] = None,
    root="runs",
) -> RunFolder:
    """Trains every schedule of `config` not yet done, then writes the report. The lifecycle
    (`zoo.lifecycle.TrainingRun`) keeps the run folder's promises.

    Check the data with `data.require_prepared` first: this opens (or creates) the folder.

    Raises:
        DivergenceError: a schedule's loss became non-finite; the run is marked failed.
        Interrupted: a signal stopped the run after committing its epoch in flight.
    """

    def finished(session: TrainingRun) -> bool:
        return session.run.status == "finished" and not pending_schedules(
            session.run, session.run.config
        )

    with TrainingRun(
        TASK,
        config,
        run_path,
        given=given,
        root=root,
        verbose=verbose,
        is_finished=finished,
        divergence_hint=DIVERGENCE_HINT,
    ) as session:
        run, config = session.run, session.config
        if session.finished:
            print(
                f"ibs-vs-lrd: {run.path} is finished ({','.join(config.schedules)}, "
                f"{config.epochs} epochs); nothing to do."
            )
            return run
        pending = pending_schedules(run, config)
        if pending:
            data = load_split_data(
                config.dataset,
                config.holdout,
                config.seed,
                config.train_limit,
                data_dir=data_dir,
                manual_dir=manual_dir,
            )
        for schedule in pending:
            train_schedule(session, schedule, data, session.checkpoint)
        summary = write_report(run, config)
        session.finish(summary=summary.to_dict(orient="records"))
        print(summary.to_string(index=False))
        print(
            f"ibs-vs-lrd: {len(config.schedules)} schedules, {config.epochs} epochs each; "
            f"run folder {run.path}"
        )
    return run
