import numpy as np
import pytest

from tests.helpers import (
    assert_config_round_trip,
    assert_gradients_reach_every_weight,
    assert_save_load_round_trip,
    wrap,
)
from zoo.layers import MultiplyBlock


def test_output_shape():
    a, b = np.ones((2, 5), "float32"), np.ones((2, 3), "float32")
    assert MultiplyBlock(4, 6)([a, b]).shape == (2, 6)


def test_hand_computed_value():
    block = MultiplyBlock(2, 1)
    block.build([(1, 1), (1, 1)])
    block.dense_a.set_weights([np.array([[1.0, 2.0]]), np.zeros(2)])
    block.dense_b.set_weights([np.array([[3.0, -1.0]]), np.array([0.0, 1.0])])
    block.dense_out.set_weights([np.array([[1.0], [1.0]]), np.array([0.5])])
    # a=2, b=1: [2, 4] * [3, 0] = [6, 0] -> 6.5
    np.testing.assert_allclose(block([np.array([[2.0]], "float32"), np.array([[1.0]], "float32")]), [[6.5]])


def test_computes_an_exact_product():
    """One unit of each projection and a unit output weight represent a*b exactly."""
    block = MultiplyBlock(1, 1)
    block.build([(1, 1), (1, 1)])
    for dense in (block.dense_a, block.dense_b, block.dense_out):
        dense.set_weights([np.ones_like(dense.kernel), np.zeros_like(dense.bias)])
    a, b = np.random.randn(8, 1).astype("float32"), np.random.randn(8, 1).astype("float32")
    np.testing.assert_allclose(block([a, b]), a * b, rtol=1e-6)


def test_gradients_reach_every_weight():
    a, b = np.random.rand(4, 3).astype("float32"), np.random.rand(4, 3).astype("float32")
    assert_gradients_reach_every_weight(MultiplyBlock(5, 2), [a, b])


def test_config_and_save_load(tmp_path):
    block = MultiplyBlock(4, 3, activation="sigmoid")
    assert_config_round_trip(block)
    a, b = np.random.rand(4, 3).astype("float32"), np.random.rand(4, 2).astype("float32")
    assert_save_load_round_trip(wrap(block, [a, b]), [a, b], tmp_path)


@pytest.mark.parametrize("args, name", [((0, 3), "hidden"), ((3, -1), "units")])
def test_bad_sizes(args, name):
    with pytest.raises(ValueError, match=name):
        MultiplyBlock(*args)


def test_single_input_is_rejected():
    with pytest.raises(ValueError, match="inputs"):
        MultiplyBlock(3, 2)(np.ones((2, 3), "float32"))
