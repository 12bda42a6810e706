import numpy as np
import pytest

from tests.testing import assert_gradients_reach_every_weight, run_layer_test, to_numpy
from zoo.errors import UsageError
from zoo.layers import ResidualBlock


def test_output_shape_equals_input_shape():
    assert ResidualBlock(60)(np.ones((3, 10), "float32")).shape == (3, 10)


@pytest.mark.backend
def test_hand_computed_value():
    block = ResidualBlock(2)
    block.build((1, 2))
    block.dense_in.set_weights([np.array([[1.0, -1.0], [0.0, 1.0]]), np.array([0.0, 0.5])])
    block.dense_out.set_weights([np.array([[1.0, 0.0], [2.0, -1.0]]), np.array([0.0, -3.0])])
    x = np.array([[1.0, 2.0]], "float32")
    # hidden = relu([1, -1 + 2 + 0.5]) = [1, 1.5]; out = [1 + 3, -1.5 - 3] = [4, -4.5]
    # y = relu([4 + 1, -4.5 + 2]) = [5, 0]
    np.testing.assert_allclose(to_numpy(block(x)), [[5.0, 0.0]])


@pytest.mark.backend
def test_gradients_reach_every_weight():
    assert_gradients_reach_every_weight(ResidualBlock(8), np.random.rand(4, 3).astype("float32"))


def test_fan_in_uniform_bounds():
    block = ResidualBlock(60, kernel_initializer="fan_in_uniform")
    block.build((None, 10))
    for weight, limit in [
        (block.dense_in.kernel, 10**-0.5),
        (block.dense_in.bias, 10**-0.5),
        (block.dense_out.kernel, 60**-0.5),
        (block.dense_out.bias, 60**-0.5),
    ]:
        values = np.asarray(weight)
        assert np.abs(values).max() <= limit
        assert np.abs(values).max() > 0.8 * limit


@pytest.mark.backend
def test_standard_layer_checks():
    run_layer_test(
        ResidualBlock,
        {"hidden": 5, "activation": "tanh"},
        np.random.rand(4, 3).astype("float32"),
        expected_output_shape=(None, 3),
        expected_num_trainable_weights=4,
    )


def test_fan_in_uniform_standard_layer_checks():
    run_layer_test(
        ResidualBlock,
        {"hidden": 5, "kernel_initializer": "fan_in_uniform"},
        np.random.rand(4, 3).astype("float32"),
        expected_output_shape=(None, 3),
        run_precision_checks=False,
    )


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"hidden": 0}, "hidden"),
        ({"hidden": -3}, "hidden"),
        ({"hidden": 4, "activation": "nope"}, "activation"),
    ],
)
def test_bad_arguments(kwargs, name):
    with pytest.raises(UsageError, match=name):
        ResidualBlock(**kwargs)
