"""Every building block trains, saves and reloads on the backend Keras runs on.

`make test` runs this file (and the other tests marked `backend`) once per backend, TensorFlow,
JAX and PyTorch, each in its own process. One functional model uses every layer; it trains
with `SignSGD`, `ExpDecay` and `IncreasingBatchSize` under the zoo's losses and metrics, then
goes through a `.keras` file.
"""

import keras
import numpy as np
import pytest

from tests.testing import to_numpy
from zoo.callbacks import ExpDecay, IncreasingBatchSize, SignSGD
from zoo.layers import (
    ApproximatorLayer,
    MemoryDotLayer,
    MultiplyBlock,
    MultiplySimple,
    NetArray,
    ResidualBlock,
)
from zoo.losses import OneMinusMax, SetMinRandomLoss
from zoo.metrics import RoundedIndexError, ToleranceAccuracy

pytestmark = pytest.mark.backend

SUBNETS, FEATURES, SLOTS, WIDTH = 3, 4, 5, 12


def every_block_model() -> keras.Model:
    """One input of width 12; outputs `subnets` (3 stacked predictions of 4 features),
    `selection` (a softmax over 5 memory slots) and `index` (one number)."""
    x = keras.Input((WIDTH,), name="x")
    hidden = ResidualBlock(8)(x)
    product = MultiplyBlock(8, 6)([hidden, x])
    simple = MultiplySimple(6)([product, product])
    selection = keras.layers.Softmax(name="selection")(ApproximatorLayer(8, SLOTS)(simple))
    memory = MemoryDotLayer(SLOTS, FEATURES)(selection)
    features = keras.layers.Concatenate()([simple, memory])
    subnets = ApproximatorLayer(8, (SUBNETS, FEATURES), activation="tanh")(features)
    offset = NetArray((SUBNETS, FEATURES))(x)  # one array, no batch dimension: broadcast
    stacked = keras.layers.Identity(name="subnets")(keras.ops.add(subnets, offset))
    index = keras.layers.Dense(1, name="index")(features)
    return keras.Model(x, {"subnets": stacked, "selection": selection, "index": index})


def data(examples=48, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(examples, WIDTH)).astype("float32")
    targets = {
        "subnets": np.tanh(x[:, :FEATURES]),
        "selection": np.zeros((examples, SLOTS), "float32"),  # unused by OneMinusMax
        "index": rng.integers(0, 3, size=(examples, 1)).astype("float32"),
    }
    return x, targets


def test_every_block_trains_saves_and_reloads(tmp_path):
    x, targets = data()
    model = every_block_model()

    # 1. SignSGD, ExpDecay and IncreasingBatchSize with the set-min random loss: the dataset
    # of IncreasingBatchSize carries one target array, so this model has one output.
    subnets = keras.Model(model.input, model.output["subnets"])
    subnets.compile(optimizer=SignSGD(0.01, momentum=0.5), loss=SetMinRandomLoss(0.0))
    ibs = IncreasingBatchSize(initial=8, growth=2.0, maximum=16)
    history = subnets.fit(
        ibs.dataset(x, targets["subnets"], seed=0),
        epochs=3,
        callbacks=[ibs, ExpDecay(0.5)],
        verbose=0,
    ).history
    assert history["batch_size"] == [8, 16, 16]
    assert history["parameter_updates"] == [6, 9, 12]
    np.testing.assert_allclose(history["learning_rate"], [0.01, 0.005, 0.0025], rtol=1e-6)
    assert history["loss"][-1] < history["loss"][0]

    # 2. Every output, with OneMinusMax and the zoo's metrics, on plain arrays (one batch size
    # throughout: on JAX every new shape is a new compilation).
    model.compile(
        optimizer=SignSGD(0.01),
        loss={"subnets": SetMinRandomLoss(1.0, seed=1), "selection": OneMinusMax(), "index": "mse"},
        metrics={"index": [ToleranceAccuracy(), RoundedIndexError()]},
    )
    model.fit(x, targets, batch_size=len(x), epochs=1, verbose=0)
    logs = model.evaluate(x, targets, batch_size=len(x), verbose=0, return_dict=True)
    assert np.isfinite(logs["loss"]), logs
    assert 0.0 <= logs["index_err"] <= 1.0 and 0.0 <= logs["index_accuracy"] <= 1.0, logs

    # 3. Through a .keras file: the same outputs, optimizer, losses and metrics.
    path = tmp_path / "every_block.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    expected, got = to_numpy(model(x)), to_numpy(loaded(x))
    for name in expected:
        np.testing.assert_allclose(got[name], expected[name], rtol=1e-5, atol=1e-6)
    assert isinstance(loaded.optimizer, SignSGD)
    reloaded = loaded.evaluate(x, targets, batch_size=len(x), verbose=0, return_dict=True)
    for name in ("index_loss", "selection_loss", "index_err", "index_accuracy"):
        assert reloaded[name] == pytest.approx(logs[name], rel=1e-5, abs=1e-6), name
