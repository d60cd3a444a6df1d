"""The integrity re-check (autograder/integrity.py) on its own, without nbgrader: a small notebook
whose checks use everything a proxy for a learner's function must carry faithfully across the
pipe (a gradient, a random generator, a change made in place, a function passed in, a numpy array,
an unfinished stub), and answers that game it. The grading round trip (test_grading.py) runs it on
the real notebooks, in the sandbox."""
from __future__ import annotations

import copy
import json
import subprocess
import sys

import nbformat
import pytest

from conftest import REPO, _cell  # noqa: E402  (tests/ is on sys.path under pytest)

ANSWERS = {
    "weighted": "def weighted(x, w):\n    return (x * w).sum()",
    "draw": "def draw(generator):\n    return int(torch.randint(0, 1000, (1,), generator=generator))",
    "zero": "def zero(t):\n    t.zero_()",
    "apply": "def apply(f, x):\n    return f(x) + 1",
    "twice": "def twice(a):\n    return a * 2",
    "stub": "def stub():\n    raise NotImplementedError()",
}
TESTS = {
    "weighted": "w = torch.tensor([1.0, 2.0], requires_grad=True)\nweighted(torch.tensor([3.0, 4.0]), w).backward()\n"
                "assert torch.equal(w.grad, torch.tensor([3.0, 4.0])), w.grad",
    "draw": "g, ref = torch.Generator().manual_seed(0), torch.Generator().manual_seed(0)\n"
            "assert [draw(g), draw(g)] == [int(torch.randint(0, 1000, (1,), generator=ref)) for _ in range(2)]",
    "zero": "t = torch.ones(3)\nzero(t)\nassert t.sum() == 0",
    "apply": "assert apply(lambda v: v * 2, 3) == 7",
    "twice": "import numpy as np\nr = twice(np.arange(3))\nassert isinstance(r, np.ndarray) and r.tolist() == [0, 2, 4]",
    # the checks name the unfinished function from the innermost frame of the traceback
    "stub": "import traceback\ntry:\n    stub()\nexcept NotImplementedError as e:\n"
            "    assert traceback.extract_tb(e.__traceback__)[-1].name == 'stub'\nelse:\n    raise AssertionError",
}


def notebook(answers: dict) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    cells = [_cell("code", "import torch", "setup", locked=True)]
    for name in ANSWERS:
        cells.append(_cell("code", answers[name], f"{name}_answer", solution=True))
        cells.append(_cell("code", TESTS[name], f"{name}_tests", grade=True, locked=True, points=1))
    nb.cells = cells
    return nb


def recheck(tmp_path, answers: dict) -> dict:
    source, submission = tmp_path / "source.ipynb", tmp_path / "submission.ipynb"
    nbformat.write(notebook(ANSWERS), source)
    nbformat.write(notebook(answers), submission)
    out = tmp_path / "result.json"
    proc = subprocess.run([sys.executable, "-m", "autograder.integrity", str(source), str(submission),
                           "--out", str(out), "--passed", *(f"{n}_tests" for n in ANSWERS)],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return json.loads(out.read_text())


@pytest.fixture(scope="module")
def honest(tmp_path_factory):
    return recheck(tmp_path_factory.mktemp("honest"), ANSWERS)


def test_an_honest_answer_passes_the_recheck_unchanged(honest):
    assert {k: v["outcome"] for k, v in honest["cells"].items()} == {f"{n}_tests": "passed" for n in ANSWERS}
    assert honest["findings"] == []


@pytest.mark.parametrize("name, answer, kind, words", [
    ("weighted", "def weighted(x, w):\n    return (x * w).sum().detach()", "recheck_failed", "RuntimeError"),
    ("zero", "import builtins\nbuiltins.print = lambda *a, **k: None\n\ndef zero(t):\n    t.zero_()",
     "course_internals", "rebinds builtins.print"),
    ("zero", "import builtins\nbuiltins.len = lambda *a: 0\n\ndef zero(t):\n    t.zero_()", "recheck_stopped",
     "stopped its re-check"),  # it breaks the learner's side itself
    ("apply", "class Anything:\n    def __eq__(self, other):\n        return True\n\n\ndef apply(f, x):\n"
              "    return Anything()", "recheck_failed", "cannot read back"),
    ("draw", "def draw(generator):\n    import os\n    os._exit(0)", "recheck_stopped", "stopped its re-check"),
])
def test_gaming_answers_are_found(tmp_path, name, answer, kind, words):
    answers = dict(copy.deepcopy(ANSWERS), **{name: answer})
    result = recheck(tmp_path, answers)
    found = [f for f in result["findings"] if f["kind"] == kind]
    assert found and any(words in f["message"] for f in found), result["findings"]
    assert all(f["affects"] for f in found)
