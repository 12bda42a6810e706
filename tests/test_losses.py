import json

import keras
import numpy as np
import pytest

import zoo.losses
from tests.testing import value_and_gradients
from zoo.errors import UsageError
from zoo.losses import (
    MultipleChoiceLoss,
    OneMinusMax,
    RelaxedWinnerTakesAllLoss,
    SetMinRandomLoss,
)


def subnet_predictions():
    y_true = np.zeros((3, 4), "float32")
    errors = np.array([[1.0, 0.1, 2.0], [0.5, 3.0, 0.2], [0.0, 1.0, 1.0]], "float32")
    # subnet k of example i predicts a constant whose squared value is errors[i, k]
    y_pred = np.repeat(np.sqrt(errors)[:, :, None], 4, axis=2)
    return y_true, y_pred, errors


@pytest.mark.backend
def test_sigma_zero_is_the_plain_min_over_subnets():
    y_true, y_pred, errors = subnet_predictions()
    loss = SetMinRandomLoss(sigma=0.0, reduction=None)
    np.testing.assert_allclose(loss(y_true, y_pred), errors.min(axis=1), atol=1e-6)
    np.testing.assert_array_equal(loss.select(loss.subnet_losses(y_true, y_pred)), [1, 2, 0])


def test_huge_sigma_picks_subnets_uniformly_and_stays_finite():
    y_true = np.zeros((4000, 2), "float32")
    y_pred = np.stack([np.full((4000, 2), v, "float32") for v in (0.1, 1.0, 10.0)], axis=1)
    loss = SetMinRandomLoss(sigma=1e6, seed=3, reduction=None)
    values = np.asarray(loss(y_true, y_pred))
    assert np.all(np.isfinite(values))
    counts = np.bincount(np.asarray(loss.select(loss.subnet_losses(y_true, y_pred))), minlength=3)
    assert counts.min() > 1200, counts


@pytest.mark.backend
def test_gradient_flows_only_to_the_chosen_subnet():
    y_true, y_pred, _ = subnet_predictions()
    y_pred = keras.Variable(y_pred)
    loss = SetMinRandomLoss(sigma=0.0)
    _, (gradient,) = value_and_gradients(lambda: loss(y_true, y_pred), [y_pred])
    touched = np.abs(gradient).sum(axis=2) > 0
    np.testing.assert_array_equal(touched, [[0, 1, 0], [0, 0, 1], [0, 0, 0]])


def test_sigma_is_a_variable_a_callback_can_change():
    loss = SetMinRandomLoss(sigma=1.0)
    loss.sigma.assign(100.0)
    assert loss.get_config()["sigma"] == 100.0
    clone = SetMinRandomLoss.from_config(loss.get_config())
    assert float(clone.sigma.numpy()) == 100.0


def test_mismatched_shapes():
    with pytest.raises(UsageError, match="y_pred"):
        SetMinRandomLoss()(np.zeros((2, 3)), np.zeros((2, 3)))


def test_negative_sigma():
    with pytest.raises(UsageError, match="sigma"):
        SetMinRandomLoss(sigma=-1.0)


@pytest.mark.backend
def test_one_minus_max_values():
    p = np.array([[0.7, 0.2, 0.1], [0.5, 0.5, 0.0], [1.0, 0.0, 0.0]], "float32")
    loss = OneMinusMax(reduction=None)
    np.testing.assert_allclose(loss(np.zeros((3, 1)), p), [0.3, 0.5, 0.0], atol=1e-6)
    np.testing.assert_allclose(OneMinusMax()(np.zeros((3, 1)), p), 0.8 / 3, atol=1e-6)


def test_losses_are_registered():
    for cls in (SetMinRandomLoss, OneMinusMax):
        assert keras.saving.get_registered_object(f"zoo>{cls.__name__}") is cls


def serialization_cases():
    return {
        "SetMinRandomLoss": lambda: SetMinRandomLoss(
            sigma=2.5, seed=7, epsilon=1e-9, reduction="sum", name="set_min", dtype="float64"
        ),
        "OneMinusMax": lambda: OneMinusMax(reduction=None, name="floss", dtype="float64"),
        "MultipleChoiceLoss": lambda: MultipleChoiceLoss(reduction="sum", dtype="float64"),
        "RelaxedWinnerTakesAllLoss": lambda: RelaxedWinnerTakesAllLoss(
            relaxation=0.2, reduction=None, name="rwta", dtype="float64"
        ),
    }


def test_every_zoo_loss_has_a_serialization_case():
    losses = {
        name
        for name, obj in vars(zoo.losses).items()
        if isinstance(obj, type) and issubclass(obj, keras.losses.Loss)
    }
    assert losses == set(serialization_cases())


@pytest.mark.backend
@pytest.mark.parametrize("name", sorted(serialization_cases()))
def test_config_json_and_registered_name_round_trip(name):
    """get_config -> JSON -> from_config, and serialize -> JSON -> deserialize through the
    registered `zoo>` name: same class, equal config (dtype included), same values."""
    loss = serialization_cases()[name]()
    config = json.dumps(loss.get_config(), sort_keys=True)
    from_config = type(loss).from_config(json.loads(config))
    assert type(from_config) is type(loss)
    assert json.dumps(from_config.get_config(), sort_keys=True) == config
    assert from_config.dtype == "float64"

    serialized = keras.losses.serialize(loss)
    assert serialized["registered_name"] == f"zoo>{name}"
    deserialized = keras.losses.deserialize(json.loads(json.dumps(serialized)))
    assert type(deserialized) is type(loss)
    assert deserialized.get_config() == loss.get_config()

    # A seeded loss draws the same noise on its first call after the round trip.
    y_true, y_pred, _ = subnet_predictions()
    if name == "OneMinusMax":
        y_pred = y_pred[:, :, 0]
    want = np.asarray(loss(y_true, y_pred))
    np.testing.assert_array_equal(np.asarray(deserialized(y_true, y_pred)), want)
    np.testing.assert_array_equal(np.asarray(from_config(y_true, y_pred)), want)


def test_bad_epsilon():
    with pytest.raises(UsageError, match="epsilon"):
        SetMinRandomLoss(epsilon=0.0)
