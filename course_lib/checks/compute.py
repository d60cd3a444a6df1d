"""Notebook B's check names as notebooks already handed out call them: each runs the exercise's
declaration in course_lib.exercises.compute, as check(...) does."""
from __future__ import annotations

from course_lib.exercises import check


def check_matmul_flops(fn) -> None:
    check(fn, exercise="matmul_flops")


def check_forward_flops(fn) -> None:
    check(fn, exercise="forward_flops")


def check_forward_flops_hidden(fn) -> None:
    check(fn, exercise="forward_flops", hidden=True)


def check_fit_power_law(fn) -> None:
    check(fn, exercise="fit_power_law")


def check_fit_power_law_hidden(fn) -> None:
    check(fn, exercise="fit_power_law", hidden=True)
