"""Every `>>>` example in `zoo`, `zoo.callbacks` and `zoo.tasks` runs as a doctest.

The modules are found with `pkgutil.walk_packages` and imported under their `zoo.*` names (the
repository folders `callbacks/` and `tasks/` install as `zoo.callbacks` and `zoo.tasks`), so an
example sees its module's globals exactly as a user importing it would.
"""

import doctest
import importlib
import importlib.util
import io
import pkgutil

import pytest

ROOTS = ("zoo", "zoo.callbacks", "zoo.tasks")
OPTIONFLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def zoo_modules() -> list[str]:
    """Names of every zoo module (packages included) whose source holds a `>>>` example."""
    names = set()
    for root in ROOTS:
        package = importlib.import_module(root)
        names.add(root)
        for info in pkgutil.walk_packages(package.__path__, prefix=f"{root}."):
            names.add(info.name)
    with_examples = []
    for name in sorted(names):
        if name.endswith("__main__"):
            continue
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.origin and spec.origin.endswith(".py"):
            with open(spec.origin, encoding="utf-8") as source:
                if ">>>" in source.read():
                    with_examples.append(name)
    return with_examples


MODULES = zoo_modules()


def test_the_walk_finds_the_examples_of_every_root():
    assert {"zoo.layers.residual_block", "zoo.callbacks.sign_sgd"} <= set(MODULES)
    assert any(name.startswith("zoo.tasks.") for name in MODULES)


@pytest.mark.parametrize("module_name", MODULES)
def test_examples_run(module_name):
    module = importlib.import_module(module_name)
    tests = doctest.DocTestFinder(exclude_empty=True).find(module, module_name)
    assert tests, f"{module_name} has `>>>` in its source but no doctest was found"
    runner = doctest.DocTestRunner(optionflags=OPTIONFLAGS)
    report = io.StringIO()
    failed = sum(runner.run(test, out=report.write).failed for test in tests)
    assert failed == 0, report.getvalue()
