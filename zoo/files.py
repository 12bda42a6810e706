"""The files a run writes and reads: atomic writes with ordinary permissions, readers that name
a damaged file in one line, the OS's storage refusals as one-line errors, the history's cells,
and the fault-injection points the tests kill a run at.
"""

import csv
import errno
import hashlib
import io
import json
import math
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from zoo.errors import CorruptFileError, StorageError, UsageError

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


def matplotlib_agg():
    """pyplot with the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt
