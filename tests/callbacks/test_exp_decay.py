import copy
import doctest

import keras
import numpy as np
import pytest

import zoo.callbacks.exp_decay
from zoo.callbacks import ExpDecay
from zoo.errors import UsageError

X, Y = np.random.default_rng(0).random((8, 2)), np.random.default_rng(1).random((8, 1))


def small_model(learning_rate):
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(keras.optimizers.SGD(learning_rate), "mse")
    return model


def optimizer_rate(model):
    return float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))


class Interrupt(keras.callbacks.Callback):
    def __init__(self, at_epoch):
        super().__init__()
        self.at_epoch = at_epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.at_epoch:
            raise RuntimeError("interrupted")


class RatesInForce(keras.callbacks.Callback):
    """The optimizer's rate during each epoch, read in the middle of it."""

    def __init__(self):
        super().__init__()
        self.rates = {}

    def on_train_batch_end(self, batch, logs=None):
        self.rates[self.epoch] = optimizer_rate(self.model)

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch


@pytest.mark.backend
def test_learning_rate_follows_the_formula_and_is_logged():
    model = small_model(0.1)
    rates = RatesInForce()
    history = model.fit(X, Y, epochs=4, callbacks=[ExpDecay(0.9), rates], verbose=0)
    expected = [0.1 * 0.9**e for e in range(4)]
    np.testing.assert_allclose(history.history["learning_rate"], expected, rtol=1e-6)
    np.testing.assert_allclose([rates.rates[e] for e in range(4)], expected, rtol=1e-6)


def test_floor_and_initial_epoch():
    decay = ExpDecay(0.5, floor=0.02, initial_learning_rate=0.1)
    model = small_model(0.1)
    history = model.fit(X, Y, epochs=5, initial_epoch=2, callbacks=[decay], verbose=0)
    np.testing.assert_allclose(history.history["learning_rate"], [0.025, 0.02, 0.02], rtol=1e-6)


@pytest.mark.parametrize("order", ["backup first", "decay first"])
@pytest.mark.parametrize("resume", ["new process", "same model", "same callbacks"])
def test_backup_and_restore_resumes_on_the_curve(tmp_path, order, resume):
    """The issue's case: lr 0.01 halved per epoch, interrupted at epoch 2, resumed."""
    backup_dir = str(tmp_path / "backup")

    def callbacks(decay, *extra):
        backup = keras.callbacks.BackupAndRestore(backup_dir)
        pair = [backup, decay] if order == "backup first" else [decay, backup]
        return pair + list(extra)

    model = small_model(0.01)
    model.build((None, 2))
    decay = ExpDecay(0.5)
    with pytest.raises(RuntimeError, match="interrupted"):
        model.fit(X, Y, epochs=4, callbacks=callbacks(decay, Interrupt(2)), verbose=0)
    if resume == "new process":  # a new process builds and compiles the model again
        model = small_model(0.01)
        model.build((None, 2))
    if resume != "same callbacks":
        decay = ExpDecay(0.5)
    history = model.fit(X, Y, epochs=4, callbacks=callbacks(decay), verbose=0)
    np.testing.assert_allclose(history.history["learning_rate"], [0.0025, 0.00125], rtol=1e-6)


@pytest.mark.backend
def test_any_number_of_resumes_gives_the_uninterrupted_curve(tmp_path):
    backup_dir = str(tmp_path / "backup")
    logged = []
    for interrupt_at in (1, 2, 3, 4, None):
        model = small_model(0.01)  # every resume in a fresh model, as a new process
        model.build((None, 2))
        extra = [] if interrupt_at is None else [Interrupt(interrupt_at)]
        history = keras.callbacks.History()
        callbacks = [keras.callbacks.BackupAndRestore(backup_dir), ExpDecay(0.5), history, *extra]
        try:
            model.fit(X, Y, epochs=6, callbacks=callbacks, verbose=0)
        except RuntimeError:
            pass
        logged += history.history.get("learning_rate", [])
    np.testing.assert_allclose(logged, [0.01 * 0.5**e for e in range(6)], rtol=1e-6)


def test_reduce_lr_on_plateau_composes():
    # A monitored value that never improves after epoch 0: with patience 1 the plateau
    # callback halves the rate at every epoch end from epoch 1 on.
    model = small_model(0.1)
    plateau = keras.callbacks.ReduceLROnPlateau(
        "parameter_count", factor=0.5, patience=1, mode="min"
    )

    class Constant(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            logs["parameter_count"] = 3.0

    decay = ExpDecay(0.9)
    history = model.fit(X, Y, epochs=4, callbacks=[decay, Constant(), plateau], verbose=0)
    # epoch e: 0.1 * 0.9**e, times 0.5 for every reduction made before it (after epochs 1, 2).
    expected = [0.1, 0.09, 0.1 * 0.9**2 * 0.5, 0.1 * 0.9**3 * 0.25]
    np.testing.assert_allclose(history.history["learning_rate"], expected, rtol=1e-6)
    # The last reduction (after epoch 3) is kept: a further fit goes on from it.
    assert decay.learning_rate_at(4) == pytest.approx(0.1 * 0.9**4 * 0.125, rel=1e-6)
    history = model.fit(X, Y, epochs=5, initial_epoch=4, callbacks=[ExpDecay(0.9)], verbose=0)
    np.testing.assert_allclose(history.history["learning_rate"], [0.1 * 0.9**4 * 0.125], rtol=1e-6)


def test_a_rate_set_by_hand_starts_a_new_curve():
    model = small_model(0.1)
    model.fit(X, Y, epochs=3, callbacks=[ExpDecay(0.5)], verbose=0)
    model.optimizer.learning_rate = 0.2
    history = model.fit(X, Y, epochs=2, callbacks=[ExpDecay(0.5)], verbose=0)
    np.testing.assert_allclose(history.history["learning_rate"], [0.2, 0.1], rtol=1e-6)


def test_one_callback_on_two_models_follows_each_models_rate():
    decay = ExpDecay(0.5)
    first = small_model(0.1).fit(X, Y, epochs=2, callbacks=[decay], verbose=0)
    second = small_model(0.4).fit(X, Y, epochs=2, callbacks=[decay], verbose=0)
    np.testing.assert_allclose(first.history["learning_rate"], [0.1, 0.05], rtol=1e-6)
    np.testing.assert_allclose(second.history["learning_rate"], [0.4, 0.2], rtol=1e-6)


def test_survives_deepcopy_like_keras_tuner():
    decay = ExpDecay(0.5)
    clone = copy.deepcopy(decay)
    history = small_model(0.1).fit(X, Y, epochs=2, callbacks=[clone], verbose=0)
    np.testing.assert_allclose(history.history["learning_rate"], [0.1, 0.05], rtol=1e-6)


def test_schedule_optimizer_is_rejected():
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    schedule = keras.optimizers.schedules.ExponentialDecay(0.1, 10, 0.9)
    model.compile(keras.optimizers.SGD(schedule), "mse")
    with pytest.raises(UsageError, match="ExponentialDecay"):
        model.fit(np.zeros((2, 2)), np.zeros((2, 1)), callbacks=[ExpDecay(0.9)], verbose=0)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"rate": 0}, "rate"),
        ({"rate": -0.5}, "rate"),
        ({"rate": 1.5}, "rate"),
        ({"rate": 0.9, "floor": -1.0}, "floor"),
        ({"rate": 0.9, "initial_learning_rate": 0.0}, "initial_learning_rate"),
    ],
)
def test_bad_arguments(kwargs, name):
    with pytest.raises(UsageError, match=name):
        ExpDecay(**kwargs)


def test_learning_rate_at_needs_a_rate():
    assert ExpDecay(0.5, initial_learning_rate=0.2).learning_rate_at(2) == pytest.approx(0.05)
    with pytest.raises(UsageError, match="initial_learning_rate"):
        ExpDecay(0.5).learning_rate_at(0)


def test_docstring_examples_run():
    result = doctest.testmod(zoo.callbacks.exp_decay)
    assert result.attempted >= 1 and result.failed == 0
