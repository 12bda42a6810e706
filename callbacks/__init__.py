"""Training dynamics: learning-rate and batch-size schedules and the SignSGD optimizer."""

from zoo.callbacks.exp_decay import ExpDecay
from zoo.callbacks.increasing_batch_size import (
    IncreasingBatchSize,
    batch_size_at,
    equivalent_batch_schedule,
)
from zoo.callbacks.sign_sgd import SignSGD

__all__ = [
    "ExpDecay",
    "IncreasingBatchSize",
    "SignSGD",
    "batch_size_at",
    "equivalent_batch_schedule",
]
