"""The sweep on keras-tuner: every experiment of the grid once, resumable and distributable.

keras-tuner gives the rest: an interrupted sweep resumes without redoing finished trials, and
keras-tuner's own chief/worker mode (`KERASTUNER_TUNER_ID`, `KERASTUNER_ORACLE_IP`,
`KERASTUNER_ORACLE_PORT`) spreads a grid over processes or machines.

The sweep's keras-tuner project lives in `<run>/sweep/`. The oracle's and trials' JSON files
are written by `ExperimentGridOracle`, atomically (temporary file, fsync, rename), so a kill -9
at any instant leaves every file whole and the sweep resumable.
"""

import contextlib
import io
import json
import logging
import os
from pathlib import Path
from typing import Optional, Union

import keras
import keras_tuner

from zoo.lifecycle import tracked
from zoo.runs import RunFolder, atomic_write_bytes, crash_point, dumps_json, read_json
from zoo.tasks.reasoning_ops.config import Protocol, SweepConfig
from zoo.tasks.reasoning_ops.hypermodel import ReasoningHyperModel
from zoo.tasks.reasoning_ops.report import PROJECT, read_trials

FINISHED_STATUSES = ("COMPLETED", "FAILED", "INVALID")


def check_sweep_files(directory) -> None:
    """Reads every JSON file keras-tuner will reload, so a damaged one is a one-line
    `CorruptFileError` naming it instead of a traceback from inside keras-tuner."""
    read_trials(directory)
    for path in sorted(Path(directory, PROJECT).glob("*.json")):
        read_json(path)


_PRIVATE_ORACLE_NAMES = (
    "_save_trial",
    "_compute_values_hash",
    "_tried_so_far",
    "_retry_queue",
    "_id_to_hash",
    "trials",
)


def _check_keras_tuner(oracle) -> None:
    """The private parts of keras-tuner's `Oracle` that `ExperimentGridOracle` relies on (the
    grid's traversal state, the retry queue, and the trial writer it makes atomic)."""
    missing = [name for name in _PRIVATE_ORACLE_NAMES if not hasattr(oracle, name)]
    if missing:
        raise RuntimeError(
            f"keras-tuner {keras_tuner.__version__}'s Oracle has no {', '.join(missing)}, which "
            f"zoo.tasks.reasoning_ops.sweep.ExperimentGridOracle relies on (written for 1.4)."
        )


class ExperimentGridOracle(keras_tuner.Oracle):
    """Hands out every combination of a fixed grid once, in order, and saves atomically.

    keras-tuner's own `GridSearchOracle` does not save its traversal state, so a reloaded
    sweep fails; this one derives everything from the oracle's saved `tried_so_far` hashes,
    and reloaded running trials go to the retry queue. Failed trials (diverged experiments)
    count as tried.

    Args:
        grid: the hyperparameter values of every trial, in order.
        project_dir: the keras-tuner project folder (`<run>/sweep`).
        **kwargs: passed to `keras_tuner.Oracle` (`objective`, ...).
    """

    def __init__(self, grid: list, project_dir, **kwargs):
        kwargs.setdefault("max_consecutive_failed_trials", len(grid) + 1)
        super().__init__(max_trials=len(grid), **kwargs)
        self.grid = grid
        self.project_dir = Path(project_dir)
        _check_keras_tuner(self)

    def populate_space(self, trial_id):
        status = keras_tuner.engine.trial.TrialStatus
        for values in self.grid:
            if self._compute_values_hash(values) not in self._tried_so_far:
                return {"status": status.RUNNING, "values": values}
        if self.ongoing_trials:
            return {"status": status.IDLE}
        return {"status": status.STOPPED}

    def reload(self):
        """keras-tuner's reload, made consistent after a kill between the two files a new or
        finished trial writes (its `trial.json`, then `oracle.json`): the trial files are the
        truth. A trial whose file is finished is not retried; one whose file says running is
        retried, even if `oracle.json` never heard of it (else the grid would end without it).
        """
        super().reload()
        status = keras_tuner.engine.trial.TrialStatus
        finished = (status.COMPLETED, status.FAILED, status.INVALID)
        self._retry_queue = [
            trial_id
            for trial_id in self._retry_queue
            if self.trials[trial_id].status not in finished
        ]
        for trial_id, trial in sorted(self.trials.items()):
            if trial.status in finished or trial_id in self._retry_queue:
                continue
            values_hash = self._compute_values_hash(trial.hyperparameters.values)
            self._tried_so_far.add(values_hash)
            self._id_to_hash[trial_id] = values_hash
            self._retry_queue.append(trial_id)

    def save(self):
        self.project_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(self.project_dir / "oracle.json", dumps_json(self.get_state()).encode())

    def _save_trial(self, trial):
        folder = self.project_dir / f"trial_{trial.trial_id}"
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(folder / "trial.json", dumps_json(trial.get_state()).encode())


class _Restart(Exception):
    """Raised between trials when a process has run its share (see `SweepTuner`)."""


class SweepTuner(keras_tuner.Tuner):
    """Runs each trial as one experiment of the protocol, with a progress line per experiment.

    Every experiment compiles its own XLA loop, and TensorFlow keeps each compiled program for
    the life of the process (about 9 MB per experiment); with `trials_per_process` a process
    stops between trials after that many (`stopped_to_restart`), and `zoo reasoning-ops run`
    re-executes itself, resuming the sweep with nothing lost.

    A trial that raises anything but keras-tuner's `FailedTrialError` (a diverged experiment)
    stops the sweep with its traceback (`keras_tuner.errors.FatalError`): a bug must not pass
    as a failed trial.

    Args:
        total: the number of experiments in the grid (for the progress line).
        trials_per_process: stop after this many trials (None: never).
        audit_log: a file to append a JSON line per experiment start and end (tests; an end
            is written before keras-tuner records the trial, so a kill in between reruns it).
        quiet: no progress lines.
    """

    def __init__(
        self,
        *args,
        total: int = 0,
        trials_per_process: Optional[int] = None,
        audit_log=None,
        quiet: bool = False,
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        self.total = total
        self.trials_per_process = trials_per_process
        self.audit_log = audit_log
        self.quiet = quiet
        self.trials_run = 0
        self.stopped_to_restart = False
        self.finished_files = set()
        self.last_result = None

    def run_trial(self, trial, *args, **kwargs):
        hp = trial.hyperparameters
        keras.backend.clear_session()
        model = self.hypermodel.build(hp)
        try:
            result = self.hypermodel.fit(hp, model)
        except keras_tuner.errors.FailedTrialError as error:
            self.last_result = {"error": str(error)}
            raise
        except Exception as error:
            raise keras_tuner.errors.FatalError(
                f"experiment {hp.values} raised {type(error).__name__} (a bug, not a result)"
            ) from error
        self.last_result = result
        self._audit("end", trial)
        crash_point("experiment-finished")
        return result

    def save(self):
        if isinstance(self.oracle, keras_tuner.Oracle):  # not a worker's OracleClient
            self.oracle.save()
        atomic_write_bytes(
            Path(self.project_dir, f"{self.tuner_id}.json"), dumps_json(self.get_state()).encode()
        )

    def on_trial_begin(self, trial):
        super().on_trial_begin(trial)
        self.last_result = None
        self._audit("start", trial)

    def on_trial_end(self, trial):
        super().on_trial_end(trial)
        crash_point("trial-recorded")
        self.trials_run += 1
        self._progress(trial)

    def pre_create_trial(self):
        if self.trials_per_process and self.trials_run >= self.trials_per_process:
            self.stopped_to_restart = True
            raise _Restart
        super().pre_create_trial()

    def _audit(self, event, trial):
        # An audit line per experiment start / end, so tests can prove what ran when.
        if self.audit_log:
            line = {"event": event, "pid": os.getpid(), "values": trial.hyperparameters.values}
            with open(self.audit_log, "a") as file:
                file.write(json.dumps(line) + "\n")

    def _progress(self, trial):
        # One line per finished experiment, whichever process ran it. A finished trial stays
        # finished, so only files not yet seen finished are read.
        if self.quiet:
            return
        self.finished_files |= {
            path
            for path, state in read_trials(self.directory, skip=self.finished_files)
            if state.get("status") in FINISHED_STATUSES
        }
        done = max(len(self.finished_files), 1)
        values, result = trial.hyperparameters.values, self.last_result or {}
        head = (
            f"[{done:>{len(str(self.total))}}/{self.total}] {values['task']:<15} "
            f"{values['dataset']:<15} {values['network']:<24}"
        )
        if "accuracy" in result:
            print(
                f"{head} accuracy {result['accuracy']:.3f}  lr {result['lr']:.0e}  "
                f"step {result['global_step']:>5}  {result['wall_seconds']:5.1f} s",
                flush=True,
            )
        else:
            print(f"{head} FAILED: {result.get('error', trial.status)}", flush=True)


def grid(config: SweepConfig) -> list:
    """The hyperparameter values of every experiment of `config`, in sweep order."""
    return [
        {"task": task, "dataset": dataset, "network": network}
        for task in config.tasks
        for dataset in config.datasets
        for network in config.networks
    ]


def make_tuner(
    directory,
    config: SweepConfig,
    *,
    protocol: Optional[Protocol] = None,
    audit_log=None,
    trials_per_process: Optional[int] = None,
    quiet: bool = False,
) -> SweepTuner:
    """The sweep's tuner on run folder `directory` (reloading what it already holds)."""
    check_sweep_files(directory)
    hypermodel = ReasoningHyperModel(
        config.tasks, config.datasets, config.networks, protocol or config.protocol, config.seed
    )
    points = grid(config)
    oracle = ExperimentGridOracle(
        points, Path(directory, PROJECT), objective=keras_tuner.Objective("accuracy", "max")
    )
    with contextlib.redirect_stdout(io.StringIO()):  # keras-tuner's "Reloading Tuner from ..."
        return SweepTuner(
            oracle=oracle,
            hypermodel=hypermodel,
            directory=str(directory),
            project_name=PROJECT,
            overwrite=False,
            total=len(points),
            trials_per_process=trials_per_process,
            audit_log=audit_log,
            quiet=quiet,
        )


def remove_stale_temporaries(directory) -> None:
    """Removes the temporary files (`.<name>.<random>.tmp<suffix>`) an atomic write killed
    before its rename leaves in the sweep's folder; call only while no other process writes."""
    for path in Path(directory, PROJECT).rglob(".*.tmp*"):
        path.unlink(missing_ok=True)


class _NoRetracingWarnings(logging.Filter):
    """Every experiment compiles its own loop by design; TensorFlow's "excessive retracing"
    warning about that would fill a sweep's log."""

    def filter(self, record):
        return "triggered tf.function retracing" not in record.getMessage()


def sweep_counts(directory) -> dict:
    """`{"finished": n, "failed": n}`: the experiments a sweep folder has recorded."""
    statuses = [state.get("status") for _, state in read_trials(directory)]
    return {
        "finished": statuses.count("COMPLETED"),
        "failed": statuses.count("FAILED") + statuses.count("INVALID"),
    }


def run_sweep(
    run: Union[RunFolder, str, Path],
    config: SweepConfig,
    *,
    protocol: Optional[Protocol] = None,
    audit_log=None,
    trials_per_process: Optional[int] = None,
    quiet: bool = False,
) -> SweepTuner:
    """Runs (or resumes) the sweep in this process: alone, as the chief or as a worker, as
    keras-tuner's environment variables say.

    Args:
        run: the `RunFolder` (alone or the chief: its `metrics.json` records the status), or
            the folder's path (a worker, which writes nothing of its own there).
        config: the sweep's config (on resume, the saved one).
        protocol: overrides the profile's protocol (tests, a user's own recipe).
        audit_log: see `SweepTuner`.
        trials_per_process: return after that many trials with `tuner.stopped_to_restart`
            set (the sweep is not finished).
        quiet: no progress lines.

    Example:

    >>> import tempfile
    >>> from zoo.runs import RunFolder
    >>> config = SweepConfig(profile="test", tasks=("reduce_max",), datasets=("one_hot",),
    ...                      networks=("multiply_simple-1-linear",))
    >>> with RunFolder.open(tempfile.mkdtemp(), "reasoning-ops", config) as run:
    ...     tuner = run_sweep(run, config, quiet=True)
    ...     run.status, sweep_counts(run.path)
    ('finished', {'finished': 1, 'failed': 0})
    """
    folder = run if isinstance(run, RunFolder) else None
    directory = folder.path if folder else Path(run)
    logging.getLogger("tensorflow").addFilter(_NoRetracingWarnings())
    tuner = make_tuner(
        directory,
        config,
        protocol=protocol,
        audit_log=audit_log,
        trials_per_process=trials_per_process,
        quiet=quiet,
    )
    if not folder:  # a worker: the chief records the sweep's status
        try:
            tuner.search(verbose=0)
        except _Restart:
            pass
        return tuner
    if not os.environ.get("KERASTUNER_ORACLE_IP"):  # alone: no other writer in the folder
        remove_stale_temporaries(directory)
    with tracked(folder):
        try:
            tuner.search(verbose=0)
        except _Restart:
            return tuner
        counts = sweep_counts(directory)
        if counts["finished"] + counts["failed"] == len(grid(config)):
            folder.mark_finished(experiments=len(grid(config)), **counts)
    return tuner
