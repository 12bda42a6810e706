"""The run lifecycle, written once for every experiment.

A task's `train` opens a `TrainingRun` around its recipe; the run gets, with no code of the
task's own:

- **Open or resume.** `RunFolder.open` (lock, ownership, the saved config wins, flags that
  differ refused); the committed checkpoint is loaded and the history verified against it and
  cut back to it (`RunFolder.cut_history_to_commit`). A finished run returns at once.
- **Status.** `running` while it trains; `finished` through `finish()`; `failed` with the
  reason on divergence, a storage error or a bug (whose traceback stays); `interrupted` on a
  signal.
- **Signals.** The first Ctrl-C (SIGINT) or SIGTERM lets the step in flight (a Keras epoch)
  finish and commit, then the run stops with `Interrupted` (exit 130). A second Ctrl-C stops
  at once; the last commit is intact either way.
- **Disk full.** A small reserve file is held while the run trains; when the disk fills up it
  is given back so that `metrics.json` can still say why the run stopped, and the error is one
  line naming the file (`StorageError`). The same command resumes once space is free.
- **Checkpoint.** `TrainingState`: weights, optimizer variables, RNG states and anything else
  the next step depends on, as one `.npz` committed after the step's history rows.
- **Keras callbacks.** `callbacks()` gives divergence detection, wall time, the history row,
  the commit, TensorBoard event files in `tensorboard/` (scalars per step and the config as
  HParams) and the signal check; the task adds its own measures in front.
- **Progress.** `verbose` is Keras's progress bar on a terminal and one plain line per epoch
  when the output is piped (no carriage returns, no ANSI codes).

A custom training loop (the deep core's) uses the same context: `commit_row`,
`stop_requested` and `raise_if_interrupted` instead of the Keras callbacks.

Example (a toy regression; `tests/toy_experiment.py` is the complete worked example):

>>> import dataclasses, tempfile, numpy as np, keras
>>> @dataclasses.dataclass
... class ToyConfig:
...     epochs: int = dataclasses.field(default=2, metadata={"extends": True})
>>> def train(config, path):
...     with TrainingRun("toy", config, path, steps_field="epochs", verbose=0) as session:
...         if session.finished:
...             return session.run
...         keras.utils.set_random_seed(1)
...         model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
...         model.compile("sgd", "mse")
...         state = TrainingState(model)
...         session.restore(state)
...         x = np.ones((8, 3), "float32")
...         model.fit(x, x[:, :1], epochs=session.config.epochs, initial_epoch=session.step,
...                   shuffle=False, verbose=0, callbacks=session.callbacks(state))
...         session.finish(loss=session.run.history()["loss"].iloc[-1])
...     return session.run
>>> folder = tempfile.mkdtemp()
>>> run = train(ToyConfig(), folder)
>>> (run.status, list(run.history()["epoch"]))
('finished', [1, 2])
>>> run = train(ToyConfig(epochs=3), folder)  # resumes from the commit, trains epoch 3
>>> (run.status, list(run.history()["epoch"]))
('finished', [1, 2, 3])
"""

import contextlib
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Optional

from zoo.board import RunBoard
from zoo.commits import Checkpoint
from zoo.errors import Interrupted, ZooError
from zoo.files import STORAGE_ERRNOS, crash_point, storage_error
from zoo.runs import RESERVE, RunFolder
from zoo.training import CommitEpoch, StopOnNonFinite, TrainingState, WallTime

RESERVE_BYTES = 1 << 20
DIVERGENCE_HINT = "the learning rate is likely too high"


def progress_verbosity(quiet: bool = False) -> int:
    """Keras `verbose` for `fit`: 0 when quiet, the progress bar (1) on a terminal, one plain
    line per epoch (2) when the output goes to a file or a pipe."""
    if quiet:
        return 0
    return 1 if getattr(sys.stdout, "isatty", lambda: False)() else 2


class TrainingRun:
    """The context around one training run; see the module docstring.

    Args:
        task: the task id (its CLI name), which owns the folder.
        config: the run's config dataclass, from defaults and the flags given.
        path: the run folder, or None for a new `root/<task>/<UTC time>/`; or a `RunFolder`
            the caller opened already (e.g. before TensorFlow loads).
        given: the flags the user passed (None: all of `config`).
        root: where a new folder goes.
        steps_field: the config field with the number of steps (epochs, episodes) to reach.
        step_column: the history column that counts them.
        verbose: Keras verbosity; None chooses with `progress_verbosity`.
        is_finished: whether the opened run has nothing left to do (default: it is marked
            finished and its commit has reached `steps_field`).
        divergence_hint: appended to the message of a non-finite loss.
        check_resume: called with the opened run before anything in the folder changes (a
            task's own reason to refuse a resume, e.g. a checkpoint of another data stream).
        checkpoint_of: reads the committed checkpoint of a run whose commits are not
            `checkpoint.json` (the deep core's weights file commits itself): a `Checkpoint`
            whose `record` carries `history_rows` / `history_sha256`, or None.
    """

    def __init__(
        self,
        task: str,
        config: Any,
        path=None,
        *,
        given: Optional[dict] = None,
        root="runs",
        steps_field: str = "epochs",
        step_column: str = "epoch",
        verbose: Optional[int] = None,
        is_finished: Optional[Callable[["TrainingRun"], bool]] = None,
        divergence_hint: str = DIVERGENCE_HINT,
        check_resume: Optional[Callable[["TrainingRun"], None]] = None,
        checkpoint_of: Optional[Callable[[RunFolder], Optional[Checkpoint]]] = None,
    ):
        self.task = task
        self._request = (config, path, given, root)
        self.steps_field = steps_field
        self.step_column = step_column
        self.verbose = progress_verbosity() if verbose is None else verbose
        self._is_finished = is_finished
        self.divergence_hint = divergence_hint
        self._checkpoint_of = checkpoint_of
        self._check_resume = check_resume
        self.run: Optional[RunFolder] = None
        self.config = None
        self.checkpoint: Optional[Checkpoint] = None
        self.finished = False
        self.stop_requested = False
        self.started = time.perf_counter()
        self._previous_handlers: dict = {}
        self._board = None
        self.wall_time: Optional[WallTime] = None

    # --- the context ----------------------------------------------------------------------

    def __enter__(self) -> "TrainingRun":
        config, path, given, root = self._request
        if isinstance(path, RunFolder):  # opened (and checked) by the caller already
            self.run = path
        else:
            self.run = RunFolder.open(path, self.task, config, given=given, root=root)
        try:
            self.config = self.run.config
            self.checkpoint = (
                self._checkpoint_of(self.run) if self._checkpoint_of else self.run.load_checkpoint()
            )
            if self._is_finished is not None:
                self.finished = self._is_finished(self)
            else:
                self.finished = (
                    self.run.status == "finished"
                    and self.checkpoint is not None
                    and self.checkpoint.step >= self.total
                )
            if self.finished:
                return self
            if self._check_resume is not None:
                self._check_resume(self)
            self.run.cut_history_to_commit(self.checkpoint, self.step_column)
            self._hold_reserve()
            self.run.mark_running()
            self._board = RunBoard(self.run, self.step_column)
            self._install_signal_handlers()
        except OSError as error:
            self._release_reserve()
            self.run.close()
            if error.errno in STORAGE_ERRNOS:
                raise storage_error(error) from None
            raise
        except BaseException:
            self._release_reserve()
            self.run.close()
            raise
        return self

    def __exit__(self, kind, error, traceback) -> bool:
        self._restore_signal_handlers()
        try:
            if error is None or self.finished:
                return False
            self._release_reserve()
            record_stop(self.run, error, f"the last commit ({self._committed_text()})")
            return False
        finally:
            self._close_board()
            self._release_reserve()
            self.run.close()

    # --- what a task reads ----------------------------------------------------------------

    @property
    def total(self) -> int:
        """The number of steps (epochs, episodes) the run trains to."""
        return int(getattr(self.config, self.steps_field))

    @property
    def step(self) -> int:
        """The committed step: where training resumes (0 for a new run)."""
        return self.checkpoint.step if self.checkpoint is not None else 0

    @property
    def state(self) -> dict:
        """The task's own state stored with the committed checkpoint (`{}` for a new run)."""
        return dict(self.checkpoint.state) if self.checkpoint is not None else {}

    @property
    def wall_seconds(self) -> float:
        """Seconds of training before this process, from the commit."""
        return float(self.state.get("wall_seconds", 0.0))

    def restore(self, training_state: TrainingState) -> int:
        """Loads the committed checkpoint into `training_state`, if there is one; returns the
        step to resume at."""
        if self.checkpoint is not None:
            training_state.restore(self.checkpoint.path)
        return self.step

    def describe_start(self) -> str:
        """`'starting, 5 epochs'`, `'resuming at epoch 3 of 5'` or `'all 5 epochs committed'`."""
        unit = self.step_column
        if self.step >= self.total:
            return f"all {self.total} {unit}s committed"
        if self.step:
            return f"resuming at {unit} {self.step + 1} of {self.total}"
        return f"starting, {self.total} {unit}s"

    # --- committing -----------------------------------------------------------------------

    def commit(
        self, step: int, rows: list, save: Callable[[Path], None], suffix: str, state: dict
    ) -> Checkpoint:
        """Writes `rows` to the history, then commits the checkpoint of `step` (payload written
        by `save`), then adds the rows to TensorBoard; the order that lets a kill at any
        instant lose at most this step."""
        if rows:
            self.run.append_history_rows(rows)
        crash_point("history-written")
        self.checkpoint = self.run.save_checkpoint(step, save, suffix, state)
        self.board.add_rows(rows)
        return self.checkpoint

    def commit_training_state(
        self, step: int, rows: list, training_state: TrainingState, state: Optional[dict] = None
    ) -> Checkpoint:
        """`commit` with a `TrainingState` as the payload."""
        return self.commit(step, rows, training_state.save, ".npz", dict(state or {}))

    def history_record(self) -> dict:
        """The history's committed-rows record (`history_rows`, `history_sha256`), for a
        checkpoint kind that writes its own commit record: store it in the same commit."""
        return self.run.history_record()

    def raise_if_interrupted(self) -> None:
        """After a commit: raises `Interrupted` if a signal asked the run to stop."""
        if self.stop_requested:
            raise Interrupted(
                f"{self.run.path}: interrupted after committing {self._committed_text()}; "
                "the same command resumes the run."
            )

    def finish(self, **metrics) -> None:
        """Marks the run finished with `metrics` (and the reserve is given back)."""
        self._release_reserve()
        self.run.mark_finished(**metrics)

    # --- Keras ----------------------------------------------------------------------------

    def callbacks(
        self,
        training_state: TrainingState,
        measures: Optional[list] = None,
        *,
        columns: Optional[dict] = None,
        state: Optional[Callable[[], dict]] = None,
        wall_seconds: Optional[float] = None,
    ) -> list:
        """The Keras callbacks of the lifecycle, in their order: divergence check, the task's
        `measures` (callbacks that add to the epoch's logs), wall time (also
        `self.wall_time`), the commit (history row, checkpoint, TensorBoard, signal check).

        Args:
            training_state: what each epoch commits.
            measures: the task's callbacks that add values to the epoch's logs.
            columns: constant history columns (e.g. `{"schedule": "ibs"}`).
            state: returns further task state to store with each commit.
            wall_seconds: training seconds already spent (default: the commit's).
        """
        offset = self.wall_seconds if wall_seconds is None else wall_seconds
        self.wall_time = WallTime(offset)
        return [
            StopOnNonFinite(self.divergence_hint),
            *(measures or []),
            self.wall_time,
            CommitEpoch(self, training_state, self.wall_time, columns=columns, state=state),
        ]

    # --- TensorBoard ----------------------------------------------------------------------

    @property
    def board(self) -> "RunBoard":
        """The run's TensorBoard writer (written anew from the committed history at start)."""
        return self._board

    def _close_board(self) -> None:
        if self._board is not None:
            self._board.close()
            self._board = None

    # --- internals ------------------------------------------------------------------------

    def _committed_text(self) -> str:
        if self.checkpoint is None:
            return "nothing yet"
        return f"{self.step_column} {self.checkpoint.step}"

    def _hold_reserve(self) -> None:
        path = self.run.file(RESERVE)
        if path.exists() and path.stat().st_size >= RESERVE_BYTES:
            return
        with open(path, "wb") as handle:
            handle.write(bytes(RESERVE_BYTES))
            handle.flush()
            os.fsync(handle.fileno())

    def _release_reserve(self) -> None:
        if self.run is not None:
            self.run.file(RESERVE).unlink(missing_ok=True)

    def _install_signal_handlers(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for number in (signal.SIGINT, signal.SIGTERM):
            self._previous_handlers[number] = signal.signal(number, self._on_signal)

    def _restore_signal_handlers(self) -> None:
        for number, handler in self._previous_handlers.items():
            signal.signal(number, handler)
        self._previous_handlers = {}

    def _on_signal(self, number, frame) -> None:
        if self.stop_requested and number == signal.SIGINT:
            raise KeyboardInterrupt
        self.stop_requested = True
        name = "Ctrl-C" if number == signal.SIGINT else signal.Signals(number).name
        print(
            f"\n{self.task}: {name}: finishing the {self.step_column} in flight and committing "
            "it; Ctrl-C again stops at once.",
            file=sys.stderr,
            flush=True,
        )


def record_stop(run: RunFolder, error: BaseException, kept: str = "every commit") -> None:
    """Records why a run stopped in its `metrics.json`, and raises what the user should see:

    - a storage refusal of the OS (disk full, ...): `failed`, raised as a one-line
      `StorageError` naming the file;
    - a second Ctrl-C (`KeyboardInterrupt`): `interrupted`, raised as `Interrupted` (exit 130);
    - `Interrupted`: `interrupted`; any other error (divergence, a bug): `failed` with its
      message, the error itself propagating (a bug keeps its traceback).

    Writing `metrics.json` is best effort: a full disk may refuse even that.
    """

    def write(status: str, message: str) -> None:
        try:
            run.update_metrics(status=status, error=message)
        except (OSError, ZooError):
            pass

    if isinstance(error, OSError) and error.errno in STORAGE_ERRNOS:
        converted = storage_error(error)
        write("failed", str(converted))
        raise converted from None
    if isinstance(error, KeyboardInterrupt):
        message = (
            f"stopped at once by a second interrupt; {kept} is intact: the same command "
            "resumes the run"
        )
        write("interrupted", message)
        raise Interrupted(f"{run.path}: {message}.") from None
    if isinstance(error, Interrupted):
        write("interrupted", str(error))
        return
    write("failed", str(error) if isinstance(error, ZooError) else repr(error))


@contextlib.contextmanager
def tracked(run: RunFolder):
    """The status of a run that holds other runs (a comparison, a study, a sweep): `running`
    while the body runs, then `failed` or `interrupted` with the reason if it raises
    (`record_stop`); the body marks it finished."""
    run.mark_running()
    try:
        yield run
    except BaseException as error:
        record_stop(run, error)
        raise
