"""The `zoo` console script: `zoo <task> <command> [flags]`.

Each task module exposes `register(subparsers)`, adding its subcommand with
`set_defaults(handler=...)`; handlers take the parsed arguments.
"""

import argparse
import importlib
import os
import sys

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

TASK_MODULES = (
    "zoo.tasks.argmax",
    "zoo.tasks.batch_schedules",
    "zoo.tasks.deep_mnist",
    "zoo.tasks.memory_ae",
    "zoo.tasks.reasoning_ops",
)


def build_parser():
    parser = argparse.ArgumentParser(
        prog="zoo",
        description="experiment-zoo: run the five reproduced experiments.",
    )
    subparsers = parser.add_subparsers(title="tasks", dest="task", metavar="TASK")
    for module_name in TASK_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as error:
            if error.name != module_name:
                raise
            continue
        module.register(subparsers)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "handler", None) is None:
        parser.print_help()
        return 0 if args.task is None else 2
    try:
        return args.handler(args) or 0
    except ValueError as error:
        print(f"zoo: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("zoo: interrupted; everything finished so far is in the run folder.", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
