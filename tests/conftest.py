"""Shared fixtures. Keep this file small: helpers used by one test file live in that file."""
from __future__ import annotations

import copy
import dataclasses
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from autograder import course

REPO = Path(__file__).resolve().parent.parent
SYNTHETIC = "zz_synthetic"  # sorts after the real assignments; never exists in the repo itself
OPTIONAL = "optional"  # the cell tag of an optional part (a deep dive a learner may skip)


def core_path(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A copy of nb without its optional parts: the notebook of a learner who skipped them all."""
    core = copy.deepcopy(nb)
    core.cells = [c for c in core.cells if OPTIONAL not in c.metadata.get("tags", [])]
    return core


def _cell(kind: str, source: str, grade_id: str | None = None, *, grade=False, solution=False,
          locked=False, points=0):
    make = nbformat.v4.new_code_cell if kind == "code" else nbformat.v4.new_markdown_cell
    cell = make(source)
    if grade_id:
        cell.id = grade_id
        meta = {"grade": grade, "grade_id": grade_id, "locked": locked, "schema_version": 3,
                "solution": solution}
        if grade:
            meta["points"] = points
        cell.metadata["nbgrader"] = meta
    return cell


def synthetic_solution() -> nbformat.NotebookNode:
    """A tiny nbgrader source notebook shaped like the real ones, executing in about a second.

    Two exercises (answer cell, visible-test grade cell, hidden-test grade cell), a
    predict-then-check variable graded by a test cell, a locked instructor cell that prints the
    fast flag, and a demo cell that falls back when the learner's function is unimplemented.
    """
    nb = nbformat.v4.new_notebook()
    nb.metadata = {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
                   "language_info": {"name": "python"}}
    cells = [
        _cell("md", "# Synthetic assignment\nUsed only by the tests of the grading pipeline."),
        _cell("code", 'import os\nprint("COURSE_FAST=" + str(os.environ.get("COURSE_FAST")))',
              "setup", locked=True),
        _cell("md", "## Exercise 1: `add`"),
        _cell("code", "def add(a, b):\n    ### BEGIN SOLUTION\n    return a + b\n    ### END SOLUTION",
              "add_answer", solution=True),
        _cell("code", "assert add(1, 2) == 3, 'add(1, 2) should be 3'", "add_visible_tests",
              grade=True, locked=True, points=1),
        _cell("code", "assert add(-1, 1) == 0\n### BEGIN HIDDEN TESTS\nassert add(40, 2) == 42"
                      "  # hidden-add-check\n### END HIDDEN TESTS", "add_hidden_tests",
              grade=True, locked=True, points=2),
        _cell("md", "## Exercise 2: `double`"),
        _cell("code", "def double(x):\n    ### BEGIN SOLUTION\n    return 2 * x\n    ### END SOLUTION",
              "double_answer", solution=True),
        _cell("code", "assert double(3) == 6", "double_visible_tests", grade=True, locked=True,
              points=1),
        _cell("code", "### BEGIN HIDDEN TESTS\nassert double(-7) == -14  # hidden-double-check\n"
                      "### END HIDDEN TESTS", "double_hidden_tests", grade=True, locked=True,
              points=1),
        _cell("code", "try:\n    demo = double(21)\nexcept NotImplementedError:\n"
                      "    demo = 42  # the course's reference answer, used visibly\n"
                      "    print('double is not implemented yet: using the reference')\nprint(demo)"),
        _cell("md", "## Predict, then check\nHow many letters r are in 'strawberry'?"),
        _cell("code", "prediction = None  # your guess, an int\n### BEGIN SOLUTION\n"
                      "prediction = 3\n### END SOLUTION", "predict_answer", solution=True),
        _cell("code", "assert prediction == 'strawberry'.count('r'), 'count again'",
              "predict_check", grade=True, locked=True, points=1),
    ]
    for index, cell in enumerate(cells):  # fixed ids: every copy of the course holds the same file
        cell.id = cell.metadata.get("nbgrader", {}).get("grade_id", f"cell-{index}")
    nb.cells = cells
    return nb


def run_step(root: Path, step: str, *args: str, timeout: float = 300, **kwargs) -> subprocess.CompletedProcess:
    """`python -m autograder STEP ARGS` from the course (copy) at root, as the instructor runs it;
    its output captured as text."""
    return subprocess.run([sys.executable, "-m", "autograder", step, *args], cwd=root,
                          capture_output=True, text=True, timeout=timeout, **kwargs)


def build_course(root: Path, assignments=(), synthetic=True) -> Path:
    """A throwaway copy of the course at root (course.copy: autograder/, solutions/ and notebooks/
    of the given assignments), and optionally the synthetic source."""
    course.copy(root, assignments)
    if synthetic:
        (root / "solutions" / SYNTHETIC).mkdir(exist_ok=True)
        nbformat.write(synthetic_solution(), root / "solutions" / SYNTHETIC / f"{SYNTHETIC}.ipynb")
    return root


@pytest.fixture(scope="session")
def half_right():
    """(model, curve): notebook E's start model, pre-trained until it answers about half the held-out
    problems (seconds on a CPU), shared by the GRPO and RLHF tests, which never train it in place."""
    from course_lib.train import grpo

    model = grpo.arithmetic_model(seed=0)
    curve = grpo.pretrain_arithmetic(model, 3000, target_accuracy=0.5, seed=0, progress=False)
    return model, curve


@pytest.fixture(scope="session")
def course_factory(tmp_path_factory):
    """make(name, assignments=(), synthetic=True) -> root of a fresh throwaway course copy.

    The root is <unique tmp dir>/course, so root.parent is free for submissions and reports."""
    def make(name="course", assignments=(), synthetic=True) -> Path:
        return build_course(tmp_path_factory.mktemp(name) / "course", assignments, synthetic)
    return make


# The caps a grading run of the synthetic assignment runs under where it is compared with the
# sandbox test's run (test_grading_sandbox adds --sandbox bwrap, which "auto" is wherever it works).
LIMITS = ["--answer-timeout", "3", "--memory", "1G", "--processes", "64", "--file-size", "32M",
          "--output-limit", "100k"]
SERIAL_STUDENTS = ("solution", "untouched", "loop_delete", "tampered", "cheat_equal")


@dataclasses.dataclass
class GradedRun:
    root: Path           # the course copy it graded in (its gradebook: root/autograder/gradebook.db)
    submissions: Path
    out: Path            # its reports
    students: dict       # student -> that student's report
    returncode: int


@pytest.fixture(scope="session")
def serial_synthetic(course_factory) -> GradedRun:
    """One serial run (one worker) of the synthetic assignment, one student of each outcome (graded,
    timed out with a deleted cell, tampered, integrity): the run that the parallel (test_grading),
    sandboxed (test_grading_sandbox) and Dask (test_grading_dask) runs of the same notebooks are
    compared with, graded once for the three."""
    # The cases are the grading round trip's (test_grading imports this file, so not at the top).
    from test_grading import run_grade, student_notebook, synthetic_only_cases, tamper_cases, write_submissions

    root = course_factory("grade-serial")
    solution = nbformat.read(root / "solutions" / SYNTHETIC / f"{SYNTHETIC}.ipynb", 4)
    untouched = student_notebook(root, SYNTHETIC)
    cases = {"solution": solution, "untouched": untouched, **tamper_cases(SYNTHETIC, solution, untouched),
             **synthetic_only_cases(solution)}
    submissions = write_submissions(root.parent / "submissions", SYNTHETIC,
                                    {k: cases[k] for k in SERIAL_STUDENTS})
    out = root.parent / "reports"
    proc, students = run_grade(root, SYNTHETIC, submissions, "--workers", "1", *LIMITS, out=out,
                               timeout=600)
    assert proc.returncode == 3, f"grade.py failed:\n{proc.stdout}\n{proc.stderr}"
    return GradedRun(root, submissions, out, students, proc.returncode)
