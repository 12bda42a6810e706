"""The study's settings: its conditions (a small grammar: `dl<code size>-<variant>`,
`memory-<optimizer>-<init>[-pretrain]`) and `StudyConfig`, every field a flag of
`zoo memory-ae study`. Light at import (standard library and `zoo.config`)."""

import dataclasses
import math
import re
from typing import NamedTuple, Optional

from zoo.errors import UsageError
from zoo.validation import check_float, check_non_negative_int

from .config import bounded_int

TASK = "memory-ae-study"
PIXELS = 784
SETMIN_VARIANTS = ("single", "schedule", "reverse", "rwta", "smcl", "sigma<x>")
SCHEDULES = {
    "schedule": ((1, 1.0), (2, 10.0), (1, 100.0)),
    "reverse": ((1, 100.0), (2, 10.0), (1, 1.0)),
}
OPTIMIZERS = ("adam", "signsgd")
MEMORY_INITS = ("glorot", "samples", "kmeans")
SIGNSGD_MOMENTUM = 0.9
# The goal for a set-min condition.
GOAL_BITS = 0.5
GOAL_DISTANCE_RATIO = 0.5
GOAL_MSE_RATIO = 1.1

# In order of priority: what the study measured first is what a short run still shows.
DEFAULT_CONDITIONS = (
    "dl2-single", "dl2-rwta", "dl2-smcl", "dl2-schedule", "dl2-reverse", "dl6-single",
    "dl6-rwta", "memory-adam-glorot", "memory-adam-samples", "memory-adam-kmeans",
    "memory-signsgd-glorot", "memory-signsgd-samples", "memory-signsgd-kmeans",
    "memory-adam-glorot-pretrain", "dl10-single", "dl10-rwta", "memory-signsgd-glorot-pretrain",
    "dl6-smcl", "dl2-sigma10", "dl6-schedule",
)  # fmt: skip


class Condition(NamedTuple):
    """One parsed condition name."""

    name: str
    family: str  # "setmin" or "memory"
    code_dims: int
    variant: str  # set-min: the variant; memory: the optimizer
    sigma: Optional[float] = None  # set-min `sigma<x>`
    init: str = "glorot"  # memory
    pretrain: bool = False  # memory


def parse_condition(name: str, memory_code_dims: int = 6) -> Condition:
    """The condition `name` means; `UsageError` naming `--conditions` when it means none.

    Example:

    >>> parse_condition("dl2-sigma10")
    Condition(name='dl2-sigma10', family='setmin', code_dims=2, variant='sigma', sigma=10.0, \
init='glorot', pretrain=False)
    >>> parse_condition("memory-signsgd-kmeans-pretrain").pretrain
    True
    """
    setmin = re.fullmatch(r"dl(\d+)-([a-z]+)([0-9.e+-]*)", name)
    if setmin:
        code_dims, variant, number = int(setmin[1]), setmin[2], setmin[3]
        if not 1 <= code_dims <= PIXELS:
            raise UsageError(f"`--conditions`: {name}: the code size must be in 1..{PIXELS}.")
        if variant == "sigma" and number:
            try:
                sigma = float(number)
            except ValueError:
                sigma = -1.0
            if not math.isfinite(sigma) or sigma < 0:
                raise UsageError(f"`--conditions`: {name}: sigma must be a number >= 0.")
            return Condition(name, "setmin", code_dims, "sigma", sigma)
        if variant in SETMIN_VARIANTS and not number:
            return Condition(name, "setmin", code_dims, variant)
    memory = re.fullmatch(r"memory-([a-z]+)-([a-z]+)(-pretrain)?", name)
    if memory and memory[1] in OPTIMIZERS and memory[2] in MEMORY_INITS:
        return Condition(
            name, "memory", memory_code_dims, memory[1], init=memory[2], pretrain=bool(memory[3])
        )
    raise UsageError(
        f"`--conditions`: unknown condition {name!r}; set-min conditions are "
        f"dl<code size>-<{'|'.join(SETMIN_VARIANTS)}> (e.g. dl2-rwta, dl6-sigma10), memory "
        f"conditions memory-<{'|'.join(OPTIMIZERS)}>-<{'|'.join(MEMORY_INITS)}>[-pretrain]."
    )


@dataclasses.dataclass
class StudyConfig:
    """The study's settings; every field is a flag of `zoo memory-ae study`."""

    conditions: tuple[str, ...] = dataclasses.field(
        default=DEFAULT_CONDITIONS,
        metadata={
            "help": "the conditions to train, in order: dl<code size>-<single|schedule|reverse|"
            "rwta|smcl|sigma<x>> and memory-<adam|signsgd>-<glorot|samples|kmeans>[-pretrain]; "
            "the list may change on a rerun (finished conditions are reused)"
        },
    )
    setmin_epochs: int = dataclasses.field(
        default=5, metadata={"help": "epochs of every set-min condition"}
    )
    memory_epochs: int = dataclasses.field(
        default=5, metadata={"help": "epochs of every memory condition"}
    )
    subnets: int = dataclasses.field(default=5, metadata={"help": "K, set-min decoders"})
    relaxation: float = dataclasses.field(
        default=0.05, metadata={"help": "rwta: total weight of the non-winning subnets"}
    )
    slots: int = dataclasses.field(default=10, metadata={"help": "mn, memory slots"})
    memory_code_dims: int = dataclasses.field(
        default=6, metadata={"help": "dl of the memory conditions"}
    )
    hidden: int = dataclasses.field(default=512, metadata={"help": "approximator hidden width"})
    learning_rate: float = dataclasses.field(default=1e-3, metadata={"help": "Adam's rate"})
    signsgd_learning_rate: float = dataclasses.field(
        default=1e-4, metadata={"help": f"SignSGD's step (momentum {SIGNSGD_MOMENTUM})"}
    )
    batch_size: int = dataclasses.field(default=128, metadata={"help": "batch size"})
    train_limit: int = dataclasses.field(
        default=0, metadata={"help": "train on the first N training images (0: all 60,000)"}
    )
    test_limit: int = dataclasses.field(
        default=0, metadata={"help": "measure on the first N test images (0: all 10,000)"}
    )
    seed: int = dataclasses.field(default=0, metadata={"help": "seed of every condition"})

    def __post_init__(self):
        self.conditions = tuple(self.conditions)
        if not self.conditions:
            raise UsageError("`--conditions` must name at least one condition.")
        if len(set(self.conditions)) != len(self.conditions):
            raise UsageError(f"`--conditions` names a condition twice: {self.conditions}.")
        for field in ("setmin_epochs", "memory_epochs"):
            bounded_int("--" + field.replace("_", "-"), getattr(self, field), 10_000)
        self.subnets = bounded_int("--subnets", self.subnets, 100)
        self.slots = bounded_int("--slots", self.slots, 1000)
        self.hidden = bounded_int("--hidden", self.hidden, 1 << 16)
        self.batch_size = bounded_int("--batch-size", self.batch_size, 1 << 20)
        self.memory_code_dims = bounded_int("--memory-code-dims", self.memory_code_dims, PIXELS)
        self.relaxation = check_float(
            "--relaxation", self.relaxation, low=0.0, high=1.0, high_inclusive=False
        )
        for flag in ("learning_rate", "signsgd_learning_rate"):
            value = check_float(
                "--" + flag.replace("_", "-"), getattr(self, flag), low=0.0, low_inclusive=False
            )
            setattr(self, flag, value)
        self.train_limit = check_non_negative_int("--train-limit", self.train_limit)
        self.test_limit = check_non_negative_int("--test-limit", self.test_limit)
        self.seed = check_non_negative_int("--seed", self.seed)
        if self.seed >= 2**32:
            raise UsageError(f"`--seed` must be below 2**32, got {self.seed}.")
        for name in self.conditions:
            parse_condition(name, self.memory_code_dims)
