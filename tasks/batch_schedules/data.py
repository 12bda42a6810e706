"""Data of the comparison: a tfds image set, split into train and a seeded held-out part.

`require_prepared` runs before anything is written: it asks tensorflow-datasets (without
TensorFlow, in about a second) whether the set is prepared or can be prepared offline from a
folder of the original files, and never lets tfds download.
"""

import logging
import os
from pathlib import Path
from typing import Optional

import numpy as np

from zoo.errors import UsageError


def _prepared_builder(name: str, data_dir: Optional[str]):
    """`(builder, is_prepared)`, without tfds's warning about a missing dataset_info.json."""
    import tensorflow_datasets as tfds

    absl = logging.getLogger("absl")
    level = absl.level
    absl.setLevel(logging.ERROR)
    try:
        builder = tfds.builder(name, data_dir=data_dir)
        return builder, builder.is_prepared()
    finally:
        absl.setLevel(level)


def resolve_dirs(name: str, data_dir: Optional[str], manual_dir: Optional[str]):
    """`(data_dir, manual_dir)` as `zoo.data` resolves them: `$ZOO_TFDS_DIR` for the prepared
    data, `$ZOO_MNIST_DIR` for MNIST's original files."""
    data_dir = data_dir or os.environ.get("ZOO_TFDS_DIR") or None
    if manual_dir is None and name == "mnist":
        manual_dir = os.environ.get("ZOO_MNIST_DIR") or None
    return data_dir, manual_dir


def require_prepared(
    name: str, data_dir: Optional[str] = None, manual_dir: Optional[str] = None
) -> None:
    """Returns if `name` is prepared in `data_dir`, or `manual_dir` holds every original file
    tfds needs to prepare it offline; else raises `UsageError` saying how to prepare it.

    Example:

    >>> require_prepared("cifar10", data_dir="/nonexistent")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    zoo.errors.UsageError: `--dataset` cifar10 is not prepared in /nonexistent/cifar10/...
    """
    data_dir, manual_dir = resolve_dirs(name, data_dir, manual_dir)
    builder, prepared = _prepared_builder(name, data_dir)
    if prepared:
        return
    files = sorted({info.filename for info in (builder.url_infos or {}).values()})
    urls = sorted(builder.url_infos or {})
    if manual_dir is not None:
        if not Path(manual_dir).is_dir():
            raise UsageError(f"`--manual-dir` {manual_dir} is not a folder.")
        missing = [file for file in files if not (Path(manual_dir) / file).is_file()]
        if files and not missing:
            return
        where = f"--manual-dir {manual_dir} lacks {', '.join(missing or files)}"
    else:
        where = "no --manual-dir was given"
    raise UsageError(
        f"`--dataset` {name} is not prepared in {builder.data_dir} and {where}; zoo never "
        f"downloads. Download {', '.join(urls)} into a folder and pass --manual-dir FOLDER "
        f"(tfds prepares it from there, its DownloadConfig manual_dir), or pass --data-dir "
        f"(or set ZOO_TFDS_DIR) to a tfds data folder where {name} is prepared."
    )


def load_split_data(
    dataset: str,
    holdout: float = 0.1,
    seed: int = 0,
    train_limit: int = 0,
    data_dir: Optional[str] = None,
    manual_dir: Optional[str] = None,
):
    """`((train_x, train_y), (held_x, held_y), (test_x, test_y))`: the training set less a
    seeded `holdout` fraction (as the seed), the held-out part, the full test set; pixels
    in [0, 1]. `train_limit > 0` keeps that many training examples."""
    from zoo.data import load_images

    data_dir, manual_dir = resolve_dirs(dataset, data_dir, manual_dir)
    x, y = load_images(dataset, "train", as_numpy=True, data_dir=data_dir, manual_dir=manual_dir)
    test_x, test_y = load_images(
        dataset, "test", as_numpy=True, data_dir=data_dir, manual_dir=manual_dir
    )
    order = np.random.default_rng(seed).permutation(len(x))
    held = int(round(holdout * len(x)))
    train_rows, held_rows = order[held:], order[:held]
    if train_limit:
        train_rows = train_rows[:train_limit]
    return (x[train_rows], y[train_rows]), (x[held_rows], y[held_rows]), (test_x, test_y)
