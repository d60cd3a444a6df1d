"""Notebook A's check names as notebooks already handed out call them: each runs the exercise's
declaration in course_lib.exercises.lifecycle, as check(...) does."""
from __future__ import annotations

from course_lib.exercises import check


def check_cosine_similarity(fn) -> None:
    check(fn, exercise="cosine_similarity")


def check_nearest_neighbors(fn) -> None:
    check(fn, exercise="nearest_neighbors")


def check_causal_mask(fn) -> None:
    check(fn, exercise="causal_mask")


def check_scaled_dot_product_attention(fn) -> None:
    check(fn, exercise="scaled_dot_product_attention")


def check_scaled_dot_product_attention_hidden(fn) -> None:
    check(fn, exercise="scaled_dot_product_attention", hidden=True)


def check_sample_next_token(fn) -> None:
    check(fn, exercise="sample_next_token")


def check_sample_next_token_hidden(fn) -> None:
    check(fn, exercise="sample_next_token", hidden=True)
