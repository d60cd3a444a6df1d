"""`python -m course_lib validate`: the learner's check that a notebook would not lose points.

Cases on the synthetic assignment (a throwaway course copy, seconds per run), each notebook in its
own folder under the name of the release it came from:

    solution    the source notebook                          -> exit 0, every test passes
    untouched   the student notebook as released             -> exit 1, names what fails
    deleted     untouched, a visible grade cell deleted      -> exit 1, names the missing cell
    points      untouched, a test cell's points raised to 10 -> exit 1, changed metadata
    elsewhere   the points case under another file name, no release to compare with
                                                             -> exit 1 from its nbgrader checksums
"""
from __future__ import annotations

import copy
import io
import json
import subprocess
import sys
from contextlib import redirect_stdout
from pathlib import Path

import nbformat
import pytest

from conftest import REPO, SYNTHETIC, run_step  # noqa: E402  (tests/ is on sys.path under pytest)
from course_lib import validate
from course_lib.validate import EXIT_BAD_INPUT, EXIT_LOSES_POINTS, EXIT_OK

VISIBLE = {"add_visible_tests": 1, "double_visible_tests": 1, "predict_check": 1}
HIDDEN = {"add_hidden_tests": 2, "double_hidden_tests": 1}  # partly or wholly hidden from learners


def cell(nb, grade_id):
    return next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)


@pytest.fixture(scope="module")
def course(course_factory) -> Path:
    root = course_factory("validate")
    # The student version exactly as the course releases it (checksums included).
    run_step(root, "generate", SYNTHETIC, check=True)
    return root


@pytest.fixture(scope="module")
def cases(course) -> dict[str, Path]:
    solution = nbformat.read(course / "solutions" / SYNTHETIC / f"{SYNTHETIC}.ipynb", 4)
    untouched = nbformat.read(course / "notebooks" / SYNTHETIC / f"{SYNTHETIC}.ipynb", 4)
    deleted = copy.deepcopy(untouched)
    deleted.cells.remove(cell(deleted, "double_visible_tests"))
    points = copy.deepcopy(untouched)
    cell(points, "add_visible_tests").metadata.nbgrader["points"] = 10
    paths = {}
    for name, nb in {"solution": solution, "untouched": untouched, "deleted": deleted,
                     "points": points}.items():
        paths[name] = course.parent / name / f"{SYNTHETIC}.ipynb"
        paths[name].parent.mkdir()
        nbformat.write(nb, paths[name])
    paths["elsewhere"] = course.parent / "elsewhere" / "my_copy.ipynb"
    paths["elsewhere"].parent.mkdir()
    nbformat.write(points, paths["elsewhere"])
    return paths


def run(*args) -> tuple[int, str]:
    """(exit status, what the command printed) of `python -m course_lib validate ARGS`, in-process."""
    with redirect_stdout(io.StringIO()) as out:
        status = validate.main([str(a) for a in args])
    return status, out.getvalue()


@pytest.fixture(scope="module")
def text_runs(course, cases) -> dict[str, tuple[int, str]]:
    """case -> (exit status, printed report): each case run once, alone."""
    return {name: run(cases[name], "--course", course, "--timeout", 60)
            for name in ("solution", "untouched", "deleted", "points")}


def test_solution_validates(text_runs):
    status, out = text_runs["solution"]
    assert status == EXIT_OK, out
    assert "visible tests: 6 of 6 points" in out  # the source holds its hidden tests: all count
    assert "nothing would lose points" in out


def test_untouched_notebook_names_what_fails(text_runs, cases):
    before = cases["untouched"].read_bytes()
    status, out = text_runs["untouched"]
    assert status == EXIT_LOSES_POINTS
    assert "visible tests: 0 of 3 points (3 points more depend on hidden tests" in out
    # A top-level answer keeps its placeholder and no raise (Run All goes on): its test names it.
    assert "it still raises NotImplementedError" not in out
    for grade_id in VISIBLE:
        assert f"test {grade_id} (1 point) fails" in out
    assert "count again" in out  # the first line of the test's own message
    assert "test add_hidden_tests (2 points) fails" in out  # its visible part fails already
    assert "double_hidden_tests" not in out  # nothing visible to fail
    assert cases["untouched"].read_bytes() == before  # the learner's file is never written


def test_deleted_grade_cell_is_named(text_runs):
    status, out = text_runs["deleted"]
    assert status == EXIT_LOSES_POINTS
    assert "test cell double_visible_tests (1 point) is missing" in out
    assert "visible tests: 0 of 3 points" in out  # its points still count, as lost


def test_edited_points_are_reported_and_not_counted(text_runs):
    status, out = text_runs["points"]
    assert status == EXIT_LOSES_POINTS
    assert "nbgrader metadata of cell add_visible_tests was changed (points: 1 -> 10)" in out
    assert "visible tests: 0 of 3 points" in out  # the release's points, not the edited ones


def test_json_matches_the_printed_report(course, cases, text_runs):
    names = ["solution", "untouched", "deleted", "elsewhere"]
    status, out = run(*(cases[n] for n in names), "--course", course, "--timeout", 60, "--json")
    result = json.loads(out)
    assert status == result["exit_status"] == EXIT_LOSES_POINTS
    reports = dict(zip(names, result["notebooks"]))
    for name in ("solution", "untouched", "deleted"):
        report, (text_status, text) = reports[name], text_runs[name]
        assert report["exit_status"] == text_status
        assert [line.strip()[2:] for line in text.splitlines() if line.startswith("    - ")] == \
            [p["message"] for p in report["problems"]]
        assert f"visible tests: {report['points']:g} of {report['visible_points']:g} points" in text
    assert reports["solution"]["status"] == "ok" and reports["solution"]["points"] == 6
    untouched = reports["untouched"]
    assert {t["cell"]: t["points"] for t in untouched["tests"] if not t["hidden"]} == VISIBLE
    assert {t["cell"]: t["points"] for t in untouched["tests"] if t["hidden"]} == HIDDEN
    failed = {t["cell"] for t in untouched["tests"] if t["status"] == "failed"}
    assert failed == set(VISIBLE) | {"add_hidden_tests"}
    assert "not_implemented" not in {p["kind"] for p in untouched["problems"]}
    assert [t["status"] for t in reports["deleted"]["tests"]
            if t["cell"] == "double_visible_tests"] == ["missing"]
    # No release of my_copy: its nbgrader checksums still show the edited points.
    elsewhere = reports["elsewhere"]
    assert elsewhere["compared_with"] is None and "no release of 'my_copy'" in elsewhere["notes"][0]
    changed = [p["cell"] for p in elsewhere["problems"] if p["kind"] == "changed_cell"]
    assert changed == ["add_visible_tests"]


def test_bad_input_exits_2_with_a_clear_message(tmp_path):
    (tmp_path / "notes.ipynb").write_text("these are my notes, not a notebook")
    proc = subprocess.run([sys.executable, "-m", "course_lib", "validate",
                           str(tmp_path / "notes.ipynb"), str(tmp_path / "gone.ipynb")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == EXIT_BAD_INPUT
    assert "notes.ipynb: is not a notebook: it is not JSON" in proc.stderr
    assert "gone.ipynb: no such file" in proc.stderr


@pytest.mark.slow
def test_real_onramp_student_notebook():
    """The released on-ramp as it is (it loads SmolLM2: about 45 s on 2 CPU cores)."""
    status, out = run(REPO / "notebooks" / "00_onramp" / "00_onramp.ipynb", "--json")
    (report,) = json.loads(out)["notebooks"]
    assert status == EXIT_LOSES_POINTS
    assert "this notebook is the release itself" in report["notes"][0]
    assert (report["points"], report["visible_points"], report["hidden_points"]) == (0, 5, 4)
    assert {p["cell"] for p in report["problems"] if p["kind"] == "failed_test"} == {
        "strawberry_prediction_check", "softmax_with_temperature_tests", "generate_tests"}
    assert {p["kind"] for p in report["problems"]} == {"failed_test"}  # the warm-up never raises
