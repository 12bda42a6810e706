"""ArgMaxNet's settings: one dataclass per command, every field a `zoo argmax` flag.

Standard library only (plus `zoo.validation`), so `zoo argmax --help` builds its parser without
TensorFlow. The defaults of `ArgMaxConfig` are the seed's recipe; `ArgMaxConfig.for_recipe`
gives the improved one.
"""

import dataclasses
from typing import Any

from zoo.errors import UsageError
from zoo.resources import require_memory
from zoo.tasks.argmax.budget import BLOCKS, count_parameters, widest_hidden
from zoo.validation import (
    check_choice,
    check_float,
    check_non_negative_int,
    check_positive_int,
)

SCORES = 10
"""Scores per example: the network learns the argmax of 10 numbers."""

PARAMETER_BUDGET = 3821
"""The seed network's parameter count, the default budget of a search."""

RECIPES = ("seed", "improved")

IMPROVED = {
    "batch_size": 250,
    "learning_rate": 3e-3,
    "lr_decay": 0.96,
    "steps_per_episode": 10_000,
    "episodes": 120,
}
"""The improved recipe: Adam on the mean squared error at batch 250 (10x the seed's), lr 3e-3
decayed by 0.96 per 10,000-step episode, 120 episodes. Same network, same parameter count."""

MAX_SEED = 2**31 - 1

MAX_LEARNING_RATE = 10.0
"""The largest learning rate accepted (any recipe, and the search's range): the seed's is 1e-4,
the improved recipe's 3e-3; 10 already diverges at once."""

MAX_EVAL_INSTANCES = 10**7
"""Most scores evaluated after each episode (`--eval-batches` x `--eval-batch-size`), a few
seconds; the seed evaluates 5,000."""

MAX_TEST_INSTANCES = 10**8
"""Most scores of one test protocol (`--batches` x `--batch-size`), under a minute; the seed's
is 50,000."""

FLOAT_BYTES = 4
HELD_INSTANCES = 100_000
"""Scores the test protocol's inference-only timing holds in memory (the seed's 50,000 fit)."""


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _check_ints(config: Any, limits: dict) -> None:
    for name, limit in limits.items():
        value = check_positive_int(_flag(name), getattr(config, name))
        if value > limit:
            raise UsageError(f"`{_flag(name)}` must be at most {limit:,}, got {value:,}.")


def _check_seed(seed: Any) -> None:
    check_non_negative_int("--seed", seed)
    if seed > MAX_SEED:
        raise UsageError(f"`--seed` must be at most {MAX_SEED}, got {seed}.")


def _check_product(config: Any, first: str, second: str, limit: int, what: str) -> None:
    product = getattr(config, first) * getattr(config, second)
    if product > limit:
        raise UsageError(
            f"`{_flag(first)}` x `{_flag(second)}` must be at most {limit:,} {what}, got "
            f"{getattr(config, first):,} x {getattr(config, second):,} = {product:,}."
        )


def _check_learning_rate(name: str, value: Any, low: float = 0.0) -> float:
    return check_float(name, value, low=low, low_inclusive=False, high=MAX_LEARNING_RATE)


def _field(default: Any, help_text: str, **metadata: Any) -> Any:
    return dataclasses.field(default=default, metadata={"help": help_text, **metadata})


@dataclasses.dataclass
class ArgMaxConfig:
    """One ArgMaxNet training run; the defaults are the seed's recipe.

    Args:
        recipe: `"seed"` (SGD with momentum on the summed squared error, as the original) or
            `"improved"` (Adam on the mean; build it with `ArgMaxConfig.for_recipe`).
        episodes: episodes to train (Keras epochs); may be raised to extend a run.
        steps_per_episode: optimizer steps per episode; momentum restarts every episode.
        batch_size: scores per training batch.
        learning_rate: learning rate of episode 1.
        lr_decay: learning-rate factor per episode, `lr_e = learning_rate * lr_decay**(e - 1)`.
        momentum: SGD momentum (seed recipe only).
        depth: number of residual blocks.
        hidden: hidden width of each block.
        block: `"residual"` or `"multiply"`.
        eval_batches: batches of fresh scores evaluated after each episode.
        eval_batch_size: scores per evaluation batch.
        steps_per_execution: at most this many steps per compiled call (the largest divisor
            of `steps_per_episode` not above it, so that an episode is exactly its steps).
        seed: seed of the initial weights and of every batch.

    Example:

    >>> ArgMaxConfig.for_recipe("improved", episodes=3).batch_size
    250
    """

    recipe: str = _field(
        "seed", "seed: SGD as the original; improved: Adam, batch 250", choices=RECIPES
    )
    episodes: int = _field(100, "episodes (Keras epochs) to train", extends=True)
    steps_per_episode: int = _field(15_000, "optimizer steps per episode")
    batch_size: int = _field(25, "scores per training batch")
    learning_rate: float = _field(1e-4, "learning rate of episode 1")
    lr_decay: float = _field(0.98, "learning-rate factor per episode")
    momentum: float = _field(0.9, "SGD momentum, reset every episode (seed recipe only)")
    depth: int = _field(3, "number of blocks")
    hidden: int = _field(60, "hidden width of each block")
    block: str = _field("residual", "block kind", choices=BLOCKS)
    eval_batches: int = _field(10, "batches of fresh scores evaluated after each episode")
    eval_batch_size: int = _field(500, "scores per evaluation batch")
    steps_per_execution: int = _field(500, "at most this many steps per compiled call")
    seed: int = _field(0, "seed of the weights and of every batch")

    def __post_init__(self) -> None:
        check_choice("--recipe", self.recipe, RECIPES)
        check_choice("--block", self.block, BLOCKS)
        _check_ints(
            self,
            {
                "episodes": 1_000_000,
                "steps_per_episode": 10**9,
                "batch_size": 1_000_000,
                "depth": 1_000,
                "hidden": 100_000,
                "eval_batches": 100_000,
                "eval_batch_size": 1_000_000,
                "steps_per_execution": 100_000,
            },
        )
        _check_product(
            self, "eval_batches", "eval_batch_size", MAX_EVAL_INSTANCES, "scores per evaluation"
        )
        _check_seed(self.seed)
        self.learning_rate = _check_learning_rate("--learning-rate", self.learning_rate)
        self.lr_decay = check_float("--lr-decay", self.lr_decay, low=0, high=1, low_inclusive=False)
        self.momentum = check_float(
            "--momentum", self.momentum, low=0, high=1, high_inclusive=False
        )

    @classmethod
    def for_recipe(cls, recipe: str = "seed", **overrides: Any) -> "ArgMaxConfig":
        """The config of `recipe` with `overrides` (field values) applied on top.

        Raises `UsageError` for `momentum` with the improved recipe, which uses Adam.
        """
        check_choice("--recipe", recipe, RECIPES)
        if recipe == "improved" and "momentum" in overrides:
            raise UsageError(
                "`--momentum` applies to the seed recipe (SGD); the improved recipe uses Adam."
            )
        base = IMPROVED if recipe == "improved" else {}
        return cls(**{**base, **overrides, "recipe": recipe})

    @property
    def execution_steps(self) -> int:
        """Steps per compiled call: the largest divisor of `steps_per_episode` that is at
        most `steps_per_execution`, so that every episode runs exactly its steps."""
        return largest_divisor(self.steps_per_episode, self.steps_per_execution)


def largest_divisor(number: int, at_most: int) -> int:
    """The largest divisor of `number` that is at most `at_most`."""
    for candidate in range(min(number, at_most), 0, -1):
        if number % candidate == 0:
            return candidate
    return 1


@dataclasses.dataclass
class ArgMaxTestConfig:
    """The seed's test protocol: `batches` batches of `batch_size` fresh scores."""

    batches: int = _field(100, "batches of fresh scores")
    batch_size: int = _field(500, "scores per batch")
    seed: int = _field(2024, "seed of the test scores")

    def __post_init__(self) -> None:
        _check_ints(self, {"batches": 1_000_000, "batch_size": 1_000_000})
        _check_product(self, "batches", "batch_size", MAX_TEST_INSTANCES, "scores per test")
        _check_seed(self.seed)


@dataclasses.dataclass
class ArgMaxTuneConfig:
    """A keras-tuner random search over ArgMaxNet architectures within a parameter budget.

    The search space (`max_depth`, `blocks`, the learning-rate range), the trial length
    (`steps`, `batch_size`), the `budget` and the `seed` are fixed for a search: resuming it
    with other values is refused. `trials` may be raised to continue a search.
    """

    trials: int = _field(10, "candidates to train", extends=True)
    steps: int = _field(3000, "training steps per trial")
    budget: int = _field(PARAMETER_BUDGET, "maximum parameters of a candidate")
    batch_size: int = _field(250, "scores per training batch")
    max_depth: int = _field(6, "deepest candidate (blocks)")
    blocks: tuple[str, ...] = _field(BLOCKS, "block kinds searched")
    min_learning_rate: float = _field(1e-4, "lowest Adam learning rate searched")
    max_learning_rate: float = _field(1e-2, "highest Adam learning rate searched")
    validation_batches: int = _field(10, "validation batches of fresh scores per trial")
    validation_batch_size: int = _field(500, "scores per validation batch")
    seed: int = _field(0, "seed of the search, the weights and the data")

    def __post_init__(self) -> None:
        _check_ints(
            self,
            {
                "trials": 100_000,
                "steps": 10**9,
                "budget": 10**9,
                "batch_size": 1_000_000,
                "max_depth": 100,
                "validation_batches": 100_000,
                "validation_batch_size": 1_000_000,
            },
        )
        _check_product(
            self,
            "validation_batches",
            "validation_batch_size",
            MAX_EVAL_INSTANCES,
            "scores per validation",
        )
        _check_seed(self.seed)
        self.blocks = tuple(self.blocks)
        if not self.blocks:
            raise UsageError("`--blocks` must name at least one block kind.")
        for block in self.blocks:
            check_choice("--blocks", block, BLOCKS)
        if len(set(self.blocks)) != len(self.blocks):
            raise UsageError(f"`--blocks` names a block kind twice: {','.join(self.blocks)}.")
        self.min_learning_rate = _check_learning_rate("--min-learning-rate", self.min_learning_rate)
        self.max_learning_rate = _check_learning_rate(
            "--max-learning-rate", self.max_learning_rate, low=self.min_learning_rate
        )
        smallest = max(count_parameters(self.max_depth, 1, block) for block in self.blocks)
        if self.budget < smallest:
            raise UsageError(
                f"`--budget` must be at least {smallest:,} (the narrowest {self.max_depth}-block "
                f"candidate), got {self.budget:,}."
            )


def held_batches(batches: int, batch_size: int) -> int:
    """Batches the test protocol's inference-only timing holds: at most 100 (the seed's
    protocol) and at most `HELD_INSTANCES` scores, at least one batch."""
    return max(1, min(batches, 100, HELD_INSTANCES // batch_size))


def memory_needed(
    depth: int,
    hidden: int,
    block: str = "residual",
    *,
    batch_size: int = 0,
    eval_batch_size: int = 0,
    optimizer_slots: int = 1,
    test_batch_size: int = 500,
    test_batches: int = 100,
) -> int:
    """Bytes (float32) a network of `depth` blocks of width `hidden` needs to train at
    `batch_size` and evaluate at `eval_batch_size` and at the test protocol's sizes: the
    weights with their gradients, `optimizer_slots` slots and an update's temporaries; a
    training step's activations, kept for the backward pass and matched by as many gradients
    (a multiply block keeps three `hidden`-wide tensors per block, a residual block two, both
    counted as three); an evaluation batch's two widest live tensors; the protocol's held
    scores and labels. A generous estimate, to refuse at once what cannot fit, not a budget.

    Example:

    >>> memory_needed(3, 60, batch_size=25, eval_batch_size=500) < 10**7
    True
    >>> memory_needed(3, 100_000, batch_size=1_000_000, eval_batch_size=500) > 10**12
    True
    """
    parameters = count_parameters(depth, hidden, block)
    weights = parameters * (3 + optimizer_slots)
    per_block = 3 * hidden + 3 * SCORES
    training = batch_size * (2 * depth * per_block + 4 * SCORES)
    evaluation = max(eval_batch_size, test_batch_size) * 2 * (3 * hidden + 4 * SCORES)
    held = held_batches(test_batches, test_batch_size) * test_batch_size * (SCORES + 1)
    return FLOAT_BYTES * (weights + training + evaluation + held)


def require_memory_for(config: ArgMaxConfig) -> None:
    """Raises `ResourceError` (one line naming the size flags and the figures) unless this
    machine has the memory `config` needs to train, before anything is written or allocated."""
    needed = memory_needed(
        config.depth,
        config.hidden,
        config.block,
        batch_size=config.batch_size,
        eval_batch_size=config.eval_batch_size,
        optimizer_slots=2 if config.recipe == "improved" else 1,
    )
    require_memory(
        needed,
        f"--depth {config.depth} --hidden {config.hidden} --block {config.block} "
        f"--batch-size {config.batch_size} --eval-batch-size {config.eval_batch_size}",
    )


def require_memory_for_test(config: ArgMaxTestConfig, depth: int, hidden: int, block: str) -> None:
    """Raises `ResourceError` unless the test protocol of `config` on a network of `depth`
    blocks of width `hidden` fits in this machine's memory."""
    needed = memory_needed(
        depth, hidden, block, test_batch_size=config.batch_size, test_batches=config.batches
    )
    require_memory(
        needed,
        f"--batches {config.batches} --batch-size {config.batch_size} (a network of {depth} "
        f"{block} blocks of width {hidden})",
    )


def require_memory_for_search(config: ArgMaxTuneConfig) -> None:
    """Raises `ResourceError` unless the search's largest candidate (the widest network within
    `--budget` at any depth and block kind searched) fits in this machine's memory."""
    needed = 0
    for block in config.blocks:
        for depth in range(1, config.max_depth + 1):
            hidden = widest_hidden(depth, block, config.budget)
            if hidden is not None:
                needed = max(
                    needed,
                    memory_needed(
                        depth,
                        hidden,
                        block,
                        batch_size=config.batch_size,
                        eval_batch_size=config.validation_batch_size,
                        optimizer_slots=2,
                    ),
                )
    require_memory(
        needed,
        f"--budget {config.budget} --batch-size {config.batch_size} "
        f"--validation-batch-size {config.validation_batch_size}",
    )
