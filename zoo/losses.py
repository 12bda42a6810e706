"""Losses of the zoo: the set-min random loss (seed `001`), the `1 - max` term, and two
multiple-hypothesis losses for stacked subnets, `MultipleChoiceLoss` (stochastic multiple choice
learning) and `RelaxedWinnerTakesAllLoss`."""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from zoo.errors import UsageError


@keras.saving.register_keras_serializable(package="zoo")
class SetMinRandomLoss(keras.losses.Loss):
    """Trains, per example, one of K subnets: the best one after log-space noise.

    `y_pred` stacks the K subnets' predictions on axis 1. For each example,
    `L_k` is subnet k's mean squared error to the target and the trained
    subnet is `k* = argmin_k(log L_k + sigma * eps_k)` with `eps ~ N(0, 1)`
    drawn per example and subnet; the loss is `L_k*`. Working in log space
    keeps a huge `sigma` finite: `sigma = 0` is the plain minimum over
    subnets, a very large `sigma` picks a uniformly random subnet.

    `sigma` lives in a non-trainable variable so a callback can follow a
    schedule during `fit` (`loss.sigma.assign(10.0)`).

    Args:
        sigma: float >= 0, the log-space standard deviation of the noise.
        seed: int or None, seed of the noise.
        epsilon: float > 0 added to `L_k` before the log.
        reduction: how per-example losses combine, as in `keras.losses.Loss`.
        name: loss name. Defaults to `"set_min_random_loss"`.
        dtype: dtype of the loss computations. Defaults to `keras.config.floatx()`.

    Call arguments:
        y_true: targets of shape `(batch, *features)`.
        y_pred: predictions of shape `(batch, K, *features)`.

    Example:

    >>> import keras
    >>> from zoo.losses import SetMinRandomLoss
    >>> loss = SetMinRandomLoss(sigma=0.0)
    >>> y_true = keras.ops.zeros((1, 2))
    >>> y_pred = keras.ops.convert_to_tensor([[[1.0, 1.0], [0.1, 0.1]]])
    >>> round(float(loss(y_true, y_pred)), 4)  # the second subnet's error
    0.01

    References:
        The set-min random loss notes (seed `001`); the log-space reading of
        "log-space standard deviation" is this project's.
    """

    def __init__(
        self,
        sigma: float = 0.0,
        seed: int | None = None,
        epsilon: float = 1e-12,
        reduction: str | None = "sum_over_batch_size",
        name: str = "set_min_random_loss",
        dtype: str | None = None,
    ) -> None:
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        if not isinstance(sigma, (int, float)) or sigma < 0:
            raise UsageError(f"`sigma` must be a float >= 0, got {sigma!r}.")
        if not isinstance(epsilon, (int, float)) or epsilon <= 0:
            raise UsageError(f"`epsilon` must be > 0, got {epsilon!r}.")
        self.sigma = keras.Variable(float(sigma), trainable=False, dtype="float32", name="sigma")
        self.seed = seed
        self.epsilon = epsilon
        self.seed_generator = keras.random.SeedGenerator(seed)

    def subnet_losses(self, y_true: Any, y_pred: Any) -> Any:
        """Per-example, per-subnet mean squared error, shape `(batch, K)`."""
        return _subnet_squared_errors(y_true, y_pred, "SetMinRandomLoss")

    def select(self, subnet_losses: Any) -> Any:
        """Index of the subnet each example trains, shape `(batch,)`."""
        noise = keras.random.normal(ops.shape(subnet_losses), seed=self.seed_generator)
        sigma = ops.cast(self.sigma, subnet_losses.dtype)
        noise = ops.cast(noise, subnet_losses.dtype)
        scores = ops.log(subnet_losses + self.epsilon) + sigma * noise
        return ops.argmin(scores, axis=1)

    def call(self, y_true: Any, y_pred: Any) -> Any:
        losses = self.subnet_losses(y_true, y_pred)
        chosen = self.select(losses)
        return ops.take_along_axis(losses, ops.expand_dims(chosen, 1), axis=1)[:, 0]

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "sigma": float(ops.convert_to_numpy(self.sigma)),
                "seed": self.seed,
                "epsilon": self.epsilon,
                # keras.losses.Loss leaves its dtype out of the config.
                "dtype": self.dtype,
            }
        )
        return config


@keras.saving.register_keras_serializable(package="zoo")
class OneMinusMax(keras.losses.Loss):
    """`1 - max(p)` per example: pushes a probability vector towards a unit vector.

    The target is ignored; attach it to the softmax output whose peakedness
    you want to reward (the "FLoss" of seed `001`).

    Args:
        reduction: how per-example losses combine, as in `keras.losses.Loss`.
        name: loss name. Defaults to `"one_minus_max"`.
        dtype: dtype of the loss computations. Defaults to `keras.config.floatx()`.

    Call arguments:
        y_true: ignored (any tensor with a batch axis).
        y_pred: probabilities of shape `(batch, classes)`.

    Example:

    >>> import keras
    >>> from zoo.losses import OneMinusMax
    >>> loss = OneMinusMax()
    >>> p = keras.ops.convert_to_tensor([[0.7, 0.2, 0.1], [0.5, 0.5, 0.0]])
    >>> round(float(loss(keras.ops.zeros((2, 1)), p)), 4)  # mean of 0.3 and 0.5
    0.4

    References:
        The memory-informed network notes (seed `001`).
    """

    def __init__(
        self,
        reduction: str | None = "sum_over_batch_size",
        name: str = "one_minus_max",
        dtype: str | None = None,
    ) -> None:
        super().__init__(name=name, reduction=reduction, dtype=dtype)

    def call(self, y_true: Any, y_pred: Any) -> Any:
        return 1.0 - ops.max(y_pred, axis=-1)

    def get_config(self) -> dict[str, Any]:
        # keras.losses.Loss leaves its dtype out of the config.
        return {**super().get_config(), "dtype": self.dtype}


def _subnet_squared_errors(y_true: Any, y_pred: Any, loss_name: str) -> Any:
    """Per-example, per-subnet mean squared error `(batch, K)` of predictions stacked on axis 1."""
    y_pred = ops.convert_to_tensor(y_pred)
    y_true = ops.cast(ops.convert_to_tensor(y_true), y_pred.dtype)
    if len(y_pred.shape) != len(y_true.shape) + 1:
        raise UsageError(
            f"`y_pred` of {loss_name} must have one more axis than `y_true` (the subnets, "
            f"axis 1); got shapes {tuple(y_pred.shape)} and {tuple(y_true.shape)}."
        )
    squared = ops.square(y_pred - ops.expand_dims(y_true, 1))
    feature_axes = tuple(range(2, len(y_pred.shape)))
    return ops.mean(squared, axis=feature_axes) if feature_axes else squared


@keras.saving.register_keras_serializable(package="zoo")
class MultipleChoiceLoss(keras.losses.Loss):
    """The oracle loss of stochastic multiple choice learning: the best of K subnets.

    `y_pred` stacks the K subnets' predictions on axis 1. Per example the loss
    is `min_k L_k`, `L_k` subnet k's mean squared error, and the gradient
    reaches only the winning subnet `argmin_k L_k` (one winner also on ties).
    This is `SetMinRandomLoss(sigma=0)`, under the name of the literature.

    Args:
        reduction: how per-example losses combine, as in `keras.losses.Loss`.
        name: loss name. Defaults to `"multiple_choice_loss"`.
        dtype: dtype of the loss computations. Defaults to `keras.config.floatx()`.

    Call arguments:
        y_true: targets of shape `(batch, *features)`.
        y_pred: predictions of shape `(batch, K, *features)`.

    Example:

    >>> import keras
    >>> from zoo.losses import MultipleChoiceLoss
    >>> y_true = keras.ops.zeros((1, 2))
    >>> y_pred = keras.ops.convert_to_tensor([[[1.0, 1.0], [0.1, 0.1]]])
    >>> round(float(MultipleChoiceLoss()(y_true, y_pred)), 4)  # the second subnet's error
    0.01

    References:
        Lee et al. 2016, "Stochastic Multiple Choice Learning for Training
        Diverse Deep Ensembles"; Guzman-Rivera et al. 2012, "Multiple Choice
        Learning".
    """

    def __init__(
        self,
        reduction: str | None = "sum_over_batch_size",
        name: str = "multiple_choice_loss",
        dtype: str | None = None,
    ) -> None:
        super().__init__(name=name, reduction=reduction, dtype=dtype)

    def subnet_losses(self, y_true: Any, y_pred: Any) -> Any:
        """Per-example, per-subnet mean squared error, shape `(batch, K)`."""
        return _subnet_squared_errors(y_true, y_pred, "MultipleChoiceLoss")

    def call(self, y_true: Any, y_pred: Any) -> Any:
        losses = self.subnet_losses(y_true, y_pred)
        winners = ops.expand_dims(ops.argmin(losses, axis=1), 1)
        return ops.take_along_axis(losses, winners, axis=1)[:, 0]

    def get_config(self) -> dict[str, Any]:
        # keras.losses.Loss leaves its dtype out of the config.
        return {**super().get_config(), "dtype": self.dtype}


@keras.saving.register_keras_serializable(package="zoo")
class RelaxedWinnerTakesAllLoss(keras.losses.Loss):
    """Relaxed winner-takes-all over K subnets: the best gets most of the weight.

    `y_pred` stacks the K subnets' predictions on axis 1. Per example, with
    `L_k` subnet k's mean squared error and `k* = argmin_k L_k`, the loss is
    `(1 - relaxation) * L_k* + relaxation / (K - 1) * sum_{k != k*} L_k`.
    The small weight on the losers keeps every subnet learning, so none is
    left dead at its initial output as under the plain minimum
    (`relaxation = 0` is `MultipleChoiceLoss`). With one subnet the loss is
    its error.

    Args:
        relaxation: float in `[0, 1)`, the total weight of the non-winners
            (the paper's epsilon). Defaults to 0.05.
        reduction: how per-example losses combine, as in `keras.losses.Loss`.
        name: loss name. Defaults to `"relaxed_winner_takes_all_loss"`.
        dtype: dtype of the loss computations. Defaults to `keras.config.floatx()`.

    Call arguments:
        y_true: targets of shape `(batch, *features)`.
        y_pred: predictions of shape `(batch, K, *features)`.

    Example:

    >>> import keras
    >>> from zoo.losses import RelaxedWinnerTakesAllLoss
    >>> loss = RelaxedWinnerTakesAllLoss(relaxation=0.1)
    >>> y_true = keras.ops.zeros((1, 2))
    >>> y_pred = keras.ops.convert_to_tensor([[[1.0, 1.0], [0.1, 0.1]]])
    >>> round(float(loss(y_true, y_pred)), 4)  # 0.9 * 0.01 + 0.1 * 1.0
    0.109

    References:
        Rupprecht et al. 2017, "Learning in an Uncertain World: Representing
        Ambiguity Through Multiple Hypotheses".
    """

    def __init__(
        self,
        relaxation: float = 0.05,
        reduction: str | None = "sum_over_batch_size",
        name: str = "relaxed_winner_takes_all_loss",
        dtype: str | None = None,
    ) -> None:
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        if (
            isinstance(relaxation, bool)
            or not isinstance(relaxation, (int, float))
            or not 0.0 <= relaxation < 1.0
        ):
            raise UsageError(f"`relaxation` must be a float in [0, 1), got {relaxation!r}.")
        self.relaxation = float(relaxation)

    def subnet_losses(self, y_true: Any, y_pred: Any) -> Any:
        """Per-example, per-subnet mean squared error, shape `(batch, K)`."""
        return _subnet_squared_errors(y_true, y_pred, "RelaxedWinnerTakesAllLoss")

    def subnet_weights(self, subnet_losses: Any) -> Any:
        """Each subnet's weight per example, `(batch, K)`, summing to 1 over K."""
        subnets = subnet_losses.shape[1]
        winners = ops.one_hot(ops.argmin(subnet_losses, axis=1), subnets, dtype=subnet_losses.dtype)
        if subnets == 1:
            return winners
        loser_weight = self.relaxation / (subnets - 1)
        return winners * (1.0 - self.relaxation) + (1.0 - winners) * loser_weight

    def call(self, y_true: Any, y_pred: Any) -> Any:
        losses = self.subnet_losses(y_true, y_pred)
        return ops.sum(ops.stop_gradient(self.subnet_weights(losses)) * losses, axis=1)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        # keras.losses.Loss leaves its dtype out of the config.
        config.update({"relaxation": self.relaxation, "dtype": self.dtype})
        return config
