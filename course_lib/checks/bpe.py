"""The tokenizer (BPE) check names as notebooks already handed out call them: each runs the
exercise's declaration in course_lib.exercises.bpe, as check(...) does."""
from __future__ import annotations

from course_lib.exercises import check


def check_get_pair_counts(fn) -> None:
    check(fn, exercise="get_pair_counts")


def check_merge(fn) -> None:
    check(fn, exercise="merge")


def check_train_bpe(fn) -> None:
    check(fn, exercise="train_bpe")


def check_train_bpe_hidden(fn) -> None:
    check(fn, exercise="train_bpe", hidden=True)


def check_encode_decode(encode_fn, decode_fn) -> None:
    check(encode_fn, decode_fn, exercise="encode")


def check_encode_decode_hidden(encode_fn, decode_fn) -> None:
    check(encode_fn, decode_fn, exercise="encode", hidden=True)
