"""The on-ramp's warm-up self-checks: the notebook's answers pass, a wrong answer gets the reason, a
placeholder asks for an answer, and none of them raises (they are not graded)."""
import pytest
import torch

from course_lib.warmup import QUESTIONS, self_check

SCORES = torch.randn(2, 50, generator=torch.Generator().manual_seed(0)) * 5
# What the solution notebook answers (solutions/00_onramp, the warm-up cells).
RIGHT = {"shape": (2, 50), "second_row": SCORES[1], "row_max": SCORES.max(dim=-1).values,
         "shifted_max": 0.0, "largest_weight": 1.0}
WRONG = {"shape": (50, 2), "second_row": SCORES[0], "row_max": SCORES.max(dim=0).values,
         "shifted_max": SCORES.max().item(), "largest_weight": float("inf")}


@pytest.mark.parametrize("question", sorted(QUESTIONS))
def test_right_wrong_and_missing_answers(question, capsys):
    assert set(RIGHT) == set(WRONG) == set(QUESTIONS)
    assert self_check(question, RIGHT[question], scores=SCORES) is True
    assert "✅" in capsys.readouterr().out
    assert self_check(question, WRONG[question], scores=SCORES) is False
    assert f"Why: {QUESTIONS[question].explain}" in capsys.readouterr().out
    assert self_check(question, ..., scores=SCORES) is False
    assert "Replace the `...`" in capsys.readouterr().out


def test_a_whole_number_counts_as_the_number_and_an_unknown_question_is_named():
    assert self_check("shifted_max", 0, scores=SCORES)
    with pytest.raises(KeyError, match="no warm-up question 'shapes'"):
        self_check("shapes", (2, 50), scores=SCORES)
