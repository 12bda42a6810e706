"""Argument checks shared by the zoo layers: one clear `ValueError` naming the argument."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any

import keras

from zoo.errors import UsageError

ACTIVATIONS = (
    "linear", "relu", "tanh", "sigmoid", "selu", "softsign", "softmax", "elu", "gelu", "swish",
)  # fmt: skip

#: An activation argument: a Keras activation name, a callable, or None (linear).
Activation = str | Callable | None
#: An initializer argument: a Keras initializer name, object or config dict.
Initializer = str | keras.initializers.Initializer | dict


def check_activation(name: str, value: Activation) -> Activation:
    """Accepts a known activation name, None, or a callable; returns it unchanged."""
    if value is None or callable(value):
        return value
    try:
        keras.activations.get(value)
    except (ValueError, TypeError):
        raise UsageError(
            f"`{name}` must be one of {', '.join(ACTIVATIONS)} (or a callable), got {value!r}."
        ) from None
    return value


def check_shape(name: str, value: int | Sequence[int]) -> tuple[int, ...]:
    """Normalises an int or a tuple/list of positive ints into a tuple (`()` is a scalar)."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = (value,)
    if not isinstance(value, (tuple, list)):
        raise UsageError(f"`{name}` must be an int or a tuple of positive ints, got {value!r}.")
    for dim in value:
        if isinstance(dim, bool) or not isinstance(dim, int) or dim <= 0:
            raise UsageError(f"`{name}` must contain positive ints only, got {tuple(value)!r}.")
    return tuple(value)


def serialize_setting(value: Any, module: ModuleType) -> Any:
    """Config form of an activation/initializer argument: names stay names."""
    if value is None or isinstance(value, str):
        return value
    return module.serialize(value)
