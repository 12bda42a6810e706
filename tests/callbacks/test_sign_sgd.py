import keras
import numpy as np
import pytest

from zoo.callbacks import SignSGD


@pytest.mark.backend
def test_one_step_moves_every_weight_by_exactly_lr():
    variable = keras.Variable(np.array([1.0, 1.0, 1.0, 1.0], "float32"))
    optimizer = SignSGD(learning_rate=0.25)
    optimizer.apply_gradients([(np.array([3.0, -1e-6, 0.0, -50.0], "float32"), variable)])
    np.testing.assert_allclose(variable.numpy(), [0.75, 1.25, 1.0, 1.25])


@pytest.mark.backend
def test_momentum_uses_the_sign_of_the_buffer():
    variable = keras.Variable(np.zeros(2, "float32"))
    optimizer = SignSGD(learning_rate=0.1, momentum=0.5)
    optimizer.apply_gradients([(np.array([1.0, -1.0], "float32"), variable)])  # m = [0.5, -0.5]
    optimizer.apply_gradients([(np.array([-0.8, -1.0], "float32"), variable)])  # m = [-0.15, -0.75]
    np.testing.assert_allclose(variable.numpy(), [-0.1 + 0.1, 0.2], atol=1e-7)


@pytest.mark.backend
def test_trains_a_regression_down():
    x = np.random.rand(256, 3).astype("float32")
    y = x @ np.array([[1.0], [-2.0], [0.5]], "float32")
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(SignSGD(learning_rate=0.01), "mse")
    history = model.fit(x, y, epochs=20, batch_size=32, verbose=0)
    assert history.history["loss"][-1] < 0.2 * history.history["loss"][0]


@pytest.mark.backend
def test_serialization_standalone_and_in_a_saved_model(tmp_path):
    optimizer = SignSGD(learning_rate=0.05, momentum=0.9)
    clone = keras.optimizers.deserialize(keras.optimizers.serialize(optimizer))
    assert isinstance(clone, SignSGD) and clone.momentum == 0.9
    assert float(clone.learning_rate.numpy()) == pytest.approx(0.05)
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer, "mse")
    model.fit(np.random.rand(8, 2), np.random.rand(8, 1), verbose=0)
    model.save(tmp_path / "m.keras")
    restored = keras.saving.load_model(tmp_path / "m.keras")
    assert isinstance(restored.optimizer, SignSGD) and restored.optimizer.momentum == 0.9


def test_bad_momentum():
    with pytest.raises(ValueError, match="momentum"):
        SignSGD(momentum=1.0)
