"""Argument checks shared across the zoo: one clear `ValueError` naming the argument."""

import numbers


def check_positive_int(name, value):
    """Returns `value` as an int if it is a positive integer, else raises naming `name`."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
        raise ValueError(f"`{name}` must be a positive integer, got {value!r}.")
    return int(value)
