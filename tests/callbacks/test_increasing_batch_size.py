import copy
import warnings

import keras
import numpy as np
import pytest

from zoo.callbacks import IncreasingBatchSize, batch_size_at, equivalent_batch_schedule
from zoo.data import ResizableBatches


class RecordingModel(keras.Model):
    """A linear model (ignoring the id column) that counts how often its train step is traced."""

    def __init__(self):
        super().__init__()
        self.dense = keras.layers.Dense(1)
        self.traces = 0

    def call(self, x):
        return self.dense(x[:, 1:])

    def train_step(self, data):
        self.traces += 1
        return super().train_step(data)


def test_formula():
    assert [batch_size_at(e, 128, 1.037, 4526) for e in (0, 1, 2, 50, 200)] == [
        128, 132, 137, int(128 * 1.037**50), 4526]


def test_equivalent_schedule_inverts_the_lr_decay():
    batches = equivalent_batch_schedule(128, 0.9, 4, maximum=170)
    assert batches == [128, 142, 158, 170]


class RecordingBatches(ResizableBatches):
    """Remembers the example ids (column 0 of x) of every batch it hands out."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.handed_out = []

    def __getitem__(self, index):
        x, y = super().__getitem__(index)
        self.handed_out.append(x[:, 0].astype(int))
        return x, y


def test_every_example_once_per_epoch_right_steps_and_no_warnings(capsys):
    n = 50
    x = np.concatenate([np.arange(n)[:, None], np.random.rand(n, 2)], axis=1).astype("float32")
    y = np.random.rand(n, 1).astype("float32")
    data = RecordingBatches(x, y, batch_size=4, seed=0)
    ibs = IncreasingBatchSize(initial=4, growth=2.0, maximum=16, data=data)
    steps_run = []

    class CountSteps(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            steps_run.append(0)
            data.handed_out.clear()

        def on_train_batch_end(self, batch, logs=None):
            steps_run[-1] += 1

        def on_epoch_end(self, epoch, logs=None):
            ids = np.concatenate(data.handed_out)
            assert sorted(ids) == list(range(n)), f"epoch {epoch}: {sorted(ids)}"

    model = RecordingModel()
    model.compile(keras.optimizers.SGD(0.01), "mse")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        history = model.fit(data, epochs=3, callbacks=[ibs, CountSteps()], verbose=1)
    assert not [w for w in caught if "ran out of data" in str(w.message)]
    expected_steps = [13, 7, 4]
    assert history.history["batch_size"] == [4, 8, 16]
    assert history.history["parameter_updates"] == list(np.cumsum(expected_steps))
    assert steps_run == expected_steps
    out = capsys.readouterr().out
    for steps in expected_steps:
        assert f"{steps}/{steps}" in out


def test_retracing_is_bounded():
    x, y = np.random.rand(200, 3).astype("float32"), np.random.rand(200, 1).astype("float32")
    ibs = IncreasingBatchSize(initial=3, growth=1.5, maximum=60)
    model = RecordingModel()
    model.compile(keras.optimizers.SGD(0.01), "mse")
    model.fit(ibs.dataset(x, y), epochs=8, callbacks=[ibs], verbose=0)
    # 8 epochs, 8 different batch sizes plus remainders: reduce_retracing keeps it small.
    assert model.traces <= 4


def test_survives_deepcopy_like_keras_tuner():
    x, y = np.random.rand(20, 2).astype("float32"), np.random.rand(20, 1).astype("float32")
    ibs = IncreasingBatchSize(initial=2, growth=2.0, maximum=8)
    data = ibs.dataset(x, y)
    clone = copy.deepcopy(ibs)
    assert clone.data is data and clone is not ibs
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    history = model.fit(data, epochs=2, callbacks=[clone], verbose=0)
    assert history.history["batch_size"] == [2, 4]


@pytest.mark.parametrize("kwargs, name", [
    ({"initial": 0, "growth": 1.1, "maximum": 10}, "initial"),
    ({"initial": 4, "growth": 0.9, "maximum": 10}, "growth"),
    ({"initial": 4, "growth": 1.1, "maximum": 2}, "maximum"),
])
def test_bad_arguments(kwargs, name):
    with pytest.raises(ValueError, match=name):
        IncreasingBatchSize(**kwargs)
