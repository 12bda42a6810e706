"""Config of `zoo ibs-vs-lrd` (standard library only: the CLI builds its flags from it)."""

import dataclasses

from zoo.errors import UsageError
from zoo.validation import check_choice, check_float, check_non_negative_int, check_positive_int

TASK = "ibs-vs-lrd"
SCHEDULES = ("lrd", "ibs", "ibs-equivalent", "hybrid")
DATASETS = ("mnist", "fashion_mnist", "cifar10")
CONV3_ACTIVATIONS = ("none", "relu")
MAX_BATCH_SIZE = 1 << 20
MAX_EPOCHS = 100_000
# `--quick`: a first look in minutes (`make demo`); a flag given explicitly wins over these.
QUICK = {"dataset": "mnist", "schedules": ("lrd", "ibs-equivalent"), "epochs": 30}


@dataclasses.dataclass
class ScheduleConfig:
    """The comparison; the defaults are the seed's CIFAR-10 run."""

    schedules: tuple[str, ...] = dataclasses.field(
        default=("lrd", "ibs"),
        metadata={
            "help": f"comma-separated schedules out of {','.join(SCHEDULES)}; a resume may add "
            "schedules",
            "extends": True,
        },
    )
    dataset: str = dataclasses.field(
        default="cifar10", metadata={"choices": DATASETS, "help": "tfds image dataset"}
    )
    epochs: int = dataclasses.field(
        default=150, metadata={"help": "epochs per schedule", "extends": True}
    )
    batch_size: int = dataclasses.field(
        default=128,
        metadata={"help": "batch size of epoch 1 (the ibs schedules grow it, capped at N/10)"},
    )
    learning_rate: float = dataclasses.field(
        default=0.1, metadata={"help": "learning rate of epoch 1 (plain SGD)"}
    )
    lr_decay: float = dataclasses.field(
        default=0.9, metadata={"help": "lrd's per-epoch learning-rate factor, in (0, 1]"}
    )
    ibs_growth: float = dataclasses.field(
        default=1.037, metadata={"help": "ibs's per-epoch batch-size factor, >= 1"}
    )
    conv3_activation: str = dataclasses.field(
        default="none",
        metadata={"choices": CONV3_ACTIVATIONS, "help": "activation of the 1x1 convolution"},
    )
    holdout: float = dataclasses.field(
        default=0.1, metadata={"help": "fraction of the training set held out (seeded), [0, 1)"}
    )
    train_limit: int = dataclasses.field(
        default=0, metadata={"help": "train on at most N examples (0: all)"}
    )
    seed: int = dataclasses.field(
        default=0, metadata={"help": "seed of the weights, the split and the shuffling"}
    )

    def __post_init__(self):
        self.schedules = tuple(self.schedules)
        if not self.schedules:
            raise UsageError("`--schedules` must name at least one schedule.")
        for schedule in self.schedules:
            check_choice("--schedules", schedule, SCHEDULES)
        if len(set(self.schedules)) != len(self.schedules):
            raise UsageError(f"`--schedules` names a schedule twice: {','.join(self.schedules)}.")
        check_choice("--dataset", self.dataset, DATASETS)
        check_choice("--conv3-activation", self.conv3_activation, CONV3_ACTIVATIONS)
        self.epochs = _bounded_int("--epochs", self.epochs, MAX_EPOCHS)
        self.batch_size = _bounded_int("--batch-size", self.batch_size, MAX_BATCH_SIZE)
        self.learning_rate = check_float(
            "--learning-rate", self.learning_rate, low=0.0, low_inclusive=False
        )
        self.lr_decay = check_float(
            "--lr-decay", self.lr_decay, low=0.0, high=1.0, low_inclusive=False
        )
        self.ibs_growth = check_float("--ibs-growth", self.ibs_growth, low=1.0, high=100.0)
        self.holdout = check_float(
            "--holdout", self.holdout, low=0.0, high=1.0, high_inclusive=False
        )
        self.train_limit = check_non_negative_int("--train-limit", self.train_limit)
        self.seed = check_non_negative_int("--seed", self.seed)
        if self.seed >= 2**32:
            raise UsageError(f"`--seed` must be below 2**32, got {self.seed}.")


def add_schedules(saved: tuple, given: tuple) -> tuple:
    """The schedules of a resume that adds some: `saved` first, then the new ones (so the
    stored value only grows); `given` unchanged when it drops a saved schedule."""
    if not set(saved) <= set(given):
        return tuple(given)
    return tuple(saved) + tuple(schedule for schedule in given if schedule not in saved)


def _bounded_int(name: str, value, maximum: int) -> int:
    value = check_positive_int(name, value)
    if value > maximum:
        raise UsageError(f"`{name}` must be at most {maximum:,}, got {value:,}.")
    return value
