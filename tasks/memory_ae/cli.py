"""`zoo memory-ae train | compare | show`: light at import (no TensorFlow until a handler runs)."""

import argparse

from zoo.config import add_config_arguments, config_from_args, given_flags
from zoo.resources import require_memory

from .config import CompareConfig, MemoryAEConfig


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "memory-ae", help="memory-informed decoder and set-min random loss on MNIST (seed 001)"
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    train = commands.add_parser(
        "train",
        help="train one model (resumes an interrupted run; a higher --epochs extends a run)",
    )
    _run_flags(train, "the run folder (default: runs/memory-ae/<UTC time>)")
    add_config_arguments(train, MemoryAEConfig)
    train.set_defaults(handler=_train)

    compare = commands.add_parser(
        "compare",
        help="the notes' comparisons, each variant a sub-run of --run, then one table",
    )
    _run_flags(compare, "the comparison's folder (default: runs/memory-ae-compare/<UTC time>)")
    add_config_arguments(compare, CompareConfig)
    compare.set_defaults(handler=_compare)

    show = commands.add_parser("show", help="redraw the pictures of a finished training run")
    show.add_argument("--run", required=True, help="a run folder of `zoo memory-ae train`")
    show.set_defaults(handler=_show)

    from .study_cli import add_study_parser  # light: the study's TensorFlow loads in its handler

    add_study_parser(commands)


def _run_flags(parser: argparse.ArgumentParser, run_help: str) -> None:
    parser.add_argument("--run", default=None, help=run_help)
    parser.add_argument("--quiet", action="store_true", help="no Keras progress bars")


def _verbose(args):
    """0 with --quiet; else None: Keras's bar on a terminal, one line per epoch when piped."""
    return 0 if args.quiet else None


def _train(args) -> int:
    from zoo.tf_quiet import import_tensorflow

    config = config_from_args(MemoryAEConfig, args)
    require_memory(config.estimated_bytes(), config.size_flags())  # before anything is made
    import_tensorflow(verbose=getattr(args, "verbose", False))
    from .training import train

    train(config, args.run, given=given_flags(args, MemoryAEConfig), verbose=_verbose(args))
    return 0


def _compare(args) -> int:
    from zoo.tf_quiet import import_tensorflow

    import_tensorflow(verbose=getattr(args, "verbose", False))
    from .comparison import compare

    config = config_from_args(CompareConfig, args)
    compare(config, args.run, given=given_flags(args, CompareConfig), verbose=_verbose(args))
    return 0


def _show(args) -> int:
    from zoo.tf_quiet import import_tensorflow

    import_tensorflow(verbose=getattr(args, "verbose", False))
    from .show import show

    show(args.run)
    return 0
