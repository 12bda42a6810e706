"""Checks every zoo layer goes through: gradients, config and a saved-model round trip."""

import keras
import numpy as np
import tensorflow as tf


def wrap(layer, inputs):
    """A functional model around `layer` for the given example inputs."""
    if isinstance(inputs, (list, tuple)):
        symbolic = [keras.Input(shape=np.shape(x)[1:]) for x in inputs]
    else:
        symbolic = keras.Input(shape=np.shape(inputs)[1:])
    return keras.Model(symbolic, layer(symbolic))


def assert_gradients_reach_every_weight(layer, inputs):
    with tf.GradientTape() as tape:
        output = layer(inputs)
        loss = tf.reduce_sum(tf.square(output))
    gradients = tape.gradient(loss, layer.trainable_variables)
    assert layer.trainable_variables, "layer has no trainable weights"
    for variable, gradient in zip(layer.trainable_variables, gradients):
        assert gradient is not None, f"no gradient for {variable.path}"
        assert np.any(np.asarray(gradient) != 0), f"zero gradient for {variable.path}"


def assert_config_round_trip(layer):
    clone = layer.__class__.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()


def assert_save_load_round_trip(model, inputs, tmp_path):
    path = str(tmp_path / "m.keras")
    expected = model.predict(inputs, verbose=0)
    model.save(path)
    restored = keras.saving.load_model(path)
    np.testing.assert_array_equal(restored.predict(inputs, verbose=0), expected)
