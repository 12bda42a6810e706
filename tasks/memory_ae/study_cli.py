"""`zoo memory-ae study`: its flags (from `StudyConfig`) and handler, light at import."""

import argparse

from .study_config import TASK, StudyConfig


def add_study_parser(commands) -> argparse.ArgumentParser:
    """Adds the `study` command to a subparsers object (`zoo memory-ae study`); its handler
    imports TensorFlow only when it runs."""
    parser = commands.add_parser(
        "study",
        help="do set-min subnets specialise? and the memory AE's open ideas: a list of "
        "conditions, each committed when done (a rerun skips finished ones), then the tables",
    )
    _add_flags(parser)
    parser.set_defaults(handler=handle_study)
    return parser


def _add_flags(parser: argparse.ArgumentParser) -> None:
    from zoo.config import add_config_arguments

    parser.add_argument(
        "--run", default=None, help=f"the study folder (default: runs/{TASK}/<UTC time>)"
    )
    parser.add_argument("--quiet", action="store_true", help="no Keras progress bars")
    add_config_arguments(parser, StudyConfig)


def handle_study(args: argparse.Namespace) -> int:
    """Runs the study the parsed flags describe."""
    from zoo.config import config_from_args, given_flags
    from zoo.tf_quiet import import_tensorflow

    config = config_from_args(StudyConfig, args)
    import_tensorflow(verbose=getattr(args, "verbose", False))
    from .study import run_study

    run_study(
        config, args.run, given=given_flags(args, StudyConfig), verbose=0 if args.quiet else 2
    )
    return 0
