"""Per-student HTML feedback that never shows a hidden test.

    python -m autograder feedback ASSIGNMENT [STUDENT ...]   # after grading; or grade --feedback

nbgrader's own feedback is the autograded notebook as HTML, and the autograded notebook holds the
hidden tests (nbgrader restores every test cell from the source before running it), in the cell
source and in the traceback of a failing hidden assert. `HideHiddenTests` (installed for
`nbgrader generate_feedback` by nbgrader_config.py) replaces each hidden block with a one-line
note and cuts the traceback of a cell holding one down to its last line (the error and its
message, which the instructor wrote for learners). Then, as a second line of defence, every HTML
file written is searched for each line of every hidden block; a file that still holds one is
deleted and reported, and the command fails.

Files land in autograder/feedback/<student>/<ASSIGNMENT>/<ASSIGNMENT>.html.
Exit status: 0 written; 1 bad input, nbgrader failure or a hidden test found.
"""
from __future__ import annotations

import argparse
import html
import re
import sys
from pathlib import Path

from nbgrader.preprocessors import NbGraderPreprocessor

from autograder import course

FEEDBACK = course.ROOT / course.FEEDBACK
AUTOGRADED = course.ROOT / course.AUTOGRADED
BEGIN, END = "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"
HIDDEN_BLOCK = re.compile(rf"^[ \t]*{re.escape(BEGIN)}.*?^[ \t]*{re.escape(END)}[^\n]*\n?",
                          flags=re.M | re.S)
PLACEHOLDER = "# (hidden tests: not shown)\n"


def hidden_test_lines(source_nb) -> set[str]:
    """Every non-trivial line inside a hidden-test block of the source notebook."""
    lines = set()
    for cell in source_nb.cells:
        for block in HIDDEN_BLOCK.findall(cell.source + "\n"):
            for line in block.splitlines()[1:-1]:
                if len(line.strip()) > 3:
                    lines.add(line.strip())
    return lines


class HideHiddenTests(NbGraderPreprocessor):
    """Replace hidden-test blocks with a note, and shorten their cells' tracebacks to one line."""

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type == "code" and BEGIN in cell.source:
            cell.source = HIDDEN_BLOCK.sub(PLACEHOLDER, cell.source + "\n").rstrip("\n")
            for out in cell.get("outputs", []):
                if out.get("output_type") == "error":
                    message = f"{out.get('ename')}: {out.get('evalue') or 'a test failed'}"
                    out["traceback"] = [message]
        return cell, resources


def leaked_lines(html_path: Path, lines: set[str]) -> list[str]:
    """Hidden-test lines that appear in the HTML file (its text, with tags and escapes undone)."""
    text = html.unescape(re.sub(r"<[^>]+>", "", html_path.read_text(encoding="utf-8")))
    return sorted(line for line in lines if line in text)


def generate(assignment: str, students: list[str], env: dict | None = None) -> list[Path]:
    """nbgrader generate_feedback for these students, then the leak check. Raises RuntimeError."""
    import nbformat

    try:
        source = nbformat.read(course.find(assignment), as_version=4)
    except course.UnknownAssignment as exc:
        raise RuntimeError(str(exc)) from None
    args = ["generate_feedback", assignment, "--force"]
    if students and (skip := others(students)):
        args.append(f"--CourseDirectory.student_id_exclude={','.join(skip)}")
    proc = course.nbgrader_run(*args, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"nbgrader generate_feedback failed:\n{proc.stdout}")
    lines = hidden_test_lines(source)
    written, leaks = [], []
    for student in students or sorted(p.name for p in FEEDBACK.iterdir() if p.is_dir()):
        path = FEEDBACK / student / assignment / f"{assignment}.html"
        if not path.is_file():
            continue
        if found := leaked_lines(path, lines):
            path.unlink()
            leaks.append(f"{student}: {found[0]!r}")
        else:
            written.append(path)
    if leaks:
        raise RuntimeError("feedback deleted because it showed hidden tests: " + "; ".join(leaks))
    return written


def others(students: list[str]) -> list[str]:
    """Students with an autograded notebook who are not in `students` (to exclude them)."""
    return sorted(p.name for p in AUTOGRADED.iterdir() if p.is_dir() and p.name not in students) \
        if AUTOGRADED.is_dir() else []


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="HTML feedback without hidden tests.")
    parser.add_argument("assignment")
    parser.add_argument("students", nargs="*", help="default: every graded student")
    args = parser.parse_args(argv)
    if not AUTOGRADED.is_dir():
        print("error: nothing graded yet: run `python -m autograder grade` first", file=sys.stderr)
        return 1
    try:
        written = generate(args.assignment, args.students)
    except (RuntimeError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for path in written:
        print(path)
    print(f"{len(written)} feedback file(s) in {FEEDBACK}")
    return 0
