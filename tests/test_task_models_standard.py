"""Every task model (and task layer) through the checks every zoo layer goes through
(`tests/testing.py`, after keras-hub's `run_layer_test`): a symbolic call, `compute_output_shape`,
mixed-precision policies, `get_config` -> JSON -> `from_config` with `trainable`/`dtype` kept, and
a `.keras` file loaded in a fresh process that imports only `zoo`.

Classes are imported through `zoo.tasks.<task>`, the path users and saved files name.
"""

import dataclasses
import importlib
from typing import Any, Callable

import keras
import numpy as np
import pytest

from tests.testing import (
    FreshProcessLoads,
    run_output_shape_test,
    run_precision_test,
    run_serialization_test,
    run_symbolic_call_test,
)


def rand(*shape: int) -> np.ndarray:
    return np.random.default_rng(sum(shape)).random(shape).astype("float32")


@dataclasses.dataclass(frozen=True)
class Case:
    module: str
    class_name: str
    init_kwargs: dict
    make_input: Callable[[], Any]
    expected_output_shape: Any

    @property
    def cls(self) -> type:
        return getattr(importlib.import_module(self.module), self.class_name)


def operands() -> list:
    return [rand(3, 5), rand(3, 5) - 0.5]


CASES = {
    "ArgMaxNet-residual": Case(
        "zoo.tasks.argmax", "ArgMaxNet", {"depth": 2, "hidden": 8}, lambda: rand(3, 10), (None, 1)
    ),
    "ArgMaxNet-multiply": Case(
        "zoo.tasks.argmax",
        "ArgMaxNet",
        {"depth": 1, "hidden": 6, "block": "multiply"},
        lambda: rand(3, 10),
        (None, 1),
    ),
    "MultiplyResidualBlock": Case(
        "zoo.tasks.argmax", "MultiplyResidualBlock", {"hidden": 6}, lambda: rand(3, 10), (None, 10)
    ),
    "SimpleCNN": Case(
        "zoo.tasks.batch_schedules",
        "SimpleCNN",
        {"conv3_activation": "relu"},
        lambda: rand(2, 28, 28, 1),
        (None, 10),
    ),
    "DeepMNIST": Case(
        "zoo.tasks.deep_mnist",
        "DeepMNIST",
        {"layers": 5, "width": 4, "chunk_layers": 2},
        lambda: rand(2, 784),
        (None, 10),
    ),
    "MemoryInformedAE": Case(
        "zoo.tasks.memory_ae",
        "MemoryInformedAE",
        {"slots": 3, "units": 12, "hidden": 8},
        lambda: rand(3, 6),
        [(None, 12), (None, 12)],
    ),
    "SetMinAE": Case(
        "zoo.tasks.memory_ae",
        "SetMinAE",
        {"subnets": 2, "units": 12, "hidden": 8},
        lambda: rand(3, 6),
        (None, 2, 12),
    ),
    **{
        f"ReasoningNet-{network}": Case(
            "zoo.tasks.reasoning_ops",
            "ReasoningNet",
            {"network": network, "units": 3, "depth": depth, "activation": activation, "hidden": 8},
            operands,
            (None, 3),
        )
        for network, depth, activation in [
            ("dense", 2, "tanh"),
            ("dense_residual", 2, "relu"),
            ("multiply", 1, "linear"),
            ("multiply_simple", 1, "linear"),
        ]
    },
}
NAMES = sorted(CASES)


@pytest.mark.parametrize("name", NAMES)
def test_symbolic_call_gives_the_output_shape_and_dtype(name):
    case = CASES[name]
    run_symbolic_call_test(
        case.cls, case.init_kwargs, case.make_input(), case.expected_output_shape
    )


@pytest.mark.parametrize("name", NAMES)
def test_compute_output_shape_equals_the_output_shape(name):
    case = CASES[name]
    run_output_shape_test(case.cls, case.init_kwargs, case.make_input())


@pytest.mark.parametrize("name", NAMES)
def test_mixed_precision_outputs_compute_dtype_with_float32_variables(name):
    case = CASES[name]
    run_precision_test(case.cls, case.init_kwargs, case.make_input())


@pytest.mark.parametrize("name", NAMES)
def test_config_json_round_trip_gives_equal_config_and_outputs(name):
    case = CASES[name]
    run_serialization_test(case.cls(**case.init_kwargs), case.make_input())


@pytest.mark.parametrize("name", NAMES)
def test_get_config_chains_super_trainable_dtype_name_survive(name):
    case = CASES[name]
    model = case.cls(**case.init_kwargs, name="renamed", trainable=False, dtype="mixed_bfloat16")
    config = model.get_config()
    for key in ("name", "trainable", "dtype"):
        assert key in config, f"get_config() lacks {key!r}: chain super().get_config()"
    revived = case.cls.from_config(config)
    assert revived.name == "renamed"
    assert revived.trainable is False
    assert revived.dtype_policy.name == "mixed_bfloat16"


@pytest.fixture(scope="module")
def fresh_process_results(tmp_path_factory):
    keras.utils.set_random_seed(0)
    loads = FreshProcessLoads(tmp_path_factory.mktemp("fresh_process"))
    for name in NAMES:
        case = CASES[name]
        try:
            model = case.cls(**case.init_kwargs)
            x = case.make_input()
            model(x)
            if not isinstance(model, keras.Model):
                inputs = keras.Input(x.shape[1:])
                model = keras.Model(inputs, model(inputs))
        except Exception as error:
            loads.errors[name] = f"building failed: {type(error).__name__}: {error}"
            continue
        loads.save(name, model, x)
    return loads.run()


@pytest.mark.parametrize("name", NAMES)
def test_keras_file_loads_in_a_fresh_process_importing_only_zoo(fresh_process_results, name):
    assert fresh_process_results[name] is None, fresh_process_results[name]


def test_every_registered_task_layer_and_model_is_covered():
    import zoo.tasks  # noqa: F401  (the package; its modules register on import)

    for case in CASES.values():
        case.cls  # imports the module, which registers its classes
    registered = {
        obj.__name__
        for obj in keras.saving.get_custom_objects().values()
        if isinstance(obj, type)
        and issubclass(obj, keras.layers.Layer)
        and obj.__module__.startswith("zoo.tasks")
    }
    covered = {case.class_name for case in CASES.values()}
    assert registered <= covered, f"not covered: {sorted(registered - covered)}"
