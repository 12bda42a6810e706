import keras
import numpy as np
import pytest

from zoo.callbacks import ExpDecay


def small_model(learning_rate):
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(keras.optimizers.SGD(learning_rate), "mse")
    return model


def test_learning_rate_follows_the_formula_and_is_logged():
    model = small_model(0.1)
    x, y = np.random.rand(8, 2), np.random.rand(8, 1)
    history = model.fit(x, y, epochs=4, callbacks=[ExpDecay(0.9)], verbose=0)
    np.testing.assert_allclose(history.history["learning_rate"], [0.1 * 0.9**e for e in range(4)], rtol=1e-6)


def test_floor_and_resume_from_initial_epoch():
    decay = ExpDecay(0.5, floor=0.02, initial_learning_rate=0.1)
    model = small_model(0.1)
    x, y = np.random.rand(8, 2), np.random.rand(8, 1)
    history = model.fit(x, y, epochs=5, initial_epoch=2, callbacks=[decay], verbose=0)
    np.testing.assert_allclose(history.history["learning_rate"], [0.025, 0.02, 0.02], rtol=1e-6)


def test_schedule_optimizer_is_rejected():
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    schedule = keras.optimizers.schedules.ExponentialDecay(0.1, 10, 0.9)
    model.compile(keras.optimizers.SGD(schedule), "mse")
    with pytest.raises(ValueError, match="ExponentialDecay"):
        model.fit(np.zeros((2, 2)), np.zeros((2, 1)), callbacks=[ExpDecay(0.9)], verbose=0)


@pytest.mark.parametrize("rate", [0, -0.5, 1.5])
def test_bad_rate(rate):
    with pytest.raises(ValueError, match="rate"):
        ExpDecay(rate)
