"""`import zoo` and the building blocks on JAX and PyTorch: no TensorFlow, no backend chosen.

Each case runs in a fresh process (Keras picks its backend once per process, and pytest's own
`keras.utils.set_random_seed` imports TensorFlow whenever it is installed).
"""

import json
import os
import subprocess
import sys

import pytest

CHILD = r"""
import os, sys, json
import zoo
assert "KERAS_BACKEND" not in os.environ or os.environ["KERAS_BACKEND"] == sys.argv[1], "set"
import keras
import zoo.callbacks, zoo.data, zoo.layers, zoo.losses, zoo.metrics
from zoo.data import ResizableBatches
import numpy as np

x = np.random.default_rng(0).normal(size=(8, 6)).astype("float32")
inputs = keras.Input((6,))
model = keras.Model(inputs, zoo.layers.ResidualBlock(4)(inputs))
model.compile(zoo.callbacks.SignSGD(0.01), "mse")
model.fit(ResizableBatches(x, x, batch_size=4, seed=0), epochs=1, verbose=0)
tensorflow = "tensorflow" in sys.modules
model.save(sys.argv[2])  # Keras's saving imports TensorFlow where it is installed: checked before
print(json.dumps({
    "backend": keras.config.backend(),
    "env": os.environ.get("KERAS_BACKEND"),
    "tensorflow": tensorflow,
}))
"""

LOAD = r"""
import json, sys
import numpy as np
import zoo, keras
tensorflow = "tensorflow" in sys.modules
model = keras.saving.load_model(sys.argv[1])
print(json.dumps({"class": type(model.layers[1]).__name__, "tensorflow": tensorflow}))
"""


def run(code, *args, env):
    completed = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, timeout=180
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return json.loads(completed.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(
    "backend, how",
    [
        ("jax", "keras.json"),
        pytest.param("torch", "KERAS_BACKEND", marks=pytest.mark.slow),  # 20 s of importing
    ],
)
def test_blocks_on_another_backend_import_no_tensorflow(tmp_path, backend, how):
    pytest.importorskip(backend)
    env = {key: value for key, value in os.environ.items() if key != "KERAS_BACKEND"}
    env["KERAS_HOME"] = str(tmp_path / "keras_home")
    os.makedirs(env["KERAS_HOME"])
    if how == "keras.json":  # the user's configuration, as Keras reads it
        with open(os.path.join(env["KERAS_HOME"], "keras.json"), "w") as file:
            json.dump({"backend": backend}, file)
    else:
        env["KERAS_BACKEND"] = backend
    path = str(tmp_path / "block.keras")
    result = run(CHILD, backend, path, env=env)
    assert result == {
        "backend": backend,
        "env": None if how == "keras.json" else backend,
        "tensorflow": False,
    }
    # a fresh process loads the saved model after `import zoo` alone
    assert run(LOAD, path, env=env) == {"class": "ResidualBlock", "tensorflow": False}
