"""The optional dependencies of the zoo, by extra, and the one-line check that names the extra.

`pip install "experiment-zoo[datasets]"` brings tensorflow-datasets, `[tuner]` keras-tuner,
`[backends]` JAX and PyTorch (to use the building blocks on those Keras backends). A command or
function that needs one calls `require_extra` before it writes anything, so a missing module is
one line naming what to install, never a `ModuleNotFoundError` traceback from deep inside a run.

Example:

>>> from zoo.extras import EXTRAS, require_extra
>>> sorted(EXTRAS)
['backends', 'datasets', 'tuner']
>>> require_extra("no-such-extra")
Traceback (most recent call last):
...
ValueError: unknown extra 'no-such-extra'; known: backends, datasets, tuner
"""

import importlib.util
import sys

from zoo.errors import MissingExtraError

# extra -> the import names it provides (checked without importing them).
EXTRAS = {
    "datasets": ("tensorflow_datasets",),
    "tuner": ("keras_tuner",),
    "backends": ("jax", "torch"),
}


def _installed(module: str) -> bool:
    if module in sys.modules:
        return sys.modules[module] is not None
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def missing_modules(extra: str) -> list:
    """The import names of `extra` that cannot be imported here."""
    if extra not in EXTRAS:
        raise ValueError(f"unknown extra {extra!r}; known: {', '.join(sorted(EXTRAS))}")
    return [module for module in EXTRAS[extra] if not _installed(module)]


def require_extra(extra: str, needed_by: str = "") -> None:
    """Raises `MissingExtraError` (one line naming the extra) if a module of `extra` is missing.

    Args:
        extra: a key of `EXTRAS`.
        needed_by: what needs it (`"zoo deep train"`), for the message.
    """
    missing = missing_modules(extra)
    if missing:
        who = f"{needed_by} needs " if needed_by else ""
        raise MissingExtraError(
            f'{who}{", ".join(missing)} (not installed): pip install "experiment-zoo[{extra}]".'
        )
