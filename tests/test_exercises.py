"""The exercise registry: every declared answer passes its own cases, typical mistakes are caught
under their declared keys (tests assert keys, never wording), a skipped exercise falls back to the
course's answer visibly, and the old check_* names still run the same declarations."""
import os
import re
from pathlib import Path

import nbformat
import pytest
import torch

from course_lib import checks
from course_lib.exercises import EXERCISES, Case, Exercise, ExerciseFailure, check, exercise, onramp, use


REPO = Path(__file__).resolve().parent.parent


class FakeTokenizer:
    """Stands in for SmolLM2 in the strawberry question: ' strawberry' is one token."""

    @staticmethod
    def encode(text):
        return [7] if text == " strawberry" else list(range(len(text)))


# The exercises whose answers are values (a prediction, claims), with the measurements a notebook
# passes beside them; their answer is computed from those measurements.
MEASURED = {
    "strawberry_token_count": {"smol": FakeTokenizer()},
    "post_training_claims": {"sft_overlap": 0.22, "chance": 0.2, "reward_accuracy": {
        "all": 0.8, "wrong function": 0.5, "rambles on": 1.0, "cut off": 0.95}},
    "rl_claims": {"grpo_gain": 0.2, "control_gain": -0.4, "hack_length": (2.5, 4.0), "hack_accuracy": (0.5, 0.0),
                  "sweep_accuracy": {0.0: 0.0, 0.3: 0.7}},
}


@pytest.mark.parametrize("name", sorted(EXERCISES))
def test_the_courses_answer_passes_its_own_cases(name, capsys):
    ex = EXERCISES[name]
    if name in MEASURED:
        answer = ex.answer(**MEASURED[name])
        submitted = answer if isinstance(answer, tuple) else (answer,)
    else:
        submitted = (ex.answer,)
    check(*submitted, exercise=name, **MEASURED.get(name, {}))
    if ex.hidden:
        check(*submitted, exercise=name, hidden=True, **MEASURED.get(name, {}))
    assert capsys.readouterr().out.count("✅") == 1 + bool(ex.hidden)


def failure(*submitted, hidden=False, **kwargs) -> ExerciseFailure:
    with pytest.raises(ExerciseFailure) as caught:
        check(*submitted, hidden=hidden, **kwargs)
    assert isinstance(caught.value, AssertionError)  # what nbgrader counts as a failed test
    return caught.value


# --- softmax_with_temperature ----------------------------------------------------------------
def unstable_softmax(logits, temperature):
    if temperature <= 0:
        raise ValueError("temperature must be > 0")
    e = torch.exp(torch.as_tensor(logits, dtype=torch.float32) / temperature)
    return e / e.sum(-1, keepdim=True)


def ignoring_temperature(logits, temperature):
    return torch.softmax(torch.as_tensor(logits, dtype=torch.float32), -1)


def in_place(logits, temperature):
    if temperature <= 0:
        raise ValueError("temperature must be > 0")
    logits /= temperature
    return torch.softmax(logits, -1)


def never_refusing(logits, temperature):
    return torch.softmax(torch.as_tensor(logits) / (temperature or 1e-9), -1)


def over_every_dimension(logits, temperature):
    if temperature <= 0:
        raise ValueError("temperature must be > 0")
    e = torch.exp(logits / temperature - (logits / temperature).max())
    return e / e.sum()


def as_a_list(logits, temperature):
    return onramp.softmax_with_temperature(logits, temperature).tolist()


@pytest.mark.parametrize("wrong, hidden, key", [
    (ignoring_temperature, False, "temperature_ignored"),
    (in_place, False, "changed_input"),
    (never_refusing, False, "no_refusal"),
    (as_a_list, False, "not_a_tensor"),
    (unstable_softmax, True, "not_finite"),
    (over_every_dimension, True, "batch"),
])
def test_softmax_mistakes_are_named(wrong, hidden, key):
    wrong.__name__ = "softmax_with_temperature"
    assert failure(wrong, hidden=hidden).key == key


def test_a_mistake_only_the_hidden_cases_see_passes_the_visible_ones():
    unstable_softmax.__name__ = "softmax_with_temperature"
    check(unstable_softmax)  # fine on small logits; only huge ones overflow
    assert failure(unstable_softmax, hidden=True).key == "not_finite"


# --- generate -------------------------------------------------------------------------------
def always_greedy(next_token_fn, prompt_ids, max_new_tokens, temperature=0.0, eos_id=None):
    return onramp.generate(next_token_fn, prompt_ids, max_new_tokens, 0.0, eos_id)


def editing_the_prompt(next_token_fn, prompt_ids, max_new_tokens, temperature=0.0, eos_id=None):
    for _ in range(max_new_tokens):
        prompt_ids.append(int(torch.argmax(next_token_fn(prompt_ids))))
        if prompt_ids[-1] == eos_id:
            break
    return prompt_ids[-max_new_tokens:] if max_new_tokens else []


def ignoring_eos(next_token_fn, prompt_ids, max_new_tokens, temperature=0.0, eos_id=None):
    return onramp.generate(next_token_fn, prompt_ids, max_new_tokens, temperature, None)


def stale_context(next_token_fn, prompt_ids, max_new_tokens, temperature=0.0, eos_id=None):
    return [int(torch.argmax(next_token_fn(list(prompt_ids)))) for _ in range(max_new_tokens)]


@pytest.mark.parametrize("wrong, hidden, key", [
    (editing_the_prompt, False, "changed_input"),
    (ignoring_eos, False, "eos_ignored"),
    (stale_context, False, "context_not_extended"),
    (always_greedy, True, "not_sampled"),
])
def test_generate_mistakes_are_named(wrong, hidden, key):
    wrong.__name__ = "generate"
    assert failure(wrong, hidden=hidden).key == key


def test_a_stub_inside_the_learners_function_is_the_one_named():
    def softmax_with_temperature(logits, temperature):
        raise NotImplementedError()

    def generate(next_token_fn, prompt_ids, max_new_tokens, temperature=0.0, eos_id=None):
        return [int(softmax_with_temperature(next_token_fn(prompt_ids), temperature).argmax())]

    found = failure(generate)
    assert found.key == "not_implemented"
    assert "implement softmax_with_temperature first" in str(found)
    assert failure(softmax_with_temperature).key == "not_implemented"


# --- the prediction -------------------------------------------------------------------------
@pytest.mark.parametrize("prediction", [None, True, "1", 0, ...])
def test_a_prediction_must_be_a_whole_number(prediction):
    key = "not_implemented" if prediction is ... else "not_a_number"
    assert failure(prediction, exercise="strawberry_token_count", smol=FakeTokenizer()).key == key


@pytest.mark.parametrize("guess, verdict", [(1, "you were right"), (10, "makes ' strawberry' one token")])
def test_any_guess_earns_the_point_and_the_answer_is_revealed(guess, verdict, capsys):
    check(guess, exercise="strawberry_token_count", smol=FakeTokenizer())
    out = capsys.readouterr().out
    assert "Recorded" in out and f"guessed {guess}" in out and verdict in out


# --- use, and the registry ------------------------------------------------------------------
def test_use_falls_back_to_the_answer_visibly_and_keeps_a_working_function(capsys):
    def softmax_with_temperature(logits, temperature):
        raise NotImplementedError()

    assert use(softmax_with_temperature) is onramp.softmax_with_temperature
    assert "not implemented yet" in capsys.readouterr().out

    def generate(next_token_fn, prompt_ids, max_new_tokens, temperature=0.0, eos_id=None):
        raise KeyError("oops")

    assert use(generate) is onramp.generate
    assert "KeyError" in capsys.readouterr().out
    assert use(in_place, exercise="softmax_with_temperature") is in_place


def test_an_unknown_function_name_is_a_clear_failure():
    def my_softmax(logits, temperature):
        return logits

    assert failure(my_softmax).key == "unknown_exercise"
    with pytest.raises(ExerciseFailure):
        exercise("no_such_exercise")


def test_a_hidden_test_cell_without_hidden_cases_is_a_course_bug():
    with pytest.raises(ValueError, match="no hidden cases"):
        check(onramp.strawberry_tokens, exercise="strawberry_token_count", hidden=True, smol=FakeTokenizer())


def test_an_undeclared_mistake_is_a_course_bug_not_a_learners_failure():
    with pytest.raises(KeyError, match="not declared"):
        EXERCISES["generate"].hint("no_such_mistake")


def test_the_old_check_names_run_the_same_declarations():
    in_place.__name__ = "softmax_with_temperature"
    with pytest.raises(ExerciseFailure) as caught:
        checks.check_softmax_with_temperature(in_place)
    assert caught.value.key == "changed_input"
    with pytest.raises(ExerciseFailure) as caught:
        checks.check_generate_hidden(always_greedy)
    assert caught.value.key == "not_sampled"
    with pytest.raises(ExerciseFailure) as caught:
        checks.check_strawberry_prediction("3", FakeTokenizer())
    assert caught.value.key == "not_a_number"


# --- the engine on a made-up exercise: wrong versions named, gradients compared ---------------
def mean_square(x):
    return (x ** 2).mean()


MEAN_SQUARE = Exercise(
    name="mean_square", answer=mean_square, probe=lambda f: f(torch.zeros(2)),
    mistakes={"summed": "divide by the number of elements"},
    wrong={"summed": lambda x: (x ** 2).sum()},
    visible=(Case("on three numbers", (torch.tensor([1.0, 2.0, 3.0]),), grad=(0,)),),
)


@pytest.mark.parametrize("wrong, key", [
    (lambda x: (x ** 2).sum(), "summed"),                      # a declared wrong version: named
    (lambda x: (x ** 3).mean(), "values"),                     # any other wrong value
    (lambda x: torch.tensor(float((x ** 2).mean().detach())), "no_gradient"),  # the graph cut
    (lambda x: (x.detach() ** 2).mean() + 0 * x.sum(), "gradient"),   # a gradient, but the wrong one
    (lambda x: float((x ** 2).mean()), "not_a_tensor"),
])
def test_the_engine_names_a_wrong_version_and_checks_gradients(wrong, key):
    with pytest.raises(ExerciseFailure) as caught:
        MEAN_SQUARE.check(wrong)
    assert caught.value.key == key


def test_the_engine_passes_the_answer_with_its_gradient(capsys):
    MEAN_SQUARE.check(mean_square)
    assert "✅" in capsys.readouterr().out


def test_every_notebook_check_names_a_declared_exercise_and_hidden_cells_have_hidden_cases():
    import ast
    from pathlib import Path

    import nbformat

    found = set()
    for path in sorted(Path(__file__).resolve().parents[1].glob("solutions/*/*.ipynb")):
        for cell in nbformat.read(path, 4).cells:
            if cell.cell_type != "code" or "course_lib.exercises" not in cell.source:
                continue
            for node in ast.walk(ast.parse(cell.source)):
                if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("check", "use"):
                    keywords = {k.arg: k.value for k in node.keywords}
                    name = keywords["exercise"].value if "exercise" in keywords else node.args[0].id
                    assert name in EXERCISES, f"{path.name}: {ast.unparse(node)} names no declared exercise"
                    if "hidden" in keywords:
                        assert EXERCISES[name].hidden, f"{path.name}: {name} has no hidden cases"
                    found.add(name)
    assert found == set(EXERCISES)  # and every declared exercise is graded in some notebook


# --- in a learner's notebook: a panel, and Run All goes on; under grading: the failure --------
PANEL_CELLS = [
    "from course_lib.exercises import check\n"
    "def softmax_with_temperature(logits, temperature):\n    raise NotImplementedError()",
    "check(softmax_with_temperature)",
    "check(..., exercise='strawberry_token_count', smol=None)",
    "def softmax_with_temperature(logits, temperature):\n    return logits",
    "check(softmax_with_temperature)",
    "print('the last cell ran')",
]


def run_cells(sources: list[str], **env) -> nbformat.NotebookNode:
    from nbclient import NotebookClient

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    env = {k: v for k, v in {**os.environ, **env}.items() if v is not None}
    NotebookClient(nb, timeout=120, kernel_name="python3", allow_errors=True).execute(env=env)
    return nb


def test_a_failed_check_is_a_panel_in_a_notebook_and_the_failure_under_grading():
    nb = run_cells(PANEL_CELLS, COURSE_GRADING=None)
    outputs = [c.outputs for c in nb.cells]
    assert not [o for out in outputs for o in out if o.output_type == "error"]
    panels = [next(o.data for o in outputs[i] if o.output_type == "display_data") for i in (1, 2, 4)]
    assert "softmax_with_temperature is not done yet" in panels[0]["text/plain"]
    assert "still `...`" in panels[1]["text/plain"]
    assert "does not pass yet" in panels[2]["text/plain"] and "💡 hint 2 above" in panels[2]["text/plain"]
    assert all("<div" in p["text/html"] and "Traceback" not in p["text/plain"] for p in panels)
    assert "the last cell ran" in outputs[5][0].text

    graded = run_cells(PANEL_CELLS, COURSE_GRADING="1")
    errors = {i: o.ename for i, c in enumerate(graded.cells) for o in c.outputs if o.output_type == "error"}
    assert errors == {1: "ExerciseFailure", 2: "ExerciseFailure", 4: "ExerciseFailure"}


# --- hints and times --------------------------------------------------------------------------
NO_HINTS = {"strawberry_token_count"}  # a guess: a hint would give it away


@pytest.mark.parametrize("name", sorted(EXERCISES))
def test_every_exercise_has_two_or_three_hints_that_fit_declared_mistakes(name):
    from course_lib.exercises.engine import ENGINE_MISTAKES
    ex = EXERCISES[name]
    if name in NO_HINTS:
        assert ex.hints == ()
        return
    assert 2 <= len(ex.hints) <= 3, f"{name} has {len(ex.hints)} hints"
    for hint in ex.hints:
        assert hint.text.strip() and set(hint.fits) <= set(ex.mistakes) | set(ENGINE_MISTAKES), (name, hint.fits)
    assert ex.hint_for("not_implemented") == 1


@pytest.mark.parametrize("path", sorted(REPO.glob("notebooks/*/*.ipynb")), ids=lambda p: p.stem)
def test_each_graded_exercise_in_a_student_notebook_states_its_time_and_shows_its_hints(path):
    from autograder.generate import checked_exercise
    cells = nbformat.read(path, as_version=4).cells
    for index, cell in enumerate(cells):
        name = checked_exercise(cell.source) if cell.metadata.get("nbgrader", {}).get("grade") else None
        if name is None:
            continue
        above = [c.source for c in cells[:index] if c.cell_type == "markdown"]
        heading = next(line for text in reversed(above) for line in reversed(text.splitlines())
                       if line.startswith("#"))
        assert re.search(r"\(~\d+ min", heading), f"{name}: its heading {heading!r} states no time"
        if name not in NO_HINTS:
            hints = next((c for c in cells[:index] if c.get("id") == f"hints-{name}"), None)
            assert hints is not None and hints.source == EXERCISES[name].hints_markdown(), name
            assert hints.source.count("<details>") == len(EXERCISES[name].hints)
