"""The four schedules as `(ExpDecay, IncreasingBatchSize)` pairs; epoch `e` counts from 0.

- `lrd`: batch `b`, `lr = lr0 * decay**e`.
- `ibs`: lr `lr0`, `batch = int(b * growth**e)` capped at N / 10 (the seed's 1.037).
- `ibs-equivalent`: lr `lr0`, the batch grown by exactly the factor lrd decays the lr
  (`1 / decay` per epoch, Smith et al.'s rule), capped at N / 10.
- `hybrid`: both halfway: the lr decays by `sqrt(decay)` and the batch grows by
  `1 / sqrt(decay)` per epoch, so the SGD noise scale `lr / batch` falls as fast as under lrd
  (the seed's TODO, our reading).

A constant learning rate is `ExpDecay(1.0)`, so every schedule logs its rate. Each `ExpDecay`
is given `lr0` explicitly, so a model loaded from a checkpoint (whose optimizer holds an already
decayed rate) resumes on the same curve.
"""

import math

from zoo.callbacks import ExpDecay, IncreasingBatchSize
from zoo.errors import UsageError

from .config import SCHEDULES


def batch_cap(train_size: int, batch_size: int) -> int:
    """The ibs schedules' largest batch: a tenth of the training set (at least `batch_size`)."""
    return max(batch_size, train_size // 10)


def schedule_callbacks(
    schedule: str,
    train_size: int,
    batch_size: int = 128,
    learning_rate: float = 0.1,
    lr_decay: float = 0.9,
    ibs_growth: float = 1.037,
):
    """`(ExpDecay, IncreasingBatchSize)` of `schedule` for a training set of `train_size`.

    Example:

    >>> lr_schedule, ibs = schedule_callbacks("ibs-equivalent", 45000)
    >>> lr_schedule.rate, [ibs.batch_size_at(epoch) for epoch in range(3)]
    (1.0, [128, 142, 158])
    """
    cap = batch_cap(train_size, batch_size)

    def decay(rate):
        return ExpDecay(rate, initial_learning_rate=learning_rate)

    if schedule == "lrd":
        return decay(lr_decay), IncreasingBatchSize(batch_size, 1.0, batch_size)
    if schedule == "ibs":
        return decay(1.0), IncreasingBatchSize(batch_size, ibs_growth, cap)
    if schedule == "ibs-equivalent":
        return decay(1.0), IncreasingBatchSize(batch_size, 1.0 / lr_decay, cap)
    if schedule == "hybrid":
        half = math.sqrt(lr_decay)
        return decay(half), IncreasingBatchSize(batch_size, 1.0 / half, cap)
    raise UsageError(f"`schedule` must be one of {', '.join(SCHEDULES)}, got {schedule!r}.")
