"""The grading round trip, in a throwaway copy of the course (the repository is never written).

Per the blueprint: every tamper and fault case runs on ONE real notebook (00_onramp) and on the
synthetic assignment (which checks the machinery in seconds); the pair "the solution scores full
marks, the untouched student notebook scores zero" runs on every other assignment. Each
assignment is graded in ONE `nbgrader autograde` run, its cases submitted as different students:

    solution     the source notebook itself                     -> full marks, no problems
    untouched    the student notebook as released               -> 0, no problems, run completes
    assert_true  untouched, every test cell made `assert True`  -> same as untouched, reported
    loop_delete  solution, `while True: pass` at the top of the last answer cell and the first
                 grade cell deleted (one execution for two faults) -> the loop is interrupted
                 and reported, the deleted cell scores 0 and is reported, the rest is graded
    tampered     solution with a test cell's nbgrader "grade" flag flipped -> "Inconsistent
                 checksums": reported, scored 0 (costs no execution: nbgrader fails it first)
"""
from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from conftest import REPO, SYNTHETIC  # noqa: E402  (tests/ is on sys.path under pytest)

ASSIGNMENTS = sorted(p.parent.name for p in (REPO / "solutions").glob("*/*.ipynb")
                     if p.stem == p.parent.name)
TAMPER_TARGETS = {"00_onramp", SYNTHETIC}
ANSWER_TIMEOUT = {SYNTHETIC: 3}  # seconds before an answer cell is interrupted; 10 for real ones


def nbg(cell) -> dict:
    return cell.metadata.get("nbgrader", {})


def grade_cells(nb) -> list:
    return [c for c in nb.cells if nbg(c).get("grade")]


def run_grade(root: Path, assignment: str, submissions: Path, *extra: str, timeout=1800):
    out = submissions.parent / f"reports-{submissions.name}"
    proc = subprocess.run([sys.executable, str(root / "autograder" / "grade.py"), assignment,
                           str(submissions), "--out", str(out), *extra],
                          capture_output=True, text=True, timeout=timeout)
    report_path = out / f"{assignment}-grades.json"
    report = json.loads(report_path.read_text()) if report_path.is_file() else None
    students = {s["student"]: s for s in report["students"]} if report else {}
    return proc, students


# --------------------------------------------------------------------------------------------
# submissions
# --------------------------------------------------------------------------------------------
def tamper_cases(solution, untouched) -> dict:
    assert_true = copy.deepcopy(untouched)
    for cell in grade_cells(assert_true):
        cell.source = "assert True"

    loop_delete = copy.deepcopy(solution)
    answers = [c for c in loop_delete.cells if nbg(c).get("solution") and not nbg(c).get("grade")
               and c.cell_type == "code"]
    answers[-1].source = "while True:\n    pass\n" + answers[-1].source
    first_grade = grade_cells(loop_delete)[0]
    loop_delete.cells.remove(first_grade)

    tampered = copy.deepcopy(solution)
    victim = next(c for c in grade_cells(tampered) if nbg(c).get("locked"))
    victim.metadata["nbgrader"]["grade"] = False
    return {"assert_true": assert_true, "loop_delete": loop_delete, "tampered": tampered,
            "_loop_cell": nbg(answers[-1])["grade_id"], "_deleted_cell": nbg(first_grade)["grade_id"],
            "_deleted_points": nbg(first_grade)["points"], "_tampered_cell": nbg(victim)["grade_id"]}


class Batch:
    """One graded run of an assignment: its report, and what the cases were built from."""

    def __init__(self, assignment, root, proc, students, facts, solution):
        self.assignment, self.root, self.proc, self.students = assignment, root, proc, students
        self.facts, self.solution = facts, solution
        self.max_score = sum(float(nbg(c)["points"]) for c in grade_cells(solution))

    def autograded(self, student) -> nbformat.NotebookNode:
        a = self.assignment
        return nbformat.read(self.root / "autograder" / "autograded" / student / a / f"{a}.ipynb", 4)

    def kinds(self, student) -> list[str]:
        return [p["kind"] for p in self.students[student]["problems"]]


@pytest.fixture(scope="module", params=ASSIGNMENTS + [SYNTHETIC])
def batch(request, course_factory) -> Batch:
    assignment = request.param
    real = assignment != SYNTHETIC
    root = course_factory(f"grade-{assignment}", assignments=[assignment] if real else [],
                          synthetic=not real)
    student_nb = root / "notebooks" / assignment / f"{assignment}.ipynb"
    if not student_nb.is_file():  # the synthetic one (a real one comes from the repository)
        subprocess.run([sys.executable, str(root / "scripts" / "generate_notebooks.py"), "--root",
                        str(root), assignment], check=True, capture_output=True, timeout=300)
    solution = nbformat.read(root / "solutions" / assignment / f"{assignment}.ipynb", 4)
    cases = {"solution": solution, "untouched": nbformat.read(student_nb, 4)}
    facts = {}
    if assignment in TAMPER_TARGETS:
        extra = tamper_cases(solution, cases["untouched"])
        facts = {k: extra.pop(k) for k in list(extra) if k.startswith("_")}
        cases.update(extra)

    submissions = root.parent / "submissions"
    for student, nb in cases.items():
        (submissions / student).mkdir(parents=True)
        nbformat.write(nb, submissions / student / f"{assignment}.ipynb")
    proc, students = run_grade(root, assignment, submissions, "--answer-timeout",
                               str(ANSWER_TIMEOUT.get(assignment, 10)))
    assert proc.returncode in (0, 3), f"grade.py failed:\n{proc.stdout}\n{proc.stderr}"
    return Batch(assignment, root, proc, students, facts, solution)


def tamper_only(batch):
    if batch.assignment not in TAMPER_TARGETS:
        pytest.skip("tamper cases run on 00_onramp and the synthetic assignment only")


# --------------------------------------------------------------------------------------------
# every assignment: the pair
# --------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_solution_scores_full_marks(batch):
    s = batch.students["solution"]
    failed = {k: v for k, v in s["cells"].items() if v["status"] != "passed"}
    assert failed == {}, f"grade cells the solution fails:\n{batch.proc.stdout}{batch.proc.stderr}"
    assert s["score"] == s["max_score"] == batch.max_score > 0
    assert s["problems"] == []
    if batch.assignment == SYNTHETIC:  # grading runs with the fast flag on
        setup = next(c for c in batch.autograded("solution").cells if nbg(c).get("grade_id") == "setup")
        assert "COURSE_FAST=1" in "".join(o.get("text", "") for o in setup.outputs)


@pytest.mark.slow
def test_untouched_student_notebook_scores_zero_and_completes(batch):
    s = batch.students["untouched"]
    assert s["score"] == 0 and s["max_score"] == batch.max_score
    assert s["problems"] == [], "a clean student notebook must not raise problems"
    assert set(s["cells"]) == {nbg(c)["grade_id"] for c in grade_cells(batch.solution)}
    assert all(c["status"] == "failed" for c in s["cells"].values())
    # the run went through to the last cell: it has been executed (an execution count)
    cells = batch.autograded("untouched").cells
    assert [c for c in cells if c.cell_type == "code"][-1].execution_count is not None


# --------------------------------------------------------------------------------------------
# the tamper and fault cases
# --------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_tests_replaced_by_assert_true_score_as_untouched(batch):
    tamper_only(batch)
    s, untouched = batch.students["assert_true"], batch.students["untouched"]
    assert s["score"] == untouched["score"] == 0
    assert {k: v["score"] for k, v in s["cells"].items()} == \
           {k: v["score"] for k, v in untouched["cells"].items()}
    assert set(batch.kinds("assert_true")) == {"edited_locked_cell"}
    assert len(s["problems"]) == len(grade_cells(batch.solution))
    # nbgrader's OverwriteCells really put the source tests back (hidden tests included)
    source = {nbg(c)["grade_id"]: c.source for c in grade_cells(batch.solution)}
    graded = {nbg(c)["grade_id"]: c.source for c in grade_cells(batch.autograded("assert_true"))}
    assert graded == source


@pytest.mark.slow
def test_infinite_loop_times_out_and_the_rest_is_graded(batch):
    tamper_only(batch)
    s = batch.students["loop_delete"]
    loop_cell = batch.facts["_loop_cell"]
    timeouts = [p for p in s["problems"] if p["kind"] == "timeout"]
    assert [p["cell"] for p in timeouts] == [loop_cell]
    assert 0 < s["score"] < s["max_score"]
    assert any(c["status"] == "passed" for c in s["cells"].values())
    nb = batch.autograded("loop_delete")
    looped = next(c for c in nb.cells if nbg(c).get("grade_id") == loop_cell)
    assert "CellTimeoutError" in [o.get("ename") for o in looped.outputs]
    assert [c for c in nb.cells if c.cell_type == "code"][-1].execution_count is not None


@pytest.mark.slow
def test_deleted_grade_cell_is_reported_and_scored_zero(batch):
    tamper_only(batch)
    s, deleted = batch.students["loop_delete"], batch.facts["_deleted_cell"]
    assert s["cells"][deleted] == {"score": 0.0, "max_score": float(batch.facts["_deleted_points"]),
                                   "status": "missing"}
    reported = [p for p in s["problems"] if p["kind"] == "deleted_grade_cell"]
    assert [p["cell"] for p in reported] == [deleted]
    assert f"grade cell {deleted}" in batch.proc.stderr  # loudly, not only in the files


@pytest.mark.slow
def test_tampered_metadata_is_reported_not_silently_zero(batch):
    tamper_only(batch)
    s, victim = batch.students["tampered"], batch.facts["_tampered_cell"]
    assert s["score"] == 0
    kinds = batch.kinds("tampered")
    assert "metadata_changed" in kinds and "grading_failed" in kinds
    failure = next(p for p in s["problems"] if p["kind"] == "grading_failed")
    assert f"Inconsistent checksums for cell {victim}" in failure["message"]
    assert "PROBLEM tampered: nbgrader could not grade" in batch.proc.stderr


@pytest.mark.slow
def test_summary_csv_has_every_student(batch):
    out = next(batch.root.parent.glob("reports-*"))
    rows = (out / f"{batch.assignment}-grades.csv").read_text().splitlines()
    assert rows[0] == "student,assignment,score,max_score,status,problems"
    assert sorted(r.split(",")[0] for r in rows[1:]) == sorted(batch.students)
    expected_exit = 3 if any(s["problems"] for s in batch.students.values()) else 0
    assert batch.proc.returncode == expected_exit


# --------------------------------------------------------------------------------------------
# repair, and bad input (synthetic assignment, seconds each)
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def synthetic_course(course_factory) -> Path:
    root = course_factory("grade-input")
    subprocess.run([sys.executable, str(root / "scripts" / "generate_notebooks.py"), "--root",
                    str(root)], check=True, capture_output=True, timeout=300)
    return root


@pytest.mark.slow
def test_repair_metadata_restores_and_grades(synthetic_course):
    root, a = synthetic_course, SYNTHETIC
    solution = nbformat.read(root / "solutions" / a / f"{a}.ipynb", 4)
    tampered = tamper_cases(solution, solution)["tampered"]
    subs = root.parent / "repair"
    (subs / "mallory").mkdir(parents=True)
    nbformat.write(tampered, subs / "mallory" / f"{a}.ipynb")
    proc, students = run_grade(root, a, subs, "--repair-metadata")
    s = students["mallory"]
    assert proc.returncode == 3 and s["score"] == s["max_score"] > 0
    assert [p["kind"] for p in s["problems"]] == ["metadata_repaired"]


def test_missing_submissions_folder_is_a_clear_error(synthetic_course):
    proc, _ = run_grade(synthetic_course, SYNTHETIC, synthetic_course.parent / "nowhere")
    assert proc.returncode == 1 and "does not exist" in proc.stderr


def test_unknown_assignment_is_a_clear_error(synthetic_course):
    subs = synthetic_course.parent / "subs-unknown"
    (subs / "alice").mkdir(parents=True)
    proc, _ = run_grade(synthetic_course, "Z_no_such", subs)
    assert proc.returncode == 1
    assert "unknown assignment 'Z_no_such'" in proc.stderr and SYNTHETIC in proc.stderr


def test_non_notebook_input_is_reported(synthetic_course):
    subs = synthetic_course.parent / "subs-junk"
    (subs / "carol").mkdir(parents=True)
    (subs / "carol" / f"{SYNTHETIC}.ipynb").write_text("this is not a notebook")
    (subs / "dave").mkdir()
    (subs / "dave" / "essay.pdf").write_bytes(b"%PDF-1.4")
    (subs / "stray.txt").write_text("not a student folder")
    proc, students = run_grade(synthetic_course, SYNTHETIC, subs)
    assert proc.returncode == 3
    assert "ignoring stray.txt" in proc.stderr
    assert [p["kind"] for p in students["carol"]["problems"]] == ["unreadable_notebook"]
    assert [p["kind"] for p in students["dave"]["problems"]] == ["missing_notebook"]
    assert students["carol"]["score"] == students["dave"]["score"] == 0
    assert students["carol"]["max_score"] > 0

    file_instead = synthetic_course.parent / "subs-file"
    file_instead.write_text("")
    proc, _ = run_grade(synthetic_course, SYNTHETIC, file_instead)
    assert proc.returncode == 1 and "is a file" in proc.stderr
