"""Registers every zoo class with Keras as soon as Keras is imported, without importing Keras.

Keras finds a saved object's class through `keras.saving.register_keras_serializable`, which
runs when the defining module is imported; it imports a module named in a saved file only for
its own packages. So that `import zoo` alone is enough to load any saved zoo model, while
`import zoo` (and `zoo --help`) stays free of TensorFlow, this module:

- imports the serializable modules at once if Keras is already imported, else
- installs a `sys.meta_path` finder that wraps the loaders of `keras` and of every `zoo.*`
  module, and imports them after the first of them finishes executing once Keras is loaded
  and no zoo module is half-initialised (importing them from inside a zoo module's own import
  would be circular).

Which modules: `NEUTRAL_MODULES` (the building blocks, Keras 3 code for every backend) always;
`TENSORFLOW_MODULES` (the deep core and the task models, which need TensorFlow) only when Keras
runs on the TensorFlow backend, so that `import zoo` never imports TensorFlow on JAX or PyTorch.
"""

import importlib
import importlib.abc
import sys

# Every module that defines a `register_keras_serializable` class or function: backend-neutral
# ones, then those that import TensorFlow.
NEUTRAL_MODULES = (
    "zoo.layers",
    "zoo.losses",
    "zoo.metrics",
    "zoo.callbacks",
)
TENSORFLOW_MODULES = (
    "zoo.deep.layer",
    "zoo.tasks.argmax.models",
    "zoo.tasks.batch_schedules.models",
    "zoo.tasks.deep_mnist.models",
    "zoo.tasks.memory_ae.models",
    "zoo.tasks.reasoning_ops.models",
)
SERIALIZABLE_MODULES = NEUTRAL_MODULES + TENSORFLOW_MODULES

_state = {"registered": False, "registering": False}


def _zoo_initialising(finished=None):
    for name, module in list(sys.modules.items()):
        if name in ("zoo", finished) or not name.startswith("zoo."):
            continue
        spec = getattr(module, "__spec__", None)
        if spec is not None and getattr(spec, "_initializing", False):
            return True
    return False


def modules_to_register() -> tuple:
    """The serializable modules for the backend Keras runs on (Keras must be imported)."""
    import keras

    if keras.config.backend() == "tensorflow":
        return SERIALIZABLE_MODULES
    return NEUTRAL_MODULES


def register_all():
    """Imports every module holding a serializable zoo class that this backend can run
    (idempotent)."""
    if _state["registered"] or _state["registering"]:
        return
    _state["registering"] = True
    try:
        for name in modules_to_register():
            importlib.import_module(name)
        _state["registered"] = True
    finally:
        _state["registering"] = False


def _maybe_register(finished=None):
    """Registers once Keras is loaded and no zoo module but `finished` (whose body has just
    run; importlib clears its initialising flag only after this hook) is mid-import."""
    if _state["registered"] or "keras" not in sys.modules:
        return
    if not _zoo_initialising(finished):
        register_all()


class _PostImportLoader(importlib.abc.Loader):
    """Runs the wrapped loader, then `_maybe_register`."""

    def __init__(self, loader):
        self._loader = loader

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        self._loader.exec_module(module)
        _maybe_register(module.__name__)

    def __getattr__(self, name):  # get_resource_reader, is_package, get_source, ...
        return getattr(self._loader, name)


class _PostImportFinder(importlib.abc.MetaPathFinder):
    """Wraps the loaders of `keras` and `zoo.*` modules in a `_PostImportLoader`."""

    def find_spec(self, fullname, path, target=None):
        if _state["registered"] or not (fullname == "keras" or fullname.startswith("zoo.")):
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = _PostImportLoader(spec.loader)
                return spec
        return None


def install():
    """Called at the end of `zoo/__init__.py`: registers now, or once Keras is imported."""
    if "keras" in sys.modules:
        register_all()
    elif not any(isinstance(finder, _PostImportFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, _PostImportFinder())
