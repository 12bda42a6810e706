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

import csv
import dataclasses
import datetime
import errno
import hashlib
import io
import json
import math
import os
import platform
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple, Optional

from zoo.config import config_from_dict, config_to_dict, extends
from zoo.errors import (
    CorruptFileError,
    ResumeMismatchError,
    RunFolderError,
    StorageError,
    UsageError,
)

CONFIG = "config.json"
HISTORY = "history.csv"
METRICS = "metrics.json"
MODEL = "model.keras"
CHECKPOINT = "checkpoint.json"
CHECKPOINTS = "checkpoints"
LOCK = ".lock"
# Disk space a running run holds back, so that it can still record why it stopped when the
# disk fills up (`zoo.lifecycle`).
RESERVE = ".reserve"

_crash_counts: dict = {}


def crash_point(name: str) -> None:
    """Test-only fault injection: ends the process like a kill -9 at the chosen call.

    Active only when `ZOO_TEST_CRASH_AT` is `"<name>:<n>"`: the n-th call of
    `crash_point(name)` in this process calls `os._exit(137)` (no cleanup, no flush), or,
    when `ZOO_TEST_CRASH_SIGNAL` names a signal (`SIGINT`, `SIGTERM`), sends it that signal.
    """
    target = os.environ.get("ZOO_TEST_CRASH_AT")
    if not target:
        return
    point, _, count = target.rpartition(":")
    if point != name:
        return
    _crash_counts[name] = _crash_counts.get(name, 0) + 1
    if _crash_counts[name] == int(count):
        deliver = os.environ.get("ZOO_TEST_CRASH_SIGNAL")
        if deliver:  # a signal at an exact instant instead (SIGINT, SIGTERM)
            import signal

            os.kill(os.getpid(), getattr(signal, deliver))
            return
        os._exit(137)


def check_run_path(path) -> Path:
    """`path` as a `Path` if a run folder can be made there: not empty, and no component (or
    the whole) longer than the file system allows; else a `UsageError` naming `--run`."""
    if str(path).strip() == "":
        raise UsageError("`--run` must name a folder, got an empty string.")
    path = Path(path)
    existing = None
    for candidate in (path.absolute(), *path.absolute().parents):
        try:
            if candidate.is_dir():
                existing = candidate
                break
        except OSError:  # a component too long to even look up
            continue
    try:
        name_max = os.pathconf(existing or "/", "PC_NAME_MAX")
        path_max = os.pathconf(existing or "/", "PC_PATH_MAX")
    except (OSError, ValueError):
        name_max, path_max = 255, 4096
    for part in path.parts:
        if len(os.fsencode(part)) > name_max:
            raise UsageError(
                f"`--run`: the folder name {part[:40]}... is {len(os.fsencode(part))} bytes; "
                f"this file system allows {name_max}."
            )
    if len(os.fsencode(str(path.absolute()))) + 64 > path_max:
        raise UsageError(f"`--run` {str(path)[:60]}... is too long for this file system.")
    return path


def _fsync_directory(path: Path) -> None:
    try:
        descriptor = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def atomic_write(path, write: Callable[[Path], None]) -> Path:
    """Calls `write(temporary_path)`, fsyncs the result and renames it onto `path`.

    The temporary file sits beside `path` (same file system) and keeps its suffix, so writers
    that insist on one (`.keras`, `.npz`, `.png`) accept it. On any error the temporary file is
    removed and `path` is untouched.
    """
    path = Path(path)
    try:
        descriptor, temporary = tempfile.mkstemp(
            prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}", dir=path.parent
        )
    except OSError as error:
        raise storage_error(error, path) from None
    # mkstemp creates 0600; a plain open() would give 0666 less the umask.
    os.fchmod(descriptor, 0o666 & ~current_umask())
    os.close(descriptor)
    temporary = Path(temporary)
    try:
        write(temporary)
        with open(temporary, "rb+") as handle:
            os.fsync(handle.fileno())
        crash_point("atomic-write-tmp")
        os.replace(temporary, path)
    except BaseException as error:
        temporary.unlink(missing_ok=True)
        if isinstance(error, OSError) and error.errno in STORAGE_ERRNOS:
            raise storage_error(error, path) from None
        raise
    _fsync_directory(path.parent)
    return path


# The operating system's refusals that are the machine's state, not a bug: reported as one line.
STORAGE_ERRNOS = frozenset(
    code
    for code in (
        errno.ENOSPC,
        getattr(errno, "EDQUOT", None),
        errno.EFBIG,
        errno.EROFS,
        errno.ENAMETOOLONG,
        errno.EIO,
        errno.EACCES,
        errno.EPERM,
    )
    if code is not None
)


def storage_error(error: OSError, path=None) -> StorageError:
    """A `StorageError` naming the file and the cause of `error` (`os.strerror` of its errno)."""
    where = error.filename if error.filename is not None else path
    cause = error.strerror or os.strerror(error.errno or 0)
    advice = (
        " Free some space and run the same command again to resume."
        if (error.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", -1)))
        else ""
    )
    return StorageError(f"{where}: {cause}.{advice}")


def current_umask() -> int:
    """The process's umask, read without changing it where the system says it
    (`/proc/self/status`), else by setting and restoring it."""
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write_bytes(path, data: bytes) -> Path:
    """Writes `data` to `path` atomically."""
    return atomic_write(path, lambda temporary: temporary.write_bytes(data))


def json_ready(value: Any) -> Any:
    """`value` with non-finite floats replaced by None and NumPy scalars made plain, so that
    `json.dumps(..., allow_nan=False)` succeeds."""
    if isinstance(value, dict):
        return {str(key): json_ready(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(item) for item in value]
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", 1) == 0:
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def dumps_json(value: Any) -> str:
    return json.dumps(json_ready(value), indent=2, sort_keys=True, allow_nan=False) + "\n"


def read_json(path) -> Any:
    """Reads a JSON file; `CorruptFileError` naming the file if it is missing or unreadable."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise CorruptFileError(path, "missing") from None
    except IsADirectoryError:
        raise CorruptFileError(path, "is a directory, not a file") from None
    except UnicodeDecodeError:
        raise CorruptFileError(path, "not text (corrupt JSON file)") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise CorruptFileError(
            path, f"corrupt JSON ({error.msg} at line {error.lineno}, column {error.colno})"
        ) from None


def read_csv(path):
    """Reads a CSV written by a run; `CorruptFileError` naming the file if unreadable."""
    import pandas as pd

    path = Path(path)
    try:
        return pd.read_csv(path, float_precision="round_trip")
    except FileNotFoundError:
        raise CorruptFileError(path, "missing") from None
    except pd.errors.EmptyDataError:
        return pd.DataFrame()
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error)
        raise CorruptFileError(path, f"corrupt CSV ({first_line})") from None


def load_npz(path) -> dict:
    """Reads an `.npz` into a dict of arrays; `CorruptFileError` naming the file if unreadable."""
    import zipfile

    import numpy as np

    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            return {key: data[key] for key in data.files}
    except FileNotFoundError:
        raise CorruptFileError(path, "missing") from None
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as error:
        raise CorruptFileError(path, f"corrupt or truncated .npz ({error})") from None


def load_keras_model(path, **kwargs):
    """`keras.saving.load_model`, with `CorruptFileError` naming the file when it is missing,
    truncated or not a `.keras` archive."""
    import zipfile

    import keras

    path = Path(path)
    if not path.is_file():
        raise CorruptFileError(path, "missing" if not path.exists() else "not a file")
    if not zipfile.is_zipfile(path):
        raise CorruptFileError(path, "truncated or not a .keras archive")
    try:
        return keras.saving.load_model(path, **kwargs)
    except (zipfile.BadZipFile, EOFError, OSError) as error:
        raise CorruptFileError(path, f"corrupt .keras archive ({error})") from None


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


class Checkpoint(NamedTuple):
    """A committed training state: its step, the payload file, the task's state dict, and the
    whole commit record (with the history's committed row count and checksum)."""

    step: int
    path: Path
    state: dict
    record: dict = {}


class RunFolder:
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
        config_class = type(config)
        try:
            saved = config_from_dict(config_class, record["config"])
        except (UsageError, TypeError) as error:
            raise CorruptFileError(config_path, f"config does not fit this version ({error})")
        if given is None:
            given = dataclasses.asdict(config)
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
                f"cannot resume {self.path} with other settings than it was started with: "
                + "; ".join(differences)
                + "."
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

    # --- history and metrics ----------------------------------------------------------------

    def history(self):
        """`history.csv` as a DataFrame (empty if none yet); floats read back exactly."""
        import pandas as pd

        path = self.path / HISTORY
        return read_csv(path) if path.exists() else pd.DataFrame()

    def history_rows(self) -> tuple[list, list]:
        """`(columns, rows)` of `history.csv` as written: every cell the string in the file."""
        return read_history_rows(self.path / HISTORY)

    def append_history(self, row: dict) -> None:
        """Adds one row to `history.csv` (rewritten atomically; new columns are added)."""
        self.append_history_rows([row])

    def append_history_rows(self, rows: list) -> None:
        """Adds rows to `history.csv`, rewritten atomically. Cells already in the file keep
        their exact text (a new column only adds empty cells to the old rows), so the rows a
        checkpoint committed stay verifiable by their checksum."""
        columns, old_rows = self.history_rows()
        for row in rows:
            for key in row:
                if str(key) not in columns:
                    columns.append(str(key))
        new_rows = [{str(key): format_cell(value) for key, value in row.items()} for row in rows]
        self._write_history(columns, old_rows + new_rows)

    def _write_history(self, columns: list, rows: list) -> None:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n", restval="")
        writer.writeheader()
        writer.writerows(rows)
        self.write_text(HISTORY, buffer.getvalue())

    def truncate_history(self, column: str, last, where: Optional[dict] = None) -> None:
        """Drops rows whose `column` is beyond `last` (among rows matching `where`, e.g.
        `{"schedule": "ibs"}`). Only for run folders whose commit record predates the
        history checksum (`cut_history_to_commit` does this for newer ones)."""
        history = self.history()
        if history.empty or column not in history:
            return
        ahead = history[column] > last
        for key, value in (where or {}).items():
            ahead &= history[key] == value
        if ahead.any():
            columns, rows = self.history_rows()
            self._write_history(columns, [row for row, drop in zip(rows, ahead) if not drop])

    def verify_history(self, checkpoint: Optional["Checkpoint"] = None) -> Optional[int]:
        """Checks that `history.csv` still holds every row the commit record counted, unchanged
        (row count and SHA-256); returns that count, or None for a record without them (an
        older release's). `CorruptFileError` naming the file when rows are missing, torn or
        altered."""
        checkpoint = checkpoint if checkpoint is not None else self.load_checkpoint()
        if checkpoint is None or "history_rows" not in checkpoint.record:
            return None
        committed = int(checkpoint.record["history_rows"])
        path = self.path / HISTORY
        columns, rows = self.history_rows()
        if len(rows) < committed:
            raise CorruptFileError(
                path,
                f"holds {len(rows)} rows, but {CHECKPOINT} committed {committed}: rows were "
                "lost; restore the file from a backup or start a new run",
            )
        if rows_digest(columns, rows[:committed]) != checkpoint.record.get("history_sha256"):
            raise CorruptFileError(
                path,
                f"its first {committed} rows (committed in {CHECKPOINT}) were changed or torn; "
                "restore the file from a backup or start a new run",
            )
        return committed

    def cut_history_to_commit(
        self, checkpoint: Optional["Checkpoint"] = None, step_column: str = "epoch"
    ) -> None:
        """Verifies the committed rows (`verify_history`) and drops any row after them: the
        rows of a step that was killed before its commit. A commit record of an earlier
        release (no row count) cuts by `step_column` instead."""
        checkpoint = checkpoint if checkpoint is not None else self.load_checkpoint()
        committed = self.verify_history(checkpoint)
        if committed is None:
            if checkpoint is not None:
                self.truncate_history(step_column, checkpoint.step)
            elif (self.path / HISTORY).exists():
                columns, rows = self.history_rows()
                if rows:  # rows of a first step that never committed
                    self._write_history(columns, [])
            return
        columns, rows = self.history_rows()
        if len(rows) > committed:
            self._write_history(columns, rows[:committed])

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

    # --- checkpoints ------------------------------------------------------------------------

    def save_checkpoint(
        self, step: int, save: Callable[[Path], None], suffix: str, state: Optional[dict] = None
    ) -> Checkpoint:
        """Commits the training state reached after `step`.

        `save(path)` writes the payload (e.g. `model.save` for `suffix=".keras"`) to a new file;
        then the commit record `checkpoint.json` is replaced atomically, and older payloads are
        removed. Write the history rows for `step` before calling this.
        """
        folder = self.path / CHECKPOINTS
        folder.mkdir(exist_ok=True)
        payload = folder / f"ckpt-{int(step)}{suffix}"
        atomic_write(payload, save)
        crash_point("checkpoint-before-commit")
        columns, rows = self.history_rows()
        record = {
            "step": int(step),
            "file": f"{CHECKPOINTS}/{payload.name}",
            "state": state or {},
            "history_rows": len(rows),
            "history_sha256": rows_digest(columns, rows),
        }
        self.write_json(CHECKPOINT, record)
        crash_point("checkpoint-after-commit")
        for old in folder.iterdir():
            if old != payload:
                old.unlink(missing_ok=True)
        return Checkpoint(int(step), payload, record["state"], record)

    def load_checkpoint(self) -> Optional[Checkpoint]:
        """The committed checkpoint, or None if the run has none yet."""
        path = self.path / CHECKPOINT
        if not path.exists():
            return None
        record = read_json(path)
        try:
            step, payload, state = int(record["step"]), self.path / record["file"], record["state"]
        except (KeyError, TypeError, ValueError):
            raise CorruptFileError(path, "not a checkpoint record (step, file, state)") from None
        if not payload.is_file():
            raise CorruptFileError(payload, f"missing, although {CHECKPOINT} commits it")
        return Checkpoint(step, payload, state, record)


def format_cell(value: Any) -> str:
    """A history cell as text: floats in their shortest exact form (`repr`), NaN and None
    empty, integers and strings as they are."""
    if value is None:
        return ""
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", 1) == 0:
        value = value.item()
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        return "" if math.isnan(value) else repr(value)
    return str(value)


def read_history_rows(path) -> tuple[list, list]:
    """`(columns, rows)` of a history CSV, cells as the strings in the file (`([], [])` if
    there is no file)."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        return [], []
    except UnicodeDecodeError:
        raise CorruptFileError(path, "not text (corrupt CSV file)") from None
    reader = csv.reader(io.StringIO(text))
    try:
        lines = list(reader)
    except csv.Error as error:
        raise CorruptFileError(path, f"corrupt CSV ({error})") from None
    if not lines:
        return [], []
    columns = lines[0]
    rows = []
    for number, line in enumerate(lines[1:], start=2):
        if len(line) > len(columns):
            raise CorruptFileError(
                path, f"line {number} has {len(line)} cells, the header {len(columns)}"
            )
        rows.append(dict(zip(columns, line + [""] * (len(columns) - len(line)))))
    return columns, rows


def rows_digest(columns: list, rows: list) -> str:
    """SHA-256 of rows' non-empty cells, independent of the column order and of columns added
    later (which leave old rows' cells empty)."""
    digest = hashlib.sha256()
    for row in rows:
        cells = sorted((key, value) for key, value in row.items() if value != "")
        digest.update(json.dumps(cells).encode())
        digest.update(b"\n")
    return digest.hexdigest()


def _same(given: Any, saved: Any) -> bool:
    if isinstance(given, (list, tuple)) and isinstance(saved, (list, tuple)):
        return list(given) == list(saved)
    if isinstance(given, float) or isinstance(saved, float):
        try:
            return float(given) == float(saved)
        except (TypeError, ValueError):
            return False
    return given == saved


def matplotlib_agg():
    """pyplot with the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt
