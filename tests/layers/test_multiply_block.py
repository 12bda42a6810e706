import numpy as np
import pytest

from tests.testing import assert_gradients_reach_every_weight, run_layer_test, to_numpy
from zoo.errors import UsageError
from zoo.layers import MultiplyBlock


def test_output_shape():
    a, b = np.ones((2, 5), "float32"), np.ones((2, 3), "float32")
    assert MultiplyBlock(4, 6)([a, b]).shape == (2, 6)


@pytest.mark.backend
def test_hand_computed_value():
    block = MultiplyBlock(2, 1)
    block.build([(1, 1), (1, 1)])
    block.dense_a.set_weights([np.array([[1.0, 2.0]]), np.zeros(2)])
    block.dense_b.set_weights([np.array([[3.0, -1.0]]), np.array([0.0, 1.0])])
    block.dense_out.set_weights([np.array([[1.0], [1.0]]), np.array([0.5])])
    # a=2, b=1: [2, 4] * [3, 0] = [6, 0] -> 6.5
    np.testing.assert_allclose(
        to_numpy(block([np.array([[2.0]], "float32"), np.array([[1.0]], "float32")])), [[6.5]]
    )


def test_computes_an_exact_product():
    """One unit of each projection and a unit output weight represent a*b exactly."""
    block = MultiplyBlock(1, 1)
    block.build([(1, 1), (1, 1)])
    for dense in (block.dense_a, block.dense_b, block.dense_out):
        dense.set_weights([np.ones_like(dense.kernel), np.zeros_like(dense.bias)])
    a, b = np.random.randn(8, 1).astype("float32"), np.random.randn(8, 1).astype("float32")
    np.testing.assert_allclose(block([a, b]), a * b, rtol=1e-6)


@pytest.mark.backend
def test_gradients_reach_every_weight():
    a, b = np.random.rand(4, 3).astype("float32"), np.random.rand(4, 3).astype("float32")
    assert_gradients_reach_every_weight(MultiplyBlock(5, 2), [a, b])


@pytest.mark.backend
def test_standard_layer_checks():
    a, b = np.random.rand(4, 3).astype("float32"), np.random.rand(4, 2).astype("float32")
    run_layer_test(
        MultiplyBlock,
        {"hidden": 4, "units": 3, "activation": "sigmoid"},
        [a, b],
        expected_output_shape=(None, 3),
        expected_num_trainable_weights=6,
    )


@pytest.mark.parametrize("args, name", [((0, 3), "hidden"), ((3, -1), "units")])
def test_bad_sizes(args, name):
    with pytest.raises(UsageError, match=name):
        MultiplyBlock(*args)


def test_single_input_is_rejected():
    with pytest.raises(UsageError, match="inputs"):
        MultiplyBlock(3, 2)(np.ones((2, 3), "float32"))
