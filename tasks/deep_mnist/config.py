"""The deep task's configs (standard library only, so `zoo deep --help` stays light)."""

import dataclasses

from zoo.errors import UsageError
from zoo.validation import check_choice, check_float, check_non_negative_int, check_positive_int

ACTIVATIONS = ("softsign", "tanh", "relu")  # zoo.deep.kernels.ACTIVATIONS, without TensorFlow
KERNELS = ("auto", "native", "xla")
INPUTS, CLASSES = 784, 10  # MNIST: flat 28 x 28 pixels, 10 digits


# A step of `-lr * gradient` beyond this only overflows (1e30 trained to weights near 1e31).
MAX_RATE = 1e6


def _field(default, help_text, **metadata):
    return dataclasses.field(default=default, metadata={"help": help_text, **metadata})


@dataclasses.dataclass
class DeepConfig:
    """A deep-core run; the defaults are a quick 10,000-layer look (the seed's smoke test).

    Saved in the run folder; a resumed run keeps it, and only `--steps` may be raised."""

    layers: int = _field(10_000, "core depth L")
    width: int = _field(4, "core width w")
    activation: str = _field("softsign", "core activation", choices=ACTIVATIONS)
    alpha: float = _field(0.0, "residual scale (0: 1/sqrt(L))")
    chunk_layers: int = _field(100_000, "layers per checkpointed chunk")
    steps: int = _field(1000, "total SGD steps", extends=True)
    batch_size: int = _field(16, "minibatch size (drawn with replacement)")
    layer_lr: float = _field(0.01, "learning rate of the core and stem")
    head_lr: float = _field(0.01, "learning rate of the head")
    seed: int = _field(0, "seed of the init and the batches")
    report_every: int = _field(10, "steps per history row")
    in_memory: bool = _field(False, "train with the core in RAM (saved every --save-every steps)")
    save_every: int = _field(100, "with --in-memory: steps between commits to the weights file")
    float64: bool = _field(False, "float64 weights (exactness checks)")

    def __post_init__(self):
        for name, high in (
            ("layers", 10**10),
            ("width", 4096),
            ("chunk_layers", 10**9),
            ("batch_size", 60_000),
            ("report_every", 10**9),
            ("save_every", 10**9),
        ):
            _check_int(name, getattr(self, name), high, positive=True)
        _check_int("steps", self.steps, 10**9, positive=True)
        _check_int("seed", self.seed, 2**32 - 1, positive=False)
        self.alpha = check_float("--alpha", self.alpha, low=0)
        for name in ("layer_lr", "head_lr"):
            setattr(
                self,
                name,
                check_float(
                    _flag(name), getattr(self, name), low=0, low_inclusive=False, high=MAX_RATE
                ),
            )
        check_choice("--activation", self.activation, ACTIVATIONS)

    @property
    def itemsize(self) -> int:
        return 8 if self.float64 else 4

    def weights_file_bytes(self) -> int:
        """The weights file's size, about: two copies of the core (the committed one and the
        spare a step writes), each layer a w x w matrix and a bias."""
        return 2 * self.layers * (self.width * self.width + self.width) * self.itemsize

    def memory_bytes(self) -> int:
        """Memory the training needs, about: the core itself with `--in-memory`, else a few
        chunks of it; the activations of a chunk at the chunk boundaries and inside one."""
        layer = (self.width * self.width + self.width) * self.itemsize
        core = (
            self.layers * layer
            if self.in_memory
            else 4 * min(self.chunk_layers, self.layers) * layer
        )
        boundaries = (self.layers // max(self.chunk_layers, 1) + 1) * self.batch_size * self.width
        inside = 3 * min(self.chunk_layers, self.layers) * self.batch_size * self.width
        return core + (boundaries + inside) * self.itemsize

    def size_flags(self) -> str:
        """The flags that set the sizes, as the user would type them."""
        flags = f"--layers {self.layers:,} --width {self.width}"
        return (
            flags
            + (" --in-memory" if self.in_memory else "")
            + (" --float64" if self.float64 else "")
        )


def _flag(name):
    return "--" + name.replace("_", "-")


def _check_int(name, value, high, positive):
    check = check_positive_int if positive else check_non_negative_int
    value = check(_flag(name), value)
    if value > high:
        raise UsageError(f"`{_flag(name)}` must be at most {high:,}, got {value:,}.")
