"""TEMPORARY: the pre-contract run-folder API, kept only while tasks migrate to zoo.runs.RunFolder.open.

What every task writes: a run folder with config, history, metrics, plots and the model,
plus the few helpers that turn a task's config dataclass into its `zoo <task>` CLI."""

import argparse
import dataclasses
import datetime
import json
import time
from pathlib import Path

import keras
import pandas as pd

CONFIG = "config.json"
HISTORY = "history.csv"
METRICS = "metrics.json"
MODEL = "model.keras"


class LegacyRunFolder:
    """One run's folder: `config.json`, `history.csv`, `metrics.json`, PNG plots, the model.

    Args:
        path: the folder; created if missing.

    Example:

    >>> run = RunFolder.create("argmax", root="/tmp/zoo-runs")  # doctest: +SKIP
    >>> run.save_config({"episodes": 3}); run.append_history({"epoch": 1, "loss": 0.5})
    """

    def __init__(self, path):
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)

    @classmethod
    def create(cls, task, root="runs", path=None):
        """A new folder `root/task/<UTC timestamp>/`, or exactly `path` when given."""
        if path is not None:
            return cls(path)
        stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%S_%fZ")
        return cls(Path(root) / task / stamp)

    @property
    def model_path(self):
        return self.path / MODEL

    def file(self, name):
        return self.path / name

    def save_config(self, config):
        data = dataclasses.asdict(config) if dataclasses.is_dataclass(config) else dict(config)
        (self.path / CONFIG).write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")

    def load_config(self):
        path = self.path / CONFIG
        if not path.exists():
            raise ValueError(f"`run` {self.path} holds no {CONFIG}.")
        return json.loads(path.read_text())

    def save_metrics(self, metrics):
        """Merges `metrics` into `metrics.json` (earlier keys are kept)."""
        merged = self.load_metrics()
        merged.update(metrics)
        tmp = self.path / (METRICS + ".tmp")
        tmp.write_text(json.dumps(merged, indent=2, sort_keys=True, default=float) + "\n")
        tmp.replace(self.path / METRICS)

    def load_metrics(self):
        path = self.path / METRICS
        return json.loads(path.read_text()) if path.exists() else {}

    def append_history(self, row):
        """Appends one row to `history.csv`, rewriting it if a new column appears."""
        path = self.path / HISTORY
        frame = pd.DataFrame([row])
        if path.exists():
            old = pd.read_csv(path)
            if set(frame.columns) - set(old.columns):
                pd.concat([old, frame], ignore_index=True).to_csv(path, index=False)
                return
            frame = frame.reindex(columns=old.columns)
        frame.to_csv(path, mode="a", header=not path.exists(), index=False)

    def history(self):
        path = self.path / HISTORY
        return pd.read_csv(path) if path.exists() else pd.DataFrame()

    def save_figure(self, figure, name):
        """Saves a matplotlib figure as `name.png` and closes it; returns the path."""
        import matplotlib.pyplot as plt

        path = self.path / f"{name}.png"
        figure.savefig(path, dpi=120, bbox_inches="tight")
        plt.close(figure)
        return path

    def history_logger(self, **extra):
        return HistoryLogger(self, **extra)


class HistoryLogger(keras.callbacks.Callback):
    """Appends a row to the run's `history.csv` after every epoch, so an interrupted
    run keeps every finished epoch. `extra` columns (e.g. `schedule="ibs"`) go in each row.

    Args:
        run: the `RunFolder`.
        **extra: constant columns added to every row.
    """

    def __init__(self, run, **extra):
        super().__init__()
        self.run = run
        self.extra = extra

    def on_epoch_end(self, epoch, logs=None):
        row = dict(self.extra)
        row["epoch"] = epoch + 1
        row.update({key: float(value) for key, value in (logs or {}).items()})
        self.run.append_history(row)


class WallTime(keras.callbacks.Callback):
    """Logs the seconds since training started as `wall_seconds` each epoch."""

    def on_train_begin(self, logs=None):
        self.started = time.time()

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["wall_seconds"] = time.time() - self.started


def matplotlib_agg():
    """pyplot with the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


# --- CLI helpers -------------------------------------------------------------------------


def add_config_arguments(parser, config_class):
    """Adds one `--flag` per field of a config dataclass (defaults and help from the fields).

    Field metadata may hold `help` and `choices`; booleans become
    `--flag/--no-flag`.
    """
    for field in dataclasses.fields(config_class):
        flag = "--" + field.name.replace("_", "-")
        default = field.default if field.default is not dataclasses.MISSING else field.default_factory()
        help_text = field.metadata.get("help", "")
        kwargs = {"default": default, "dest": field.name}
        if field.type in (bool, "bool"):
            kwargs["action"] = argparse.BooleanOptionalAction
        else:
            kinds = {"int": int, "float": float, "str": str}
            kind = kinds.get(field.type, field.type) if isinstance(field.type, str) else field.type
            kwargs["type"] = kind if kind in (int, float, str) else str
            if "choices" in field.metadata:
                kwargs["choices"] = field.metadata["choices"]
        parser.add_argument(flag, help=f"{help_text} (default: {default})".strip(), **kwargs)
    return parser


def config_from_args(config_class, args):
    """The config dataclass built from parsed arguments (its `__post_init__` validates)."""
    names = {field.name for field in dataclasses.fields(config_class)}
    return config_class(**{key: value for key, value in vars(args).items() if key in names})


def check_config(config, rules):
    """Validates a config: `rules` maps a field to `(predicate, allowed)`; raises ValueError
    naming the first field that breaks its rule."""
    for name, (predicate, allowed) in rules.items():
        value = getattr(config, name)
        if not predicate(value):
            raise ValueError(f"`--{name.replace('_', '-')}` must be {allowed}, got {value!r}.")
