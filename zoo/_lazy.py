"""Lazy re-exports for packages whose submodules import TensorFlow.

A task package re-exports its public names (`from zoo.tasks.argmax import ArgMaxNet`) without
importing them at package import, so its light `cli` module (and `zoo --help`) stays free of
TensorFlow. Each package calls `lazy_exports` once and binds the two functions it returns as its
module-level `__getattr__` and `__dir__` (PEP 562).
"""

import importlib
import sys
from collections.abc import Callable, Mapping


def lazy_exports(package: str, exports: Mapping[str, str]) -> tuple[Callable, Callable]:
    """`(__getattr__, __dir__)` for `package`, importing `package.<exports[name]>` on first
    access of `name`.

    Args:
        package: the package's `__name__`.
        exports: public name -> the submodule (relative to `package`) that defines it.
    """

    def __getattr__(name: str):
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(f"{package}.{exports[name]}"), name)

    def __dir__() -> list:
        return sorted(set(vars(sys.modules[package])) | set(exports))

    return __getattr__, __dir__
