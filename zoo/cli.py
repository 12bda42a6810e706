"""The `zoo` console script: `zoo [--verbose] [data flags] <task> <command> [flags]`.

Each task package has a light `cli` module (no TensorFlow, Keras, pandas or matplotlib at
import) exposing `register(subparsers)`; its handlers import the heavy modules when they run, so
`zoo --help` and every `--help` answer at once. A handler takes the parsed arguments and returns
an exit code (or None for 0).

Before a handler runs (so before any run folder is created), `check_requirements` checks, in
one place for every task, what `COMMAND_NEEDS` declares the command needs:

- the optional extras (`pip install "experiment-zoo[datasets]"`, `[tuner]`): a missing one is one
  line naming the extra;
- Keras's TensorFlow backend (the tasks and the deep core are TensorFlow code; the building
  blocks are not): another configured backend is one line saying so;
- the data sets the command trains on, through `zoo.data.prepare` (prepared, from a manual
  folder, or downloaded): one line when they cannot be had.

The data flags before the task (`--data-dir`, `--manual-dir`, `--no-download`) apply to every
task: they set `ZOO_TFDS_DIR`, `ZOO_MANUAL_DIR` and `ZOO_NO_DOWNLOAD` for this process and its
workers, which `zoo.data` reads.

The CLI never chooses the Keras backend: `KERAS_BACKEND` or `~/.keras/keras.json` decide.

Errors: the project's own `zoo.errors.ZooError` becomes one line on stderr and exit 2 (exit 3
for a diverged run); every other exception keeps its traceback, because a bug must stay visible.
"""

import argparse
import importlib
import json
import os
import sys
from dataclasses import dataclass
from typing import Optional, Sequence

TASK_MODULES = (
    "zoo.tasks.argmax.cli",
    "zoo.tasks.batch_schedules.cli",
    "zoo.tasks.deep_mnist.cli",
    "zoo.tasks.memory_ae.cli",
    "zoo.tasks.reasoning_ops.cli",
)


@dataclass(frozen=True)
class Needs:
    """What one task command needs before it may touch a folder.

    Attributes:
        extras: the optional extras (keys of `zoo.extras.EXTRAS`) it imports.
        tensorflow: whether it runs only on Keras's TensorFlow backend.
        datasets: the `zoo.data` image sets it trains on, prepared before the folder opens.
    """

    extras: tuple = ()
    tensorflow: bool = True
    datasets: tuple = ()


# (task, command) -> what the command needs; a command not listed needs TensorFlow only.
# `ibs-vs-lrd run` prepares its `--dataset` itself (the dataset is a flag or the run's saved
# config), before its folder opens.
# Commands that train: they print a first line before TensorFlow loads.
TRAINING_COMMANDS = frozenset({"train", "run", "compare", "study", "tune"})

COMMAND_NEEDS = {
    ("argmax", "tune"): Needs(extras=("tuner",)),
    ("ibs-vs-lrd", "run"): Needs(extras=("datasets",)),
    ("deep", "train"): Needs(extras=("datasets",), datasets=("mnist",)),
    ("deep", "eval"): Needs(extras=("datasets",)),
    ("memory-ae", "train"): Needs(extras=("datasets",), datasets=("mnist",)),
    ("memory-ae", "compare"): Needs(extras=("datasets",), datasets=("mnist",)),
    ("memory-ae", "study"): Needs(extras=("datasets",), datasets=("mnist",)),
    ("memory-ae", "show"): Needs(extras=("datasets",)),
    ("reasoning-ops", "run"): Needs(extras=("tuner",)),
    ("reasoning-ops", "report"): Needs(tensorflow=False),
    ("presets", None): Needs(tensorflow=False),
}


def configured_backend() -> str:
    """The Keras backend a Keras import would use here, found as Keras finds it
    (`KERAS_BACKEND`, else `$KERAS_HOME/keras.json` or `~/.keras/keras.json`, else TensorFlow),
    without importing Keras."""
    if "keras" in sys.modules and hasattr(sys.modules["keras"], "config"):
        return sys.modules["keras"].config.backend()
    if os.environ.get("KERAS_BACKEND"):
        return os.environ["KERAS_BACKEND"]
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    try:
        with open(os.path.join(home, "keras.json")) as file:
            backend = json.load(file).get("backend")
    except (OSError, ValueError, AttributeError):
        backend = None
    return backend or "tensorflow"


def check_requirements(task: str, command: str, verbose: bool = False) -> None:
    """Raises a one-line `ZooError` if `zoo TASK COMMAND` cannot run here: a missing extra, a
    backend other than TensorFlow, or data that cannot be had. Writes nothing but the
    prepared data (tfds's progress bars only on a terminal)."""
    from zoo.errors import UsageError
    from zoo.extras import require_extra

    needs = COMMAND_NEEDS.get((task, command), Needs())
    name = f"`zoo {task} {command}`"
    for extra in needs.extras:
        require_extra(extra, name)
    backend = configured_backend()
    if needs.tensorflow and backend != "tensorflow":
        raise UsageError(
            f"{name} runs on Keras's TensorFlow backend, but the configured backend is "
            f"{backend!r} (KERAS_BACKEND or ~/.keras/keras.json); run it with "
            f"KERAS_BACKEND=tensorflow (the zoo's layers, losses, metrics and callbacks "
            f"work on every backend)."
        )
    if needs.datasets:
        from zoo.tf_quiet import import_tensorflow

        import_tensorflow(verbose=verbose)  # zoo.data imports Keras: without the C++ chatter
        from zoo.data import prepare

        for dataset in needs.datasets:
            prepare(dataset, progress=sys.stderr.isatty())


def _apply_data_flags(args: argparse.Namespace) -> None:
    """The data flags as the variables `zoo.data` reads (its `DATA_DIR_ENV`, `MANUAL_DIR_ENV`,
    `NO_DOWNLOAD_ENV`; not imported from there, since `zoo.data` imports Keras)."""
    if getattr(args, "zoo_data_dir", None) is not None:
        os.environ["ZOO_TFDS_DIR"] = args.zoo_data_dir
    if getattr(args, "zoo_manual_dir", None) is not None:
        os.environ["ZOO_MANUAL_DIR"] = args.zoo_manual_dir
    if getattr(args, "zoo_no_download", False):
        os.environ["ZOO_NO_DOWNLOAD"] = "1"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="zoo",
        description="experiment-zoo: run the five reproduced experiments.",
    )
    parser.add_argument(
        "--verbose",
        action="store_true",
        help="keep TensorFlow's C++ start-up and log lines on stderr",
    )
    data = parser.add_argument_group(
        "data (every task)",
        "Data sets come prepared from the tfds data folder, from a folder of the original "
        "files, or are downloaded by tensorflow-datasets.",
    )
    data.add_argument(
        "--data-dir",
        dest="zoo_data_dir",
        metavar="DIR",
        help="tfds data folder (default: $ZOO_TFDS_DIR, else tfds's ~/tensorflow_datasets)",
    )
    data.add_argument(
        "--manual-dir",
        dest="zoo_manual_dir",
        metavar="DIR",
        help="folder with the data set's original files, prepared offline from there "
        "(default: $ZOO_MANUAL_DIR; for MNIST also $ZOO_MNIST_DIR)",
    )
    data.add_argument(
        "--no-download",
        dest="zoo_no_download",
        action="store_true",
        help="never download (as ZOO_NO_DOWNLOAD=1): data must be prepared or in --manual-dir",
    )
    subparsers = parser.add_subparsers(title="tasks", dest="task", metavar="TASK")
    for module_name in TASK_MODULES:
        importlib.import_module(module_name).register(subparsers)
    presets = subparsers.add_parser(
        "presets",
        help="list the trained weights shipped with the zoo (zoo.presets.from_preset)",
        description="The presets: trained models shipped with the zoo, how each was made and "
        "what it measured; load one with zoo.presets.from_preset(NAME).",
    )
    presets.set_defaults(handler=_presets_command)
    return parser


def _presets_command(args: argparse.Namespace) -> int:
    from zoo.presets import describe

    print(describe())
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    from zoo.errors import ZooError

    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "handler", None) is None:
        parser.print_help()
        return 0 if args.task is None else 2
    if not args.verbose:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    command = getattr(args, "command", None)
    if command in TRAINING_COMMANDS and not getattr(args, "quiet", False):
        # The first line at once, before TensorFlow (several seconds) loads.
        print(f"zoo {args.task} {command}: starting; TensorFlow loads next", flush=True)
    try:
        _apply_data_flags(args)
        check_requirements(args.task, getattr(args, "command", None), verbose=args.verbose)
        return args.handler(args) or 0
    except ZooError as error:
        print(f"zoo: error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print(
            "zoo: interrupted; everything committed so far is in the run folder.", file=sys.stderr
        )
        return 130


if __name__ == "__main__":
    sys.exit(main())
