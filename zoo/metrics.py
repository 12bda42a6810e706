"""Metrics of the zoo: the ArgMaxNet error rate and the reasoning-ops tolerance accuracy."""

import keras
from keras import ops

DEFAULT_TOLERANCE = 10**-0.5 / 2


def rounded_index_error(y_true, y_pred):
    """1.0 where `round(pred) != label`, else 0.0; one value per example."""
    y_true = ops.convert_to_tensor(y_true)
    y_pred = ops.reshape(ops.convert_to_tensor(y_pred), ops.shape(y_true))
    return ops.cast(ops.not_equal(ops.round(y_pred), ops.cast(y_true, y_pred.dtype)), "float32")


def tolerance_accuracy(y_true, y_pred, tolerance=DEFAULT_TOLERANCE):
    """1.0 where `|pred - label| < tolerance`, element-wise."""
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

    Example:

    >>> metric = RoundedIndexError()
    >>> metric.update_state([2.0, 2.0], [2.4, 2.6])
    >>> float(metric.result())
    0.5

    References:
        sparseinference/argmaxnet (seed `000`).
    """

    def __init__(self, name="err", dtype=None):
        super().__init__(fn=rounded_index_error, name=name, dtype=dtype)

    def get_config(self):
        return {"name": self.name, "dtype": self.dtype}


@keras.saving.register_keras_serializable(package="zoo")
class ToleranceAccuracy(keras.metrics.MeanMetricWrapper):
    """Element-wise accuracy within a tolerance: `mean(|pred - label| < tolerance)`.

    Args:
        tolerance: float > 0. Defaults to `10**-0.5 / 2` (about 0.158), the
            reasoning-operations seed's threshold.
        name: metric name. Defaults to `"accuracy"`.

    Example:

    >>> metric = ToleranceAccuracy()
    >>> metric.update_state([[1.0, 0.0]], [[1.1, 0.2]])
    >>> float(metric.result())
    0.5

    References:
        Octavian-ai/reasoning-operations (seed `004`).
    """

    def __init__(self, tolerance=DEFAULT_TOLERANCE, name="accuracy", dtype=None):
        if not isinstance(tolerance, (int, float)) or tolerance <= 0:
            raise ValueError(f"`tolerance` must be a float > 0, got {tolerance!r}.")
        super().__init__(fn=tolerance_accuracy, name=name, dtype=dtype, tolerance=tolerance)
        self.tolerance = tolerance

    def get_config(self):
        return {"tolerance": self.tolerance, "name": self.name, "dtype": self.dtype}
