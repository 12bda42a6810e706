"""Data for the zoo: the one data path of every task, and `ResizableBatches`.

`prepare(name)` is the one way a task gets an image set (MNIST, Fashion-MNIST, CIFAR-10), in
this order:

1. prepared already in the tfds data folder (`data_dir`, `$ZOO_TFDS_DIR`, else tfds's own
   `~/tensorflow_datasets`): used as it is;
2. a manual folder holding the original files (`manual_dir`, `$ZOO_MANUAL_DIR`, and for MNIST
   `$ZOO_MNIST_DIR`): tfds prepares the set from there, offline;
3. otherwise tensorflow-datasets downloads the original files (their sha256 checked against
   tfds's registered checksums) and prepares them, as a Keras user expects; unless downloads
   are off (`download=False`, `zoo --no-download`, `ZOO_NO_DOWNLOAD=1`), for air-gapped sites
   that must never try.

Whatever fails (no network, a server that does not answer, a wrong checksum, downloads off)
is one `UsageError` line naming what could not be fetched and the way around it, within
seconds: the download is tried with few retries and short socket timeouts (`DOWNLOAD_RETRIES`,
`DOWNLOAD_TIMEOUT_S`). Tasks call `prepare` before they create a run folder.

This module imports neither Keras nor TensorFlow at import (`prepare` on a prepared set, or one
that cannot be had, answers without them); `load_images` imports TensorFlow to read the set.
`zoo.data.ResizableBatches` (the data side of `zoo.callbacks.IncreasingBatchSize`, defined in
`zoo.batches`) is Keras 3 code that works on every backend.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional, Union

import numpy as np

from zoo.errors import UsageError
from zoo.extras import require_extra

if TYPE_CHECKING:  # annotations only: importing TensorFlow here would tie the blocks to it
    import tensorflow as tf

IMAGE_DATASETS = ("mnist", "fashion_mnist", "cifar10")
SPLITS = ("train", "test")

DATA_DIR_ENV = "ZOO_TFDS_DIR"
MANUAL_DIR_ENV = "ZOO_MANUAL_DIR"
MNIST_DIR_ENV = "ZOO_MNIST_DIR"
NO_DOWNLOAD_ENV = "ZOO_NO_DOWNLOAD"

# A download that cannot connect gives up after 1 + DOWNLOAD_RETRIES attempts, each waiting at
# most DOWNLOAD_TIMEOUT_S for a connection or a byte, instead of tfds's 10 retries with
# exponential back-off (minutes offline); all files download in parallel, so an unreachable
# source fails in about (1 + DOWNLOAD_RETRIES) * DOWNLOAD_TIMEOUT_S seconds at worst.
DOWNLOAD_RETRIES = 1
DOWNLOAD_TIMEOUT_S = 5.0

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("", "0", "false", "no", "off")


def downloads_allowed(download: Optional[bool] = None) -> bool:
    """`download` if given, else whether `$ZOO_NO_DOWNLOAD` leaves downloads on.

    Example:

    >>> import os
    >>> from zoo.data import downloads_allowed
    >>> os.environ["ZOO_NO_DOWNLOAD"] = "1"
    >>> downloads_allowed(), downloads_allowed(True)
    (False, True)
    >>> del os.environ["ZOO_NO_DOWNLOAD"]
    """
    if download is not None:
        return bool(download)
    value = os.environ.get(NO_DOWNLOAD_ENV, "").strip().lower()
    if value in _TRUE:
        return False
    if value in _FALSE:
        return True
    raise UsageError(f"`{NO_DOWNLOAD_ENV}` must be 1 or 0, got {value!r}.")


def resolve_dirs(
    name: str, data_dir: Optional[str] = None, manual_dir: Optional[str] = None
) -> tuple[Optional[str], Optional[str]]:
    """`(data_dir, manual_dir)` with the environment's defaults: `$ZOO_TFDS_DIR` for the
    prepared data; `$ZOO_MANUAL_DIR`, then for MNIST `$ZOO_MNIST_DIR`, for the original files."""
    data_dir = data_dir or os.environ.get(DATA_DIR_ENV) or None
    if manual_dir is None:
        manual_dir = os.environ.get(MANUAL_DIR_ENV) or None
    if manual_dir is None and name == "mnist":
        manual_dir = os.environ.get(MNIST_DIR_ENV) or None
    return data_dir, manual_dir


@contextlib.contextmanager
def _quiet_logs():
    """Hides tfds's absl warnings (a missing dataset_info.json is how "not prepared" looks) and
    urllib3's per-retry warnings: a failure is reported once, as one line."""
    loggers = [logging.getLogger(name) for name in ("absl", "urllib3")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


@contextlib.contextmanager
def _fast_failing_downloads():
    """tfds's downloader with `DOWNLOAD_RETRIES` retries and `DOWNLOAD_TIMEOUT_S` socket
    timeouts, for the duration of one `download_and_prepare`.

    The one private touch point of tfds in the zoo: its `requests` session retries
    `downloader.MAX_RETRIES` times and passes no timeout (so the socket default applies).
    Fails loudly if a tfds release drops the constant.
    """
    from tensorflow_datasets.core.download import downloader

    if not isinstance(getattr(downloader, "MAX_RETRIES", None), int):
        raise RuntimeError(
            "tensorflow_datasets.core.download.downloader.MAX_RETRIES is gone: zoo.data "
            "cannot bound tfds's download retries with this tensorflow-datasets release."
        )
    retries, timeout = downloader.MAX_RETRIES, socket.getdefaulttimeout()
    downloader.MAX_RETRIES = DOWNLOAD_RETRIES
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)
    try:
        yield
    finally:
        downloader.MAX_RETRIES = retries
        socket.setdefaulttimeout(timeout)


def _sources(urls: list) -> str:
    """`urls` in a few words: one folder URL and the file names when they share it."""
    if len(urls) < 2:
        return " ".join(urls) or "its original files"
    folder = os.path.commonprefix(urls)
    folder = folder[: folder.rfind("/") + 1]
    if folder.count("/") < 3:  # no common folder beyond the scheme
        return " ".join(urls)
    return f"{', '.join(url[len(folder) :] for url in urls)} from {folder}"


def _how_to_get(name: str, urls: list) -> str:
    manual = f"--manual-dir FOLDER (or {MANUAL_DIR_ENV}" + (
        f", {MNIST_DIR_ENV})" if name == "mnist" else ")"
    )
    return (
        f"Download {_sources(urls)} into a folder and pass {manual}; "
        f"tfds prepares {name} from there offline. Or pass --data-dir (or {DATA_DIR_ENV}) "
        f"pointing at a tfds data folder where {name} is prepared."
    )


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text[:200]}{'...' if len(text) > 200 else ''}"


def _import_tensorflow_quietly() -> None:
    """tfds prepares a set with TensorFlow: imported here without its C++ start-up lines
    (`TF_CPP_MIN_LOG_LEVEL` cannot remove them; `zoo --verbose` keeps them)."""
    from zoo.tf_quiet import silenced_stderr

    verbose = os.environ.get("TF_CPP_MIN_LOG_LEVEL", "") in ("", "0")
    with silenced_stderr(not verbose):
        import tensorflow  # noqa: F401


def _download_errors() -> tuple:
    """The exception types of a failed download (network, HTTP status, wrong checksum)."""
    import requests
    from tensorflow_datasets.core.download import download_manager

    return (
        requests.exceptions.RequestException,
        download_manager.NonMatchingChecksumError,
        ConnectionError,
        socket.timeout,
    )


def prepare(
    name: str,
    *,
    data_dir: Optional[str] = None,
    manual_dir: Optional[str] = None,
    download: Optional[bool] = None,
    progress: Optional[bool] = None,
):
    """The one data path: a prepared tfds builder of `name`, preparing it if needed.

    Args:
        name: one of `"mnist"`, `"fashion_mnist"`, `"cifar10"`.
        data_dir: the tfds data folder (default `$ZOO_TFDS_DIR`, else tfds's own).
        manual_dir: a folder with the original files, to prepare offline (default
            `$ZOO_MANUAL_DIR`, and for MNIST `$ZOO_MNIST_DIR`).
        download: whether tfds may download the original files when the set is neither
            prepared nor in `manual_dir` (default: yes, unless `$ZOO_NO_DOWNLOAD=1`).
        progress: show tfds's progress bars (`tfds.display_progress_bar`); `None` leaves
            tfds's setting as it is.

    Returns:
        The `tfds.core.DatasetBuilder`, prepared.

    Raises:
        UsageError: one line, when the set cannot be had: what could not be fetched (or which
            original files `manual_dir` lacks) and how to use `--manual-dir` / `--data-dir`.
        MissingExtraError: tensorflow-datasets is not installed.

    Example:

    >>> from zoo.data import prepare
    >>> prepare("cifar10", data_dir="/nonexistent", download=False)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    zoo.errors.UsageError: `--dataset` cifar10 is not prepared in /nonexistent/cifar10/... and ...
    """
    if name not in IMAGE_DATASETS:
        raise UsageError(f"`--dataset` must be one of {', '.join(IMAGE_DATASETS)}, got {name!r}.")
    allowed = downloads_allowed(download)
    require_extra("datasets", "loading a dataset")
    import tensorflow_datasets as tfds

    if progress is not None:
        tfds.display_progress_bar(progress)
    data_dir, manual_dir = resolve_dirs(name, data_dir, manual_dir)
    with _quiet_logs():
        builder = tfds.builder(name, data_dir=data_dir)
        if builder.is_prepared():
            return builder
    urls = sorted(builder.url_infos or {})
    files = sorted({info.filename for info in (builder.url_infos or {}).values()})
    where = f"`--dataset` {name} is not prepared in {builder.data_dir}"
    if manual_dir is not None:
        if not Path(manual_dir).is_dir():
            raise UsageError(f"`--manual-dir` {manual_dir} is not a folder.")
        missing = [file for file in files if not (Path(manual_dir) / file).is_file()]
        if missing or not files:
            raise UsageError(
                f"{where} and --manual-dir {manual_dir} lacks "
                f"{', '.join(missing) or 'the original files'}. {_how_to_get(name, urls)}"
            )
        # Every file is there: tfds takes them from the folder (checksums checked), no network.
        config = tfds.download.DownloadConfig(manual_dir=manual_dir, try_download_gcs=False)
        _import_tensorflow_quietly()
        with _quiet_logs():
            builder.download_and_prepare(download_config=config)
        return builder
    if not allowed:
        raise UsageError(
            f"{where} and downloads are off (--no-download or {NO_DOWNLOAD_ENV}=1). "
            f"{_how_to_get(name, urls)}"
        )
    # From the original sources (their checksums registered in tfds), not tfds's GCS mirror of
    # prepared data, which needs TensorFlow's GCS file system and retries for minutes offline.
    config = tfds.download.DownloadConfig(try_download_gcs=False)
    _import_tensorflow_quietly()
    try:
        with _quiet_logs(), _fast_failing_downloads():
            builder.download_and_prepare(download_config=config)
    except _download_errors() as error:
        raise UsageError(
            f"could not download `--dataset` {name} ({_one_line(error)}). {_how_to_get(name, urls)}"
        ) from None
    return builder


def load_images(
    name: str,
    split: str = "train",
    *,
    as_numpy: bool = False,
    normalize: bool = True,
    flatten: bool = False,
    data_dir: Optional[str] = None,
    manual_dir: Optional[str] = None,
    download: Optional[bool] = None,
) -> Union[tf.data.Dataset, tuple[np.ndarray, np.ndarray]]:
    """Loads an image classification set, prepared by `prepare` (the one data path).

    Args:
        name: one of `"mnist"`, `"fashion_mnist"`, `"cifar10"`.
        split: `"train"`, `"test"`, or any tfds split string (`"train[:10%]"`).
        as_numpy: return `(images, labels)` numpy arrays instead of a dataset.
        normalize: scale pixels to float32 in `[0, 1]`; otherwise keep uint8.
        flatten: give each image as one vector (784 for MNIST).
        data_dir, manual_dir, download: as in `prepare`.

    Returns:
        A `tf.data.Dataset` of `(image, label)` pairs, or a tuple of arrays.
    """
    if not isinstance(split, str) or split.split("[")[0] not in SPLITS:
        raise UsageError(f"`split` must start with one of {', '.join(SPLITS)}, got {split!r}.")
    builder = prepare(name, data_dir=data_dir, manual_dir=manual_dir, download=download)
    import tensorflow as tf

    if as_numpy:
        import tensorflow_datasets as tfds

        examples = builder.as_dataset(split=split, as_supervised=True, shuffle_files=False)
        chunks = examples.batch(10000)
        arrays = list(tfds.as_numpy(chunks))
        images = np.concatenate([chunk[0] for chunk in arrays])
        labels = np.concatenate([chunk[1] for chunk in arrays])
        if normalize:
            images = images.astype(np.float32) / np.float32(255.0)
        if flatten:
            images = images.reshape(len(images), -1)
        return images, labels.astype(np.int32)

    def convert(image, label):
        if normalize:
            image = tf.cast(image, tf.float32) / 255.0
        if flatten:
            image = tf.reshape(image, (-1,))
        return image, tf.cast(label, tf.int32)

    dataset = builder.as_dataset(split=split, as_supervised=True, shuffle_files=False)
    return dataset.map(convert, num_parallel_calls=tf.data.AUTOTUNE)


def load_mnist(
    split: str = "train", **kwargs: Any
) -> Union[tf.data.Dataset, tuple[np.ndarray, np.ndarray]]:
    """Loads MNIST; see `load_images` for the arguments.

    Offline: point `manual_dir` (or `$ZOO_MNIST_DIR`) at the four original
    `*-ubyte.gz` files and tfds prepares the set from them.

    Example:

    >>> from zoo.data import load_mnist
    >>> images, labels = load_mnist("test", as_numpy=True)  # doctest: +SKIP
    >>> images.shape, labels.shape  # doctest: +SKIP
    ((10000, 28, 28, 1), (10000,))
    """
    return load_images("mnist", split, **kwargs)


def __getattr__(name: str):
    # `zoo.data.ResizableBatches` lives in `zoo.batches` (it imports Keras, this module does
    # not, so that `prepare` runs without TensorFlow); imported on first access.
    if name == "ResizableBatches":
        from zoo.batches import ResizableBatches

        return ResizableBatches
    raise AttributeError(f"module 'zoo.data' has no attribute {name!r}")
