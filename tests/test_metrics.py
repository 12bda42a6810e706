import json

import keras
import numpy as np
import pytest

from zoo.errors import UsageError
from zoo.metrics import RoundedIndexError, ToleranceAccuracy, rounded_index_error


@pytest.mark.backend
def test_rounded_index_error_on_hand_made_cases():
    metric = RoundedIndexError()
    metric.update_state(np.array([2.0, 2.0]), np.array([[2.4], [2.6]]))
    assert float(metric.result()) == 0.5
    np.testing.assert_array_equal(
        rounded_index_error([0.0, 9.0, 3.0], [[0.49], [8.51], [4.0]]), [0, 0, 1]
    )


@pytest.mark.backend
def test_tolerance_accuracy_at_the_boundary():
    tolerance = 10**-0.5 / 2
    metric = ToleranceAccuracy()
    assert metric.tolerance == pytest.approx(0.1581, abs=1e-4)
    y_true = np.zeros((1, 4), "float32")
    y_pred = np.array([[tolerance - 1e-3, -(tolerance - 1e-3), tolerance + 1e-3, 0.0]], "float32")
    metric.update_state(y_true, y_pred)
    assert float(metric.result()) == pytest.approx(0.75)


def test_metrics_serialize():
    metric = ToleranceAccuracy(tolerance=0.5, name="acc")
    clone = keras.metrics.deserialize(keras.metrics.serialize(metric))
    assert isinstance(clone, ToleranceAccuracy) and clone.tolerance == 0.5 and clone.name == "acc"
    assert isinstance(
        keras.metrics.deserialize(keras.metrics.serialize(RoundedIndexError())), RoundedIndexError
    )


def test_bad_tolerance():
    with pytest.raises(UsageError, match="tolerance"):
        ToleranceAccuracy(tolerance=0)


@pytest.mark.backend
def test_metric_in_compiled_model():
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1, kernel_initializer="ones")])
    model.compile("sgd", "mse", metrics=[RoundedIndexError()])
    result = model.evaluate(
        np.array([[1.0], [2.0]]), np.array([1.0, 3.0]), verbose=0, return_dict=True
    )
    assert result["err"] == pytest.approx(0.5)


@pytest.mark.parametrize(
    "make",
    [
        lambda: ToleranceAccuracy(tolerance=0.5, name="acc", dtype="float64"),
        lambda: RoundedIndexError(name="index_error", dtype="float64"),
    ],
    ids=["ToleranceAccuracy", "RoundedIndexError"],
)
@pytest.mark.backend
def test_config_json_and_registered_name_round_trip(make):
    """get_config -> JSON -> from_config, and serialize -> JSON -> deserialize through the
    registered `zoo>` name: same class, equal config, same results on the same data."""
    metric = make()
    name = type(metric).__name__
    config = json.dumps(metric.get_config(), sort_keys=True)
    from_config = type(metric).from_config(json.loads(config))
    assert json.dumps(from_config.get_config(), sort_keys=True) == config

    serialized = keras.metrics.serialize(metric)
    assert serialized["registered_name"] == f"zoo>{name}"
    deserialized = keras.metrics.deserialize(json.loads(json.dumps(serialized)))
    assert type(deserialized) is type(metric)
    assert deserialized.get_config() == metric.get_config()
    assert keras.backend.standardize_dtype(deserialized.dtype) == "float64"

    y_true = np.array([[1.0], [2.0], [3.0], [4.0]])
    y_pred = np.array([[1.2], [2.7], [3.4], [5.0]])
    results = []
    for instance in (metric, from_config, deserialized):
        instance.update_state(y_true, y_pred)
        results.append(float(instance.result()))
    assert results[0] == results[1] == results[2]
    assert results[0] in (0.5, 0.75)  # index error 2/4, tolerance-0.5 accuracy 3/4
