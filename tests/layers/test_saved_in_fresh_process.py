"""Every zoo layer, loss and metric saved in a `.keras` file here loads in a fresh process that
imports only `zoo` (plus `keras` and `numpy`) and gives the same outputs, config and, for a
compiled model, the same loss and metric values. One subprocess loads them all."""

import keras
import numpy as np
import pytest

from tests.testing import FreshProcessLoads, functional_model
from zoo.deep import DeepResidualCore
from zoo.layers import (
    ApproximatorLayer,
    MemoryDotLayer,
    MultiplyBlock,
    MultiplySimple,
    NetArray,
    ResidualBlock,
)
from zoo.losses import (
    MultipleChoiceLoss,
    OneMinusMax,
    RelaxedWinnerTakesAllLoss,
    SetMinRandomLoss,
)
from zoo.metrics import RoundedIndexError, ToleranceAccuracy


def rand(*shape):
    return np.random.default_rng(sum(shape)).random(shape).astype("float32")


LAYERS = {
    "residual_block": lambda: (ResidualBlock(5, kernel_initializer="fan_in_uniform"), rand(3, 4)),
    "approximator": lambda: (ApproximatorLayer(6, (2, 3), activation="tanh"), rand(3, 4)),
    "net_array": lambda: (NetArray((2, 3)), rand(3, 4)),
    "memory_dot": lambda: (MemoryDotLayer(4, 5, activation="tanh"), rand(3, 4)),
    "multiply_block": lambda: (MultiplyBlock(4, 3, activation="sigmoid"), [rand(3, 4), rand(3, 2)]),
    "multiply_simple": lambda: (MultiplySimple(2), [rand(3, 4), rand(3, 4) + 1]),
    "deep_residual_core": lambda: (DeepResidualCore(5, "relu", chunk_layers=2), rand(3, 4)),
}


def subnets_model(loss):
    """Two subnets of four features trained with one of the stacked-subnets losses."""
    inputs = keras.Input((3,))
    outputs = keras.layers.Reshape((2, 4))(keras.layers.Dense(8)(inputs))
    model = keras.Model(inputs, outputs)
    model.compile("sgd", loss)
    return model, rand(5, 3), rand(5, 4)


def one_minus_max_model():
    """A softmax output with the `1 - max` loss and both zoo metrics."""
    inputs = keras.Input((3,))
    outputs = keras.layers.Dense(4, activation="softmax")(inputs)
    model = keras.Model(inputs, outputs)
    model.compile(
        "sgd",
        OneMinusMax(),
        metrics=[ToleranceAccuracy(tolerance=0.3, name="near"), RoundedIndexError()],
    )
    return model, rand(5, 3), rand(5, 4)


COMPILED = {
    "set_min_random_loss": lambda: subnets_model(SetMinRandomLoss(sigma=0.0, epsilon=1e-9)),
    "multiple_choice_loss": lambda: subnets_model(MultipleChoiceLoss()),
    "relaxed_winner_takes_all_loss": lambda: subnets_model(RelaxedWinnerTakesAllLoss(0.3)),
    "one_minus_max_and_metrics": one_minus_max_model,
}


@pytest.fixture(scope="module")
def fresh_process_results(tmp_path_factory):
    keras.utils.set_random_seed(0)
    loads = FreshProcessLoads(tmp_path_factory.mktemp("fresh_process"))
    for name, make in LAYERS.items():
        layer, x = make()
        loads.save(name, functional_model(layer, x), x)
    for name, make in COMPILED.items():
        model, x, y = make()
        loads.save(name, model, x, targets=y)
    return loads.run()


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_layer_loads_in_a_fresh_process(fresh_process_results, name):
    assert fresh_process_results[name] is None, fresh_process_results[name]


@pytest.mark.parametrize("name", sorted(COMPILED))
def test_compiled_loss_and_metrics_load_in_a_fresh_process(fresh_process_results, name):
    assert fresh_process_results[name] is None, fresh_process_results[name]


def test_every_zoo_layer_is_covered():
    import zoo.layers

    covered = {type(make()[0]).__name__ for make in LAYERS.values()}
    assert set(zoo.layers.__all__) | {"DeepResidualCore"} <= covered
