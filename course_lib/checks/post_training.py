"""Notebook D's check names as notebooks already handed out call them: each runs the exercise's
declaration in course_lib.exercises.post_training, as check(...) does."""
from __future__ import annotations

from course_lib.exercises import check


def check_sft_loss(fn) -> None:
    check(fn, exercise="sft_loss")


def check_sft_loss_hidden(fn) -> None:
    check(fn, exercise="sft_loss", hidden=True)


def check_sequence_logprob(fn) -> None:
    check(fn, exercise="sequence_logprob")


def check_bradley_terry_loss(fn) -> None:
    check(fn, exercise="bradley_terry_loss")


def check_bradley_terry_loss_hidden(fn) -> None:
    check(fn, exercise="bradley_terry_loss", hidden=True)


def check_dpo_loss(fn) -> None:
    check(fn, exercise="dpo_loss")


def check_dpo_loss_hidden(fn) -> None:
    check(fn, exercise="dpo_loss", hidden=True)


def check_post_training_claims(claim_job, sft_overlap_closer_to, hardest_flaw, *, sft_overlap: float,
                               chance: float, reward_accuracy: dict[str, float]) -> None:
    check(claim_job, sft_overlap_closer_to, hardest_flaw, exercise="post_training_claims", sft_overlap=sft_overlap,
          chance=chance, reward_accuracy=reward_accuracy)
