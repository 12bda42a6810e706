"""TensorBoard for run folders: event files that are a view of the committed history."""

import math
from typing import Optional

from zoo.runs import RunFolder

TENSORBOARD = "tensorboard"


class RunBoard:
    """TensorBoard event files in `<run>/tensorboard/`, a view of the committed history.

    When a run (re)starts, the folder is written anew from `history.csv`'s committed rows and
    the run's config (as HParams); every commit then adds its rows. So TensorBoard never shows
    a step that was rolled back, and a kill between a commit and its TensorBoard write is
    repaired by the next start. String columns (`schedule`, `condition`) prefix the tags:
    `ibs/loss`. Written with TensorFlow's `tf.summary`; without TensorFlow nothing is written.
    """

    def __init__(self, run: RunFolder, step_column: str):
        self.run = run
        self.step_column = step_column
        self.folder = run.path / TENSORBOARD
        self.writer = None
        try:
            import tensorflow as tf
        except ImportError:
            self.tf = None
            return
        self.tf = tf
        self.folder.mkdir(exist_ok=True)
        for old in self.folder.glob("events.out.tfevents.*"):
            old.unlink()
        self.writer = tf.summary.create_file_writer(str(self.folder))
        self._write_hparams()
        columns, rows = run.history_rows()
        self.add_rows(rows)

    def _write_hparams(self) -> None:
        import dataclasses

        try:
            from tensorboard.plugins.hparams import api as hparams_api
        except ImportError:
            return
        config = self.run.config
        if not dataclasses.is_dataclass(config):
            return
        values = {}
        for field in dataclasses.fields(config):
            value = getattr(config, field.name)
            if value is None or isinstance(value, (list, tuple, dict)):
                value = str(value)
            values[field.name] = value
        with self.writer.as_default():
            hparams_api.hparams(values, trial_id=str(self.run.path))

    def add_rows(self, rows: list) -> None:
        """Adds history rows (dicts of numbers or their text) as scalars at their step."""
        if self.writer is None or not rows:
            return
        with self.writer.as_default():
            for row in rows:
                self._add_row(row)
        self.writer.flush()

    def _add_row(self, row: dict) -> None:
        try:
            step = int(float(row[self.step_column]))
        except (KeyError, TypeError, ValueError):
            return
        prefix, scalars = [], {}
        for key, value in row.items():
            if key == self.step_column:
                continue
            number = _number(value)
            if number is None:
                if isinstance(value, str) and value:
                    prefix.append(value)
                continue
            scalars[key] = number
        tag_prefix = "/".join(prefix) + "/" if prefix else ""
        for key, number in scalars.items():
            self.tf.summary.scalar(tag_prefix + key, number, step=step)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


def _number(value) -> Optional[float]:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)):
        return float(value) if math.isfinite(float(value)) else None
    if isinstance(value, str) and value:
        try:
            number = float(value)
        except ValueError:
            return None
        return number if math.isfinite(number) else None
    if hasattr(value, "item"):
        return _number(value.item())
    return None
