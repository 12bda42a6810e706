import os
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest


def pytest_collection_modifyitems(config, items):
    """On a backend other than TensorFlow only the backend-neutral tests (marked `backend`) run;
    the others exercise TensorFlow code (the tasks, the deep core) and are skipped."""
    backend = os.environ["KERAS_BACKEND"]
    if backend == "tensorflow":
        return
    skip = pytest.mark.skip(reason=f"TensorFlow-only test (KERAS_BACKEND={backend})")
    for item in items:
        if item.get_closest_marker("backend") is None:
            item.add_marker(skip)


SHARED_MNIST = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mnist"


@pytest.fixture(scope="session")
def mnist_dir():
    """The folder with the original MNIST `.gz` files (never downloaded in tests)."""
    path = Path(os.environ.get("ZOO_MNIST_DIR", SHARED_MNIST))
    if not (path / "train-images-idx3-ubyte.gz").exists():
        pytest.skip(f"MNIST files not found in {path}; set ZOO_MNIST_DIR")
    return path


@pytest.fixture(scope="session")
def tfds_dir(tmp_path_factory):
    """Where tfds prepares data for this test session, unless ZOO_TFDS_DIR says otherwise."""
    return os.environ.get("ZOO_TFDS_DIR") or str(tmp_path_factory.mktemp("tfds"))


@pytest.fixture(scope="session")
def mnist_test_arrays(mnist_dir, tfds_dir):
    from zoo.data import load_mnist

    return load_mnist("test", as_numpy=True, manual_dir=str(mnist_dir), data_dir=tfds_dir)


@pytest.fixture(autouse=True)
def _seed():
    import keras

    keras.utils.set_random_seed(0)
    np.random.seed(0)
