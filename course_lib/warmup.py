"""The on-ramp's warm-up to tensors: small self-checks on the model's real scores, with feedback.

They are not graded and never raise, so a wrong or missing answer teaches and the notebook runs on:

    self_check("shape", my_shape, scores=scores)

Each question knows how to work out its answer from what the notebook passes (`scores`: two rows of
SmolLM2's next-token scores) and what to say when the learner's answer differs.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch


@dataclass(frozen=True)
class Question:
    answer: Callable[..., Any]   # the right answer, from the notebook's tensors
    explain: str                 # said after a wrong answer


def _same(got, expected) -> bool:
    if torch.is_tensor(expected):
        return (torch.is_tensor(got) and got.shape == expected.shape
                and torch.allclose(got.double(), expected.double(), atol=1e-4))
    if isinstance(expected, tuple):
        return tuple(got) == expected if isinstance(got, (tuple, list, torch.Size)) else False
    if isinstance(expected, float):
        return isinstance(got, (int, float)) and not isinstance(got, bool) and abs(got - expected) < 1e-4
    return got == expected


QUESTIONS = {
    "shape": Question(
        lambda scores: tuple(scores.shape),
        "`scores.shape` reads (rows, columns): one row per question, one column per token of the vocabulary."),
    "second_row": Question(
        lambda scores: scores[1],
        "rows are numbered from 0, so the second row is `scores[1]`: one index picks a whole row."),
    "row_max": Question(
        lambda scores: scores.max(dim=-1).values,
        "`scores.max(dim=-1)` works along the last dimension, the columns: one largest score per row, "
        "so a result of shape (2,); `.values` holds the numbers (`.indices` says where they were)."),
    "shifted_max": Question(
        lambda scores: 0.0,
        "each row had its own largest score subtracted (broadcasting stretched the (2, 1) column of maxima "
        "across all 49,152 columns), so every row's largest value is now exactly 0."),
    "largest_weight": Question(
        lambda scores: 1.0,
        "after the shift every score is at most 0, and exp(0) = 1: no number can overflow any more."),
}


def self_check(question: str, answer: Any, **tensors) -> bool:
    """Say whether `answer` is right (✅) or what to look at (❌), from the notebook's own tensors."""
    if question not in QUESTIONS:
        raise KeyError(f"no warm-up question {question!r}; there are {sorted(QUESTIONS)}")
    if answer is Ellipsis:
        print("✏️  Replace the `...` in the cell above with your answer, then run both cells again.")
        return False
    asked = QUESTIONS[question]
    expected = asked.answer(**tensors)
    if _same(answer, expected):
        print("✅ Right.")
        return True
    shown = tuple(expected.shape) if torch.is_tensor(expected) else expected
    got = tuple(answer.shape) if torch.is_tensor(answer) else answer
    print(f"❌ Not quite: {'a tensor of shape ' if torch.is_tensor(expected) else ''}{shown} was expected, "
          f"you gave {'a tensor of shape ' if torch.is_tensor(answer) else ''}{got}.\n   Why: {asked.explain}")
    return False
