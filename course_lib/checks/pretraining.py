"""Notebook C's check names as notebooks already handed out call them: each runs the exercise's
declaration in course_lib.exercises.pretraining, as check(...) does."""
from __future__ import annotations

from course_lib.exercises import check


def check_next_token_loss(fn) -> None:
    check(fn, exercise="next_token_loss")


def check_next_token_loss_hidden(fn) -> None:
    check(fn, exercise="next_token_loss", hidden=True)


def check_dedupe(fn) -> None:
    check(fn, exercise="dedupe")


def check_dedupe_hidden(fn) -> None:
    check(fn, exercise="dedupe", hidden=True)


def check_chinchilla_loss(fn) -> None:
    check(fn, exercise="chinchilla_loss")


def check_compute_optimal(fn) -> None:
    check(fn, exercise="compute_optimal")


def check_compute_optimal_hidden(fn) -> None:
    check(fn, exercise="compute_optimal", hidden=True)

