"""notebooks/ is what nbgrader generates from solutions/, with nothing secret in it, and both are
stored without outputs. The checks run on the repository, parametrized over the assignments that
exist in solutions/; the generation machinery itself is also tested on a synthetic assignment in a
temporary copy of the course."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import nbformat
import pytest

from conftest import REPO, SYNTHETIC, run_step  # noqa: E402  (tests/ is on sys.path under pytest)

ASSIGNMENTS = sorted(p.parent.name for p in (REPO / "solutions").glob("*/*.ipynb")
                     if p.stem == p.parent.name)
MARKERS = ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS")
STUBS = {"# YOUR CODE HERE", "raise NotImplementedError()", "YOUR ANSWER HERE"}


def generate(root: Path, *args: str) -> subprocess.CompletedProcess:
    return run_step(root, "generate", "--root", str(root), *args)


def secret_lines(solution: nbformat.NotebookNode) -> set[str]:
    """Lines of solution blocks and hidden-test blocks that appear nowhere else in the source."""
    secret, public = set(), set()
    for cell in solution.cells:
        lines = cell.source.splitlines()
        nbg = cell.metadata.get("nbgrader", {})
        if nbg.get("solution") and not any("BEGIN SOLUTION" in line for line in lines):
            secret.update(line.strip() for line in lines)  # nbgrader replaces the whole cell
            continue
        inside = False
        for line in lines:
            if "BEGIN SOLUTION" in line or "BEGIN HIDDEN TESTS" in line:
                inside = True
            elif "END SOLUTION" in line or "END HIDDEN TESTS" in line:
                inside = False
            else:
                (secret if inside else public).add(line.strip())
    return secret - public - STUBS - {""}


def leaks(solution: nbformat.NotebookNode, student: nbformat.NotebookNode) -> list[str]:
    found = []
    student_lines = {line.strip() for cell in student.cells for line in cell.source.splitlines()}
    text = "\n".join(cell.source for cell in student.cells)
    found += [f"marker {m!r}" for m in MARKERS if m in text]
    found += [f"secret line {line!r}" for line in sorted(secret_lines(solution) & student_lines)]
    return found


def dirt(nb: nbformat.NotebookNode) -> list[str]:
    found = []
    for i, cell in enumerate(nb.cells):
        if cell.get("outputs"):
            found.append(f"cell {i} has outputs")
        if cell.get("execution_count") is not None:
            found.append(f"cell {i} has an execution count")
    if "widgets" in nb.metadata:
        found.append("widget state in the notebook metadata")
    return found


# --------------------------------------------------------------------------------------------
# the repository
# --------------------------------------------------------------------------------------------
def test_repository_notebooks_in_sync_with_solutions():
    proc = generate(REPO, "--check")
    assert proc.returncode == 0, f"notebooks/ is out of sync with solutions/:\n{proc.stderr}{proc.stdout}"


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_student_notebook_has_no_solution_or_hidden_test_text(assignment):
    solution = nbformat.read(REPO / "solutions" / assignment / f"{assignment}.ipynb", 4)
    student_path = REPO / "notebooks" / assignment / f"{assignment}.ipynb"
    assert student_path.is_file(), f"{student_path} missing: run python -m autograder generate"
    assert leaks(solution, nbformat.read(student_path, 4)) == []
    # nothing else in notebooks/<a>/ carries the markers either (a stray copy of a source file)
    for path in (REPO / "notebooks" / assignment).rglob("*"):
        if path.is_file() and path.suffix in (".ipynb", ".py", ".md", ".txt", ".json"):
            text = path.read_text(encoding="utf-8", errors="replace")
            assert not [m for m in MARKERS if m in text], path


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_notebooks_stored_without_outputs(assignment):
    for top in ("solutions", "notebooks"):
        path = REPO / top / assignment / f"{assignment}.ipynb"
        if path.is_file():
            assert dirt(nbformat.read(path, 4)) == [], f"{path}: run python -m autograder generate"


# --------------------------------------------------------------------------------------------
# the machinery, on a synthetic assignment in a throwaway copy of the course
# --------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_generate_then_check_round_trip(course_factory):
    root = course_factory("sync")
    student = root / "notebooks" / SYNTHETIC / f"{SYNTHETIC}.ipynb"

    proc = generate(root, "--check")
    assert proc.returncode == 1 and f"notebooks/{SYNTHETIC}/{SYNTHETIC}.ipynb: missing" in proc.stderr

    assert generate(root).returncode == 0
    first = student.read_bytes()
    proc = generate(root, "--check")
    assert proc.returncode == 0, proc.stderr
    # deterministic: a second generation writes nothing and leaves identical bytes
    proc = generate(root)
    assert proc.returncode == 0 and "up to date" in proc.stdout and student.read_bytes() == first
    # nothing but the student notebook appeared (no gradebook, no release folder)
    files = sorted(str(p.relative_to(root)) for p in root.rglob("*")
                   if p.is_file() and "__pycache__" not in p.parts
                   and p.parts[len(root.parts)] != "autograder")
    assert files == [f"notebooks/{SYNTHETIC}/{SYNTHETIC}.ipynb", f"solutions/{SYNTHETIC}/{SYNTHETIC}.ipynb"]
    assert not (root / "autograder" / "gradebook.db").exists()

    solution = nbformat.read(root / "solutions" / SYNTHETIC / f"{SYNTHETIC}.ipynb", 4)
    generated = nbformat.read(student, 4)
    assert leaks(solution, generated) == [] and dirt(generated) == []
    # the student version is really nbgrader's: stubs in, checksums and locks on
    sources = {c.metadata["nbgrader"]["grade_id"]: c for c in generated.cells if "nbgrader" in c.metadata}
    assert "raise NotImplementedError()" in sources["add_answer"].source
    assert sources["add_visible_tests"].metadata["nbgrader"]["checksum"]
    assert sources["add_visible_tests"].metadata["editable"] is False
    # and the leak detector does detect a leak
    sources["double_hidden_tests"].source = "assert double(-7) == -14  # hidden-double-check"
    assert leaks(solution, generated) == ["secret line 'assert double(-7) == -14  # hidden-double-check'"]


@pytest.mark.slow
def test_check_names_every_kind_of_drift_and_generate_repairs_it(course_factory):
    root = course_factory("drift")
    assert generate(root).returncode == 0
    sol_path = root / "solutions" / SYNTHETIC / f"{SYNTHETIC}.ipynb"
    stu_path = root / "notebooks" / SYNTHETIC / f"{SYNTHETIC}.ipynb"

    # a solution saved after running, with widget state; a hand-edited student notebook; a stale one
    sol = nbformat.read(sol_path, 4)
    sol.cells[1].outputs = [nbformat.v4.new_output("stream", text="COURSE_FAST=None\n")]
    sol.cells[1].execution_count = 3
    sol.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}}}
    sol.metadata["language_info"] = {"name": "python", "version": "3.11.7"}
    nbformat.write(sol, sol_path)
    stu = json.loads(stu_path.read_text())
    stu["cells"][0]["source"] = ["edited by hand"]
    stu_path.write_text(json.dumps(stu))
    (root / "notebooks" / "old").mkdir()
    (root / "notebooks" / "old" / "old.ipynb").write_text("{}")

    proc = generate(root, "--check")
    assert proc.returncode == 1
    assert f"solutions/{SYNTHETIC}/{SYNTHETIC}.ipynb: not stripped (1 cell(s) with outputs, " \
           "1 execution count(s), widget state)" in proc.stderr
    assert f"notebooks/{SYNTHETIC}/{SYNTHETIC}.ipynb: differs" in proc.stderr
    assert "notebooks/old/: no source" in proc.stderr
    assert nbformat.read(sol_path, 4).cells[1].outputs  # --check changed nothing

    proc = generate(root)
    assert proc.returncode == 0
    cleaned = nbformat.read(sol_path, 4)
    assert dirt(cleaned) == [] and cleaned.metadata["language_info"] == {"name": "python"}
    assert "git rm -r notebooks/old" in proc.stderr  # stale output is named, not deleted
    (root / "notebooks" / "old" / "old.ipynb").unlink()
    (root / "notebooks" / "old").rmdir()
    proc = generate(root, "--check")
    assert proc.returncode == 0, proc.stderr


def test_unknown_assignment_is_a_clear_error():
    proc = generate(REPO, "--check", "no_such_assignment")
    assert proc.returncode != 0 and "no source notebook for no_such_assignment" in proc.stderr
