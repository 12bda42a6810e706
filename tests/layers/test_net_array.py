import keras
import numpy as np
import pytest

from tests.testing import assert_gradients_reach_every_weight, run_layer_test, to_numpy
from zoo.errors import UsageError
from zoo.layers import NetArray


@pytest.mark.backend
def test_output_is_the_array_whatever_the_input():
    layer = NetArray((2, 3))
    first = to_numpy(layer(np.ones((5, 4), "float32")))
    second = to_numpy(layer(np.zeros((1, 9), "float32")))
    assert first.shape == (2, 3)
    np.testing.assert_array_equal(first, second)
    np.testing.assert_array_equal(first, to_numpy(layer.array))


@pytest.mark.backend
def test_gradients_reach_the_array():
    assert_gradients_reach_every_weight(NetArray(4), np.ones((2, 1), "float32"))


@pytest.mark.backend
def test_standard_layer_checks():
    run_layer_test(
        NetArray,
        {"shape": (2, 3), "initializer": "ones"},
        np.random.rand(4, 5).astype("float32"),
        expected_output_shape=(2, 3),
        expected_num_trainable_weights=1,
    )


def test_output_follows_the_compute_dtype():
    layer = NetArray(3, initializer="ones", dtype="mixed_float16")
    output = layer(np.ones((2, 1), "float32"))
    assert keras.backend.standardize_dtype(output.dtype) == "float16"
    assert keras.backend.standardize_dtype(layer.array.dtype) == "float32"


@pytest.mark.parametrize("shape", [0, (2, -1), "3"])
def test_bad_shape(shape):
    with pytest.raises(UsageError, match="shape"):
        NetArray(shape)
