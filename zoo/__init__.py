"""experiment-zoo building blocks: layers, losses, metrics, data and run folders.

`zoo` knows nothing of tasks; `tasks/` assembles these pieces into experiments.
"""

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

__version__ = "0.1.0"
