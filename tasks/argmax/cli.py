"""`zoo argmax train|test|tune`: the command line of the ArgMaxNet task.

Light at import (argparse, `zoo.config` and the task's config module only): the handlers import
TensorFlow and the heavy modules when they run, so `zoo argmax --help` answers at once.
"""

import argparse
from pathlib import Path

from zoo.config import add_config_arguments, config_from_args, given_flags
from zoo.tasks.argmax.config import (
    ArgMaxConfig,
    ArgMaxTestConfig,
    ArgMaxTuneConfig,
    require_memory_for,
    require_memory_for_search,
    require_memory_for_test,
)

TASK = "argmax"


def register(subparsers) -> None:
    """Adds `zoo argmax` and its commands to the `zoo` parser."""
    parser = subparsers.add_parser(
        "argmax",
        help="ArgMaxNet: learn the index of the largest of 10 scores (seed 000)",
        description="ArgMaxNet: learn the index of the largest of 10 scores (seed 000).",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    train = commands.add_parser(
        "train",
        help="train with the seed's or the improved recipe (resumes an existing --run)",
        description="Train ArgMaxNet. An existing --run resumes with its saved settings; "
        "only --episodes may be raised.",
    )
    add_config_arguments(train, ArgMaxConfig)
    train.add_argument(
        "--run", help="run folder; an existing one resumes (default: a new runs/argmax/<UTC time>)"
    )
    train.add_argument(
        "--quiet", action="store_true", help="no progress bar (the per-episode line stays)"
    )
    train.set_defaults(handler=_train_command)

    test = commands.add_parser(
        "test",
        help="the seed's test: 100 batches of 500 fresh scores",
        description="The seed's test protocol on a trained model: loss, Err and time per "
        "instance. Reads the run folder, writes nothing.",
    )
    add_config_arguments(test, ArgMaxTestConfig)
    source = test.add_mutually_exclusive_group(required=True)
    source.add_argument("--run", help="a finished argmax run folder")
    source.add_argument("--model", metavar="FILE.keras", help="a saved ArgMaxNet file")
    source.add_argument(
        "--preset", metavar="NAME", help="a trained preset shipped with the zoo (`zoo presets`)"
    )
    test.set_defaults(handler=_test_command)

    tune = commands.add_parser(
        "tune",
        help="keras-tuner search over architectures under a parameter budget",
        description="A keras-tuner random search over depth, width, block kind and learning "
        "rate, every candidate within --budget parameters. Each run starts a new search "
        "folder; --resume DIR continues one (only --trials may be raised).",
    )
    add_config_arguments(tune, ArgMaxTuneConfig)
    tune.add_argument(
        "--run", help="folder of a new search (default: a new runs/argmax-tune/<UTC time>)"
    )
    tune.add_argument("--resume", metavar="DIR", help="continue the search in DIR")
    tune.add_argument("--quiet", action="store_true", help="no progress output per trial")
    tune.set_defaults(handler=_tune_command)


def _train_command(args: argparse.Namespace) -> int:
    from zoo.runs import RunFolder
    from zoo.tf_quiet import import_tensorflow

    given = given_flags(args, ArgMaxConfig)
    fields = {key: value for key, value in given.items() if key != "recipe"}
    config = ArgMaxConfig.for_recipe(given.get("recipe", "seed"), **fields)
    # Before any folder is made or memory allocated (a resumed run checks its saved settings
    # again in `train`).
    require_memory_for(config)
    # The folder is checked (owner, lock, saved settings) before TensorFlow loads.
    with RunFolder.open(args.run, TASK, config, given=given) as run:
        import_tensorflow(verbose=getattr(args, "verbose", False))
        from zoo.tasks.argmax.training import train

        train(config, run, verbose=0 if args.quiet else None)
    return 0


def _test_command(args: argparse.Namespace) -> int:
    config = config_from_args(ArgMaxTestConfig, args)
    if args.preset:
        from zoo.presets import preset_path

        model_path = preset_path(args.preset)  # sha256 checked
    else:
        model_path = _model_of_run(Path(args.run)) if args.run else Path(args.model)
    from zoo.tf_quiet import import_tensorflow

    import_tensorflow(verbose=getattr(args, "verbose", False))
    from zoo.tasks.argmax.evaluation import load, seed_test_protocol

    model = load(model_path)
    require_memory_for_test(
        config,
        getattr(model, "depth", 3),
        getattr(model, "hidden", 60),
        getattr(model, "block", "residual"),
    )
    seed_test_protocol(model, config.batches, config.batch_size, config.seed)
    return 0


def _model_of_run(path: Path) -> Path:
    """The model file of a finished argmax run folder (its history verified)."""
    from zoo.runs import MODEL, RunFolder

    with RunFolder.existing(path, TASK, ArgMaxConfig(), needs=MODEL) as run:
        return run.model_path


def _tune_command(args: argparse.Namespace) -> int:
    from zoo.tf_quiet import import_tensorflow

    given = given_flags(args, ArgMaxTuneConfig)
    config = config_from_args(ArgMaxTuneConfig, args)
    require_memory_for_search(config)
    import_tensorflow(verbose=getattr(args, "verbose", False))
    from zoo.tasks.argmax.hypermodel import require_keras_tuner

    require_keras_tuner()  # before any folder is made
    from zoo.tasks.argmax.search import TRIALS, open_search, tune

    with open_search(config, args.run, args.resume, given) as run:
        frame = tune(run, verbose=0 if args.quiet else 1)
    print(frame.to_string(index=False))
    best = frame.iloc[0]
    print(
        f"{len(frame)} trials in {run.file(TRIALS)}; best: trial {best['trial']}, "
        f"{best['depth']} x {best['block']} (hidden {best['hidden']}, "
        f"{best['parameters']} parameters), validation Err {best['val_err']}"
    )
    return 0
