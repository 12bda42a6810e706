"""`zoo ibs-vs-lrd run | report`: light at import (no TensorFlow until a handler runs)."""

from pathlib import Path

from zoo.config import add_config_arguments, given_flags
from zoo.resources import require_memory

from .config import QUICK, TASK, ScheduleConfig, add_schedules

# Examples and pixels per example of each data set (train + test), for the memory estimate.
DATASET_SIZES = {"mnist": (70_000, 784), "fashion_mnist": (70_000, 784), "cifar10": (60_000, 3072)}


def estimated_bytes(dataset: str) -> int:
    """Memory a comparison needs, about: the images as float32 held three times (loaded, split,
    and the copy `ResizableBatches.tf_dataset()` makes in TensorFlow), and the CNN's
    activations for the largest batch (a tenth of the training set), forward and backward."""
    examples, pixels = DATASET_SIZES.get(dataset, (70_000, 3072))
    largest_batch = examples // 10
    per_example = 13 * 13 * 32 + 6 * 6 * 32 + 5 * 5 * 32 + 5 * 5 * 16 + 512 + 10
    return 4 * (3 * examples * pixels + 3 * largest_batch * per_example)


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "ibs-vs-lrd", help="increasing batch size vs learning-rate decay (seed 002)"
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    run = commands.add_parser(
        "run",
        help="train the schedules (resumes an interrupted run; --epochs and --schedules may "
        "extend a run), then write the summary and plot",
    )
    run.add_argument(
        "--run", default=None, help="the run folder (default: runs/ibs-vs-lrd/<UTC time>)"
    )
    run.add_argument("--quiet", action="store_true", help="no Keras progress bars")
    run.add_argument(
        "--quick",
        action="store_true",
        help="a first look in minutes: "
        + " ".join(
            f"--{name.replace('_', '-')} {_flag_text(value)}" for name, value in QUICK.items()
        )
        + " (a flag given explicitly wins)",
    )
    run.add_argument(
        "--data-dir", default=None, help="tfds data folder (default: $ZOO_TFDS_DIR or tfds's own)"
    )
    run.add_argument(
        "--manual-dir",
        default=None,
        help="folder with the dataset's original files, to prepare it offline "
        "(default for mnist: $ZOO_MNIST_DIR)",
    )
    add_config_arguments(run, ScheduleConfig)
    run.set_defaults(handler=_run)

    report = commands.add_parser(
        "report", help="rewrite summary.csv and ibs_vs_lrd.png of a run's finished schedules"
    )
    report.add_argument("--run", required=True, help="a run folder of `zoo ibs-vs-lrd run`")
    report.set_defaults(handler=_report)


def _flag_text(value) -> str:
    return ",".join(value) if isinstance(value, tuple) else str(value)


def _saved_config(run_path) -> dict:
    """The config saved in `run_path` if it holds an ibs-vs-lrd run, else `{}`."""
    from zoo.runs import CONFIG, read_json

    if run_path is None or not (Path(run_path) / CONFIG).is_file():
        return {}
    record = read_json(Path(run_path) / CONFIG)
    if isinstance(record, dict) and record.get("task") == TASK:
        return dict(record.get("config") or {})
    return {}


def run_config(args) -> tuple:
    """`(config, given, saved)` of `zoo ibs-vs-lrd run`: the flags given (`--quick`'s values
    where a flag is not given), a resume's added schedules after its saved ones, and the
    config saved in `--run` (`{}` for a new run)."""
    given = given_flags(args, ScheduleConfig)
    if args.quick:
        given = {**QUICK, **given}
    saved = _saved_config(args.run)
    if saved.get("schedules") and "schedules" in given:
        given["schedules"] = add_schedules(tuple(saved["schedules"]), given["schedules"])
    return ScheduleConfig(**given), given, saved


def _run(args) -> int:
    from .data import require_prepared

    config, given, saved = run_config(args)
    # Before the run folder is opened, and before TensorFlow loads: a missing data set fails
    # at once and leaves nothing behind.
    dataset = given.get("dataset") or saved.get("dataset") or config.dataset
    require_memory(estimated_bytes(dataset), f"--dataset {dataset}")
    require_prepared(dataset, args.data_dir, args.manual_dir)

    from zoo.tf_quiet import import_tensorflow

    import_tensorflow(verbose=getattr(args, "verbose", False))
    from .training import run_schedules

    run_schedules(
        config,
        args.run,
        given=given,
        data_dir=args.data_dir,
        manual_dir=args.manual_dir,
        verbose=0 if args.quiet else None,
    )
    return 0


def _report(args) -> int:
    from zoo.tf_quiet import import_tensorflow

    import_tensorflow(verbose=getattr(args, "verbose", False))
    from .report import report_run

    report_run(args.run)
    return 0
