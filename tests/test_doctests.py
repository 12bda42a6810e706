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
UNWALKED: list[str] = []  # packages the walk could not import (their modules go untested)


def source_of(module_name: str) -> str:
    spec = importlib.util.find_spec(module_name)
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        return ""
    with open(spec.origin, encoding="utf-8") as source:
        return source.read()


def prompt_lines(source: str) -> int:
    """How many examples the source holds: lines that start with the `>>>` prompt."""
    return sum(1 for line in source.splitlines() if line.strip().split(" ")[0] == ">>>")


def zoo_modules() -> list[str]:
    """Names of every zoo module (packages included) whose source holds a `>>>` example."""
    names = set()
    for root in ROOTS:
        package = importlib.import_module(root)
        names.add(root)
        walk = pkgutil.walk_packages(package.__path__, f"{root}.", onerror=UNWALKED.append)
        for info in walk:
            names.add(info.name)
    return [
        name
        for name in sorted(names)
        if not name.endswith("__main__") and prompt_lines(source_of(name))
    ]


MODULES = zoo_modules()


def test_the_walk_finds_the_examples_of_every_root():
    assert {"zoo.layers.residual_block", "zoo.callbacks.sign_sgd"} <= set(MODULES)
    assert any(name.startswith("zoo.tasks.") for name in MODULES)
    assert not UNWALKED, f"packages that failed to import: {UNWALKED}"


@pytest.mark.parametrize("module_name", MODULES)
def test_examples_run(module_name):
    module = importlib.import_module(module_name)
    tests = doctest.DocTestFinder(exclude_empty=True).find(module, module_name)
    found = sum(len(test.examples) for test in tests)
    # An example in a class or function defined inside a function is never found, nor run.
    assert found == prompt_lines(source_of(module_name)), (
        f"{module_name}: {found} of {prompt_lines(source_of(module_name))} `>>>` examples are "
        "in docstrings doctest finds (module, module-level classes and functions)"
    )
    runner = doctest.DocTestRunner(optionflags=OPTIONFLAGS)
    report = io.StringIO()
    failed = sum(runner.run(test, out=report.write).failed for test in tests)
    assert failed == 0, report.getvalue()
