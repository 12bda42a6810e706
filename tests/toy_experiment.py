"""A toy experiment defined only in the tests: the worked example of CONTRIBUTING.md.

A two-layer regression on synthetic data. It has no lifecycle code of its own: resume,
kill-safety, divergence handling, signals, disk-full handling and TensorBoard all come from
`zoo.lifecycle.TrainingRun`, and it passes the same fault suite (`tests/faults.py`) as the
five tasks.

Run it as `python -m tests.toy_experiment train --run FOLDER [--epochs N] ...`.
"""

import argparse
import dataclasses
import sys

import keras
import numpy as np

from zoo.config import add_config_arguments, config_from_args, given_flags
from zoo.errors import ZooError
from zoo.lifecycle import TrainingRun, TrainingState
from zoo.validation import check_float, check_positive_int

TASK = "toy"


# --- config: every field is a flag; `extends` fields may be raised on resume ---------------


@dataclasses.dataclass
class ToyConfig:
    epochs: int = dataclasses.field(
        default=4, metadata={"extends": True, "help": "epochs to train (raise it to extend)"}
    )
    learning_rate: float = dataclasses.field(default=0.05, metadata={"help": "SGD step size"})
    samples: int = dataclasses.field(default=256, metadata={"help": "training examples"})
    batch_size: int = dataclasses.field(default=32, metadata={"help": "examples per step"})
    seed: int = dataclasses.field(default=0, metadata={"help": "data and initialisation seed"})

    def __post_init__(self):
        check_positive_int("--epochs", self.epochs)
        check_float("--learning-rate", self.learning_rate, low=0, low_inclusive=False, high=1e3)
        check_positive_int("--samples", self.samples)
        check_positive_int("--batch-size", self.batch_size)


# --- data: a function of (seed, epoch), so a resumed epoch sees the batches it would have ---


def make_data(config: ToyConfig):
    generator = np.random.default_rng(config.seed)
    inputs = generator.normal(size=(config.samples, 4)).astype("float32")
    targets = (inputs @ np.array([[1.0], [-2.0], [0.5], [3.0]], "float32")).astype("float32")
    return inputs, targets


def epoch_order(config: ToyConfig, epoch: int):
    return np.random.default_rng([config.seed, epoch]).permutation(config.samples)


class EpochBatches(keras.utils.PyDataset):
    """The training batches; epoch `e` is ordered by `(seed, e)`, so a resumed epoch sees the
    batches an uninterrupted run would have."""

    def __init__(self, config: ToyConfig, first_epoch: int):
        super().__init__()
        self.config = config
        self.inputs, self.targets = make_data(config)
        self.epoch = first_epoch
        self.order = epoch_order(config, self.epoch)

    def __len__(self):
        return -(-self.config.samples // self.config.batch_size)

    def __getitem__(self, index):
        size = self.config.batch_size
        rows = self.order[index * size : (index + 1) * size]
        return self.inputs[rows], self.targets[rows]

    def on_epoch_end(self):
        self.epoch += 1
        self.order = epoch_order(self.config, self.epoch)


# --- model ----------------------------------------------------------------------------------


def build_model(config: ToyConfig):
    keras.utils.set_random_seed(config.seed)
    model = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(8, activation="tanh"), keras.layers.Dense(1)]
    )
    model.compile(keras.optimizers.SGD(config.learning_rate, momentum=0.9), loss="mse")
    return model


# --- training: the recipe inside the lifecycle ----------------------------------------------


def train(config: ToyConfig, path=None, *, given=None, verbose=None):
    with TrainingRun(TASK, config, path, given=given, verbose=verbose) as session:
        if session.finished:
            print(f"toy: {session.run.path} is finished; nothing to do.")
            return session.run
        config = session.config
        model = build_model(config)
        state = TrainingState(model)
        session.restore(state)
        print(f"toy: {session.describe_start()}; run folder {session.run.path}", flush=True)
        model.fit(
            EpochBatches(config, session.step),
            epochs=config.epochs,
            initial_epoch=session.step,
            shuffle=False,
            verbose=session.verbose,
            callbacks=session.callbacks(state),
        )
        session.run.save_model(model)
        loss = float(session.run.history()["loss"].iloc[-1])
        session.finish(loss=loss, epochs=config.epochs)
        print(f"toy: {config.epochs} epochs, loss {loss:.6f}; run folder {session.run.path}")
    return session.run


# --- cli --------------------------------------------------------------------------------------


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="toy")
    commands = parser.add_subparsers(dest="command", required=True)
    command = commands.add_parser("train")
    command.add_argument("--run", default=None)
    command.add_argument("--quiet", action="store_true")
    add_config_arguments(command, ToyConfig)
    args = parser.parse_args(argv)
    try:
        config = config_from_args(ToyConfig, args)
        train(
            config, args.run, given=given_flags(args, ToyConfig), verbose=0 if args.quiet else None
        )
    except ZooError as error:
        print(f"zoo: error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
