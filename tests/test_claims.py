"""The open "Evaluate the claim" parts: each has an answer cell and the course's answer, which
appears only once the learner has written an attempt; nothing there raises or is graded."""
from pathlib import Path
from unittest import mock

import nbformat
import pytest

from course_lib.claims import MIN_WORDS, MODEL_ANSWERS, reveal_model_answer

REPO = Path(__file__).resolve().parent.parent


def shown(answer, notebook="A_lifecycle"):
    with mock.patch("IPython.display.display") as display:
        reveal_model_answer(notebook, answer)
    return [call.args[0].data for call in display.call_args_list]


@pytest.mark.parametrize("answer", [..., None, "", "too short to count as an attempt"])
def test_the_courses_answer_waits_for_an_attempt(answer, capsys):
    assert shown(answer) == []
    assert "Write your answer in the cell above first" in capsys.readouterr().out


def test_an_attempt_reveals_the_courses_answer():
    (text,) = shown("word " * MIN_WORDS)
    assert text.endswith(MODEL_ANSWERS["A_lifecycle"]) and "The course's answer" in text
    with pytest.raises(KeyError, match="no model answer for 'Z'"):
        reveal_model_answer("Z", "word " * MIN_WORDS)


@pytest.mark.parametrize("name", sorted(MODEL_ANSWERS))
def test_each_open_claim_has_an_answer_cell_then_the_reveal(name):
    for folder, attempt in (("solutions", True), ("notebooks", False)):
        cells = nbformat.read(REPO / folder / name / f"{name}.ipynb", as_version=4).cells
        ids = [c.get("id") for c in cells]
        at = ids.index("claim-answer")
        assert ids[at + 1] == "claim-reveal" and f'reveal_model_answer("{name}", my_answer)' in cells[at + 1].source
        assert "## Evaluate the claim" in cells[at - 1].source
        source = cells[at].source
        assert source.startswith("my_answer = ...")
        if attempt:  # the solution's sample answer is an attempt, so the reveal shows in it
            sample = source.split('"""')[-2]
            assert len(sample.split()) >= MIN_WORDS
        else:
            assert '"""' not in source.split("\n", 1)[1]  # the sample does not reach the student
