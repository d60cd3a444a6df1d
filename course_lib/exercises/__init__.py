"""Every graded exercise, declared once in the module of its notebook (its answer, probe, named
mistakes and cases; see engine.py), and the two calls a notebook makes with one:

    check(softmax_with_temperature)               # a test cell: the visible cases
    check(softmax_with_temperature, hidden=True)  # a hidden test cell
    softmax_fn = use(softmax_with_temperature)    # the learner's function, or the course's answer
                                                  # (saying so) while it is not implemented

An exercise is found by the name of the learner's function; a value (a prediction) names it:
check(strawberry_token_count, exercise="strawberry_token_count", smol=smol).
"""
from __future__ import annotations

from typing import Callable

from course_lib.exercises import bpe, compute, lifecycle, onramp, post_training, pretraining, rl
from course_lib.exercises.engine import Case, Exercise, ExerciseFailure, Trial

EXERCISES: dict[str, Exercise] = {e.name: e for module in (onramp, lifecycle, bpe, compute, pretraining, post_training, rl) for e in module.EXERCISES}

__all__ = ["EXERCISES", "Case", "Exercise", "ExerciseFailure", "Trial", "check", "exercise", "use"]


def exercise(name: str) -> Exercise:
    try:
        return EXERCISES[name]
    except KeyError:
        raise ExerciseFailure("unknown_exercise", f"there is no exercise called {name!r}: name your "
                              "function as the exercise asks", sorted(EXERCISES), name) from None


def _named(submitted, name: str | None) -> Exercise:
    return exercise(name or getattr(submitted, "__name__", repr(submitted)))


def check(*submitted, hidden: bool = False, exercise: str | None = None, **context) -> None:
    """Run an exercise's visible (or hidden) cases on the learner's function(s); an ExerciseFailure
    (an AssertionError, a failed nbgrader test) says what went wrong and how to fix it."""
    _named(submitted[0] if submitted else None, exercise).check(*submitted, hidden=hidden, **context)


def use(fn: Callable, exercise: str | None = None) -> Callable:
    """The learner's function once it runs on a small input, else the course's answer, saying so."""
    return _named(fn, exercise).use(fn)
