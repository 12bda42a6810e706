import numpy as np
import pytest

from tests.testing import assert_gradients_reach_every_weight, run_layer_test, to_numpy
from zoo.errors import UsageError
from zoo.layers import MultiplySimple


def test_output_shape():
    assert MultiplySimple(7)([np.ones((2, 5), "float32")] * 2).shape == (2, 7)


@pytest.mark.backend
def test_hand_computed_value():
    layer = MultiplySimple(1)
    layer.build([(1, 2), (1, 2)])
    layer.dense.set_weights([np.array([[1.0], [1.0]]), np.zeros(1)])
    # the dot product of a and b
    a, b = np.array([[1.0, 2.0]], "float32"), np.array([[3.0, -4.0]], "float32")
    np.testing.assert_allclose(to_numpy(layer([a, b])), [[-5.0]])


@pytest.mark.backend
def test_gradients_reach_every_weight():
    a, b = np.random.rand(4, 3).astype("float32"), np.random.rand(4, 3).astype("float32")
    assert_gradients_reach_every_weight(MultiplySimple(2), [a, b])


@pytest.mark.backend
def test_standard_layer_checks():
    a, b = np.random.rand(4, 3).astype("float32"), np.random.rand(4, 3).astype("float32")
    run_layer_test(
        MultiplySimple,
        {"units": 3, "activation": "relu"},
        [a, b],
        expected_output_shape=(None, 3),
        expected_num_trainable_weights=2,
    )


def test_mismatched_widths():
    with pytest.raises(UsageError, match="equal widths"):
        MultiplySimple(2)([np.ones((2, 3), "float32"), np.ones((2, 4), "float32")])


def test_bad_units():
    with pytest.raises(UsageError, match="units"):
        MultiplySimple(0)
