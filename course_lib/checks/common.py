"""What every check shares: a failure message a learner can act on, and calling the learner's code."""
from __future__ import annotations

import torch


def fail(what: str, expected, got, hint: str = "") -> None:
    """Raise an AssertionError (a failed nbgrader test) that says what was expected and what came back."""
    message = f"\n❌ {what}\n   expected: {expected}\n   got:      {got}"
    if hint:
        message += f"\n   hint: {hint}"
    raise AssertionError(message)


def not_implemented(name: str, exc: NotImplementedError, todo: str = "your code") -> AssertionError:
    """The failure for a stub that still raises: the learner's function itself, or one it calls
    (generate calling an unfinished softmax_with_temperature, say), which is what to fix first."""
    tb = exc.__traceback__
    while tb.tb_next is not None:
        tb = tb.tb_next
    raiser = tb.tb_frame.f_code.co_name
    if raiser not in (name, "<module>"):
        return AssertionError(f"\n❌ {name} calls {raiser}, which still raises NotImplementedError: "
                              f"implement {raiser} first.")
    return AssertionError(f"\n❌ {name} still raises NotImplementedError: replace that line with {todo}.")


def call(fn, *args, **kwargs):
    """fn(*args, **kwargs), with "not implemented yet" turned into a plain failed test."""
    try:
        return fn(*args, **kwargs)
    except NotImplementedError as exc:
        raise not_implemented(getattr(fn, "__name__", "this function"), exc) from None


def run(fn, what: str, *args, hint: str = "", **kwargs):
    """fn(*args, **kwargs); an unexpected error becomes a failure that says which case raised it."""
    try:
        return call(fn, *args, **kwargs)
    except AssertionError:
        raise
    except Exception as error:
        fail(f"{what}: your function raised an error", "a result", f"{type(error).__name__}: {error}", hint)


def refuses(fn, what: str, hint: str, *args, **kwargs) -> None:
    """fn(*args, **kwargs) must raise a ValueError with a message."""
    try:
        call(fn, *args, **kwargs)
    except ValueError as error:
        if not str(error).strip():
            fail(f"{what} raised a ValueError with no message", "a message that says why", "''")
        return
    except AssertionError:
        raise
    except Exception as error:
        fail(f"{what} should raise a ValueError", "ValueError", f"{type(error).__name__}: {error}", hint)
    fail(f"{what} should be refused", "a ValueError with a clear message", "no error", hint)


def check_same_draws(draws, what: str, hint: str, seed: int = 7) -> None:
    """draws(generator) -> a list of picks must come out the same for two generators seeded alike,
    whatever torch's global random state is: the learner's code draws from the generator it is given."""
    saved = torch.get_rng_state()
    try:
        runs = []
        for global_seed in (1, 2):
            torch.manual_seed(global_seed)
            runs.append(draws(torch.Generator().manual_seed(seed)))
    finally:
        torch.set_rng_state(saved)
    if runs[0] != runs[1]:
        fail(what, runs[0][:12], runs[1][:12], hint)
