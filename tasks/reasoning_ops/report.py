"""The sweep's report: a CSV row per experiment, a pivot table and a heat map.

`results.csv` has the seed's columns (task, dataset, network_type, network_depth,
network_activation, accuracy_pct, accuracy, loss, lr, global_step, datetime) plus
`wall_seconds`, `diverged_lrs` (rates of the search that diverged), `status` (`finished` or
`failed`) and `error` (why a failed experiment failed). A failed experiment has no accuracy,
loss or rate: it is shown as failed, never as a score, and is left out of every mean.

A damaged trial file is never skipped: reading the sweep raises one `CorruptFileError` line
naming every unreadable trial file, and nothing is written.
"""

import datetime
from pathlib import Path
from typing import Optional

import numpy as np

from zoo.errors import CorruptFileError, RunFolderError, UsageError
from zoo.runs import CONFIG, atomic_write, atomic_write_bytes, matplotlib_agg, read_csv, read_json
from zoo.tasks.reasoning_ops.config import PROFILE_GRIDS, TASK_NAMES

TASK = "reasoning-ops"
PROJECT = "sweep"
SEED_COLUMNS = [
    "task",
    "dataset",
    "network_type",
    "network_depth",
    "network_activation",
    "accuracy_pct",
    "accuracy",
    "loss",
    "lr",
    "global_step",
    "datetime",
]
COLUMNS = SEED_COLUMNS + ["wall_seconds", "diverged_lrs", "status", "error"]
SOLVED = 0.99


# --- reading a sweep ------------------------------------------------------------------------


def trial_files(directory) -> list:
    """The keras-tuner `trial.json` files of the sweep in run folder `directory`, sorted."""
    return sorted(Path(directory, PROJECT).glob("trial_*/trial.json"))


def read_trials(directory, skip=frozenset()) -> list:
    """`(path, trial state)` of every trial file of the sweep but those in `skip`.

    Raises `CorruptFileError` naming every unreadable trial file (the sweep writes them
    atomically, so an unreadable one is damaged, never half-written)."""
    trials, corrupt = [], []
    for path in trial_files(directory):
        if path in skip:
            continue
        try:
            trials.append((path, read_json(path)))
        except CorruptFileError as error:
            corrupt.append(error)
    if corrupt:
        first = corrupt[0]
        more = "".join(f"; also {error}" for error in corrupt[1:])
        raise CorruptFileError(first.path, f"{first.problem}{more}")
    return trials


def check_run_folder(directory) -> dict:
    """The saved config of a reasoning-ops run folder (read only); `RunFolderError` for a
    missing folder or another task's."""
    directory = Path(directory)
    if not (directory / CONFIG).is_file():
        raise RunFolderError(f"--run {directory} holds no {CONFIG}: not a zoo run folder.")
    record = read_json(directory / CONFIG)
    if not isinstance(record, dict) or "task" not in record or "config" not in record:
        raise CorruptFileError(directory / CONFIG, "not a zoo run config (no task or config)")
    if record["task"] != TASK:
        raise RunFolderError(
            f"--run {directory} holds a {record['task']!r} run, not a {TASK!r} run."
        )
    return record["config"]


def _error_line(message: Optional[str]) -> str:
    lines = [line.strip() for line in (message or "").splitlines() if line.strip()]
    if not lines:
        return "failed"
    last = lines[-1]
    return last.split("FailedTrialError: ", 1)[-1] if "FailedTrialError: " in last else last


def _row(path: Path, trial: dict) -> dict:
    values = trial["hyperparameters"]["values"]
    network, depth, activation = values["network"].split("-")
    row = {
        "task": values["task"],
        "dataset": values["dataset"],
        "network_type": network,
        "network_depth": int(depth),
        "network_activation": activation,
        "datetime": datetime.datetime.fromtimestamp(path.stat().st_mtime).strftime(
            "%Y-%m-%d %H:%M:%S"
        ),
    }
    if trial["status"] != "COMPLETED":
        return {
            **row,
            "accuracy_pct": "failed",
            "status": "failed",
            "error": _error_line(trial.get("message")),
        }
    metrics = {
        name: entry["observations"][0]["value"][0]
        for name, entry in trial["metrics"]["metrics"].items()
    }
    return {
        **row,
        "accuracy_pct": f"{int(metrics['accuracy'] * 100)}.0%",
        "accuracy": metrics["accuracy"],
        "loss": metrics["loss"],
        "lr": metrics["lr"],
        "global_step": int(metrics["global_step"]),
        "wall_seconds": metrics["wall_seconds"],
        "diverged_lrs": int(metrics.get("diverged_lrs", 0)),
        "status": "finished",
        "error": "",
    }


def collect(directory):
    """Every finished or failed experiment of a sweep as a row with `COLUMNS`."""
    import pandas as pd

    rows = []
    for path, trial in read_trials(directory):
        if not isinstance(trial, dict) or trial.get("status") not in (
            "COMPLETED",
            "FAILED",
            "INVALID",
        ):
            continue  # running, or handed out and not started
        try:
            rows.append(_row(path, trial))
        except (KeyError, IndexError, TypeError, ValueError, AttributeError):
            raise CorruptFileError(path, "not a reasoning-ops trial (fields missing)") from None
    frame = pd.DataFrame(rows, columns=COLUMNS)
    return frame.astype({"global_step": "Int64", "diverged_lrs": "Int64"})


# --- tables ---------------------------------------------------------------------------------


def _with_network(frame):
    frame = frame.copy()
    if "status" not in frame:  # a results CSV from before failures were recorded
        frame["status"] = "finished"
    frame["status"] = frame["status"].fillna("finished")
    frame["network"] = (
        frame["network_type"]
        + "-"
        + frame["network_depth"].astype(str)
        + "-"
        + frame["network_activation"]
    )
    return frame


def complete_cells(frame):
    """The rows of the (task, dataset) cells in which every network of `frame` has finished
    (or failed), so that a sweep still running compares its networks on the same cells."""
    networks = frame["network"].nunique()
    counts = frame.groupby(["task", "dataset"])["network"].transform("nunique")
    return frame[counts == networks]


def summarize(frame):
    """The pivot: per network, the mean accuracy per dataset and over all cells (finished
    experiments only), cells solved (accuracy >= 0.99), failed and compared; sorted by the
    mean, best first. `pivot.attrs["cells"] = (cells compared, cells with any result)`."""
    frame = _with_network(frame)
    cells = len(frame.groupby(["task", "dataset"]))
    frame = complete_cells(frame)
    finished = frame[frame["status"] == "finished"]
    networks = sorted(frame["network"].unique())
    pivot = finished.pivot_table(
        index="network", columns="dataset", values="accuracy", aggfunc="mean"
    ).reindex(networks)
    by_network = finished.groupby("network")["accuracy"]
    pivot["mean"] = by_network.mean()
    pivot["solved_cells"] = by_network.apply(lambda accuracy: int((accuracy >= SOLVED).sum()))
    pivot["solved_cells"] = pivot["solved_cells"].fillna(0).astype(int)
    failed = frame[frame["status"] != "finished"].groupby("network").size()
    pivot["failed"] = failed.reindex(networks).fillna(0).astype(int)
    pivot["cells"] = frame.groupby("network").size()
    pivot = pivot.sort_values("mean", ascending=False, na_position="last")
    pivot.columns.name = None
    pivot.attrs["cells"] = (len(frame.groupby(["task", "dataset"])), cells)
    return pivot


def grid_label(frame, profile: Optional[str] = None) -> str:
    """Which variant a results table is: `"seed profile"`, `"quick profile"`, ... when its grid
    is exactly a profile's (`profile` names the one it ran under, if known)."""
    frame = _with_network(frame)
    grid = (set(frame["task"]), set(frame["dataset"]), set(frame["network"]))
    for name, (tasks, datasets, networks) in PROFILE_GRIDS.items():
        if (profile in (None, name)) and grid == (set(tasks), set(datasets), set(networks)):
            return "full seed grid" if name == "seed" else f"{name} profile"
    shape = f"{len(grid[0])} tasks x {len(grid[1])} datasets x {len(grid[2])} networks"
    return f"{profile} profile, {shape}" if profile else shape


# --- the heat map ---------------------------------------------------------------------------


def network_label(name: str) -> str:
    """A human name for a grid name: `"dense_residual-2-relu"` -> `"dense_residual d2 relu"`."""
    network, depth, activation = name.split("-")
    return network if network.startswith("multiply") else f"{network} d{depth} {activation}"


def plot_heatmap(frame, label: str):
    """The heat map: a row per network (sorted by mean accuracy, best on top), a column per
    task (easiest first) and one for the mean over all tasks; each cell the mean accuracy over
    the datasets. Failed experiments are left out of a cell's mean and marked `*`; a cell
    whose experiments all failed reads `failed`. Sized for README width (~1000 px).
    Returns the matplotlib figure."""
    frame = complete_cells(_with_network(frame))
    pivot = summarize(frame)
    finished = frame[frame["status"] == "finished"]
    heat = finished.pivot_table(index="network", columns="task", values="accuracy", aggfunc="mean")
    tasks = [task for task in TASK_NAMES if task in set(frame["task"])]
    heat = heat.reindex(index=pivot.index, columns=tasks)
    heat = heat[heat.mean().sort_values(ascending=False, na_position="last").index]
    failed = (
        frame[frame["status"] != "finished"]
        .pivot_table(index="network", columns="task", values="dataset", aggfunc="size")
        .reindex(index=heat.index, columns=heat.columns)
        .fillna(0)
    )
    heat["all tasks"] = pivot["mean"]
    failed["all tasks"] = pivot["failed"]
    values = heat.to_numpy(dtype=float)

    plt = matplotlib_agg()
    rows, columns = values.shape
    figure, axis = plt.subplots(figsize=(8.4, 1.9 + 0.27 * rows))
    colormap = plt.get_cmap("viridis").with_extremes(bad="#d9d9d9")
    image = axis.imshow(np.ma.masked_invalid(values), cmap=colormap, vmin=0, vmax=1, aspect="auto")
    axis.axvline(columns - 1.5, color="white", linewidth=3)
    axis.set_xticks(
        range(columns),
        [name.replace("_", " ") for name in heat.columns],
        rotation=40,
        ha="right",
        fontsize=8,
    )
    axis.set_yticks(range(rows), [network_label(name) for name in heat.index], fontsize=8)
    axis.tick_params(length=0)
    for (row, column), value in np.ndenumerate(values):
        mark = "*" if failed.iat[row, column] else ""
        text = "failed" if np.isnan(value) else f"{value:.2f}{mark}"
        color = "black" if np.isnan(value) or value >= 0.35 else "white"
        axis.text(column, row, text, ha="center", va="center", fontsize=7.5, color=color)
    datasets = frame["dataset"].nunique()
    axis.set_xlabel("task (easiest first)")
    axis.set_ylabel("network (best mean accuracy on top)")
    axis.set_title(
        f"Reasoning operations, {label}: test accuracy\nmean over {datasets} "
        f"dataset{'s' if datasets > 1 else ''}, {len(frame):,} experiments",
        fontsize=10,
    )
    colorbar = figure.colorbar(image, fraction=0.035, pad=0.02)
    colorbar.set_label("accuracy (|prediction - target| < 0.158)", fontsize=8)
    if (frame["status"] != "finished").any():
        figure.text(
            0.01,
            0.005,
            "* some of the cell's experiments diverged (failed); the mean is over the others",
            fontsize=7,
        )
    return figure


# --- writing the report ---------------------------------------------------------------------


def _save_figure(figure, path: Path) -> None:
    plt = matplotlib_agg()
    try:
        atomic_write(
            path,
            lambda temporary: figure.savefig(temporary, dpi=120, format="png", bbox_inches="tight"),
        )
    finally:
        plt.close(figure)


def write_report(frame, pivot_path, heatmap_path, label: str, results_path=None):
    """Writes the results CSV (if `results_path`), the pivot CSV and the heat-map PNG, each
    atomically; returns the pivot."""
    pivot = summarize(frame)
    if results_path is not None:
        atomic_write_bytes(Path(results_path), frame.to_csv(index=False).encode())
    atomic_write_bytes(Path(pivot_path), pivot.to_csv().encode())
    _save_figure(plot_heatmap(frame, label), Path(heatmap_path))
    return pivot


def report_sweep(directory):
    """The report of the sweep in run folder `directory`: `results.csv` (every finished or
    failed experiment), `pivot.csv` and `heatmap.png` (the cells every network has finished),
    written into the folder; returns the pivot."""
    directory = Path(directory)
    config = check_run_folder(directory)
    frame = collect(directory)
    if frame.empty:
        raise UsageError(f"--run {directory} holds no finished experiments yet.")
    return write_report(
        frame,
        directory / "pivot.csv",
        directory / "heatmap.png",
        grid_label(frame, config.get("profile")),
        directory / "results.csv",
    )


def report_from_csv(results_path, prefix=None):
    """The pivot and heat map of a results CSV (e.g. `docs/reasoning_seed_results.csv`),
    written as `<prefix>_pivot.csv` and `<prefix>_heatmap.png`; `prefix` defaults to the CSV's
    path without `_results.csv`. Returns `(pivot, pivot path, heat-map path)`."""
    results_path = Path(results_path)
    frame = read_csv(results_path)
    missing = [column for column in SEED_COLUMNS if column not in frame]
    if missing:
        raise CorruptFileError(results_path, f"not a reasoning-ops results CSV (no {missing})")
    if frame.empty:
        raise UsageError(f"--results {results_path} holds no experiments.")
    if prefix is None:
        name = results_path.name
        stem = name[: -len("_results.csv")] if name.endswith("_results.csv") else results_path.stem
        prefix = results_path.with_name(stem)
    prefix = Path(prefix)
    pivot_path = prefix.with_name(prefix.name + "_pivot.csv")
    heatmap_path = prefix.with_name(prefix.name + "_heatmap.png")
    pivot = write_report(frame, pivot_path, heatmap_path, grid_label(frame))
    return pivot, pivot_path, heatmap_path
