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

import html
import os
import sys
from typing import Callable

from course_lib.exercises import bpe, compute, lifecycle, onramp, post_training, pretraining, rl
from course_lib.exercises.engine import Case, Exercise, ExerciseFailure, Hint, Trial

EXERCISES: dict[str, Exercise] = {e.name: e for module in (onramp, lifecycle, bpe, compute, pretraining, post_training, rl) for e in module.EXERCISES}

__all__ = ["EXERCISES", "Case", "Exercise", "ExerciseFailure", "Hint", "Trial", "check", "exercise", "use"]


def exercise(name: str) -> Exercise:
    try:
        return EXERCISES[name]
    except KeyError:
        raise ExerciseFailure("unknown_exercise", f"there is no exercise called {name!r}: name your "
                              "function as the exercise asks", sorted(EXERCISES), name) from None


def _named(submitted, name: str | None) -> Exercise:
    return exercise(name or getattr(submitted, "__name__", repr(submitted)))


# Grading (autograder/nbgrader_config.py, `course_lib validate`) sets this: there a failed check must
# raise, which is how nbgrader scores a test cell zero. Read once, at import, before any answer cell runs.
GRADING_VARIABLE = "COURSE_GRADING"
GRADING = os.environ.get(GRADING_VARIABLE) == "1"


def in_learners_notebook() -> bool:
    """True in a notebook kernel that is not grading: there a failed check shows a panel and Run All
    goes on. Anywhere else (grading, the integrity re-check, tests, scripts) it raises."""
    if GRADING or "IPython" not in sys.modules:
        return False
    shell = sys.modules["IPython"].get_ipython()
    return shell is not None and hasattr(shell, "kernel")


def check(*submitted, hidden: bool = False, exercise: str | None = None, **context) -> None:
    """Run an exercise's visible (or hidden) cases on the learner's function(s); an ExerciseFailure
    (an AssertionError, a failed nbgrader test) says what went wrong and how to fix it. In a learner's
    notebook the failure is a short panel instead of a traceback, and the notebook runs on."""
    declared = _named(submitted[0] if submitted else None, exercise)
    try:
        declared.check(*submitted, hidden=hidden, **context)
    except ExerciseFailure as failure:
        if not in_learners_notebook():
            raise
        show_failure(failure, declared)


def show_failure(failure: ExerciseFailure, declared: Exercise) -> None:
    """A failed check as one panel: not written yet (amber) or wrong (red), with the check's message."""
    from IPython.display import display
    waiting = failure.key == "not_implemented"
    title = (f"⏳ {declared.name} is not done yet" if waiting else f"❌ {declared.name} does not pass yet")
    after = ("Until it is, the cells below use the course's version where they need one, and grading "
             "counts this test as failed." if waiting else
             "Fix it and run this cell again. Grading counts this test as failed until it passes.")
    message = str(failure).strip().removeprefix("❌").strip()
    colour = "#b7791f" if waiting else "#c53030"
    panel = (f'<div style="border-left:4px solid {colour};padding:6px 12px;margin:4px 0;'
             f'background:rgba(127,127,127,0.08)"><b>{html.escape(title)}</b>'
             f'<pre style="white-space:pre-wrap;margin:6px 0;background:none">{html.escape(message)}</pre>'
             f'<span style="opacity:0.8">{html.escape(after)}</span></div>')
    display({"text/html": panel, "text/plain": f"{title}\n{message}\n{after}"}, raw=True)


def use(fn: Callable, exercise: str | None = None) -> Callable:
    """The learner's function once it runs on a small input, else the course's answer, saying so."""
    return _named(fn, exercise).use(fn)
