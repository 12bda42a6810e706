"""Metrics of the zoo: the ArgMaxNet error rate and the reasoning-ops tolerance accuracy."""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from zoo.errors import UsageError

DEFAULT_TOLERANCE = 10**-0.5 / 2


def rounded_index_error(y_true: Any, y_pred: Any) -> Any:
    """1.0 where `round(pred) != label`, else 0.0; one value per example.

    Example:

    >>> import keras
    >>> from zoo.metrics import rounded_index_error
    >>> errors = rounded_index_error([0.0, 9.0, 3.0], [[0.49], [8.51], [4.0]])
    >>> keras.ops.convert_to_numpy(errors).tolist()
    [0.0, 0.0, 1.0]
    """
    y_true = ops.convert_to_tensor(y_true)
    y_pred = ops.reshape(ops.convert_to_tensor(y_pred), ops.shape(y_true))
    return ops.cast(ops.not_equal(ops.round(y_pred), ops.cast(y_true, y_pred.dtype)), "float32")


def tolerance_accuracy(y_true: Any, y_pred: Any, tolerance: float = DEFAULT_TOLERANCE) -> Any:
    """1.0 where `|pred - label| < tolerance`, element-wise.

    Example:

    >>> import keras
    >>> from zoo.metrics import tolerance_accuracy
    >>> keras.ops.convert_to_numpy(tolerance_accuracy([1.0, 1.0], [1.1, 1.2])).tolist()
    [1.0, 0.0]
    """
    y_pred = ops.convert_to_tensor(y_pred)
    y_true = ops.cast(ops.convert_to_tensor(y_true), y_pred.dtype)
    return ops.cast(ops.less(ops.abs(y_pred - y_true), tolerance), "float32")


@keras.saving.register_keras_serializable(package="zoo")
class RoundedIndexError(keras.metrics.MeanMetricWrapper):
    """Error rate of an index regressed as a float: `mean(round(pred) != label)`.

    ArgMaxNet's "Err": the network outputs the argmax index as a real number,
    and a prediction counts as right when it rounds to the label.

    Args:
        name: metric name. Defaults to `"err"`.
        dtype: dtype of the metric's result. Defaults to `keras.config.floatx()`.

    Example:

    >>> from zoo.metrics import RoundedIndexError
    >>> metric = RoundedIndexError()
    >>> metric.update_state([2.0, 2.0], [2.4, 2.6])
    >>> float(metric.result())
    0.5

    References:
        sparseinference/argmaxnet (seed `000`).
    """

    def __init__(self, name: str = "err", dtype: str | None = None) -> None:
        super().__init__(fn=rounded_index_error, name=name, dtype=dtype)

    def get_config(self) -> dict[str, Any]:
        # As Keras's own wrappers: the fixed `fn` stays out of the config.
        return {"name": self.name, "dtype": self.dtype}


@keras.saving.register_keras_serializable(package="zoo")
class ToleranceAccuracy(keras.metrics.MeanMetricWrapper):
    """Element-wise accuracy within a tolerance: `mean(|pred - label| < tolerance)`.

    Args:
        tolerance: float > 0. Defaults to `10**-0.5 / 2` (about 0.158), the
            reasoning-operations seed's threshold.
        name: metric name. Defaults to `"accuracy"`.
        dtype: dtype of the metric's result. Defaults to `keras.config.floatx()`.

    Example:

    >>> from zoo.metrics import ToleranceAccuracy
    >>> metric = ToleranceAccuracy()
    >>> metric.update_state([[1.0, 0.0]], [[1.1, 0.2]])
    >>> float(metric.result())
    0.5

    References:
        Octavian-ai/reasoning-operations (seed `004`).
    """

    def __init__(
        self, tolerance: float = DEFAULT_TOLERANCE, name: str = "accuracy", dtype: str | None = None
    ) -> None:
        if isinstance(tolerance, bool) or not isinstance(tolerance, (int, float)) or tolerance <= 0:
            raise UsageError(f"`tolerance` must be a float > 0, got {tolerance!r}.")
        super().__init__(fn=tolerance_accuracy, name=name, dtype=dtype, tolerance=tolerance)
        self.tolerance = tolerance

    def get_config(self) -> dict[str, Any]:
        # As Keras's own wrappers: the fixed `fn` stays out of the config.
        return {"tolerance": self.tolerance, "name": self.name, "dtype": self.dtype}
