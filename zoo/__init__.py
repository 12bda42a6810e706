"""experiment-zoo: the one import root.

- `zoo.layers`, `zoo.losses`, `zoo.metrics`, `zoo.data`, `zoo.runs`, `zoo.deep`: building blocks
  with no task knowledge.
- `zoo.callbacks`: training dynamics (`ExpDecay`, `IncreasingBatchSize`, `SignSGD`).
- `zoo.tasks`: one module per experiment, assembling the blocks into `keras.Model` subclasses.

`import zoo` is cheap (it imports neither Keras nor TensorFlow, so `zoo --help` is fast), never
chooses the Keras backend (`KERAS_BACKEND` or `~/.keras/keras.json` decide, as with Keras itself),
and is all a fresh process needs to load any saved zoo model with `keras.saving.load_model`: once
Keras is imported, every zoo class registers itself under the `zoo>` package name (the task
models and the deep core, which need TensorFlow, on the TensorFlow backend; see `zoo._registry`).

`zoo.layers`, `zoo.losses`, `zoo.metrics`, `zoo.callbacks` and `zoo.data.ResizableBatches` are
Keras 3 code that runs on TensorFlow, JAX and PyTorch; the tasks and `zoo.deep` need TensorFlow.
"""

__version__ = "0.3.0"

from zoo import _registry  # noqa: E402

_registry.install()
