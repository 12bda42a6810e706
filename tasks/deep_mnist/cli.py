"""`zoo deep init | train | eval`: the command line of the deep task.

Light at import (argparse, `zoo.config` and the task's config module only): the handlers import
TensorFlow and the heavy modules when they run, so `zoo deep --help` answers at once.
"""

import argparse

from zoo.config import add_config_arguments, config_from_args, given_flags
from zoo.errors import UsageError
from zoo.tasks.deep_mnist.config import KERNELS, DeepConfig
from zoo.validation import check_positive_int

TASK = "deep"


def register(subparsers) -> None:
    """Adds `zoo deep` and its commands to the `zoo` parser."""
    parser = subparsers.add_parser(
        "deep",
        help="absurdly deep residual core on MNIST (seed 003)",
        description="Absurdly deep residual networks on MNIST, trained by exact SGD (seed 003).",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    init = commands.add_parser(
        "init",
        help="create a run's weights file (train does it too)",
        description="Create the run folder and its weights file (the seed's init), e.g. ahead of a "
        "long run; `zoo deep train --run R` then trains it.",
    )
    add_config_arguments(init, DeepConfig)
    _add_run_flags(init, kernels=False)
    init.set_defaults(handler=_init_command)

    train = commands.add_parser(
        "train",
        help="train (or resume) with exact SGD",
        description="Train the deep core with exact SGD. An existing --run resumes from its last "
        "commit with its saved settings; only --steps may be raised.",
    )
    add_config_arguments(train, DeepConfig)
    _add_run_flags(train, kernels=True)
    train.set_defaults(handler=_train_command)

    evaluate = commands.add_parser(
        "eval",
        help="evaluate a run on the MNIST test set",
        description="Test loss and accuracy of a deep run's committed network; written to its "
        "metrics.json.",
    )
    evaluate.add_argument("--run", required=True, help="run folder of `zoo deep train`")
    evaluate.add_argument(
        "--samples", type=int, default=10_000, help="test images (default: 10000)"
    )
    evaluate.add_argument(
        "--batch-size", type=int, default=256, help="images per forward pass (default: 256)"
    )
    evaluate.add_argument(
        "--kernels",
        choices=KERNELS,
        default="auto",
        help="chunk kernels: native C++ on CPU, or XLA (default: auto)",
    )
    _add_threads_flag(evaluate)
    evaluate.add_argument("--quiet", action="store_true", help="no progress bar")
    evaluate.set_defaults(handler=_eval_command)


def _add_threads_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--threads",
        type=int,
        help="threads of the native kernels, 1 or 2 (default: 2 where this process may use two "
        "cores); the same results either way, not part of the run's config; 1 on a busy machine",
    )


def _add_run_flags(parser: argparse.ArgumentParser, kernels: bool) -> None:
    parser.add_argument(
        "--run", help="run folder; an existing one resumes (default: a new runs/deep/<UTC time>)"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    if kernels:
        parser.add_argument(
            "--kernels",
            choices=KERNELS,
            default="auto",
            help="chunk kernels: native C++ on CPU, or XLA (default: auto); not part "
            "of the run's config, any choice resumes it",
        )
        _add_threads_flag(parser)


def _open(args: argparse.Namespace):
    from pathlib import Path

    from zoo.resources import require_disk, require_memory

    config = config_from_args(DeepConfig, args)
    # Sizes first: before any folder is made, memory allocated or TensorFlow loaded.
    if args.run is None or not (Path(args.run) / "weights.bin").exists():
        require_disk(Path(args.run or "runs"), config.weights_file_bytes(), config.size_flags())
    require_memory(config.memory_bytes(), config.size_flags())
    from zoo.tf_quiet import import_tensorflow

    import_tensorflow(verbose=getattr(args, "verbose", False))
    from zoo.runs import RunFolder

    return RunFolder.open(args.run, TASK, config, given=given_flags(args, DeepConfig))


def _init_command(args: argparse.Namespace) -> int:
    run = _open(args)
    with run:
        from zoo.tasks.deep_mnist.training import WEIGHTS, open_weights

        existed = run.file(WEIGHTS).exists()
        weights = open_weights(run, run.config, verbose=0 if args.quiet else 1)
        weights.close()
        state = f"exist already (step {weights.steps})" if existed else "written"
        print(f"weights {state}: {run.file(WEIGHTS)}")
    return 0


def _check_threads(args: argparse.Namespace) -> None:
    if args.threads is not None and args.threads not in (1, 2):
        raise UsageError(f"`--threads` must be 1 or 2, got {args.threads}.")


def _train_command(args: argparse.Namespace) -> int:
    _check_threads(args)
    run = _open(args)
    with run:
        from zoo.tasks.deep_mnist.training import train

        train(run, kernels=args.kernels, verbose=0 if args.quiet else 1, threads=args.threads)
    return 0


def _eval_command(args: argparse.Namespace) -> int:
    samples = min(check_positive_int("--samples", args.samples), 10_000)
    _check_threads(args)
    batch = check_positive_int("--batch-size", args.batch_size)
    from zoo.tf_quiet import import_tensorflow

    import_tensorflow(verbose=getattr(args, "verbose", False))
    from zoo.tasks.deep_mnist.training import evaluate, open_run

    with open_run(args.run) as run:
        evaluate(
            run,
            samples,
            batch,
            kernels=args.kernels,
            verbose=0 if args.quiet else 1,
            threads=args.threads,
        )
    return 0
