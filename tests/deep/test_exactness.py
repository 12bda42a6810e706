"""One fused chunked step equals plain SGD with gradients from tf.GradientTape, for both kernel
paths (the XLA kernels and the native CPU ops)."""

import numpy as np
import pytest
import tensorflow as tf

from zoo.deep import DeepNetwork, FileWeights, InMemoryWeights, record_capacity
from zoo.deep.kernels import activation_and_derivative

INPUTS, CLASSES = 784, 10
KERNELS = ["xla", "native"]


def reference_step(x, y, params, W, b, alpha, activation, layer_lr, head_lr):
    """Plain SGD: the unrolled network, gradients from GradientTape, all applied at once."""
    act, _ = activation_and_derivative(activation)
    variables = {name: tf.Variable(value) for name, value in params.items()}
    core_W, core_b = tf.Variable(W), tf.Variable(b)
    with tf.GradientTape() as tape:
        h = tf.tanh(x @ variables["W_in"] + variables["b_in"])
        for i in range(W.shape[0]):
            h = h + alpha * act(h @ core_W[i] + core_b[i])
        logits = h @ variables["W_out"] + variables["b_out"]
        loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(y, logits))
    names = list(variables)
    grads = tape.gradient(loss, [variables[n] for n in names] + [core_W, core_b])
    new = {
        n: variables[n].numpy() - (head_lr if n.endswith("out") else layer_lr) * g.numpy()
        for n, g in zip(names, grads)
    }
    return new, W - layer_lr * grads[-2].numpy(), b - layer_lr * grads[-1].numpy()


def relative_error(got, want):
    return np.max(np.abs(got - want)) / max(np.max(np.abs(want)), 1e-30)


def run_case(
    layers, chunk, width, activation, batch, dtype, kernels, storage="memory", tmp_path=None
):
    rng = np.random.default_rng(layers * 1000 + width + batch)
    x = rng.random((batch, INPUTS)).astype(dtype)
    y = rng.integers(0, 10, batch).astype(np.int32)
    # A larger core init than the seed's 0.001 so every layer's gradient matters.
    W = rng.uniform(-0.5, 0.5, (layers, width, width)).astype(dtype)
    b = rng.uniform(-0.1, 0.1, (layers, width)).astype(dtype)
    if storage == "memory":
        weights = InMemoryWeights(W.copy(), b.copy(), activation)
    else:
        weights = FileWeights.create(
            tmp_path / "w.bin",
            layers,
            width,
            activation,
            dtype=dtype,
            fill=False,
            extra_capacity=record_capacity(INPUTS, width, CLASSES, dtype),
        )
        weights.store(0, W, b, copy=weights.spare)
        weights.commit(0)
    network = DeepNetwork(
        weights, chunk_layers=chunk, inputs=INPUTS, classes=CLASSES, seed=1, kernels=kernels
    )
    assert network.kernels.kind == kernels
    params = {name: variable.numpy() for name, variable in network.params.items()}
    network.train_step(x, y, layer_lr=0.05, head_lr=0.02)
    want_params, want_W, want_b = reference_step(
        x, y, params, W, b, network.alpha, activation, 0.05, 0.02
    )
    got_W, got_b = (
        (weights.W.numpy(), weights.b.numpy()) if storage == "memory" else weights.load(0, layers)
    )
    errors = [relative_error(got_W, want_W), relative_error(got_b, want_b)]
    errors += [
        relative_error(network.params[name].numpy(), want_params[name]) for name in want_params
    ]
    # the step must actually move the core (relu may leave single layers dead at batch 1)
    moved = np.abs(got_W - W).reshape(layers, -1).max(axis=1) > 0
    assert moved.mean() > (0.2 if activation == "relu" else 0.99)
    weights.close()
    return max(errors)


def float64_cases():
    """The full grid (L in {1, 7, 1000}, widths 2, 4, 32, three activations, batch 1 and 16, both
    kernel paths). The 1,000-layer cases, whose unrolled GradientTape reference is slow, run in
    the default suite for one shape per kernel path and with `-m slow` for the rest."""
    for kernels in KERNELS:
        for batch in (1, 16):
            for activation in ("softsign", "tanh", "relu"):
                for width in (2, 4, 32):
                    for layers, chunk in ((1, 1), (7, 3), (1000, 300)):
                        values = (layers, chunk, width, activation, batch, kernels)
                        quick = layers < 1000 or (width, activation, batch) == (4, "softsign", 16)
                        yield pytest.param(*values, marks=() if quick else pytest.mark.slow)


@pytest.mark.parametrize("layers, chunk, width, activation, batch, kernels", float64_cases())
def test_float64_matches_gradient_tape(layers, chunk, width, activation, batch, kernels):
    assert run_case(layers, chunk, width, activation, batch, np.float64, kernels) <= 1e-10


@pytest.mark.parametrize(
    "layers, chunk, width, activation, batch",
    [
        (7, 3, 4, "softsign", 16),
        (1000, 300, 4, "tanh", 1),
        (1000, 128, 32, "relu", 16),
        (1, 1, 2, "softsign", 1),
    ],
)
@pytest.mark.parametrize("kernels", KERNELS)
def test_float32_matches_gradient_tape(layers, chunk, width, activation, batch, kernels):
    assert run_case(layers, chunk, width, activation, batch, np.float32, kernels) <= 1e-4


@pytest.mark.parametrize("kernels", KERNELS)
def test_streamed_file_weights_give_the_same_step(tmp_path, kernels):
    assert (
        run_case(7, 3, 4, "tanh", 16, np.float64, kernels, storage="file", tmp_path=tmp_path)
        <= 1e-10
    )


@pytest.mark.parametrize("kernels", KERNELS)
def test_chunk_size_does_not_change_the_result(kernels):
    results = []
    for chunk in (1000, 64, 7):
        rng = np.random.default_rng(0)
        weights = InMemoryWeights(
            rng.uniform(-0.5, 0.5, (1000, 4, 4)), rng.uniform(-0.1, 0.1, (1000, 4)), "softsign"
        )
        network = DeepNetwork(
            weights, chunk_layers=chunk, inputs=INPUTS, classes=CLASSES, seed=1, kernels=kernels
        )
        network.train_step(rng.random((16, INPUTS)), rng.integers(0, 10, 16))
        results.append(weights.W.numpy())
    np.testing.assert_allclose(results[1], results[0], rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(results[2], results[0], rtol=1e-12, atol=1e-15)
