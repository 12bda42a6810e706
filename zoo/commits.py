"""The commit log of a run folder: `history.csv`, the checkpoint payloads and `checkpoint.json`,
the commit record that makes them advance together.

A step's history rows are written first, then its payload, then the commit record, which
counts the history's rows and carries their SHA-256. A resume verifies the committed rows
(a torn or shortened file is a one-line `CorruptFileError` naming it) and drops rows after
them (the rows of a step killed before its commit). `RunFolder` inherits all of this.
"""

import csv
import io
from pathlib import Path
from typing import Callable, NamedTuple, Optional

from zoo.errors import CorruptFileError
from zoo.files import (
    atomic_write,
    crash_point,
    format_cell,
    read_csv,
    read_history_rows,
    read_json,
    rows_digest,
)

HISTORY = "history.csv"
CHECKPOINT = "checkpoint.json"
CHECKPOINTS = "checkpoints"


class Checkpoint(NamedTuple):
    """A committed training state: its step, the payload file, the task's state dict, and the
    whole commit record (with the history's committed row count and checksum)."""

    step: int
    path: Path
    state: dict
    record: dict = {}


class CommitLog:
    """The history and checkpoint methods of `RunFolder` (which provides `path`, `write_text`
    and `write_json`)."""

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

    def history_record(self) -> dict:
        """What a commit records of the history: its row count and their SHA-256, which a
        resume verifies (`verify_history`)."""
        columns, rows = self.history_rows()
        return {"history_rows": len(rows), "history_sha256": rows_digest(columns, rows)}

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
                # The commit's state names the series its step counts (`schedule: "ibs"`).
                columns, _ = self.history_rows()
                series = {
                    key: value
                    for key, value in checkpoint.state.items()
                    if key in columns and isinstance(value, str)
                }
                self.truncate_history(step_column, checkpoint.step, where=series)
            elif (self.path / HISTORY).exists():
                columns, rows = self.history_rows()
                if rows:  # rows of a first step that never committed
                    self._write_history(columns, [])
            return
        columns, rows = self.history_rows()
        if len(rows) > committed:
            self._write_history(columns, rows[:committed])

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
        record = {
            "step": int(step),
            "file": f"{CHECKPOINTS}/{payload.name}",
            "state": state or {},
            **self.history_record(),
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
