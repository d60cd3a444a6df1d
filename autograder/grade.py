#!/usr/bin/env python
"""Grade a folder of submissions with nbgrader, and say loudly what went wrong.

    python autograder/grade.py ASSIGNMENT SUBMISSIONS [--out DIR] [--timeout S]
                               [--answer-timeout S] [--repair-metadata] [--feedback]

SUBMISSIONS holds one folder per student, named by the student id, with the notebook inside:

    SUBMISSIONS/<student>/<ASSIGNMENT>.ipynb                 (as downloaded from most LMSs), or
    SUBMISSIONS/<student>/<ASSIGNMENT>/<ASSIGNMENT>.ipynb    (nbgrader's own layout)

A student folder holding a single notebook under another name ("00_onramp (1).ipynb") is
accepted and the renaming reported. Results go to DIR (default autograder/reports/):
<ASSIGNMENT>-grades.csv (one row per student: score, max score, problems) and
<ASSIGNMENT>-grades.json (the same, with per-cell scores), plus the full nbgrader log.

nbgrader behaviours handled here rather than left silent:
  * a deleted grade cell would silently lose its points: it is found by comparing the cell ids
    in the submission with the released notebook, scored 0 (in the gradebook too) and reported;
  * tampered cell metadata makes nbgrader fail with "Inconsistent checksums" and still export
    0: the changed fields are reported before grading, the failure after it (or, with
    --repair-metadata, the nbgrader metadata is restored from the release and the notebook graded);
  * an infinite loop is interrupted after the per-cell timeout; the cell is reported and the
    remaining cells are still run and graded;
  * edited test cells (say, replaced by `assert True`) are restored from the source by
    nbgrader before running; the edit is reported.

Exit status: 0 all graded without problems; 3 graded, with problems (see the report);
1 bad input or nbgrader failure.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parent          # autograder/
ROOT = HERE.parent                              # the course root
SUBMITTED = HERE / "submitted"                  # nbgrader's submitted_directory
AUTOGRADED = HERE / "autograded"
DB_URL = f"sqlite:///{HERE / 'gradebook.db'}"
COURSE_ID = "how-llms-actually-work"            # as in nbgrader_config.py
STUDENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@+-]*$")
NBGRADER_KEYS = ("grade", "solution", "locked", "points")

EXIT_OK, EXIT_FATAL, EXIT_PROBLEMS = 0, 1, 3


class GradingError(Exception):
    """Bad input or a failed nbgrader step: reported as one clear message, exit status 1."""


@dataclass
class Student:
    student: str
    notebook: Path | None = None        # the submitted file, None when unusable
    problems: list[dict] = field(default_factory=list)
    missing_grade_cells: list[str] = field(default_factory=list)
    score: float = 0.0
    max_score: float = 0.0
    cells: dict = field(default_factory=dict)

    def problem(self, kind: str, message: str, cell: str | None = None) -> None:
        self.problems.append({"kind": kind, "cell": cell, "message": message})


# --------------------------------------------------------------------------------------------
# input
# --------------------------------------------------------------------------------------------
def check_assignment(assignment: str) -> Path:
    """The source notebook solutions/<assignment>/<assignment>.ipynb, or a clear error."""
    source = ROOT / "solutions" / assignment / f"{assignment}.ipynb"
    if not source.is_file():
        available = sorted(p.parent.name for p in (ROOT / "solutions").glob("*/*.ipynb")
                           if p.stem == p.parent.name)
        raise GradingError(f"unknown assignment {assignment!r}: there is no {source.relative_to(ROOT)}"
                           f" (available: {', '.join(available) or 'none'})")
    return source


def find_submissions(assignment: str, folder: Path) -> list[Student]:
    if not folder.exists():
        raise GradingError(f"submissions folder {folder} does not exist")
    if not folder.is_dir():
        raise GradingError(f"{folder} is a file; expected a folder with one sub-folder per student "
                           f"(<student>/{assignment}.ipynb)")
    students = []
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith("."):
            continue
        if not entry.is_dir():
            print(f"warning: ignoring {entry.name}: expected one folder per student, "
                  f"<student>/{assignment}.ipynb", file=sys.stderr)
            continue
        if not STUDENT_ID.match(entry.name):
            raise GradingError(f"folder name {entry.name!r} is not usable as a student id "
                               "(letters, digits and _ . @ + - only)")
        st = Student(entry.name)
        canonical = [entry / f"{assignment}.ipynb", entry / assignment / f"{assignment}.ipynb"]
        found = [p for p in canonical if p.is_file()]
        if not found:
            others = sorted(p for p in entry.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)
            if len(others) == 1:
                found = others
                st.problem("renamed_notebook", f"notebook submitted as {others[0].relative_to(entry)}"
                           f", graded as {assignment}.ipynb")
            else:
                what = f"{len(others)} other notebooks" if others else "nothing usable"
                st.problem("missing_notebook", f"no {assignment}.ipynb in {entry.name}/ ({what}): scored 0")
        if found:
            try:
                nb = nbformat.read(found[0], as_version=4)
                if not isinstance(nb.get("cells"), list):
                    raise ValueError("no cells")
                st.notebook = found[0]
            except Exception as exc:  # not JSON, not a notebook
                st.problem("unreadable_notebook",
                           f"{found[0].relative_to(folder)} is not a readable notebook ({exc}): scored 0")
        students.append(st)
    if not students:
        raise GradingError(f"no student folders in {folder} (expected <student>/{assignment}.ipynb)")
    return students


# --------------------------------------------------------------------------------------------
# nbgrader
# --------------------------------------------------------------------------------------------
def nbgrader(args: list[str], log: Path | None = None, env: dict | None = None,
             progress: bool = False) -> subprocess.CompletedProcess:
    """Run an nbgrader command with the course configuration (read from autograder/)."""
    cmd = [sys.executable, "-m", "nbgrader", *args]
    # nbgrader runs the `alembic` command to create the gradebook: find it beside this Python even
    # when its virtual environment is not activated (as under `make test`).
    env = dict(env if env is not None else os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    proc = subprocess.Popen(cmd, cwd=HERE, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if progress and (m := re.search(r"\] Autograding .*?/submitted/([^/]+)/", line)):
            print(f"  grading {m.group(1)} ...", flush=True)
    proc.wait()
    output = "".join(lines)
    if log:
        log.write_text(output, encoding="utf-8")
    return subprocess.CompletedProcess(cmd, proc.returncode, output, "")


def release_notebook(assignment: str, work: Path) -> nbformat.NotebookNode:
    """Record the source in the gradebook; return the student version the learners received."""
    proc = nbgrader(["generate_assignment", assignment, "--force",
                     f"--CourseDirectory.release_directory={work}"])
    released = work / assignment / f"{assignment}.ipynb"
    if proc.returncode != 0 or not released.is_file():
        raise GradingError(f"nbgrader generate_assignment {assignment} failed:\n{proc.stdout}")
    return nbformat.read(released, as_version=4)


def nbgrader_cells(nb) -> dict[str, list]:
    cells: dict[str, list] = {}
    for cell in nb.cells:
        grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        if grade_id:
            cells.setdefault(grade_id, []).append(cell)
    return cells


def precheck(st: Student, release, source, repair: bool) -> nbformat.NotebookNode | None:
    """Compare the submission with the released notebook; report every difference that matters.

    Returns the submission with its nbgrader metadata restored when `repair` had to change it.
    """
    sub = nbformat.read(st.notebook, as_version=4)
    want, have = nbgrader_cells(release), nbgrader_cells(sub)
    full = {k: v[0].source.strip() for k, v in nbgrader_cells(source).items()}  # hidden tests too
    repaired = False
    for grade_id, (ref,) in want.items():
        meta = ref.metadata.nbgrader
        if grade_id not in have:
            if meta.get("grade"):
                st.missing_grade_cells.append(grade_id)
                points = float(meta.get("points", 0))
                st.problem("deleted_grade_cell", f"grade cell {grade_id} ({points:g} point"
                           f"{'' if points == 1 else 's'}) was deleted: scored 0", grade_id)
            elif meta.get("solution"):
                st.problem("deleted_answer_cell", f"answer cell {grade_id} was deleted", grade_id)
            else:
                st.problem("deleted_locked_cell", f"locked cell {grade_id} was deleted", grade_id)
            continue
        cells = have[grade_id]
        if len(cells) > 1:
            st.problem("duplicate_cell", f"{len(cells)} cells carry the id {grade_id} "
                       "(a copied cell?); nbgrader keeps the last one", grade_id)
        cell = cells[-1]  # what nbgrader's DeduplicateIds keeps
        got = cell.metadata.nbgrader
        changed = [f"{k}: {meta.get(k)!r} -> {got.get(k)!r}" for k in NBGRADER_KEYS
                   if meta.get(k) != got.get(k) and not (k == "points" and not meta.get("grade"))]
        if cell.cell_type != ref.cell_type:
            changed.append(f"cell type: {ref.cell_type} -> {cell.cell_type}")
        if changed:
            if repair:
                cell.metadata.nbgrader = dict(meta)  # nbgrader itself restores a cell type
                repaired = True
                st.problem("metadata_repaired", f"nbgrader metadata of cell {grade_id} had been "
                           f"changed ({'; '.join(changed)}); restored from the release", grade_id)
            else:
                st.problem("metadata_changed", f"nbgrader metadata of cell {grade_id} was changed "
                           f"({'; '.join(changed)}); nbgrader may refuse to grade the notebook "
                           "(rerun with --repair-metadata to restore it)", grade_id)
        if meta.get("locked") and cell.source.strip() not in (ref.source.strip(), full.get(grade_id)):
            st.problem("edited_locked_cell", f"locked cell {grade_id} was edited; nbgrader restores "
                       "it from the source before running it", grade_id)
    for grade_id in have.keys() - want.keys():
        st.problem("unknown_cell", f"cell id {grade_id} is not in the assignment (ignored)", grade_id)
    return sub if repaired else None


def only(students: list[Student]) -> list[str]:
    """nbgrader options restricting a command to these students: earlier batches (and unusable
    submissions) left in autograder/submitted/ are not touched."""
    graded = {st.student for st in students if st.notebook}
    others = sorted(p.name for p in SUBMITTED.glob("*") if p.is_dir() and p.name not in graded)
    return [f"--CourseDirectory.student_id_exclude={','.join(others)}"] if others else []


def stage(assignment: str, st: Student, release, source, repair: bool) -> None:
    """Check a submission against the release and put it where nbgrader looks for it."""
    try:
        repaired = precheck(st, release, source, repair)
    except Exception as exc:  # odd metadata: let nbgrader judge it, but say so
        repaired = None
        st.problem("precheck_failed", f"could not compare with the release: {exc!r}")
    dest = SUBMITTED / st.student / assignment / f"{assignment}.ipynb"
    if st.notebook.resolve() != dest.resolve():  # not already in nbgrader's layout
        if dest.parent.exists():
            shutil.rmtree(dest.parent)
        dest.parent.mkdir(parents=True)
        shutil.copyfile(st.notebook, dest)
    if repaired is not None:
        nbformat.write(repaired, dest)


def autograde(assignment: str, students: list[Student], log: Path, env: dict) -> set[str]:
    """One nbgrader autograde run for every usable submission; returns the students it failed."""
    graded = [st.student for st in students if st.notebook]
    args = ["autograde", assignment, "--force", "--log-level=INFO", *only(students)]
    print(f"autograding {len(graded)} submission(s) of {assignment} (log: {log})", flush=True)
    proc = nbgrader(args, log=log, env=env, progress=True)
    failed = set(re.findall(r"error processing assignment '[^']*' for student '([^']+)'", proc.stdout))
    missing = [s for s in graded if s not in failed
               and not (AUTOGRADED / s / assignment / f"{assignment}.ipynb").is_file()]
    if proc.returncode != 0 and not failed:
        raise GradingError(f"nbgrader autograde failed (exit {proc.returncode}); see {log}:\n"
                           + "\n".join(proc.stdout.splitlines()[-30:]))
    return failed | set(missing)


def failure_reason(log_text: str, student: str) -> str:
    """The reason nbgrader gives for failing a student's notebook, from its log."""
    parts = re.split(r"(?=\[AutogradeApp \| INFO\] Sanitizing )", log_text)
    mine = [p for p in parts if f"/submitted/{student}/" in p.split("\n", 1)[0]]
    text = "\n".join(mine)
    if m := re.search(r"^\s*RuntimeError: Inconsistent checksums for cell (\S+)", text, flags=re.M):
        return (f"Inconsistent checksums for cell {m.group(1)}: its nbgrader metadata was "
                "tampered with, so nbgrader refused to grade the notebook")
    errors = re.findall(r"^\w*Error: .*$", text, flags=re.M)
    return errors[-1] if errors else "see the nbgrader log"


# --------------------------------------------------------------------------------------------
# results
# --------------------------------------------------------------------------------------------
def timeouts(nb_path: Path) -> dict[str, int]:
    """{cell label: index} of cells that nbgrader interrupted for running too long."""
    if not nb_path.is_file():
        return {}
    nb = nbformat.read(nb_path, as_version=4)
    found = {}
    for index, cell in enumerate(nb.cells):
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error" and out.get("ename") == "CellTimeoutError":
                label = cell.metadata.get("nbgrader", {}).get("grade_id") or f"#{index}"
                found[label] = index
    return found


def collect_scores(assignment: str, students: list[Student], failed: set[str], log: Path,
                   env: dict) -> None:
    from nbgrader.api import Gradebook, MissingEntry

    log_text = log.read_text(encoding="utf-8") if log.is_file() else ""
    with Gradebook(DB_URL, COURSE_ID) as gb:
        max_score = gb.find_assignment(assignment).max_score
        for st in students:
            st.max_score = max_score
            if not st.notebook:
                continue
            try:
                submission = gb.find_submission(assignment, st.student)
            except MissingEntry:
                st.problem("grading_failed", "nbgrader recorded no submission: scored 0")
                continue
            if st.student in failed:
                st.problem("grading_failed", f"nbgrader could not grade the notebook "
                           f"({failure_reason(log_text, st.student)}); it records 0: fix the "
                           "notebook by hand (or use --repair-metadata) and grade again")
            timed_out = timeouts(AUTOGRADED / st.student / assignment / f"{assignment}.ipynb")
            limit_cell = env.get("COURSE_CELL_TIMEOUT", "300")
            limit_answer = env.get("COURSE_ANSWER_TIMEOUT") or limit_cell
            for label in timed_out:
                st.problem("timeout", f"cell {label} ran past the time limit (answer cells "
                           f"{limit_answer} s, others {limit_cell} s; an infinite loop?) and was "
                           "interrupted; the remaining cells were still graded",
                           None if label.startswith("#") else label)
            for nb in submission.notebooks:
                for grade in nb.grades:
                    if grade.name in st.missing_grade_cells and grade.auto_score is None:
                        grade.auto_score, grade.needs_manual_grade = 0.0, False
                    status = ("missing" if grade.name in st.missing_grade_cells
                              else "not graded" if st.student in failed
                              else "timeout" if grade.name in timed_out
                              else "passed" if grade.score >= grade.max_score
                              else "failed")
                    st.cells[grade.name] = {"score": grade.score, "max_score": grade.max_score,
                                            "status": status}
            gb.db.commit()
            st.score = sum(c["score"] for c in st.cells.values())


def write_reports(assignment: str, students: list[Student], out: Path) -> tuple[Path, Path]:
    out.mkdir(parents=True, exist_ok=True)
    csv_path, json_path = out / f"{assignment}-grades.csv", out / f"{assignment}-grades.json"
    with csv_path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["student", "assignment", "score", "max_score", "status", "problems"])
        for st in students:
            writer.writerow([st.student, assignment, f"{st.score:g}", f"{st.max_score:g}",
                             "problems" if st.problems else "ok",
                             " | ".join(p["message"] for p in st.problems)])
    report = {"assignment": assignment, "graded_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
              "students": [{"student": st.student, "score": st.score, "max_score": st.max_score,
                            "status": "problems" if st.problems else "ok",
                            "problems": st.problems, "cells": st.cells} for st in students]}
    json_path.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    return csv_path, json_path


# --------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Grade SUBMISSIONS/<student>/<ASSIGNMENT>.ipynb with nbgrader and report "
                    "scores and problems (see the module docstring and autograder/README.md).")
    parser.add_argument("assignment", help="assignment name, as in solutions/<assignment>/")
    parser.add_argument("submissions", type=Path, help="folder with one sub-folder per student")
    parser.add_argument("--out", type=Path, default=HERE / "reports",
                        help="where the CSV, JSON and log go (default: autograder/reports/)")
    parser.add_argument("--timeout", type=int, help="seconds per cell (default 300, or "
                        "$COURSE_CELL_TIMEOUT)")
    parser.add_argument("--answer-timeout", type=int, help="seconds per answer cell (default: "
                        "as --timeout, or $COURSE_ANSWER_TIMEOUT)")
    parser.add_argument("--repair-metadata", action="store_true",
                        help="restore tampered nbgrader cell metadata from the release and grade")
    parser.add_argument("--feedback", action="store_true",
                        help="also write HTML feedback to autograder/feedback/<student>/")
    args = parser.parse_args(argv)

    env = dict(os.environ, COURSE_FAST=os.environ.get("COURSE_FAST") or "1")
    if args.timeout:
        env["COURSE_CELL_TIMEOUT"] = str(args.timeout)
    if args.answer_timeout:
        env["COURSE_ANSWER_TIMEOUT"] = str(args.answer_timeout)
    try:
        source = nbformat.read(check_assignment(args.assignment), as_version=4)
        students = find_submissions(args.assignment, args.submissions.resolve())
        with tempfile.TemporaryDirectory(prefix="grade-release-") as tmp:
            release = release_notebook(args.assignment, Path(tmp))
        for st in students:
            if st.notebook:
                stage(args.assignment, st, release, source, args.repair_metadata)
        args.out.mkdir(parents=True, exist_ok=True)
        log = args.out.resolve() / f"{args.assignment}-autograde.log"
        failed = set()
        if any(st.notebook for st in students):
            failed = autograde(args.assignment, students, log, env)
        collect_scores(args.assignment, students, failed, log, env)
        csv_path, json_path = write_reports(args.assignment, students, args.out)
        if args.feedback:
            fb = nbgrader(["generate_feedback", args.assignment, "--force", *only(students)], env=env)
            if fb.returncode != 0:
                print(f"warning: nbgrader generate_feedback failed:\n{fb.stdout}", file=sys.stderr)
    except GradingError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FATAL

    width = max(len(st.student) for st in students)
    print(f"\n{'student':<{width}}  score")
    for st in students:
        print(f"{st.student:<{width}}  {st.score:g}/{st.max_score:g}"
              + ("  PROBLEMS" if st.problems else ""))
    troubled = [st for st in students if st.problems]
    for st in troubled:
        for p in st.problems:
            print(f"PROBLEM {st.student}: {p['message']}", file=sys.stderr)
    print(f"\nwrote {csv_path} and {json_path}")
    return EXIT_PROBLEMS if troubled else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
