"""The `zoo` console script: `zoo [--verbose] <task> <command> [flags]`.

Each task package has a light `cli` module (no TensorFlow, Keras, pandas or matplotlib at
import) exposing `register(subparsers)`; its handlers import the heavy modules when they run, so
`zoo --help` and every `--help` answer at once. A handler takes the parsed arguments and returns
an exit code (or None for 0).

Errors: the project's own `zoo.errors.ZooError` becomes one line on stderr and exit 2 (exit 3
for a diverged run); every other exception keeps its traceback, because a bug must stay visible.
"""

import argparse
import importlib
import os
import sys
from typing import Optional, Sequence

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

TASK_MODULES = (
    "zoo.tasks.argmax.cli",
    "zoo.tasks.batch_schedules.cli",
    "zoo.tasks.deep_mnist.cli",
    "zoo.tasks.memory_ae.cli",
    "zoo.tasks.reasoning_ops.cli",
)


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
    subparsers = parser.add_subparsers(title="tasks", dest="task", metavar="TASK")
    for module_name in TASK_MODULES:
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    from zoo.errors import ZooError

    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "handler", None) is None:
        parser.print_help()
        return 0 if args.task is None else 2
    if not args.verbose:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
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
