"""Parameter counts of ArgMaxNet architectures, without building them (standard library only).

A search under a parameter budget asks these before it builds a candidate, and the CLI checks
a budget before TensorFlow is imported.
"""

from typing import Optional

BLOCKS = ("residual", "multiply")
"""Block kinds: `ResidualBlock` (Dense in, Dense out) or `MultiplyResidualBlock` (the hidden
layer is the element-wise product of two projections)."""


def count_parameters(depth: int, hidden: int, block: str = "residual", width: int = 10) -> int:
    """Parameters of an ArgMaxNet of `depth` blocks of `hidden` units on `width` scores.

    Args:
        depth: number of blocks.
        hidden: hidden width of each block.
        block: `"residual"` or `"multiply"`.
        width: scores per example (10).

    Example:

    >>> count_parameters(3, 60)
    3821
    >>> count_parameters(4, 11, "multiply")
    1459
    """
    if block not in BLOCKS:
        raise ValueError(f"`block` must be one of {', '.join(BLOCKS)}, got {block!r}.")
    projection = width * hidden + hidden
    per_block = {
        "residual": projection + (hidden * width + width),
        "multiply": 2 * projection + (hidden * width + width),
    }[block]
    return depth * per_block + width + 1


def within_budget(depth: int, hidden: int, block: str, budget: int) -> bool:
    """Whether an ArgMaxNet of `depth` blocks of `hidden` units has at most `budget`
    parameters.

    Example:

    >>> within_budget(3, 60, "residual", 3821), within_budget(3, 61, "residual", 3821)
    (True, False)
    """
    return count_parameters(depth, hidden, block) <= budget


def widest_hidden(depth: int, block: str, budget: int) -> Optional[int]:
    """The largest hidden width that keeps `depth` blocks of kind `block` within `budget`
    parameters, or None if even width 1 does not fit.

    Example:

    >>> widest_hidden(3, "residual", 3821)
    60
    """
    if not within_budget(depth, 1, block, budget):
        return None
    low, high = 1, 2
    while within_budget(depth, high, block, budget):
        low, high = high, high * 2
    while high - low > 1:  # within_budget(low) and not within_budget(high)
        middle = (low + high) // 2
        low, high = (middle, high) if within_budget(depth, middle, block, budget) else (low, middle)
    return low
