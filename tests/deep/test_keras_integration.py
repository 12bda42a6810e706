import warnings

import keras
import numpy as np
import tensorflow as tf

from zoo.deep import DeepResidualCore
from zoo.deep.kernels import activation_and_derivative
from zoo.tasks.deep_mnist import DeepMNIST


def test_core_layer_gradient_equals_autodiff_of_the_unrolled_stack():
    core = DeepResidualCore(layers=50, activation="tanh", chunk_layers=16, dtype="float64")
    h = tf.constant(np.random.default_rng(0).normal(size=(3, 4)))
    core.build(h.shape)
    core.kernel.assign(np.random.default_rng(1).uniform(-0.5, 0.5, (50, 4, 4)))
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(tf.sin(core(h)))
    got = tape.gradient(loss, [core.kernel, core.bias])
    act, _ = activation_and_derivative("tanh")
    W, b = tf.Variable(core.kernel.numpy()), tf.Variable(core.bias.numpy())
    with tf.GradientTape() as tape:
        out = h
        for i in range(50):
            out = out + core.kernels.alpha * act(out @ W[i] + b[i])
        reference = tf.reduce_sum(tf.sin(out))
    want = tape.gradient(reference, [W, b])
    np.testing.assert_allclose(float(loss), float(reference), rtol=1e-12)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-9, atol=1e-14)


def separable_digits():
    """64 'images' whose class is written in which band of pixels is lit."""
    y = np.arange(64) % 10
    x = 0.1 * np.random.default_rng(0).random((64, 784)).astype("float32")
    for row, label in enumerate(y):
        x[row, label * 78 : (label + 1) * 78] += 1.0
    return x, y


def test_model_fit_with_adam_through_the_custom_gradient():
    x, y = separable_digits()
    model = DeepMNIST(layers=200, width=8, chunk_layers=64, fused_sgd=False)
    model.compile(
        keras.optimizers.Adam(0.01), keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    )
    history = model.fit(x, y, epochs=8, batch_size=16, verbose=0)
    assert history.history["loss"][-1] < 0.6 * history.history["loss"][0]


def test_fused_sgd_fit_lowers_the_loss_and_save_load(tmp_path):
    x, y = separable_digits()
    model = DeepMNIST(
        layers=300, width=8, chunk_layers=128, layer_lr=0.1, head_lr=0.1, kernels="xla"
    )
    model.compile()
    history = model.fit(x, y, epochs=10, batch_size=16, verbose=0)
    assert history.history["loss"][-1] < 0.6 * history.history["loss"][0]
    assert "accuracy" in history.history
    model.save(tmp_path / "deep.keras")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. Keras's "compile() was not called" on load
        restored = keras.saving.load_model(tmp_path / "deep.keras")
    np.testing.assert_allclose(
        restored.predict(x[:4], verbose=0), model.predict(x[:4], verbose=0), rtol=1e-5, atol=1e-5
    )
    # Loaded compiled: it evaluates, and trains on with the fused step, without a compile call.
    assert restored.compiled and restored.run_eagerly
    loss = restored.evaluate(x, y, verbose=0, return_dict=True)["loss"]
    np.testing.assert_allclose(
        loss, model.evaluate(x, y, verbose=0, return_dict=True)["loss"], rtol=1e-5
    )
    restored.fit(x, y, epochs=1, batch_size=16, verbose=0)


def test_fused_fit_is_the_deep_network_step(tmp_path):
    """`DeepMNIST.fit` and `zoo deep train` run one step: `DeepNetwork.train_step`."""
    from zoo.deep import DeepNetwork, InMemoryWeights

    x, y = separable_digits()
    model = DeepMNIST(layers=30, width=4, chunk_layers=7, layer_lr=0.1, head_lr=0.05, kernels="xla")
    model.compile()
    start = {
        "W": model.core.kernel.numpy(),
        "b": model.core.bias.numpy(),
        "head": {
            "W_in": model.stem.kernel.numpy(),
            "b_in": model.stem.bias.numpy(),
            "W_out": model.head.kernel.numpy(),
            "b_out": model.head.bias.numpy(),
        },
    }
    model.fit(x[:48], y[:48], batch_size=16, epochs=1, shuffle=False, verbose=0)
    network = DeepNetwork(
        InMemoryWeights(start["W"].copy(), start["b"].copy()),
        chunk_layers=7,
        alpha=model.core.kernels.alpha,
        head=start["head"],
        kernels="xla",
    )
    for first in range(0, 48, 16):
        network.train_step(x[first : first + 16], y[first : first + 16], layer_lr=0.1, head_lr=0.05)
    np.testing.assert_allclose(
        model.core.kernel.numpy(), network.weights.W.numpy(), rtol=1e-6, atol=1e-7
    )
    np.testing.assert_allclose(
        model.stem.kernel.numpy(), network.params["W_in"].numpy(), rtol=1e-6, atol=1e-7
    )
    np.testing.assert_allclose(
        model.head.kernel.numpy(), network.params["W_out"].numpy(), rtol=1e-6, atol=1e-7
    )
    assert network.inputs == 784 and network.classes == 10


def test_kernels_choice_is_part_of_the_layer_config():
    core = DeepResidualCore(layers=3, kernels="xla")
    assert core.get_config()["kernels"] == "xla"
    assert DeepResidualCore.from_config(core.get_config()).kernels_kind == "xla"
