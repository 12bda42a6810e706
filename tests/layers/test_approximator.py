import numpy as np
import pytest

from tests.testing import assert_gradients_reach_every_weight, run_layer_test, to_numpy
from zoo.errors import UsageError
from zoo.layers import ApproximatorLayer


@pytest.mark.parametrize("shape, expected", [((), (2,)), (7, (2, 7)), ((3, 5), (2, 3, 5))])
def test_output_shapes(shape, expected):
    assert ApproximatorLayer(4, shape)(np.ones((2, 6), "float32")).shape == expected


@pytest.mark.backend
def test_hand_computed_value():
    layer = ApproximatorLayer(2, (2, 1), activation="relu")
    layer.build((1, 1))
    layer.dense_in.set_weights([np.array([[1.0, -1.0]]), np.zeros(2)])
    layer.dense_out.set_weights([np.array([[2.0, 3.0], [5.0, 7.0]]), np.array([1.0, 0.0])])
    # hidden = relu([2, -2]) = [2, 0]; flat = [4 + 1, 6] -> reshaped (1, 2, 1)
    np.testing.assert_allclose(to_numpy(layer(np.array([[2.0]], "float32"))), [[[5.0], [6.0]]])


@pytest.mark.backend
def test_gradients_reach_every_weight():
    assert_gradients_reach_every_weight(
        ApproximatorLayer(8, (2, 3), "tanh"), np.random.rand(4, 3).astype("float32")
    )


@pytest.mark.backend
def test_standard_layer_checks():
    run_layer_test(
        ApproximatorLayer,
        {"hidden": 8, "output_shape": (2, 3), "activation": "tanh"},
        np.random.rand(4, 5).astype("float32"),
        expected_output_shape=(None, 2, 3),
        expected_num_trainable_weights=4,
    )


def test_scalar_output_shape_checks():
    run_layer_test(
        ApproximatorLayer,
        {"hidden": 3, "output_shape": ()},
        np.random.rand(4, 5).astype("float32"),
        expected_output_shape=(None,),
        run_precision_checks=False,
    )


@pytest.mark.parametrize(
    "args, name", [((0, 3), "hidden"), ((4, (3, 0)), "output_shape"), ((4, "x"), "output_shape")]
)
def test_bad_arguments(args, name):
    with pytest.raises(UsageError, match=name):
        ApproximatorLayer(*args)


def test_unknown_activation():
    with pytest.raises(UsageError, match="activation"):
        ApproximatorLayer(4, 3, activation="wiggle")
