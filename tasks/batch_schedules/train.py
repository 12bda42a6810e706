"""Training every schedule of a comparison in one run folder, each resumable on its own.

Per schedule `s`, every epoch appends its history row (tagged `schedule=s`) and then commits
the checkpoint (`checkpoint.json` names `s`; the payload is the model with its optimizer). When
the last epoch is committed, `model_<s>.keras` is saved and only then is `s` recorded as done
in `schedules.json` (with its epochs and wall time). A rerun:

- skips a schedule done at the requested epochs;
- resumes an interrupted one from its committed epoch (its history truncated there), or from
  `model_<s>.keras` when `--epochs` extends a finished one;
- restarts from epoch 1 a schedule with no commit of its own.

The batches of epoch `e` depend only on `(seed, e)` (`IncreasingBatchSize.dataset`), the
learning rate and batch size only on `e`, so a resumed schedule equals an uninterrupted one.
"""

from typing import Optional

import keras

from zoo.errors import DivergenceError
from zoo.runs import RunFolder, crash_point, load_keras_model
from zoo.training import RunCheckpoint, RunHistory, StopOnNonFinite, WallTime

from .config import TASK, ScheduleConfig
from .data import load_split_data
from .models import SimpleCNN
from .reporting import write_report
from .schedules import schedule_callbacks

DONE_FILE = "schedules.json"
DIVERGENCE_HINT = "the learning rate is likely too high for plain SGD"


def model_file(schedule: str) -> str:
    return f"model_{schedule}.keras"


def done_schedules(run: RunFolder) -> dict:
    """`{schedule: {"epochs": E, "wall_seconds": W}}` of the schedules whose model is saved."""
    return run.read_json(DONE_FILE) if run.file(DONE_FILE).exists() else {}


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


class TrainBatchCrashPoint(keras.callbacks.Callback):
    """The fault-injection point `train-batch`, after every training batch (tests only)."""

    def on_train_batch_end(self, batch, logs=None):
        crash_point("train-batch")


def train_schedule(
    run: RunFolder, config: ScheduleConfig, schedule: str, data, verbose="auto"
) -> keras.Model:
    """Trains (or resumes) one schedule up to `config.epochs`, saves its model, marks it
    done."""
    (train_x, train_y), _, (test_x, test_y) = data
    done = done_schedules(run).get(schedule, {})
    checkpoint = run.load_checkpoint()
    if (
        checkpoint is not None
        and checkpoint.state.get("schedule") == schedule
        and (checkpoint.step >= done.get("epochs", 0))
    ):
        model, first_epoch = load_keras_model(checkpoint.path), checkpoint.step
        wall_seconds = float(checkpoint.state.get("wall_seconds", 0.0))
    elif done:
        model, first_epoch = run.load_model(model_file(schedule)), int(done["epochs"])
        wall_seconds = float(done.get("wall_seconds", 0.0))
    else:
        model, first_epoch, wall_seconds = new_model(config, train_x.shape[1:]), 0, 0.0
    run.truncate_history("epoch", first_epoch, where={"schedule": schedule})
    lr_schedule, ibs = schedule_callbacks(
        schedule,
        len(train_x),
        config.batch_size,
        config.learning_rate,
        config.lr_decay,
        config.ibs_growth,
    )
    batches = ibs.dataset(train_x, train_y, seed=config.seed)
    wall_time = WallTime(wall_seconds)
    callbacks = [
        StopOnNonFinite(DIVERGENCE_HINT),
        ibs,
        lr_schedule,
        wall_time,
        RenameTestMetrics(),
        RunHistory(run, {"schedule": schedule}),
        RunCheckpoint(run, lambda: {"schedule": schedule, "wall_seconds": wall_time.elapsed()}),
        TrainBatchCrashPoint(),
    ]
    if first_epoch >= config.epochs:
        action = f"all {config.epochs} epochs committed; saving its model"
    elif first_epoch:
        action = f"resuming at epoch {first_epoch + 1} of {config.epochs}"
    else:
        action = f"starting, {config.epochs} epochs"
    print(f"== {schedule}: {len(train_x):,} training examples, {action}", flush=True)
    if first_epoch < config.epochs:
        model.fit(
            batches,
            epochs=config.epochs,
            initial_epoch=first_epoch,
            shuffle=False,  # the order of epoch e is the dataset's own, from (seed, e)
            validation_data=(test_x, test_y),
            validation_batch_size=1000,
            callbacks=callbacks,
            verbose=verbose,
        )
        wall_seconds = wall_time.elapsed()
    run.save_model(model, model_file(schedule))
    done = done_schedules(run)
    done[schedule] = {"epochs": config.epochs, "wall_seconds": wall_seconds}
    run.write_json(DONE_FILE, done)
    return model


def run_schedules(
    config: ScheduleConfig,
    run_path=None,
    *,
    given: Optional[dict] = None,
    data_dir: Optional[str] = None,
    manual_dir: Optional[str] = None,
    verbose="auto",
    root="runs",
) -> RunFolder:
    """Trains every schedule of `config` not yet done, then writes the report.

    Check the data with `data.require_prepared` first: this opens (or creates) the folder.

    Raises:
        DivergenceError: a schedule's loss became non-finite; the run is marked failed.
    """
    with RunFolder.open(run_path, TASK, config, given=given, root=root) as run:
        config = run.config
        pending = [
            schedule
            for schedule in config.schedules
            if done_schedules(run).get(schedule, {}).get("epochs", 0) < config.epochs
        ]
        if not pending and run.status == "finished":
            print(
                f"ibs-vs-lrd: {run.path} is finished ({','.join(config.schedules)}, "
                f"{config.epochs} epochs); nothing to do."
            )
            return run
        run.mark_running()
        try:
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
                train_schedule(run, config, schedule, data, verbose)
        except DivergenceError as error:
            run.mark_failed(str(error))
            raise
        summary = write_report(run, config)
        run.mark_finished(summary=summary.to_dict(orient="records"))
        print(summary.to_string(index=False))
        print(
            f"ibs-vs-lrd: {len(config.schedules)} schedules, {config.epochs} epochs each; "
            f"run folder {run.path}"
        )
    return run
