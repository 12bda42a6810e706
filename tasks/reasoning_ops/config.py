"""The sweep's configuration: what a run folder of `zoo reasoning-ops run` is a sweep of.

Standard library only, so that `zoo reasoning-ops --help` builds its parser without importing
TensorFlow. `SweepConfig` is stored in the run folder's `config.json`; on resume it is the
truth, and a different `--profile`, `--tasks`, `--datasets`, `--networks` or `--seed` is a
one-line `ResumeMismatchError`. `Protocol` is the per-experiment training recipe a profile names.
"""

import dataclasses

from zoo.errors import UsageError
from zoo.validation import check_choice, check_float, check_non_negative_int, check_positive_int

WIDTH = 128
MAX_EXAMPLES = 2**24  # example index x 256 positions must fit the 32-bit counters

DATASETS = ("one_hot", "many_hot", "random", "random_pos", "random_pos_seed")
SEED_DATASETS = ("one_hot", "many_hot", "random", "random_pos")
TASK_NAMES = (
    "reduce_sum",
    "reduce_max",
    "concat",
    "dot",
    "elementwise_mul",
    "elementwise_add",
    "one_hot_sum",
    "equality",
    "logical_and",
    "logical_or",
    "logical_xor",
    "almost_equal",
)
SEED_TASKS = tuple(name for name in TASK_NAMES if name != "almost_equal")
NETWORKS = ("dense", "dense_residual", "multiply", "multiply_simple")
ACTIVATIONS = ("linear", "tanh", "relu", "sigmoid", "selu")
QUICK_NETWORKS = (
    "dense-1-linear",
    "dense_residual-2-relu",
    "multiply-1-linear",
    "multiply_simple-1-linear",
)
SEED_NETWORKS = tuple(
    f"{kind}-{depth}-{activation}"
    for kind in ("dense", "dense_residual")
    for depth in (1, 2, 3)
    for activation in ACTIVATIONS
) + ("multiply-1-linear", "multiply_simple-1-linear")


def parse_network(name: str) -> tuple:
    """`(network, depth, activation)` of a grid name such as `"dense_residual-2-relu"`.

    Example:

    >>> parse_network("dense-3-tanh")
    ('dense', 3, 'tanh')
    """
    parts = str(name).split("-")
    if len(parts) != 3 or parts[0] not in NETWORKS or parts[2] not in ACTIVATIONS:
        raise UsageError(
            f"`--networks` entries are NETWORK-DEPTH-ACTIVATION with NETWORK one of "
            f"{', '.join(NETWORKS)} and ACTIVATION one of {', '.join(ACTIVATIONS)}; got {name!r}."
        )
    network, depth, activation = parts
    if depth not in ("1", "2", "3"):
        raise UsageError(f"`--networks`: the depth must be 1, 2 or 3; got {name!r}.")
    if network.startswith("multiply") and (depth, activation) != ("1", "linear"):
        raise UsageError(
            f"`--networks`: {network} has no depth or activation; write {network}-1-linear, "
            f"got {name!r}."
        )
    return network, int(depth), activation


@dataclasses.dataclass(frozen=True)
class Protocol:
    """The seed's per-experiment training protocol.

    Adam on the MSE at batch `batch`; a learning-rate search over `lrs` (`search_steps` each,
    from the same initial weights and a fresh Adam) that stops at the first rate reaching
    `solved` accuracy; when none does, a `final_steps` run at the best rate. Accuracy on the
    test set is checked every `eval_every` steps of the search (every `final_eval_every` of the
    final run) and training stops once it reaches `solved`; the reported `global_step` is where
    it stopped, as in the seed's CSV.

    Divergence: a rate whose loss becomes NaN or infinite is a failed candidate (counted in
    `diverged_lrs`, never the best); if every rate diverges, or the final run does, the
    experiment fails (`zoo.errors.DivergenceError`).
    """

    lrs: tuple = tuple(10.0**exponent for exponent in range(-6, 3))
    search_steps: int = 1000
    final_steps: int = 30000
    solved: float = 0.99
    batch: int = 32
    train_size: int = 1_000_000
    test_size: int = 4000
    eval_every: int = 100
    final_eval_every: int = 1000

    def __post_init__(self):
        for name in (
            "search_steps",
            "final_steps",
            "batch",
            "train_size",
            "test_size",
            "eval_every",
            "final_eval_every",
        ):
            check_positive_int(name, getattr(self, name))
        if not self.lrs:
            raise UsageError("`lrs` must name at least one learning rate.")
        for lr in self.lrs:
            check_float("lrs", lr, low=0, low_inclusive=False)
        check_float("solved", self.solved, low=0, high=1)
        if self.train_size + self.test_size > MAX_EXAMPLES:
            raise UsageError(
                f"`train_size` + `test_size` must be at most {MAX_EXAMPLES:,}, "
                f"got {self.train_size + self.test_size:,}."
            )


PROFILES = {
    "seed": Protocol(),
    "quick": Protocol(
        lrs=(1e-4, 1e-3, 1e-2, 1e-1),
        search_steps=300,
        final_steps=1500,
        train_size=100_000,
        test_size=2000,
        final_eval_every=500,
    ),
    "test": Protocol(
        lrs=(1e-2, 1e-1),
        search_steps=20,
        final_steps=30,
        train_size=2000,
        test_size=200,
        eval_every=10,
        final_eval_every=10,
    ),
}
PROFILE_GRIDS = {  # (tasks, datasets, networks) a profile sweeps unless the flags say otherwise
    "seed": (SEED_TASKS, SEED_DATASETS, SEED_NETWORKS),
    "quick": (TASK_NAMES, ("one_hot", "random_pos"), QUICK_NETWORKS),
    "test": (SEED_TASKS, SEED_DATASETS, QUICK_NETWORKS),
}


def _check_subset(flag: str, values: tuple, allowed: tuple) -> tuple:
    values = tuple(values)
    for value in values:
        if value not in allowed:
            raise UsageError(f"`{flag}` must list values from {', '.join(allowed)}; got {value!r}.")
    if len(set(values)) != len(values):
        raise UsageError(f"`{flag}` lists a value twice: {','.join(values)}.")
    return values


@dataclasses.dataclass
class SweepConfig:
    """What a sweep's run folder holds: the profile and the grid (tasks x datasets x networks).

    Empty `tasks`, `datasets` or `networks` mean the profile's own; they are resolved when the
    config is made, so `config.json` lists exactly what the sweep runs.

    Example:

    >>> config = SweepConfig(profile="test", tasks=("dot",), datasets=("random",))
    >>> config.networks
    ('dense-1-linear', 'dense_residual-2-relu', 'multiply-1-linear', 'multiply_simple-1-linear')
    >>> config.experiments
    4
    """

    profile: str = dataclasses.field(
        default="quick",
        metadata={
            "help": "seed: the seed's full grid and protocol; quick: all tasks x 2 "
            "datasets x 4 networks, short search; test: a few seconds per "
            "experiment",
            "choices": tuple(PROFILES),
        },
    )
    tasks: tuple = dataclasses.field(
        default=(),
        metadata={"help": f"subset of tasks ({', '.join(TASK_NAMES)}); none: the profile's"},
    )
    datasets: tuple = dataclasses.field(
        default=(),
        metadata={"help": f"subset of datasets ({', '.join(DATASETS)}); none: the profile's"},
    )
    networks: tuple = dataclasses.field(
        default=(),
        metadata={
            "help": "networks as NETWORK-DEPTH-ACTIVATION, e.g. "
            "dense-2-relu,multiply-1-linear; none: the profile's"
        },
    )
    seed: int = dataclasses.field(
        default=0, metadata={"help": "seed of the data and of every network's initial weights"}
    )

    def __post_init__(self):
        check_choice("--profile", self.profile, tuple(PROFILES))
        self.seed = check_non_negative_int("--seed", self.seed)
        if self.seed >= 2**32:
            raise UsageError(f"`--seed` must be below 2**32, got {self.seed}.")
        tasks, datasets, networks = PROFILE_GRIDS[self.profile]
        self.tasks = _check_subset("--tasks", self.tasks, TASK_NAMES) or tasks
        self.datasets = _check_subset("--datasets", self.datasets, DATASETS) or datasets
        self.networks = tuple(self.networks) or networks
        for name in self.networks:
            parse_network(name)
        _check_subset("--networks", self.networks, self.networks)

    @property
    def protocol(self) -> Protocol:
        return PROFILES[self.profile]

    @property
    def experiments(self) -> int:
        return len(self.tasks) * len(self.datasets) * len(self.networks)
