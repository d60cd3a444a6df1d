"""Type tests shared by the reference answers, checks and widgets: bool is an int in Python, but
True is never a sensible temperature, size or count."""
from __future__ import annotations

import numbers


def is_number(x) -> bool:
    """A real number (int, float, NumPy scalar), not a bool."""
    return isinstance(x, numbers.Real) and not isinstance(x, bool)


def is_whole(x) -> bool:
    """A whole number (int, NumPy integer), not a bool."""
    return isinstance(x, numbers.Integral) and not isinstance(x, bool)
