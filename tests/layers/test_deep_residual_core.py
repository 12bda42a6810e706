"""`DeepResidualCore` (zoo.deep) through the checks every zoo layer goes through; its exactness
and storage are tested in tests/deep."""

import numpy as np

from tests.testing import assert_gradients_reach_every_weight, run_layer_test
from zoo.deep import DeepResidualCore


def test_standard_layer_checks():
    run_layer_test(
        DeepResidualCore,
        {"layers": 5, "activation": "tanh", "chunk_layers": 2},
        np.random.rand(3, 4).astype("float32"),
        expected_output_shape=(None, 4),
        expected_num_trainable_weights=2,
    )


def test_alpha_survives_the_standard_checks():
    run_layer_test(
        DeepResidualCore,
        {"layers": 3, "alpha": 0.5},
        np.random.rand(3, 4).astype("float32"),
        expected_output_shape=(None, 4),
        run_precision_checks=False,
    )


def test_gradients_reach_every_weight():
    core = DeepResidualCore(layers=4, activation="tanh", chunk_layers=3)
    assert_gradients_reach_every_weight(core, np.random.rand(3, 4).astype("float32"))
