"""Configs of the memory-AE commands (standard library only: the CLI builds its flags from them).

`MemoryAEConfig` is one training run (`zoo memory-ae train`); `CompareConfig` is the notes'
comparison (`zoo memory-ae compare`), whose variants fix the model, optimizer, learning rate,
`1 - max(F)` weight and sigma of each of their sub-runs (see `VARIANTS`).
"""

import dataclasses
from typing import Optional

from zoo.errors import UsageError
from zoo.validation import check_choice, check_float, check_non_negative_int, check_positive_int

TASK = "memory-ae"
COMPARE_TASK = "memory-ae-compare"
PIXELS = 784
MODELS = ("memory", "setmin")
OPTIMIZERS = ("adam", "signsgd")
SIGNSGD_MOMENTUM = 0.9
MAX_EPOCHS = 100_000
MAX_BATCH_SIZE = 1 << 20
MAX_WIDTH = 1 << 16
# Adam and SignSGD take steps of about the learning rate: beyond this every run diverges.
MAX_RATE = 100.0
MNIST_TRAIN_IMAGES = 60_000


def parse_sigma(text: str) -> Optional[float]:
    """`None` for `"schedule"`, else the constant sigma (finite, >= 0); `UsageError` naming
    `--sigma` otherwise."""
    if text == "schedule":
        return None
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise UsageError(f"`--sigma` must be 'schedule' or a number >= 0, got {text!r}.") from None
    return check_float("--sigma", value, low=0.0)


@dataclasses.dataclass
class MemoryAEConfig:
    """One training run of `MemoryInformedAE` or `SetMinAE` on PCA codes of MNIST."""

    model: str = dataclasses.field(
        default="memory",
        metadata={"choices": MODELS, "help": "memory: MemoryInformedAE; setmin: SetMinAE"},
    )
    code_dims: int = dataclasses.field(default=6, metadata={"help": "dl, the PCA code size"})
    slots: int = dataclasses.field(default=10, metadata={"help": "mn, memory slots (model memory)"})
    subnets: int = dataclasses.field(default=5, metadata={"help": "K, decoders (model setmin)"})
    hidden: int = dataclasses.field(default=512, metadata={"help": "approximator hidden width"})
    floss_weight: float = dataclasses.field(
        default=0.0, metadata={"help": "weight of the 1 - max(F) term (model memory)"}
    )
    sigma: str = dataclasses.field(
        default="schedule",
        metadata={
            "help": "set-min noise (model setmin): 'schedule' (1 : 2 : 1 of the run at 1, 10, "
            "100) or a constant >= 0"
        },
    )
    optimizer: str = dataclasses.field(
        default="adam",
        metadata={
            "choices": OPTIMIZERS,
            "help": f"adam, or signsgd (momentum {SIGNSGD_MOMENTUM})",
        },
    )
    learning_rate: float = dataclasses.field(
        default=1e-3, metadata={"help": "learning rate (signsgd: the step size)"}
    )
    epochs: int = dataclasses.field(
        default=10, metadata={"help": "epochs over the training images", "extends": True}
    )
    batch_size: int = dataclasses.field(default=128, metadata={"help": "batch size"})
    train_limit: int = dataclasses.field(
        default=0, metadata={"help": "train on the first N training images (0: all 60,000)"}
    )
    seed: int = dataclasses.field(
        default=0, metadata={"help": "seed of the weights, the shuffling and the set-min noise"}
    )

    def __post_init__(self):
        check_choice("--model", self.model, MODELS)
        check_choice("--optimizer", self.optimizer, OPTIMIZERS)
        self.code_dims = check_positive_int("--code-dims", self.code_dims)
        if self.code_dims > PIXELS:
            raise UsageError(f"`--code-dims` must be at most {PIXELS}, got {self.code_dims}.")
        self.slots = bounded_int("--slots", self.slots, 1000)
        self.subnets = bounded_int("--subnets", self.subnets, 1000)
        self.hidden = bounded_int("--hidden", self.hidden, MAX_WIDTH)
        self.floss_weight = check_float("--floss-weight", self.floss_weight, low=0.0)
        parse_sigma(self.sigma)
        self.learning_rate = check_float(
            "--learning-rate", self.learning_rate, low=0.0, low_inclusive=False, high=MAX_RATE
        )
        self.epochs = bounded_int("--epochs", self.epochs, MAX_EPOCHS)
        self.batch_size = bounded_int("--batch-size", self.batch_size, MAX_BATCH_SIZE)
        self.train_limit = check_non_negative_int("--train-limit", self.train_limit)
        if self.train_limit > MNIST_TRAIN_IMAGES:
            raise UsageError(
                f"`--train-limit` must be at most {MNIST_TRAIN_IMAGES:,} (the MNIST training "
                f"images; 0 means all), got {self.train_limit:,}."
            )
        self.seed = _seed("--seed", self.seed)

    def estimated_bytes(self) -> int:
        """Memory the training needs, about: weights, gradients and two optimizer slots per
        parameter, and a batch's activations (forward and backward) in float32."""
        if self.model == "memory":
            parameters = (
                2 * self.code_dims * self.hidden
                + self.hidden * self.slots * (PIXELS + 1)
                + self.slots * PIXELS
            )
            activations = self.batch_size * (2 * self.hidden + 2 * self.slots * PIXELS)
        else:
            parameters = self.subnets * (self.code_dims * self.hidden + self.hidden * PIXELS)
            activations = self.batch_size * self.subnets * (self.hidden + 2 * PIXELS)
        return 4 * (4 * parameters + 2 * activations)

    def size_flags(self) -> str:
        """The flags that set `estimated_bytes`, for the message that refuses them."""
        width = f"--slots {self.slots}" if self.model == "memory" else f"--subnets {self.subnets}"
        return f"--hidden {self.hidden} {width} --batch-size {self.batch_size}"

    @property
    def constant_sigma(self) -> Optional[float]:
        """The constant sigma, or None under the notes' schedule."""
        return parse_sigma(self.sigma)

    def describe(self) -> str:
        """The variant in words, for plot titles: model, optimizer, loss."""
        optimizer = (
            f"Adam lr {self.learning_rate:g}"
            if self.optimizer == "adam"
            else f"SignSGD step {self.learning_rate:g}, momentum {SIGNSGD_MOMENTUM}"
        )
        if self.model == "memory":
            loss = "MSE on both outputs"
            if self.floss_weight:
                loss += f" + {self.floss_weight:g} x (1 - max F)"
            return f"MemoryInformedAE ({self.slots} slots), {optimizer}, {loss}"
        sigma = (
            "sigma 1 / 10 / 100 schedule" if self.constant_sigma is None else f"sigma {self.sigma}"
        )
        return f"SetMinAE ({self.subnets} subnets), {optimizer}, set-min random loss, {sigma}"


# The notes' comparisons: each variant is a sub-run `<compare run>/<name>` whose config is the
# compare config's shared fields plus these settings.
VARIANTS = {
    "memory-adam": {"model": "memory", "optimizer": "adam", "learning_rate": 1e-3},
    "memory-adam-floss": {
        "model": "memory",
        "optimizer": "adam",
        "learning_rate": 1e-3,
        "floss_weight": 0.1,
    },
    "memory-signsgd": {"model": "memory", "optimizer": "signsgd", "learning_rate": 1e-4},
    "setmin-schedule": {
        "model": "setmin",
        "optimizer": "adam",
        "learning_rate": 1e-3,
        "sigma": "schedule",
    },
    "setmin-sigma0": {"model": "setmin", "optimizer": "adam", "learning_rate": 1e-3, "sigma": "0"},
}


@dataclasses.dataclass
class CompareConfig:
    """The notes' comparisons, each variant a sub-run trained with the shared settings below."""

    variants: tuple[str, ...] = dataclasses.field(
        default=tuple(VARIANTS),
        metadata={"help": f"comma-separated variants out of {','.join(VARIANTS)}"},
    )
    code_dims: int = dataclasses.field(default=6, metadata={"help": "dl, the PCA code size"})
    slots: int = dataclasses.field(default=10, metadata={"help": "mn, memory slots"})
    subnets: int = dataclasses.field(default=5, metadata={"help": "K, set-min decoders"})
    hidden: int = dataclasses.field(default=512, metadata={"help": "approximator hidden width"})
    epochs: int = dataclasses.field(
        default=10, metadata={"help": "epochs of every variant", "extends": True}
    )
    batch_size: int = dataclasses.field(default=128, metadata={"help": "batch size"})
    train_limit: int = dataclasses.field(
        default=0, metadata={"help": "train on the first N training images (0: all 60,000)"}
    )
    seed: int = dataclasses.field(default=0, metadata={"help": "seed of every variant"})
    target_mse: float = dataclasses.field(
        default=0.03, metadata={"help": "test MSE for the seconds-to-reach columns"}
    )

    def __post_init__(self):
        self.variants = tuple(self.variants)
        if not self.variants:
            raise UsageError("`--variants` must name at least one variant.")
        for name in self.variants:
            check_choice("--variants", name, VARIANTS)
        if len(set(self.variants)) != len(self.variants):
            raise UsageError(f"`--variants` names a variant twice: {','.join(self.variants)}.")
        self.target_mse = check_float(
            "--target-mse", self.target_mse, low=0.0, high=1.0, low_inclusive=False
        )
        self.variant_config(self.variants[0])  # validates the shared fields

    def variant_config(self, name: str) -> MemoryAEConfig:
        """The training config of variant `name`."""
        shared = {
            field.name: getattr(self, field.name)
            for field in dataclasses.fields(MemoryAEConfig)
            if hasattr(self, field.name)
        }
        return MemoryAEConfig(**{**shared, **VARIANTS[name]})


def bounded_int(name: str, value, maximum: int) -> int:
    value = check_positive_int(name, value)
    if value > maximum:
        raise UsageError(f"`{name}` must be at most {maximum:,}, got {value:,}.")
    return value


def _seed(name: str, value) -> int:
    value = check_non_negative_int(name, value)
    if value >= 2**32:
        raise UsageError(f"`{name}` must be below 2**32, got {value}.")
    return value
