"""experiment-zoo: the one import root.

- `zoo.layers`, `zoo.losses`, `zoo.metrics`, `zoo.data`, `zoo.runs`, `zoo.deep`: building blocks
  with no task knowledge.
- `zoo.callbacks`: training dynamics (`ExpDecay`, `IncreasingBatchSize`, `SignSGD`).
- `zoo.tasks`: one module per experiment, assembling the blocks into `keras.Model` subclasses.

`import zoo` is cheap (it imports neither Keras nor TensorFlow, so `zoo --help` is fast) and is
all a fresh process needs to load any saved zoo model with `keras.saving.load_model`: once Keras
is imported, every zoo class registers itself under the `zoo>` package name
(see `zoo._registry`).
"""

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

__version__ = "0.2.0"

from zoo import _registry  # noqa: E402

_registry.install()
