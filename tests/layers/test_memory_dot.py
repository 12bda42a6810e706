import numpy as np
import pytest

from tests.testing import assert_gradients_reach_every_weight, run_layer_test, to_numpy
from zoo.errors import UsageError
from zoo.layers import MemoryDotLayer


def test_output_shape():
    assert MemoryDotLayer(4, 7)(np.ones((3, 4), "float32") / 4).shape == (3, 7)


@pytest.mark.backend
def test_hand_computed_value():
    layer = MemoryDotLayer(2, 2)
    layer.build((1, 2))
    layer.memory.assign(np.array([[0.0, 100.0], [-100.0, 0.0]], "float32"))
    # sigmoid(memory) = [[0.5, 1], [0, 0.5]]; p = [0.25, 0.75] -> [0.125, 0.625]
    np.testing.assert_allclose(
        to_numpy(layer(np.array([[0.25, 0.75]], "float32"))), [[0.125, 0.625]], atol=1e-6
    )


@pytest.mark.backend
def test_gradients_reach_the_memory():
    assert_gradients_reach_every_weight(
        MemoryDotLayer(3, 2), np.random.rand(4, 3).astype("float32")
    )


@pytest.mark.backend
def test_standard_layer_checks():
    run_layer_test(
        MemoryDotLayer,
        {"slots": 3, "units": 5, "activation": "tanh"},
        np.random.rand(4, 3).astype("float32"),
        expected_output_shape=(None, 5),
        expected_num_trainable_weights=1,
    )


def test_mismatched_selection_width():
    with pytest.raises(UsageError, match="slots"):
        MemoryDotLayer(3, 5)(np.ones((2, 4), "float32"))


@pytest.mark.parametrize("args, name", [((0, 3), "slots"), ((3, 0), "units")])
def test_bad_sizes(args, name):
    with pytest.raises(UsageError, match=name):
        MemoryDotLayer(*args)
