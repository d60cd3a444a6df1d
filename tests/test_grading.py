"""The grading round trip, in a throwaway copy of the course (the repository is never written).

Per the blueprint: every tamper and fault case runs on ONE real notebook (00_onramp) and on the
synthetic assignment (which checks the machinery in seconds); the pair "the solution scores full
marks, the untouched student notebook scores zero" runs on every other assignment. Each
assignment is graded in ONE run of grade.py (two workers), its cases submitted as different students:

    solution       the source notebook, its optional parts removed -> full marks, status graded (a
                   learner may skip every optional deep dive; the untouched run still executes them)
    untouched      the student notebook as released              -> 0, status graded, run completes
    assert_true    untouched, every test cell made `assert True`  -> same as untouched, tampered
    loop_delete    solution, `while True: pass` at the top of the last answer cell and the first
                   grade cell deleted (one execution for two faults) -> the loop is interrupted
                   and reported, the deleted cell is restored from the release and graded
    tampered       solution with a test cell's nbgrader "grade" flag flipped and the last test
                   cell's points raised to 100 (one execution for two faults) -> graded with the
                   release's metadata: full marks out of the real total, tampered
    unimplemented  solution with the first exercise put back to the stub -> that exercise's tests
                   (and those of any exercise built on it) fail, the rest pass, the run completes
and, on 00_onramp only, submissions that game the checks (each must be flagged by the integrity
re-check, status "integrity", and lose the points it gamed; the honest students are unaffected):
    cheat_reference   softmax_with_temperature returns the course's reference answer through
                      importlib and getattr, the names built from strings, and generate is the
                      reference's source with its names changed (two tricks, each found on its own)
    cheat_patch       the first answer cell replaces course_lib.exercises.check and every check_* in
                      course_lib.checks with a no-op, the second puts a fake course_lib.exercises
                      and course_lib.checks in sys.modules (two tricks, each found on its own); the
                      functions return their input unchanged and []
and, on the synthetic assignment only (no execution, or seconds):
    empty, broken  an empty file, malformed JSON                -> 0, unreadable
    older          solution from "another release": a test cell under an old id, one deleted
                                                                -> graded against this release
    cheat_equal    add returns an object equal to everything    -> add's tests flagged, 0
"""
from __future__ import annotations

import ast
import copy
import csv
import html
import inspect
import json
from pathlib import Path

import nbformat
import pytest

from conftest import REPO, SYNTHETIC, core_path, run_step  # noqa: E402  (tests/ is on sys.path under pytest)

ASSIGNMENTS = sorted(p.parent.name for p in (REPO / "solutions").glob("*/*.ipynb")
                     if p.stem == p.parent.name)
TAMPER_TARGETS = {"00_onramp", SYNTHETIC}
ANSWER_TIMEOUT = {SYNTHETIC: 3}  # seconds before an answer cell is interrupted; 10 for real ones


def nbg(cell) -> dict:
    return cell.metadata.get("nbgrader", {})


def grade_cells(nb) -> list:
    return [c for c in nb.cells if nbg(c).get("grade")]


def run_grade(root: Path, assignment: str, submissions: Path, *extra: str, timeout=1800,
              out: Path | None = None):
    out = out or submissions.parent / f"reports-{submissions.name}"
    proc = run_step(root, "grade", assignment, str(submissions), "--out", str(out), *extra,
                      timeout=timeout)
    report_path = out / f"{assignment}-grades.json"
    report = json.loads(report_path.read_text()) if report_path.is_file() else None
    students = {s["student"]: s for s in report["students"]} if report else {}
    return proc, students


# --------------------------------------------------------------------------------------------
# submissions
# --------------------------------------------------------------------------------------------
def by_id(nb, grade_id):
    return next(c for c in nb.cells if nbg(c).get("grade_id") == grade_id)


def answer_cells(nb) -> list:
    return [c for c in nb.cells if nbg(c).get("solution") and not nbg(c).get("grade")
            and c.cell_type == "code"]


def tamper_cases(assignment: str, solution, untouched) -> dict:
    assert_true = copy.deepcopy(untouched)
    for cell in grade_cells(assert_true):
        cell.source = "assert True"

    loop_delete = copy.deepcopy(solution)
    # The loop goes in the last answer cell that a graded test still follows (an ungraded answer,
    # such as an open claim's, may come after every test).
    last_test = max(i for i, c in enumerate(loop_delete.cells) if nbg(c).get("grade"))
    before_a_test = {id(c) for c in loop_delete.cells[:last_test]}
    answers = [c for c in answer_cells(loop_delete) if id(c) in before_a_test]
    answers[-1].source = "while True:\n    pass\n" + answers[-1].source
    first_grade = grade_cells(loop_delete)[0]
    loop_delete.cells.remove(first_grade)

    tampered = copy.deepcopy(solution)
    victim = next(c for c in grade_cells(tampered) if nbg(c).get("locked"))
    inflated = grade_cells(tampered)[-1]
    assert victim is not inflated
    victim.metadata["nbgrader"]["grade"] = False
    inflated.metadata["nbgrader"]["points"] = 100

    # One exercise back to the stub the learner received; every other answer stays solved.
    unimplemented = copy.deepcopy(solution)
    stub_id = STUBBED[assignment]
    by_id(unimplemented, stub_id).source = by_id(untouched, stub_id).source

    return {"assert_true": assert_true, "loop_delete": loop_delete, "tampered": tampered,
            "unimplemented": unimplemented,
            "_loop_cell": nbg(answers[-1])["grade_id"], "_deleted_cell": nbg(first_grade)["grade_id"],
            "_deleted_points": nbg(first_grade)["points"], "_tampered_cell": nbg(victim)["grade_id"],
            "_inflated_cell": nbg(inflated)["grade_id"], "_stub_cell": stub_id}


SOFTMAX = "def softmax_with_temperature(logits, temperature):\n"
GENERATE = "def generate(next_token_fn, prompt_ids, max_new_tokens, temperature=0.0, eos_id=None):\n"
WRONG = {"softmax_with_temperature": SOFTMAX + "    return logits\n", "generate": GENERATE + "    return []\n"}
CHEATS = {
    "cheat_reference": {"softmax_with_temperature": SOFTMAX + "    import importlib\n"
                        "    ref = importlib.import_module('course_lib.' + 'refer' + 'ence')\n"
                        "    return getattr(ref, 'softmax_with_' + 'temperature')(logits, temperature)\n"},
    "cheat_patch": {"strawberry_prediction": "import course_lib.checks as c\nimport course_lib.exercises as e\n"
                    "for n in dir(c):\n"
                    "    if n.startswith('check_'):\n        setattr(c, n, lambda *a, **k: None)\n"
                    "e.check = lambda *a, **k: None\n"
                    "strawberry_token_count = 7\n",
                    "softmax_with_temperature": "import sys, types\n"
                    "for name in ('course_lib.checks', 'course_lib.exercises'):\n"
                    "    fake = types.ModuleType(name)\n"
                    "    fake.__getattr__ = lambda name: (lambda *a, **k: None)\n"
                    "    sys.modules[name] = fake\n" + WRONG["softmax_with_temperature"],
                    "generate": WRONG["generate"]},
}
# Each trick: the student who plays it, what it must be flagged as (a finding's kind and words of
# its reason), and the cells that must lose their points (None: every cell).
SOFTMAX_CELLS = {"softmax_with_temperature_tests", "softmax_with_temperature_hidden_tests"}
GENERATE_CELLS = {"generate_tests", "generate_hidden_tests"}
CHEAT_FLAGS = {
    "reference_called": ("cheat_reference", "recheck_failed", "course_lib.reference", SOFTMAX_CELLS),
    "checks_patched": ("cheat_patch", "course_internals", "imports course_lib.checks", None),
    "checks_module_faked": ("cheat_patch", "suspicious_code", "modules", SOFTMAX_CELLS | GENERATE_CELLS),
    "reference_pasted": ("cheat_reference", "pasted_reference", "course_lib.exercises.onramp.generate",
                         GENERATE_CELLS),
}


def cheat_cases(solution) -> dict:
    from course_lib.exercises import onramp

    cases = {}
    for name, answers in CHEATS.items():
        nb = copy.deepcopy(solution)
        for grade_id, source in answers.items():
            by_id(nb, grade_id).source = source
        cases[name] = nb
    by_id(cases["cheat_reference"], "generate").source = renamed(onramp.generate, {"ids": "tokens", "new": "fresh"})
    return cases


def renamed(fn, names: dict) -> str:
    """A function's source with its locals renamed and its annotations dropped (the notebook does
    not import the typing names the course's module does)."""
    class Rename(ast.NodeTransformer):
        def visit_Name(self, node):
            node.id = names.get(node.id, node.id)
            return node

        def visit_arg(self, node):
            node.annotation = None
            return node

    tree = Rename().visit(ast.parse(inspect.getsource(fn)))
    tree.body[0].returns = None
    return ast.unparse(tree)


def synthetic_only_cases(solution) -> dict:
    older = copy.deepcopy(solution)
    renamed = by_id(older, "double_hidden_tests")
    renamed.metadata["nbgrader"]["grade_id"] = renamed.id = "double_hidden_tests_v0"
    older.cells.remove(by_id(older, "predict_check"))
    equal = copy.deepcopy(solution)
    by_id(equal, "add_answer").source = ("class Anything:\n    def __eq__(self, other):\n        return True\n"
                                         "\n\ndef add(a, b):\n    return Anything()")
    return {"older": older, "empty": "", "broken": '{"cells": [ {"cell_type": "code"', "cheat_equal": equal}


# The exercise left as the stub, and the tests that then fail: its own, and those of any exercise
# that calls it.
STUBBED = {SYNTHETIC: "add_answer", "00_onramp": "softmax_with_temperature"}
UNIMPLEMENTED_FAILS = {
    SYNTHETIC: {"add_visible_tests", "add_hidden_tests"},
    "00_onramp": {"softmax_with_temperature_tests", "softmax_with_temperature_hidden_tests",
                  "generate_hidden_tests"},  # sampling uses the learner's softmax
}


class Batch:
    """One graded run of an assignment: its report, and what the cases were built from."""

    def __init__(self, assignment, root, proc, students, facts, solution, submissions):
        self.assignment, self.root, self.proc, self.students = assignment, root, proc, students
        self.facts, self.solution, self.submissions = facts, solution, submissions
        self.max_score = sum(float(nbg(c)["points"]) for c in grade_cells(solution))

    def autograded(self, student) -> nbformat.NotebookNode:
        a = self.assignment
        return nbformat.read(self.root / "autograder" / "autograded" / student / a / f"{a}.ipynb", 4)

    def kinds(self, student) -> list[str]:
        return [p["kind"] for p in self.students[student]["problems"]]


def write_submissions(folder: Path, assignment: str, cases: dict) -> Path:
    for student, nb in cases.items():
        (folder / student).mkdir(parents=True)
        path = folder / student / f"{assignment}.ipynb"
        if isinstance(nb, str):
            path.write_text(nb)
        else:
            nbformat.write(nb, path)
    return folder


def student_notebook(root: Path, assignment: str) -> nbformat.NotebookNode:
    path = root / "notebooks" / assignment / f"{assignment}.ipynb"
    if not path.is_file():  # the synthetic one (a real one comes from the repository)
        run_step(root, "generate", assignment, check=True)
    return nbformat.read(path, 4)


@pytest.fixture(scope="module", params=ASSIGNMENTS + [SYNTHETIC])
def batch(request, course_factory) -> Batch:
    assignment = request.param
    real = assignment != SYNTHETIC
    root = course_factory(f"grade-{assignment}", assignments=[assignment] if real else [],
                          synthetic=not real)
    solution = nbformat.read(root / "solutions" / assignment / f"{assignment}.ipynb", 4)
    cases = {"solution": core_path(solution), "untouched": student_notebook(root, assignment)}
    facts = {}
    if assignment in TAMPER_TARGETS:
        extra = tamper_cases(assignment, solution, cases["untouched"])
        facts = {k: extra.pop(k) for k in list(extra) if k.startswith("_")}
        cases.update(extra)
    if assignment == "00_onramp":
        cases.update(cheat_cases(solution))
    if not real:
        cases.update(synthetic_only_cases(solution))
    submissions = write_submissions(root.parent / "submissions", assignment, cases)
    extra_args = ["--feedback"] if not real else []
    proc, students = run_grade(root, assignment, submissions, "--workers", "2", "--answer-timeout",
                               str(ANSWER_TIMEOUT.get(assignment, 10)), *extra_args)
    assert proc.returncode in (0, 3), f"grade.py failed:\n{proc.stdout}\n{proc.stderr}"
    return Batch(assignment, root, proc, students, facts, solution, submissions)


def tamper_only(batch):
    if batch.assignment not in TAMPER_TARGETS:
        pytest.skip("tamper cases run on 00_onramp and the synthetic assignment only")


def synthetic_only(batch):
    if batch.assignment != SYNTHETIC:
        pytest.skip("these cases run on the synthetic assignment only")


# --------------------------------------------------------------------------------------------
# every assignment: the pair
# --------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_solution_scores_full_marks(batch):
    s = batch.students["solution"]
    errors = [f"cell {i}: {o.get('ename')}: {o.get('evalue')}" for i, c in enumerate(batch.autograded("solution").cells)
              if c.cell_type == "code" for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert errors == [], "cells of the solution notebook that raised:\n" + "\n".join(errors)
    failed = {k: v for k, v in s["cells"].items() if v["status"] != "passed"}
    assert failed == {}, f"grade cells the solution fails:\n{batch.proc.stdout}{batch.proc.stderr}"
    assert s["score"] == s["max_score"] == batch.max_score > 0
    assert s["problems"] == [] and s["status"] == "graded"
    if batch.assignment == SYNTHETIC:  # grading runs with the fast flag on
        setup = next(c for c in batch.autograded("solution").cells if nbg(c).get("grade_id") == "setup")
        assert "COURSE_FAST=1" in "".join(o.get("text", "") for o in setup.outputs)


@pytest.mark.slow
def test_untouched_student_notebook_scores_zero_and_completes(batch):
    s = batch.students["untouched"]
    assert s["score"] == 0 and s["max_score"] == batch.max_score
    assert s["problems"] == [], "a clean student notebook must not raise problems"
    assert s["status"] == "graded"
    assert set(s["cells"]) == {nbg(c)["grade_id"] for c in grade_cells(batch.solution)}
    assert all(c["status"] == "failed" for c in s["cells"].values())
    # the run went through to the last cell: it has been executed (an execution count)
    cells = batch.autograded("untouched").cells
    assert [c for c in cells if c.cell_type == "code"][-1].execution_count is not None
    # Only the test cells raise, and with the course's own failure: outside grading check() shows
    # that failure as a panel (test_exercises), so Run All in a learner's notebook reaches the end.
    raised = [(i, o) for i, c in enumerate(cells) if c.cell_type == "code"
              for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert raised and all(nbg(cells[i]).get("grade") for i, _ in raised), \
        "cells other than tests raised: " + ", ".join(f"{i} {o['ename']}" for i, o in raised if not nbg(cells[i]).get("grade"))
    if batch.assignment != SYNTHETIC:
        assert {o["ename"] for _, o in raised} == {"ExerciseFailure"}, [(i, o["ename"]) for i, o in raised]


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
    assert set(batch.kinds("assert_true")) == {"edited_locked_cell"} and s["status"] == "tampered"
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
    assert s["status"] == "timed out"
    assert 0 < s["score"] < s["max_score"]
    nb = batch.autograded("loop_delete")
    looped = next(c for c in nb.cells if nbg(c).get("grade_id") == loop_cell)
    assert "CellTimeoutError" in [o.get("ename") for o in looped.outputs]
    assert [c for c in nb.cells if c.cell_type == "code"][-1].execution_count is not None


@pytest.mark.slow
def test_deleted_grade_cell_is_restored_graded_and_reported(batch):
    tamper_only(batch)
    s, deleted = batch.students["loop_delete"], batch.facts["_deleted_cell"]
    # the solution's code is still there, so the restored tests pass: no points silently lost
    assert s["cells"][deleted] == {"score": float(batch.facts["_deleted_points"]),
                                   "max_score": float(batch.facts["_deleted_points"]),
                                   "status": "passed"}
    reported = [p for p in s["problems"] if p["kind"] == "deleted_grade_cell"]
    assert [p["cell"] for p in reported] == [deleted]
    assert f"grade cell {deleted}" in batch.proc.stderr  # loudly, not only in the files
    restored = by_id(batch.autograded("loop_delete"), deleted)
    assert restored.source.endswith(by_id(batch.solution, deleted).source)


@pytest.mark.slow
def test_tampered_metadata_is_graded_with_the_release_metadata(batch):
    tamper_only(batch)
    s, victim = batch.students["tampered"], batch.facts["_tampered_cell"]
    assert s["score"] == s["max_score"] == batch.max_score
    assert batch.kinds("tampered") == ["metadata_repaired"] * 2 and s["status"] == "tampered"
    repaired = {p["cell"]: p["message"] for p in s["problems"]}
    assert "grade: True -> False" in repaired[victim]
    assert "PROBLEM tampered: nbgrader metadata of cell" in batch.proc.stderr


@pytest.mark.slow
def test_edited_points_do_not_change_the_score(batch):
    tamper_only(batch)
    s, cell = batch.students["tampered"], batch.facts["_inflated_cell"]
    assert s["score"] == s["max_score"] == batch.max_score
    assert s["cells"][cell]["max_score"] == float(nbg(by_id(batch.solution, cell))["points"])
    assert "-> 100" in {p["cell"]: p["message"] for p in s["problems"]}[cell]


@pytest.mark.slow
def test_unimplemented_exercise_fails_its_tests_and_the_rest_is_graded(batch):
    tamper_only(batch)
    s = batch.students["unimplemented"]
    failing = UNIMPLEMENTED_FAILS[batch.assignment]
    assert {k for k, v in s["cells"].items() if v["status"] != "passed"} == failing
    lost = sum(float(nbg(by_id(batch.solution, k))["points"]) for k in failing)
    assert s["score"] == batch.max_score - lost
    assert s["problems"] == [] and s["status"] == "graded"
    cells = batch.autograded("unimplemented").cells
    assert [c for c in cells if c.cell_type == "code"][-1].execution_count is not None


@pytest.mark.slow
@pytest.mark.parametrize("cheat", sorted(CHEAT_FLAGS))
def test_gaming_the_checks_is_flagged_and_scores_nothing_for_it(batch, cheat):
    if batch.assignment != "00_onramp":
        pytest.skip("the cheats target the on-ramp's checks")
    student, kind, words, lost = CHEAT_FLAGS[cheat]
    s = batch.students[student]
    assert s["status"] == "integrity", s["problems"]
    flagged = [p for p in s["problems"] if p["kind"] == kind]
    assert flagged and any(words in p["message"] for p in flagged), s["problems"]
    lost = lost or set(s["cells"])
    assert {k for k, v in s["cells"].items() if v["score"] == 0} >= lost
    assert all(s["cells"][k]["status"] == "integrity" for k in lost)
    expected = batch.max_score - sum(float(nbg(by_id(batch.solution, k))["points"]) for k in lost)
    assert s["score"] <= expected
    assert f"PROBLEM {student}:" in batch.proc.stderr


@pytest.mark.slow
def test_an_answer_equal_to_everything_is_flagged(batch):
    synthetic_only(batch)
    s = batch.students["cheat_equal"]
    assert s["status"] == "integrity"
    assert {k for k, v in s["cells"].items() if v["score"] == 0} == {"add_visible_tests", "add_hidden_tests"}
    assert any("cannot read back" in p["message"] for p in s["problems"] if p["kind"] == "recheck_failed")


@pytest.mark.slow
def test_integrity_report_mode_keeps_the_scores(batch, course_factory):
    synthetic_only(batch)
    root = course_factory("grade-report-mode")
    student_notebook(root, SYNTHETIC)
    subs = write_submissions(root.parent / "subs-report", SYNTHETIC,
                             {"cheat_equal": nbformat.read(batch.submissions / "cheat_equal" /
                                                           f"{SYNTHETIC}.ipynb", 4)})
    proc, students = run_grade(root, SYNTHETIC, subs, "--integrity", "report",
                               out=root.parent / "reports-report-mode")
    s = students["cheat_equal"]
    assert s["status"] == "integrity" and s["score"] == s["max_score"]


@pytest.mark.slow
def test_unreadable_files_score_zero(batch):
    synthetic_only(batch)
    for student in ("empty", "broken"):
        s = batch.students[student]
        assert (s["score"], s["max_score"], s["status"]) == (0, batch.max_score, "unreadable")
        assert batch.kinds(student) == ["unreadable_notebook"]


@pytest.mark.slow
def test_notebook_from_another_release_is_graded_against_this_one(batch):
    synthetic_only(batch)
    s = batch.students["older"]
    assert s["score"] == s["max_score"] == batch.max_score  # its code is right; tests restored
    assert set(batch.kinds("older")) == {"other_release", "deleted_grade_cell"}
    assert s["status"] == "missing cells"
    message = next(p["message"] for p in s["problems"] if p["kind"] == "other_release")
    assert "double_hidden_tests_v0" in message and "predict_check" in message


@pytest.mark.slow
def test_summary_csv_has_every_student_with_status_and_reason(batch):
    out = next(batch.root.parent.glob("reports-*"))
    rows = list(csv.DictReader((out / f"{batch.assignment}-grades.csv").open()))
    assert list(rows[0]) == ["student", "assignment", "score", "max_score", "status", "reason"]
    assert sorted(r["student"] for r in rows) == sorted(batch.students)
    for r in rows:
        s = batch.students[r["student"]]
        assert r["status"] == s["status"] and float(r["score"]) == s["score"]
        assert (r["reason"] == "") == (s["problems"] == [])
    expected_exit = 3 if any(s["problems"] for s in batch.students.values()) else 0
    assert batch.proc.returncode == expected_exit


@pytest.mark.slow
def test_feedback_never_shows_hidden_tests(batch):
    synthetic_only(batch)
    source = batch.solution
    hidden = ["hidden-add-check", "hidden-double-check", "add(40, 2)", "double(-7)"]
    visible = "add(1, 2) should be 3"
    graded = [st for st, s in batch.students.items() if s["cells"]]
    for student in graded:
        page = (batch.root / "autograder" / "feedback" / student / SYNTHETIC / f"{SYNTHETIC}.html")
        text = html.unescape(page.read_text())
        assert not [h for h in hidden if h in text], student
        assert visible in text and "hidden tests: not shown" in text
    # the untouched notebook fails a hidden test: its error is shown, its code is not
    assert any("hidden" in c.source for c in source.cells)


def comparable(s: dict) -> dict:
    """A student's report, less what may differ between two runs of the same notebook."""
    return {k: s[k] for k in ("score", "max_score", "status", "cells")} | \
        {"problems": [(p["kind"], p["cell"]) for p in s["problems"]]}


@pytest.mark.slow
def test_serial_and_parallel_grading_agree(batch, serial_synthetic):
    synthetic_only(batch)
    serial = serial_synthetic
    assert serial.returncode == batch.proc.returncode
    assert {k: comparable(v) for k, v in serial.students.items()} == \
           {k: comparable(v) for k, v in batch.students.items() if k in serial.students}
    parallel = {k: v for k, v in gradebook_scores(batch.root).items() if k[0] in serial.students}
    assert gradebook_scores(serial.root) == parallel


def gradebook_scores(root: Path) -> dict:
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{root / 'autograder' / 'gradebook.db'}",
                   "how-llms-actually-work") as gb:
        return {(s.student.id, g.name): (g.auto_score, g.needs_manual_grade)
                for s in gb.assignment_submissions(SYNTHETIC)
                for nb in s.notebooks for g in nb.grades}


# --------------------------------------------------------------------------------------------
# bad input (synthetic assignment, seconds each)
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def synthetic_course(course_factory) -> Path:
    root = course_factory("grade-input")
    run_step(root, "generate", check=True)
    return root


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
