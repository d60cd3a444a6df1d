"""Type tests shared by the reference answers, checks and widgets: bool is an int in Python, but
True is never a sensible temperature, size or count."""
from __future__ import annotations

import numbers


def is_number(x) -> bool:
    """A real number (int, float, NumPy scalar), not a bool."""
    return isinstance(x, numbers.Real) and not isinstance(x, bool)


def as_number(value) -> float | None:
    """A number (Python, NumPy or a one-element tensor) as a float; None for anything else."""
    if isinstance(value, (bool, str, bytes)):  # float() would accept these, but they are not numbers
        return None
    try:
        return float(value)
    except (TypeError, ValueError, RuntimeError):  # RuntimeError: a tensor of several numbers
        return None


def is_whole(x) -> bool:
    """A whole number (int, NumPy integer), not a bool."""
    return isinstance(x, numbers.Integral) and not isinstance(x, bool)
