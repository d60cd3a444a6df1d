"""The on-ramp's check names as notebooks already handed out call them: each runs the exercise's
declaration in course_lib.exercises.onramp, as check(...) does."""
from __future__ import annotations

from course_lib.exercises import check


def check_softmax_with_temperature(fn) -> None:
    check(fn, exercise="softmax_with_temperature")


def check_softmax_with_temperature_hidden(fn) -> None:
    check(fn, exercise="softmax_with_temperature", hidden=True)


def check_generate(fn) -> None:
    check(fn, exercise="generate")


def check_generate_hidden(fn) -> None:
    check(fn, exercise="generate", hidden=True)


def check_strawberry_prediction(prediction, smol) -> None:
    check(prediction, exercise="strawberry_token_count", smol=smol)
