"""The comparison's outputs: `summary.csv` (a row per schedule) and `ibs_vs_lrd.png` (training
loss against parameter updates, test accuracy against epochs and against updates)."""

from pathlib import Path

from matplotlib.ticker import MaxNLocator

from zoo.errors import RunFolderError, UsageError
from zoo.runs import RunFolder, matplotlib_agg

from .config import TASK, ScheduleConfig

# The schedules whose model is saved, with their epochs and wall time (written by `train`).
DONE_FILE = "schedules.json"


def done_schedules(run: RunFolder) -> dict:
    """`{schedule: {"epochs": E, "wall_seconds": W}}` of the schedules whose model is saved."""
    return run.read_json(DONE_FILE) if run.file(DONE_FILE).exists() else {}


NAMES = {
    "lrd": "lrd (learning-rate decay)",
    "ibs": "ibs (seed's batch growth)",
    "ibs-equivalent": "ibs-equivalent (batch x 1/decay)",
    "hybrid": "hybrid (half of each)",
}


def summarize(history):
    """A row per schedule: final and best test accuracy, losses, updates, batch, wall time."""
    import pandas as pd

    rows = []
    for schedule, frame in history.groupby("schedule", sort=False):
        rows.append(
            {
                "schedule": schedule,
                "epochs": int(frame["epoch"].max()),
                "final_test_accuracy": float(frame["test_accuracy"].iloc[-1]),
                "best_test_accuracy": float(frame["test_accuracy"].max()),
                "final_test_loss": float(frame["test_loss"].iloc[-1]),
                "final_train_loss": float(frame["loss"].iloc[-1]),
                "parameter_updates": int(frame["parameter_updates"].iloc[-1]),
                "final_batch_size": int(frame["batch_size"].iloc[-1]),
                "wall_seconds": float(frame["wall_seconds"].iloc[-1]),
            }
        )
    return pd.DataFrame(rows)


def plot(history, run: RunFolder, config: ScheduleConfig) -> Path:
    """Writes `ibs_vs_lrd.png`."""
    plt = matplotlib_agg()
    figure, axes = plt.subplots(1, 3, figsize=(16, 4.8))
    for schedule, frame in history.groupby("schedule", sort=False):
        label = NAMES.get(schedule, schedule)
        axes[0].plot(frame["parameter_updates"], frame["loss"], label=label)
        axes[1].plot(frame["epoch"], frame["test_accuracy"], label=label)
        axes[2].plot(frame["parameter_updates"], frame["test_accuracy"], label=label)
    axes[0].set(
        xlabel="parameter updates",
        ylabel="training loss (epoch mean)",
        yscale="log",
        title="training loss",
    )
    axes[1].set(xlabel="epoch", ylabel="test accuracy", title="test accuracy per epoch")
    axes[1].xaxis.set_major_locator(MaxNLocator(integer=True))
    axes[2].set(
        xlabel="parameter updates",
        ylabel="test accuracy",
        title="test accuracy per parameter update",
    )
    for axis in axes:
        axis.legend(fontsize=8)
        axis.grid(alpha=0.3)
    figure.suptitle(
        f"Increasing batch size vs learning-rate decay: SimpleCNN on {config.dataset}, "
        f"plain SGD, lr {config.learning_rate:g}, batch {config.batch_size} at epoch 1"
    )
    return run.save_figure(figure, "ibs_vs_lrd")


def write_report(run: RunFolder, config: ScheduleConfig):
    """Summary and plot of the schedules whose model is saved; returns the summary."""
    done = [schedule for schedule in config.schedules if schedule in done_schedules(run)]
    if not done:
        raise UsageError(f"--run {run.path} has no finished schedule to report yet.")
    history = run.history()
    history = history[history["schedule"].isin(done)]
    summary = summarize(history)
    run.write_csv("summary.csv", summary)
    plot(history, run, config)
    return summary


def report_run(path) -> Path:
    """`zoo ibs-vs-lrd report`: rewrites `summary.csv` and the plot of the run at `path`
    (its finished schedules) and prints the summary."""
    path = Path(path)
    with RunFolder.existing(path, TASK, ScheduleConfig()) as run:
        if run.status == "failed":
            raise RunFolderError(
                f"--run {path} failed ({run.metrics().get('error')}); nothing to report."
            )
        summary = write_report(run, run.config)
        print(summary.to_string(index=False))
        print(f"ibs-vs-lrd report: summary.csv and ibs_vs_lrd.png written in {path}")
    return path
