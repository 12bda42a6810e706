"""Run folders: what every zoo command writes, and the contract that makes them trustworthy.

A run folder holds `config.json` (the task that owns it, the versions it ran with, and its
config), `history.csv`, `metrics.json`, PNG plots, models, and the training checkpoint. The
contract, kept by `RunFolder.open`:

- **Ownership.** A folder belongs to one task. Another task's folder, a file, an unwritable path
  or a non-empty folder that is not a run: a one-line `RunFolderError`, nothing written.
- **One writer.** An exclusive `fcntl.flock` on `.lock`; a second process on the same folder
  fails at once. The lock dies with its process, so a kill -9 never leaves a stale lock.
- **Resume.** The saved config is the truth. A flag given on resume that differs from the saved
  value is a `ResumeMismatchError` naming every such flag with both values, unless the field
  only extends the run (metadata `extends=True`: total steps, epochs, episodes) and is not
  lowered. Nothing in the folder changes before this check passes.
- **Atomic files.** Every file is written to a temporary name in the same folder, fsynced,
  renamed into place and the folder fsynced: a reader sees the old file or the new one.
- **State that advances together.** Training state commits through `save_checkpoint`: the
  payload goes to a fresh file, then `checkpoint.json` (the commit record) is replaced. A task
  writes the step's history rows *before* committing, and on resume truncates the history to the
  committed step, so a kill at any instant loses at most the step in flight and no row is lost
  or repeated.
- **Honest results.** `metrics.json` is always valid JSON (non-finite numbers become `null`) and
  records `status`: `running`, `finished` or `failed` (with the error).

Fault injection: `crash_point(name)` ends the process abruptly (`os._exit(137)`, as a kill -9
would) when the environment variable `ZOO_TEST_CRASH_AT` is `name:n` on the n-th call, so tests
can kill a run at exact instants inside writes and steps.

Example:

>>> import dataclasses, tempfile
>>> @dataclasses.dataclass
... class Config:
...     epochs: int = dataclasses.field(default=2, metadata={"extends": True})
...     learning_rate: float = 0.1
>>> root = tempfile.mkdtemp()
>>> with RunFolder.open(f"{root}/run", "demo", Config()) as run:
...     run.append_history({"epoch": 1, "loss": 0.5})
...     run.mark_finished(loss=0.5)
>>> with RunFolder.open(f"{root}/run", "demo", Config(epochs=5), given={"epochs": 5}) as run:
...     (run.resumed, run.config.epochs, run.status)
(True, 5, 'finished')
>>> RunFolder.open(f"{root}/run", "demo", Config(learning_rate=1.0),
...                given={"learning_rate": 1.0})  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
zoo.errors.ResumeMismatchError: cannot resume ...: --learning-rate: saved 0.1, given 1.0.
"""

import dataclasses
import datetime
import errno
import os
import platform
from pathlib import Path
from typing import Any, Optional

from zoo.commits import CHECKPOINTS, CommitLog
from zoo.config import config_from_dict, config_to_dict, extends
from zoo.errors import CorruptFileError, ResumeMismatchError, RunFolderError, UsageError
from zoo.files import (  # noqa: F401  (re-exported: the tasks' one import of run-file helpers)
    STORAGE_ERRNOS,
    atomic_write,
    atomic_write_bytes,
    check_run_path,
    crash_point,
    dumps_json,
    json_ready,
    load_keras_model,
    load_npz,
    matplotlib_agg,
    read_csv,
    read_json,
    storage_error,
)

CONFIG = "config.json"
METRICS = "metrics.json"
MODEL = "model.keras"
LOCK = ".lock"
# Disk space a running run holds back, so that it can still record why it stopped when the
# disk fills up (`zoo.lifecycle`).
RESERVE = ".reserve"


def versions() -> dict:
    """The versions a run records: the project, TensorFlow, Keras, Python (no TF import)."""
    from importlib import metadata

    import zoo

    found = {"zoo": zoo.__version__, "python": platform.python_version()}
    for name, distribution in (("tensorflow", "tensorflow"), ("keras", "keras")):
        try:
            found[name] = metadata.version(distribution)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


def _format_value(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return ",".join(str(item) for item in value)
    return repr(value) if isinstance(value, str) else str(value)


class RunFolder(CommitLog):
    """One run's folder. Use `RunFolder.open`, which keeps the contract in the module docstring.

    Args:
        path: the folder.
        task: the task that owns it (`"argmax"`, `"deep"`, ...).
        config: the run's config dataclass (the saved one on resume).
        resumed: whether the folder held this run already.
    """

    def __init__(self, path, task: str, config: Any = None, resumed: bool = False):
        self.path = Path(path)
        self.task = task
        self.config = config
        self.resumed = resumed
        self._lock_handle = None

    # --- opening ----------------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        path,
        task: str,
        config: Any,
        *,
        given: Optional[dict] = None,
        root="runs",
        resume: bool = True,
    ) -> "RunFolder":
        """Opens (or creates) the run folder of `task` at `path` for writing; see the module
        docstring for every rule.

        Args:
            path: the folder, or None for a new `root/<task>/<UTC time>/`.
            task: the task that owns the folder.
            config: the config dataclass built from defaults and the flags given.
            given: the flags the user passed (`zoo.config.given_flags`): on resume these are
                compared with the saved config. None means "all of `config`".
            root: where new folders go when `path` is None.
            resume: False refuses a folder that already holds a run.
        """
        if path is None:
            stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%S_%fZ")
            path = Path(root) / task / stamp
        path = check_run_path(path)
        cls._check_location(path)
        created = not path.exists()
        run = cls(path, task)
        run._lock()
        try:
            run._adopt(config, given, resume)
            run._remove_stale_temporaries()
        except BaseException as error:
            run.close()
            if created:  # leave no half-made folder behind (a full disk, a bad config)
                (path / LOCK).unlink(missing_ok=True)
                for leftover in path.glob(".*.tmp*"):
                    leftover.unlink(missing_ok=True)
                try:
                    path.rmdir()
                except OSError:
                    pass
            if isinstance(error, OSError) and error.errno in STORAGE_ERRNOS:
                raise storage_error(error) from None
            raise
        return run

    @classmethod
    def existing(cls, path, task: str, config: Any, *, needs: Optional[str] = None) -> "RunFolder":
        """Opens the folder of an existing `task` run (for `show`, `eval`, `report`), locked,
        with its saved config, and with its committed history verified.

        Args:
            path: the folder.
            task: the task that must own it.
            config: an instance of the task's config dataclass (its defaults are not used).
            needs: a file the command needs (e.g. `MODEL`); its absence is a one-line
                `RunFolderError` saying the run has not produced it yet.

        Raises:
            RunFolderError: no such folder, not a run folder, or another task's.
            CorruptFileError: the config, commit record or committed history is damaged.
        """
        path = Path(path)
        if not path.is_dir():
            raise RunFolderError(f"--run {path}: no such run folder.")
        if not (path / CONFIG).is_file():
            raise RunFolderError(f"--run {path} is not a zoo run folder (no {CONFIG}).")
        record = read_json(path / CONFIG)
        owner = record.get("task") if isinstance(record, dict) else None
        if owner != task:
            raise RunFolderError(f"--run {path} holds a {owner!r} run, not a {task!r} run.")
        run = cls.open(path, task, config, given={})
        try:
            run.verify_history()
            if needs is not None and not (path / needs).exists():
                raise RunFolderError(
                    f"--run {path} has no {needs} yet: its training has not finished (the "
                    f"same train command with --run {path} continues it)."
                )
        except BaseException:
            run.close()
            raise
        return run

    @staticmethod
    def _check_location(path: Path) -> None:
        if path.exists() and not path.is_dir():
            raise RunFolderError(f"--run {path} is a file, not a run folder.")
        existing = path if path.exists() else next(p for p in path.parents if p.exists())
        if not existing.is_dir():
            raise RunFolderError(f"--run {path}: {existing} is a file, not a folder.")
        if not os.access(existing, os.W_OK | os.X_OK):
            raise RunFolderError(f"--run {path}: {existing} is not writable.")
        if path.exists():
            # A run killed while writing its first config leaves only the lock and a temporary.
            entries = {
                entry.name
                for entry in path.iterdir()
                if entry.name not in (LOCK, RESERVE)
                and not (entry.name.startswith(".") and ".tmp" in entry.name)
            }
            if entries and CONFIG not in entries:
                raise RunFolderError(
                    f"--run {path} is not empty and holds no {CONFIG}: not a zoo run folder."
                )

    def _lock(self) -> None:
        """Takes the folder's lock: `.lock` is created empty and locked before anything is
        written; the owner's pid is then written into it unbuffered, best effort (a full disk
        leaves it empty, which only shortens the message a second process gets)."""
        import fcntl

        try:
            self.path.mkdir(parents=True, exist_ok=True)
            descriptor = os.open(self.path / LOCK, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as error:
            raise RunFolderError(
                f"--run {self.path}: cannot create it ({error.strerror or error})."
            ) from None
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            owner = os.pread(descriptor, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(descriptor)
            if error.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise RunFolderError(
                    f"--run {self.path} is in use by another process (pid {owner})."
                ) from None
            raise
        try:
            os.ftruncate(descriptor, 0)
            os.pwrite(descriptor, f"{os.getpid()}\n".encode(), 0)
        except OSError:
            pass
        self._lock_handle = descriptor

    def _adopt(self, config: Any, given: Optional[dict], resume: bool) -> None:
        config_path = self.path / CONFIG
        if not config_path.exists():
            self.config = config
            self.resumed = False
            self._write_config()
            return
        record = read_json(config_path)
        if not isinstance(record, dict) or "task" not in record or "config" not in record:
            raise CorruptFileError(config_path, "not a zoo run config (no task or config)")
        if record["task"] != self.task:
            raise RunFolderError(
                f"--run {self.path} holds a {record['task']!r} run, not a {self.task!r} run."
            )
        if not resume:
            raise RunFolderError(f"--run {self.path} already holds a run; pick a new folder.")
        try:
            saved = config_from_dict(type(config), record["config"])
        except (UsageError, TypeError) as error:
            raise CorruptFileError(config_path, f"config does not fit this version ({error})")
        extended = reconcile_config(
            saved, dataclasses.asdict(config) if given is None else given, f"resume {self.path}"
        )
        self.config = dataclasses.replace(saved, **extended) if extended else saved
        self.resumed = True
        if extended:
            self._write_config(record.get("versions"))

    def _remove_stale_temporaries(self) -> None:
        """Deletes temporary files a killed writer left (safe: this process holds the lock)."""
        for folder in (self.path, self.path / CHECKPOINTS):
            if folder.is_dir():
                for leftover in folder.glob(".*.tmp*"):
                    leftover.unlink(missing_ok=True)

    def _write_config(self, first_versions: Optional[dict] = None) -> None:
        record = {"task": self.task, "versions": versions(), "config": config_to_dict(self.config)}
        if first_versions and first_versions != record["versions"]:
            record["started_with_versions"] = first_versions
        self.write_json(CONFIG, record)

    def close(self) -> None:
        """Releases the folder's lock (also released when the process ends)."""
        if self._lock_handle is not None:
            os.close(self._lock_handle)
            self._lock_handle = None

    def __enter__(self) -> "RunFolder":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- files ------------------------------------------------------------------------------

    def file(self, name: str) -> Path:
        return self.path / name

    @property
    def model_path(self) -> Path:
        return self.path / MODEL

    def write_bytes(self, name: str, data: bytes) -> Path:
        return atomic_write_bytes(self.path / name, data)

    def write_text(self, name: str, text: str) -> Path:
        return atomic_write_bytes(self.path / name, text.encode())

    def write_json(self, name: str, value: Any) -> Path:
        """Atomic JSON; non-finite numbers are written as null (the file stays valid JSON)."""
        return self.write_text(name, dumps_json(value))

    def read_json(self, name: str) -> Any:
        return read_json(self.path / name)

    def write_csv(self, name: str, frame) -> Path:
        return self.write_text(name, frame.to_csv(index=False))

    def save_figure(self, figure, name: str) -> Path:
        """Saves a matplotlib figure as `name.png` atomically and closes it."""
        import matplotlib.pyplot as plt

        path = self.path / f"{name}.png"
        try:
            atomic_write(
                path,
                lambda temporary: figure.savefig(
                    temporary, dpi=120, format="png", bbox_inches="tight"
                ),
            )
        finally:
            plt.close(figure)
        return path

    def save_model(self, model, name: str = MODEL) -> Path:
        """`model.save` to a temporary `.keras` beside `name`, then renamed into place."""
        return atomic_write(self.path / name, lambda temporary: model.save(temporary))

    def load_model(self, name: str = MODEL, **kwargs):
        return load_keras_model(self.path / name, **kwargs)

    # --- metrics ----------------------------------------------------------------------------

    def metrics(self) -> dict:
        path = self.path / METRICS
        return read_json(path) if path.exists() else {}

    def update_metrics(self, values: Optional[dict] = None, **more) -> None:
        """Merges values into `metrics.json` (valid JSON: non-finite numbers become null)."""
        merged = self.metrics()
        merged.update(values or {})
        merged.update(more)
        self.write_json(METRICS, merged)

    @property
    def status(self) -> str:
        """ "new", "running", "finished" or "failed", from `metrics.json`."""
        return self.metrics().get("status", "new")

    def mark_running(self) -> None:
        self.update_metrics(status="running", error=None)

    def mark_finished(self, **metrics) -> None:
        self.update_metrics(metrics, status="finished", error=None)

    def mark_failed(self, message: str) -> None:
        self.update_metrics(status="failed", error=str(message))


def reconcile_config(saved: Any, given: dict, action: str) -> dict:
    """Compares the flags `given` with a run's `saved` config: returns the `extends` fields
    the flags raise; `ResumeMismatchError` naming every other flag that differs, with both
    values (and an `extends` field that is lowered).

    Args:
        saved: the run's saved config dataclass.
        given: the flags the user passed, by field name.
        action: what the comparison is for, in the message (`"resume runs/x"`).
    """
    config_class = type(saved)
    differences, extended = [], {}
    for name, value in given.items():
        saved_value = getattr(saved, name)
        if _same(value, saved_value):
            continue
        if extends(name, config_class) and value > saved_value:
            extended[name] = value
            continue
        flag = "--" + name.replace("_", "-")
        rule = " (may only be raised)" if extends(name, config_class) else ""
        differences.append(
            f"{flag}: saved {_format_value(saved_value)}, given {_format_value(value)}{rule}"
        )
    if differences:
        raise ResumeMismatchError(
            f"cannot {action} with other settings than it was started with: "
            + "; ".join(differences)
            + "."
        )
    return extended


def _same(given: Any, saved: Any) -> bool:
    if isinstance(given, (list, tuple)) and isinstance(saved, (list, tuple)):
        return list(given) == list(saved)
    if isinstance(given, float) or isinstance(saved, float):
        try:
            return float(given) == float(saved)
        except (TypeError, ValueError):
            return False
    return given == saved
