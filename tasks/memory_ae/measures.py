"""What the notes observed, as numbers: slot use, selection entropy, subnet specialisation;
and the callbacks that log them (and follow the sigma schedule) every epoch."""

import keras
import numpy as np
from keras import ops


def slots_used(selection: np.ndarray) -> int:
    """How many slots are the argmax of `F` for at least one example.

    Example:

    >>> import numpy as np
    >>> slots_used(np.eye(4)[[0, 0, 2]])
    2
    """
    return int(len(np.unique(np.argmax(selection, axis=1))))


def selection_perplexity(selection: np.ndarray) -> float:
    """`exp(entropy(mean of F))`: 1 when every example uses one slot, `slots` when all share.

    Example:

    >>> import numpy as np
    >>> round(selection_perplexity(np.full((3, 4), 0.25)), 6)
    4.0
    """
    mean = np.clip(np.mean(selection, axis=0), 1e-12, None)
    return float(np.exp(-np.sum(mean * np.log(mean))))


def winner_histogram(subnet_outputs: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """How many examples each subnet reconstructs best (the sigma-0 winner)."""
    errors = np.mean((subnet_outputs - targets[:, None, :]) ** 2, axis=2)
    return np.bincount(np.argmin(errors, axis=1), minlength=subnet_outputs.shape[1])


def mean_pairwise_distance(subnet_outputs: np.ndarray) -> float:
    """Mean over subnet pairs and examples of the RMS difference of their outputs."""
    k = subnet_outputs.shape[1]
    distances = [
        np.sqrt(np.mean((subnet_outputs[:, i] - subnet_outputs[:, j]) ** 2, axis=1)).mean()
        for i in range(k)
        for j in range(i + 1, k)
    ]
    return float(np.mean(distances)) if distances else 0.0


class MemoryMeasures(keras.callbacks.Callback):
    """Logs, every epoch: both outputs' test MSE, the slots used and the selection perplexity.

    Args:
        codes: test codes.
        images: test images, `(examples, units)`.
    """

    def __init__(self, codes: np.ndarray, images: np.ndarray):
        super().__init__()
        self.codes, self.images = codes, images

    def on_epoch_end(self, epoch, logs=None):
        memory, informed = self.model.predict(self.codes, batch_size=1000, verbose=0)
        selection = ops.convert_to_numpy(self.model.selection(self.codes))
        logs.update(
            {
                "test_mse_memory": float(np.mean((memory - self.images) ** 2)),
                "test_mse_informed": float(np.mean((informed - self.images) ** 2)),
                "slots_used": slots_used(selection),
                "selection_perplexity": selection_perplexity(selection),
            }
        )


class SetMinMeasures(keras.callbacks.Callback):
    """Logs, every epoch: sigma, the best subnet's test MSE, subnet win counts and spread.

    Args:
        codes: test codes.
        images: test images, `(examples, units)`.
        loss: the `SetMinRandomLoss` (for its sigma).
    """

    def __init__(self, codes: np.ndarray, images: np.ndarray, loss):
        super().__init__()
        self.codes, self.images, self.loss = codes, images, loss

    def on_epoch_end(self, epoch, logs=None):
        outputs = self.model.predict(self.codes, batch_size=1000, verbose=0)
        wins = winner_histogram(outputs, self.images)
        best = np.min(np.mean((outputs - self.images[:, None, :]) ** 2, axis=2), axis=1)
        logs.update(
            {
                "sigma": float(ops.convert_to_numpy(self.loss.sigma)),
                "test_mse_best_subnet": float(best.mean()),
                "mean_pairwise_distance": mean_pairwise_distance(outputs),
                "subnets_winning": int(np.count_nonzero(wins)),
                **{f"wins_subnet_{k}": int(count) for k, count in enumerate(wins)},
            }
        )


class SigmaSchedule(keras.callbacks.Callback):
    """Piecewise-constant sigma over the run, a function of the epoch only.

    Args:
        loss: the `SetMinRandomLoss` whose `sigma` variable is set.
        epochs: int, the run's epochs.
        stages: `(share of the run, sigma)` pairs; defaults to the notes' 1 : 2 : 1 of the run
            at sigma 1, 10, 100.

    Example:

    >>> from zoo.losses import SetMinRandomLoss
    >>> schedule = SigmaSchedule(SetMinRandomLoss(), epochs=4)
    >>> [schedule.sigma_at(epoch) for epoch in range(4)]
    [1.0, 10.0, 10.0, 100.0]
    """

    def __init__(self, loss, epochs: int, stages=((1, 1.0), (2, 10.0), (1, 100.0))):
        super().__init__()
        self.loss, self.epochs, self.stages = loss, epochs, stages

    def sigma_at(self, epoch: int) -> float:
        total = sum(share for share, _ in self.stages)
        position = (epoch + 0.5) / self.epochs * total
        for share, sigma in self.stages:
            if position < share:
                return sigma
            position -= share
        return self.stages[-1][1]

    def on_epoch_begin(self, epoch, logs=None):
        self.loss.sigma.assign(self.sigma_at(epoch))
