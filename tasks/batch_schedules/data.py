"""Data of the comparison: a tfds image set, split into train and a seeded held-out part.

`require_prepared` runs before anything is written: `zoo.data.prepare`, the one data path of
every task (prepared -> used; the original files in a manual folder -> prepared offline; else
tensorflow-datasets downloads them, unless `--no-download` / `ZOO_NO_DOWNLOAD=1`), failing in
seconds with one line that says how to use `--manual-dir` / `--data-dir`.
"""

import sys
from typing import Optional

import numpy as np

from zoo.data import prepare, resolve_dirs


def require_prepared(
    name: str, data_dir: Optional[str] = None, manual_dir: Optional[str] = None
) -> None:
    """Prepares `name` (see `zoo.data.prepare`) or raises a one-line `UsageError`.

    Example:

    >>> import os
    >>> os.environ["ZOO_NO_DOWNLOAD"] = "1"
    >>> require_prepared("cifar10", data_dir="/nonexistent")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    zoo.errors.UsageError: `--dataset` cifar10 is not prepared in /nonexistent/cifar10/...
    >>> del os.environ["ZOO_NO_DOWNLOAD"]
    """
    prepare(name, data_dir=data_dir, manual_dir=manual_dir, progress=sys.stderr.isatty())


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
