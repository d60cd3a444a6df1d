"""What every check shares: a failure message a learner can act on, and calling the learner's code."""
from __future__ import annotations


def fail(what: str, expected, got, hint: str = "") -> None:
    """Raise an AssertionError (a failed nbgrader test) that says what was expected and what came back."""
    message = f"\n❌ {what}\n   expected: {expected}\n   got:      {got}"
    if hint:
        message += f"\n   hint: {hint}"
    raise AssertionError(message)


def call(fn, *args, **kwargs):
    """fn(*args, **kwargs), with "not implemented yet" turned into a plain failed test."""
    try:
        return fn(*args, **kwargs)
    except NotImplementedError:
        name = getattr(fn, "__name__", "this function")
        raise AssertionError(f"\n❌ {name} still raises NotImplementedError: replace that line with your code.") from None
