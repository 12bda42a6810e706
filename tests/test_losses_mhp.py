"""Multiple-hypothesis losses: sMCL's oracle loss and relaxed winner-takes-all."""

import json

import keras
import numpy as np
import pytest

from tests.testing import value_and_gradients
from zoo.losses import MultipleChoiceLoss, RelaxedWinnerTakesAllLoss, SetMinRandomLoss


def stacked_predictions():
    """Targets (3, 4) and 3 subnets' predictions whose errors are easy to compute by hand."""
    y_true = np.array([[0.0, 1.0, 0.5, 0.5], [1.0, 1.0, 0.0, 0.0], [0.2, 0.4, 0.6, 0.8]], "float32")
    offsets = np.array([[1.0, 0.1, 2.0], [0.5, 3.0, 0.2], [0.0, 1.0, 1.5]], "float32")
    # subnet k of example i is the target shifted by offsets[i, k] on every pixel:
    # its mean squared error is offsets[i, k] ** 2
    y_pred = y_true[:, None, :] + offsets[:, :, None]
    return y_true, y_pred, offsets**2


def gradient(loss, y_true, y_pred):
    variable = keras.Variable(y_pred)
    value, (grad,) = value_and_gradients(lambda: loss(y_true, variable), [variable])
    return float(value), grad


def test_multiple_choice_values_are_the_best_subnets_error():
    y_true, y_pred, errors = stacked_predictions()
    per_example = MultipleChoiceLoss(reduction=None)(y_true, y_pred)
    np.testing.assert_allclose(per_example, [0.01, 0.04, 0.0], atol=1e-6)
    np.testing.assert_allclose(MultipleChoiceLoss()(y_true, y_pred), 0.05 / 3, atol=1e-6)


@pytest.mark.backend
def test_multiple_choice_gradient_reaches_only_the_winner():
    y_true, y_pred, _ = stacked_predictions()
    _, grad = gradient(MultipleChoiceLoss(), y_true, y_pred)
    # d/dy of mean_f (y - t)^2 / batch = 2 (y - t) / (features * batch), winner only
    expected = np.zeros_like(y_pred)
    for example, winner in enumerate([1, 2, 0]):
        expected[example, winner] = 2 * (y_pred[example, winner] - y_true[example]) / (4 * 3)
    np.testing.assert_allclose(grad, expected, atol=1e-7)


def test_multiple_choice_equals_set_min_at_sigma_zero():
    rng = np.random.default_rng(0)
    y_true = rng.random((64, 10)).astype("float32")
    y_pred = rng.random((64, 5, 10)).astype("float32")
    np.testing.assert_allclose(
        MultipleChoiceLoss(reduction=None)(y_true, y_pred),
        SetMinRandomLoss(sigma=0.0, reduction=None)(y_true, y_pred),
        atol=0,
    )


def test_multiple_choice_one_winner_on_ties():
    y_true = np.zeros((1, 2), "float32")
    y_pred = np.ones((1, 3, 2), "float32")
    value, grad = gradient(MultipleChoiceLoss(), y_true, y_pred)
    assert value == pytest.approx(1.0)
    assert np.count_nonzero(np.abs(grad).sum(axis=2)) == 1


def test_relaxed_wta_values_by_hand():
    y_true, y_pred, errors = stacked_predictions()
    loss = RelaxedWinnerTakesAllLoss(relaxation=0.1, reduction=None)
    # winner weight 0.9, each of the two others 0.05
    expected = [
        0.9 * 0.01 + 0.05 * (1.0 + 4.0),
        0.9 * 0.04 + 0.05 * (0.25 + 9.0),
        0.9 * 0.0 + 0.05 * (1.0 + 2.25),
    ]
    np.testing.assert_allclose(loss(y_true, y_pred), expected, rtol=1e-5)
    np.testing.assert_allclose(
        loss.subnet_weights(loss.subnet_losses(y_true, y_pred)),
        [[0.05, 0.9, 0.05], [0.05, 0.05, 0.9], [0.9, 0.05, 0.05]],
        rtol=1e-6,
    )


@pytest.mark.backend
def test_relaxed_wta_gradient_weights_every_subnet():
    y_true, y_pred, _ = stacked_predictions()
    _, grad = gradient(RelaxedWinnerTakesAllLoss(relaxation=0.1), y_true, y_pred)
    weights = np.full((3, 3), 0.05, "float32")
    weights[[0, 1, 2], [1, 2, 0]] = 0.9
    expected = weights[:, :, None] * 2 * (y_pred - y_true[:, None, :]) / (4 * 3)
    np.testing.assert_allclose(grad, expected, rtol=1e-5, atol=1e-8)


def test_relaxed_wta_at_zero_is_multiple_choice_and_one_subnet_is_mse():
    y_true, y_pred, _ = stacked_predictions()
    np.testing.assert_allclose(
        RelaxedWinnerTakesAllLoss(relaxation=0.0)(y_true, y_pred),
        MultipleChoiceLoss()(y_true, y_pred),
        rtol=1e-6,
    )
    single = RelaxedWinnerTakesAllLoss(relaxation=0.3)(y_true, y_pred[:, :1])
    np.testing.assert_allclose(single, np.mean((y_pred[:, 0] - y_true) ** 2), rtol=1e-6)


@pytest.mark.parametrize("relaxation", [-0.1, 1.0, 2, float("nan"), "0.1", True])
def test_relaxed_wta_refuses_bad_relaxation(relaxation):
    with pytest.raises(ValueError, match="relaxation"):
        RelaxedWinnerTakesAllLoss(relaxation=relaxation)


@pytest.mark.parametrize("cls", [MultipleChoiceLoss, RelaxedWinnerTakesAllLoss])
def test_mismatched_shapes_name_the_loss(cls):
    with pytest.raises(ValueError, match=f"y_pred.*{cls.__name__}"):
        cls()(np.zeros((2, 3)), np.zeros((2, 3)))


def cases():
    return {
        "MultipleChoiceLoss": lambda: MultipleChoiceLoss(
            reduction="sum", name="mcl", dtype="float64"
        ),
        "RelaxedWinnerTakesAllLoss": lambda: RelaxedWinnerTakesAllLoss(
            relaxation=0.2, reduction="sum", name="rwta", dtype="float64"
        ),
    }


@pytest.mark.parametrize("name", sorted(cases()))
def test_config_json_and_registered_name_round_trip(name):
    loss = cases()[name]()
    assert keras.saving.get_registered_object(f"zoo>{name}") is type(loss)
    config = json.dumps(loss.get_config(), sort_keys=True)
    clone = type(loss).from_config(json.loads(config))
    assert json.dumps(clone.get_config(), sort_keys=True) == config
    assert clone.dtype == "float64"
    serialized = keras.losses.serialize(loss)
    assert serialized["registered_name"] == f"zoo>{name}"
    restored = keras.losses.deserialize(json.loads(json.dumps(serialized)))
    assert type(restored) is type(loss)
    y_true, y_pred, _ = stacked_predictions()
    np.testing.assert_allclose(restored(y_true, y_pred), loss(y_true, y_pred), rtol=1e-12)


@pytest.mark.parametrize("name", sorted(cases()))
def test_trains_a_stacked_model_in_fit(name):
    """The loss drives `fit` of a model with stacked outputs (jit-compiled) and lowers it."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((3,))
    outputs = keras.layers.Reshape((2, 4))(keras.layers.Dense(8)(inputs))
    model = keras.Model(inputs, outputs)
    loss = cases()[name]()
    model.compile(keras.optimizers.Adam(0.05), loss=type(loss)(), jit_compile=True)
    x = np.random.default_rng(0).random((64, 3)).astype("float32")
    y = np.random.default_rng(1).random((64, 4)).astype("float32")
    history = model.fit(x, y, epochs=5, batch_size=16, verbose=0).history["loss"]
    assert history[-1] < history[0]
