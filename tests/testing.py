"""The checks every zoo layer and task model goes through, after keras-hub's `TestCase`.

`run_layer_test` bundles them for one class, its constructor arguments and an example input:

- `run_symbolic_call_test`: a call on `keras.Input` gives the expected shape and dtype;
- `run_output_shape_test`: `compute_output_shape` equals the shape the layer really returns;
- `run_precision_test`: under `mixed_float16` and `mixed_bfloat16` the outputs (real and
  symbolic) are finite and of the compute dtype, the variables float32, and every sublayer
  follows the policy;
- `run_serialization_test`: `get_config` -> JSON -> `from_config`, and the registered
  `zoo>` name through `serialize_keras_object` -> JSON -> `deserialize_keras_object`, give an
  equal config and, with the weights copied, the same outputs.

`FreshProcessLoads` saves `.keras` files here and loads all of them in ONE fresh process that
imports only `zoo`, `keras` and `numpy` (TensorFlow's import costs seconds per process).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import keras
import numpy as np
from keras import tree

POLICIES = ("mixed_float16", "mixed_bfloat16")


def to_numpy(structure: Any) -> Any:
    """The same structure with every tensor as a NumPy array."""
    return tree.map_structure(keras.ops.convert_to_numpy, structure)


def symbolic_inputs(input_data: Any) -> Any:
    """`keras.Input`s (batch dimension `None`) matching example input arrays."""
    return tree.map_structure(
        lambda x: keras.Input(shape=np.shape(x)[1:], dtype=str(np.asarray(x).dtype)), input_data
    )


def output_shapes(outputs: Any) -> Any:
    """The shape of one output as a tuple, or a list of shapes for several outputs."""
    if isinstance(outputs, (list, tuple)):
        return [tuple(output.shape) for output in outputs]
    return tuple(outputs.shape)


def normalize_shapes(shapes: Any) -> Any:
    """A shape (tuple of ints/None) or a list of shapes, in `output_shapes`' form."""
    if isinstance(shapes, (list, tuple)) and shapes and isinstance(shapes[0], (list, tuple)):
        return [tuple(shape) for shape in shapes]
    return tuple(shapes)


def input_shapes(input_data: Any) -> Any:
    """Shapes of example inputs as `build`/`compute_output_shape` take them."""
    if isinstance(input_data, (list, tuple)):
        return [tuple(x.shape) for x in input_data]
    return tuple(input_data.shape)


def is_float(dtype: Any) -> bool:
    return "float" in keras.backend.standardize_dtype(dtype)


def float_leaves(outputs: Any) -> list:
    return [x for x in tree.flatten(outputs) if is_float(x.dtype)]


def run_symbolic_call_test(
    cls: type,
    init_kwargs: dict,
    input_data: Any,
    expected_output_shape: Any,
    expected_output_dtype: str = "float32",
) -> None:
    """A fresh instance called on `keras.Input`s returns the expected shapes and dtype.

    `expected_output_shape` has `None` as batch dimension where the output has one; several
    outputs give a list of shapes.
    """
    layer = cls(**init_kwargs)
    outputs = layer(symbolic_inputs(input_data))
    got, want = output_shapes(outputs), normalize_shapes(expected_output_shape)
    assert got == want, f"symbolic output shape {got}, expected {want}"
    for output in tree.flatten(outputs):
        dtype = keras.backend.standardize_dtype(output.dtype)
        assert dtype == expected_output_dtype, f"symbolic output dtype {dtype}"
    assert layer.built, f"{cls.__name__} is not built after a symbolic call"


def run_output_shape_test(cls: type, init_kwargs: dict, input_data: Any) -> Any:
    """`compute_output_shape` equals the shape of a real call, for a concrete and a `None`
    batch dimension. Returns the outputs of the real call."""
    layer = cls(**init_kwargs)
    outputs = layer(input_data)
    inputs = symbolic_inputs(input_data)
    for given, called in ((input_data, outputs), (inputs, layer(inputs))):
        computed = normalize_shapes(layer.compute_output_shape(input_shapes(given)))
        assert computed == output_shapes(called), (
            f"compute_output_shape({input_shapes(given)}) = {computed}, "
            f"the call returned {output_shapes(called)}"
        )
    return outputs


def run_precision_test(
    cls: type, init_kwargs: dict, input_data: Any, policies: tuple[str, ...] = POLICIES
) -> None:
    """Under each mixed policy: outputs and output specs in the compute dtype and finite,
    float variables in the variable dtype, and every sublayer on the same policy."""
    for name in policies:
        policy = keras.dtype_policies.get(name)
        layer = cls(**{**init_kwargs, "dtype": policy})
        outputs = layer(input_data)
        spec = layer.compute_output_spec(symbolic_inputs(input_data))
        for output in float_leaves(outputs) + float_leaves(spec):
            got = keras.backend.standardize_dtype(output.dtype)
            assert got == policy.compute_dtype, f"{name}: output dtype {got}"
        for output in float_leaves(outputs):
            values = keras.ops.convert_to_numpy(keras.ops.cast(output, "float32"))
            assert np.all(np.isfinite(values)), f"{name}: non-finite output"
        assert layer.weights, f"{cls.__name__} has no weights"
        for weight in layer.weights:
            if is_float(weight.dtype):
                got = keras.backend.standardize_dtype(weight.dtype)
                assert got == policy.variable_dtype, f"{name}: {weight.path} is {got}"
        # keras-hub walks sublayers the same way; there is no public equivalent.
        for sublayer in layer._flatten_layers():
            if isinstance(sublayer, keras.layers.InputLayer):
                continue
            assert sublayer.dtype_policy.name == name, (
                f"{name}: sublayer {sublayer.name!r} runs under {sublayer.dtype_policy.name}; "
                "build it with dtype=self.dtype_policy"
            )


def config_json(instance: Any) -> str:
    return json.dumps(instance.get_config(), sort_keys=True, indent=1)


def run_serialization_test(instance: Any, input_data: Any = None) -> None:
    """`get_config` -> JSON -> `from_config`, and `serialize_keras_object` -> JSON ->
    `deserialize_keras_object` (through the registered `zoo>` name), give the same class and an
    equal config; with `input_data`, copies of the weights give the same outputs."""
    cls = type(instance)
    expected = config_json(instance)
    revived = cls.from_config(json.loads(expected))
    assert type(revived) is cls
    assert config_json(revived) == expected
    assert revived.get_config() == instance.get_config()

    serialized = keras.saving.serialize_keras_object(instance)
    assert serialized["registered_name"] == f"zoo>{cls.__name__}", serialized["registered_name"]
    revived = keras.saving.deserialize_keras_object(json.loads(json.dumps(serialized)))
    assert type(revived) is cls
    assert config_json(revived) == expected

    if input_data is not None:
        want = to_numpy(instance(input_data))
        revived(input_data)
        revived.set_weights(instance.get_weights())
        tree.map_structure(np.testing.assert_array_equal, to_numpy(revived(input_data)), want)


def run_layer_test(
    cls: type,
    init_kwargs: dict,
    input_data: Any,
    expected_output_shape: Any,
    expected_num_trainable_weights: int | None = None,
    run_precision_checks: bool = True,
) -> None:
    """Every check above for one layer or model class."""
    run_symbolic_call_test(cls, init_kwargs, input_data, expected_output_shape)
    outputs = run_output_shape_test(cls, init_kwargs, input_data)
    for output in float_leaves(outputs):
        assert np.all(np.isfinite(keras.ops.convert_to_numpy(output)))
    layer = cls(**init_kwargs)
    layer(input_data)
    if expected_num_trainable_weights is not None:
        assert len(layer.trainable_weights) == expected_num_trainable_weights
    run_serialization_test(layer, input_data)
    if run_precision_checks:
        run_precision_test(cls, init_kwargs, input_data)


def value_and_gradients(function: Any, variables: list) -> tuple[np.ndarray, list]:
    """`function()`, a scalar computed with Keras ops from `variables` (Keras variables), and
    its gradient with respect to each of them (`None` where none flows), as NumPy arrays, on
    whichever backend Keras runs: `tf.GradientTape`, `jax.value_and_grad` through a
    `keras.StatelessScope`, or `torch.autograd.grad`."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            value = function()
        gradients = tape.gradient(value, variables)
    elif backend == "jax":
        import jax

        def pure(values):
            with keras.StatelessScope(state_mapping=list(zip(variables, values))):
                return function()

        value, gradients = jax.value_and_grad(pure)([variable.value for variable in variables])
    elif backend == "torch":
        import torch

        value = function()
        gradients = torch.autograd.grad(
            value, [variable.value for variable in variables], allow_unused=True
        )
    else:
        raise NotImplementedError(f"gradients on the {backend!r} backend")
    return keras.ops.convert_to_numpy(value), [
        None if gradient is None else keras.ops.convert_to_numpy(gradient) for gradient in gradients
    ]


def assert_gradients_reach_every_weight(layer: keras.layers.Layer, input_data: Any) -> None:
    """A gradient of `sum(output**2)` reaches every trainable weight and is not all zero."""
    layer(input_data)  # built: its variables exist before the gradient is taken
    assert layer.trainable_variables, "layer has no trainable weights"
    _, gradients = value_and_gradients(
        lambda: keras.ops.sum(keras.ops.square(layer(input_data))), layer.trainable_variables
    )
    for variable, gradient in zip(layer.trainable_variables, gradients):
        assert gradient is not None, f"no gradient for {variable.path}"
        assert np.any(np.asarray(gradient) != 0), f"zero gradient for {variable.path}"


def functional_model(layer: keras.layers.Layer, input_data: Any) -> keras.Model:
    """A functional model around `layer`, for saving a layer in a `.keras` file."""
    inputs = symbolic_inputs(input_data)
    return keras.Model(inputs, layer(inputs))


_FRESH_PROCESS = r"""
import json, sys
from pathlib import Path

import zoo, keras, numpy

directory = Path(sys.argv[1])
manifest = json.loads((directory / "manifest.json").read_text())
results = {}
for name, entry in manifest.items():
    try:
        model = keras.saving.load_model(directory / f"{name}.keras")
        assert type(model).__name__ == entry["class"], type(model).__name__
        got_config = json.dumps(model.get_config(), sort_keys=True)
        assert got_config == entry["config"], f"config {got_config} != {entry['config']}"
        arrays = numpy.load(directory / f"{name}.npz")
        inputs = [arrays[f"input_{i}"] for i in range(entry["inputs"])]
        outputs = keras.tree.flatten(model(inputs if entry["input_list"] else inputs[0]))
        assert len(outputs) == entry["outputs"], len(outputs)
        for i, output in enumerate(outputs):
            numpy.testing.assert_allclose(
                keras.ops.convert_to_numpy(output), arrays[f"output_{i}"], rtol=1e-6, atol=1e-6
            )
        if "evaluate" in entry:
            x = [arrays[f"input_{i}"] for i in range(entry["inputs"])]
            logs = model.evaluate(
                x if entry["input_list"] else x[0], arrays["targets"], verbose=0, return_dict=True
            )
            for key, value in entry["evaluate"].items():
                assert abs(logs[key] - value) <= 1e-6 * max(1.0, abs(value)), (key, logs, value)
        results[name] = None
    except Exception as error:
        results[name] = f"{type(error).__name__}: {error}"
(directory / "results.json").write_text(json.dumps(results))
"""


class FreshProcessLoads:
    """Saves models as `.keras` files in `directory`; `run()` loads them all in one new
    Python process that imports only `zoo`, `keras` and `numpy`, and compares class, config,
    outputs (and `evaluate` results, for compiled models) with the ones saved here.

    Example (inside a module-scoped fixture):

        loads = FreshProcessLoads(tmp_path_factory.mktemp("fresh"))
        loads.save("residual_block", functional_model(ResidualBlock(4), x), x)
        results = loads.run()   # {"residual_block": None} or {"...": "error text"}
    """

    def __init__(self, directory: str | os.PathLike) -> None:
        self.directory = Path(directory)
        self.manifest: dict[str, dict] = {}
        self.errors: dict[str, str] = {}

    def save(
        self,
        name: str,
        model: keras.Model,
        input_data: Any,
        targets: np.ndarray | None = None,
    ) -> None:
        """Saves `model` and its outputs on `input_data`; a compiled model with `targets` is
        also evaluated on them, so the fresh process checks its loss and metrics too."""
        try:
            input_list = isinstance(input_data, (list, tuple))
            inputs = list(input_data) if input_list else [input_data]
            outputs = tree.flatten(to_numpy(model(input_data)))
            arrays = {f"input_{i}": np.asarray(x) for i, x in enumerate(inputs)}
            arrays.update({f"output_{i}": y for i, y in enumerate(outputs)})
            entry = {
                "class": type(model).__name__,
                "config": json.dumps(model.get_config(), sort_keys=True),
                "inputs": len(inputs),
                "input_list": input_list,
                "outputs": len(outputs),
            }
            if targets is not None:
                arrays["targets"] = np.asarray(targets)
                entry["evaluate"] = model.evaluate(input_data, targets, verbose=0, return_dict=True)
            model.save(self.directory / f"{name}.keras")
            np.savez(self.directory / f"{name}.npz", **arrays)
            self.manifest[name] = entry
        except Exception as error:  # reported by the test of this model, not the fixture
            self.errors[name] = f"saving failed: {type(error).__name__}: {error}"

    def run(self, timeout: float = 300) -> dict[str, str | None]:
        """Loads every saved model in one fresh process: `{name: None or error}`."""
        (self.directory / "manifest.json").write_text(json.dumps(self.manifest))
        env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
        env.setdefault("KERAS_BACKEND", "tensorflow")
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        # -I: nothing from the working directory or PYTHON* variables; only the installed zoo.
        completed = subprocess.run(
            [sys.executable, "-I", "-c", _FRESH_PROCESS, str(self.directory)],
            cwd=self.directory,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        results_file = self.directory / "results.json"
        if completed.returncode != 0 or not results_file.exists():
            failure = f"fresh process failed ({completed.returncode}): {completed.stderr[-2000:]}"
            return {name: failure for name in [*self.manifest, *self.errors]}
        results = json.loads(results_file.read_text())
        results.update(self.errors)
        return results
