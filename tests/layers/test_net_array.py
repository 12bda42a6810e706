import keras
import numpy as np
import pytest
from keras import ops

from tests.helpers import assert_config_round_trip, assert_gradients_reach_every_weight
from zoo.layers import NetArray


def test_output_is_the_array_whatever_the_input():
    layer = NetArray((2, 3))
    first = layer(np.ones((5, 4), "float32"))
    second = layer(np.zeros((1, 9), "float32"))
    assert first.shape == (2, 3)
    np.testing.assert_array_equal(first, second)
    np.testing.assert_array_equal(first, layer.array)


def test_gradients_reach_the_array():
    assert_gradients_reach_every_weight(NetArray(4), np.ones((2, 1), "float32"))


def test_config_and_save_load(tmp_path):
    layer = NetArray((2, 3), initializer="ones")
    assert_config_round_trip(layer)
    inputs = keras.Input((4,))
    outputs = keras.layers.Dense(3)(inputs) + ops.sum(layer(inputs), axis=0)
    model = keras.Model(inputs, outputs)
    x = np.random.rand(2, 4).astype("float32")
    path = tmp_path / "m.keras"
    expected = model.predict(x, verbose=0)
    model.save(path)
    np.testing.assert_array_equal(keras.saving.load_model(path).predict(x, verbose=0), expected)


@pytest.mark.parametrize("shape", [0, (2, -1), "3"])
def test_bad_shape(shape):
    with pytest.raises(ValueError, match="shape"):
        NetArray(shape)
