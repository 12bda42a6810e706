"""Argument checks shared across the zoo: one `UsageError` (a `ValueError`) naming the argument.

Like Keras's `utils/argument_validation.py`: each check returns the value, converted, or raises
an error that names the argument and the allowed range.
"""

import math
import numbers
from collections.abc import Iterable
from typing import Any, Optional

from zoo.errors import UsageError


def check_positive_int(name: str, value: Any) -> int:
    """Returns `value` as an int if it is a positive integer, else raises naming `name`."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
        raise UsageError(f"`{name}` must be a positive integer, got {value!r}.")
    return int(value)


def check_non_negative_int(name: str, value: Any) -> int:
    """Returns `value` as an int if it is an integer >= 0, else raises naming `name`."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise UsageError(f"`{name}` must be a non-negative integer, got {value!r}.")
    return int(value)


def check_float(
    name: str,
    value: Any,
    *,
    low: Optional[float] = None,
    high: Optional[float] = None,
    low_inclusive: bool = True,
    high_inclusive: bool = True,
) -> float:
    """Returns `value` as a finite float within `[low, high]` (bounds optional), else raises.

    NaN and infinities are always refused.

    Example:

    >>> check_float("--learning-rate", 0.1, low=0, low_inclusive=False)
    0.1
    >>> check_float("--learning-rate", float("inf"))
    Traceback (most recent call last):
    ...
    zoo.errors.UsageError: `--learning-rate` must be a finite number, got inf.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise UsageError(f"`{name}` must be a number, got {value!r}.")
    value = float(value)
    if not math.isfinite(value):
        raise UsageError(f"`{name}` must be a finite number, got {value!r}.")
    too_low = low is not None and (value < low if low_inclusive else value <= low)
    too_high = high is not None and (value > high if high_inclusive else value >= high)
    if too_low or too_high:
        left = "[" if low_inclusive else "("
        right = "]" if high_inclusive else ")"
        low_text = "-inf" if low is None else f"{low:g}"
        high_text = "inf" if high is None else f"{high:g}"
        raise UsageError(
            f"`{name}` must be in {left}{low_text}, {high_text}{right}, got {value!r}."
        )
    return value


def check_choice(name: str, value: Any, choices: Iterable[Any]) -> Any:
    """Returns `value` if it is one of `choices`, else raises listing them."""
    choices = tuple(choices)
    if value not in choices:
        allowed = ", ".join(str(choice) for choice in choices)
        raise UsageError(f"`{name}` must be one of {allowed}; got {value!r}.")
    return value
