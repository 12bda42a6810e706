"""Absurdly deep residual networks on MNIST (seed `003`, Andrewp2/deep_net).

`zoo deep init | train | eval`: a core of L layers `h <- h + alpha * act(h W_i + b_i)` of width w
between a tanh stem (784 -> w) and a linear head (w -> 10), trained by exact minibatch SGD with
chunked checkpointing (`zoo.deep`).

Modules, in the order the experiment runs: `config` (the run's settings), `data` (MNIST and the
batches of each step), `models` (the Keras model `DeepMNIST`), `train` (the run: weights, steps,
commits, history, plot, evaluation), `cli` (the light command-line front).

The names below are imported on first use, so `zoo.tasks.deep_mnist.cli` stays free of
TensorFlow.
"""

from zoo._lazy import lazy_exports

_EXPORTS = {
    "DeepConfig": "config",
    "ACTIVATIONS": "config",
    "batch_indices": "data",
    "mnist_arrays": "data",
    "DeepMNIST": "models",
    "train": "training",
    "evaluate": "training",
    "open_run": "training",
    "WEIGHTS": "training",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
