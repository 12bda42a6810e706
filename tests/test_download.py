"""The download path of `zoo.data.prepare`, end to end and without internet.

The original MNIST `.gz` files are served by an HTTP server on 127.0.0.1 started here; tfds's
downloader is pointed at it by rewriting MNIST's source URL in `downloader._open_url` (the test
redirects, the product code does not know): tfds still checks each file against the sha256 it
registered for the original URL, prepares the set into a fresh data folder, and a model trains
on it. An unreachable source (a closed port) must fail in seconds with one line.
"""

import contextlib
import functools
import http.server
import shutil
import socket
import threading
import time

import numpy as np
import pytest

from zoo.data import prepare
from zoo.errors import UsageError

MNIST_URL = "https://storage.googleapis.com/cvdf-datasets/mnist/"
FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)
DATA_ENV = ("ZOO_MNIST_DIR", "ZOO_MANUAL_DIR", "ZOO_TFDS_DIR", "ZOO_NO_DOWNLOAD")


@contextlib.contextmanager
def serve(folder):
    """An HTTP server on 127.0.0.1 serving `folder`; yields `(base_url, requested_paths)`."""
    requested = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            requested.append(self.path)

    handler = functools.partial(Handler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", requested
    finally:
        server.shutdown()
        server.server_close()


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def redirect_mnist(monkeypatch, base_url):
    """Sends tfds's requests for MNIST's source URL to `base_url` (this test's server)."""
    from tensorflow_datasets.core.download import downloader

    original = downloader._open_url

    def open_url(url, **kwargs):
        return original(url.replace(MNIST_URL, base_url), **kwargs)

    monkeypatch.setattr(downloader, "_open_url", open_url)


@pytest.fixture
def no_data_env(monkeypatch):
    """None of zoo's data variables set; whatever a test (or `zoo.cli.main`) sets is undone."""
    for name in DATA_ENV:
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")


def test_mnist_source_url_is_the_one_redirected():
    from tensorflow_datasets.image_classification import mnist

    assert mnist.MNIST.URL == MNIST_URL


@pytest.mark.slow
def test_download_prepare_and_train_from_a_local_server(
    monkeypatch, tmp_path, mnist_dir, no_data_env
):
    import keras

    with serve(mnist_dir) as (base_url, requested):
        redirect_mnist(monkeypatch, base_url)
        builder = prepare("mnist", data_dir=str(tmp_path / "tfds"))
    assert sorted(path.lstrip("/") for path in requested) == sorted(FILES)
    assert builder.is_prepared() and str(tmp_path) in str(builder.data_dir)
    from zoo.data import load_mnist

    images, labels = load_mnist(
        "test", as_numpy=True, flatten=True, data_dir=str(tmp_path / "tfds")
    )
    assert images.shape == (10000, 784) and 0 <= images.min() < images.max() <= 1
    # the digits of MNIST's test set, as published
    assert np.bincount(labels).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    model = keras.Sequential([keras.Input((784,)), keras.layers.Dense(10, activation="softmax")])
    model.compile("sgd", "sparse_categorical_crossentropy")
    before = model.evaluate(images[:256], labels[:256], verbose=0)
    model.fit(images[:2560], labels[:2560], batch_size=256, epochs=1, verbose=0)
    assert model.evaluate(images[:256], labels[:256], verbose=0) < before


def test_a_file_with_the_wrong_checksum_is_one_line(monkeypatch, tmp_path, mnist_dir, no_data_env):
    served = tmp_path / "served"
    served.mkdir()
    for name in FILES:
        shutil.copy(mnist_dir / name, served / name)
    with open(served / "t10k-labels-idx1-ubyte.gz", "r+b") as file:  # one byte changed
        file.seek(100)
        byte = file.read(1)
        file.seek(100)
        file.write(bytes([byte[0] ^ 0xFF]))
    with serve(served) as (base_url, _):
        redirect_mnist(monkeypatch, base_url)
        with pytest.raises(UsageError) as raised:
            prepare("mnist", data_dir=str(tmp_path / "tfds"))
    message = str(raised.value)
    assert "\n" not in message
    assert "could not download `--dataset` mnist" in message
    assert "NonMatchingChecksumError" in message and "t10k-labels-idx1-ubyte.gz" in message


def test_an_unreachable_source_fails_in_seconds_with_one_line(monkeypatch, tmp_path, no_data_env):
    redirect_mnist(monkeypatch, f"http://127.0.0.1:{closed_port()}/")
    started = time.monotonic()
    with pytest.raises(UsageError) as raised:
        prepare("mnist", data_dir=str(tmp_path / "tfds"))
    elapsed = time.monotonic() - started
    message = str(raised.value)
    assert elapsed < 15, f"{elapsed:.1f} s to give up"
    assert "\n" not in message
    assert message.startswith("could not download `--dataset` mnist (ConnectionError")
    assert f"train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz from {MNIST_URL} " in message
    assert "--manual-dir FOLDER (or ZOO_MANUAL_DIR, ZOO_MNIST_DIR)" in message
    assert "--data-dir" in message and "ZOO_TFDS_DIR" in message
    # the bounds are restored: other code keeps tfds's and the socket module's defaults
    from tensorflow_datasets.core.download import downloader

    assert downloader.MAX_RETRIES == 10 and socket.getdefaulttimeout() is None


def test_no_download_never_tries(monkeypatch, tmp_path, no_data_env):
    from tensorflow_datasets.core.download import downloader

    def fail(url, **kwargs):
        raise AssertionError(f"tried to download {url}")

    monkeypatch.setattr(downloader, "_open_url", fail)
    monkeypatch.setenv("ZOO_NO_DOWNLOAD", "1")
    with pytest.raises(UsageError, match=r"downloads are off \(--no-download or ZOO_NO_DOWNLOAD"):
        prepare("mnist", data_dir=str(tmp_path / "tfds"))
    monkeypatch.setenv("ZOO_NO_DOWNLOAD", "maybe")
    with pytest.raises(UsageError, match="`ZOO_NO_DOWNLOAD` must be 1 or 0, got 'maybe'"):
        prepare("mnist", data_dir=str(tmp_path / "tfds"))


def test_a_manual_folder_lacking_files_names_them(tmp_path, no_data_env):
    (tmp_path / "manual").mkdir()
    (tmp_path / "manual" / "train-images-idx3-ubyte.gz").write_bytes(b"")
    with pytest.raises(UsageError) as raised:
        prepare("mnist", data_dir=str(tmp_path / "tfds"), manual_dir=str(tmp_path / "manual"))
    message = str(raised.value)
    lacks = message.split(" lacks ")[1].split(". ")[0]
    assert (
        lacks == "t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz, train-labels-idx1-ubyte.gz"
    )
    with pytest.raises(UsageError, match="`--manual-dir` .*nowhere is not a folder"):
        prepare("mnist", data_dir=str(tmp_path / "tfds"), manual_dir=str(tmp_path / "nowhere"))


def test_bad_dataset_name_is_one_line():
    with pytest.raises(UsageError, match="`--dataset` must be one of mnist, fashion_mnist"):
        prepare("imagenet")


# The CLI, in this process (a child would spend its time importing TensorFlow): a run that
# cannot get its data fails in seconds with one line and creates no run folder.


def test_offline_memory_ae_train_is_one_line_and_no_folder(
    monkeypatch, tmp_path, capfd, no_data_env
):
    from zoo.cli import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ZOO_TFDS_DIR", str(tmp_path / "tfds"))
    redirect_mnist(monkeypatch, f"http://127.0.0.1:{closed_port()}/")
    run = tmp_path / "run"
    capfd.readouterr()
    started = time.monotonic()
    assert main(["memory-ae", "train", "--run", str(run), "--epochs", "1"]) == 2
    assert time.monotonic() - started < 15
    lines = capfd.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("zoo: error: could not download `--dataset`")
    assert not run.exists() and not (tmp_path / "runs").exists()


def test_data_flags_reach_every_task(monkeypatch, tmp_path, capfd, no_data_env):
    from tensorflow_datasets.core.download import downloader

    from zoo.cli import main

    def fail(url, **kwargs):
        raise AssertionError(f"tried to download {url}")

    monkeypatch.setattr(downloader, "_open_url", fail)
    monkeypatch.chdir(tmp_path)
    run = tmp_path / "run"
    tfds_dir = str(tmp_path / "tfds")
    capfd.readouterr()
    assert main(["--no-download", "--data-dir", tfds_dir, "deep", "train", "--run", str(run)]) == 2
    lines = capfd.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "downloads are off (--no-download" in lines[0]
    assert f"not prepared in {tfds_dir}" in lines[0]
    assert not run.exists() and not (tmp_path / "runs").exists()
    manual = tmp_path / "manual"
    manual.mkdir()
    assert main(["--manual-dir", str(manual), "deep", "train", "--run", str(run)]) == 2
    assert f"--manual-dir {manual} lacks" in capfd.readouterr().err
    assert not run.exists()
