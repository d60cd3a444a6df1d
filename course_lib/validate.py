"""`python -m course_lib validate NOTEBOOK [NOTEBOOK ...]`: would this notebook lose points?

For each notebook it
  1. compares the notebook with the release it came from (notebooks/<A>/<A>.ipynb of the course
     repository, matched by file name; its source solutions/<A>/<A>.ipynb when the notebook is the
     release file itself, as in a clone): graded and answer cells that are missing, copied or
     unknown, nbgrader metadata that was changed, locked cells that were edited. Without either,
     only what the notebook itself carries is checked: its nbgrader checksums;
  2. runs a copy of it (the file itself is never written) in its own folder with COURSE_FAST=1,
     as grading does, and reports every visible test that fails, with the first lines of the
     check's message, answer cells that still raise NotImplementedError and errors in other cells.

It prints the points the visible tests would give and one line per problem. Tests that are partly
or wholly hidden (removed from the student's notebook) decide their points only at grading: they
are counted apart.

Exit status: 0 nothing would lose points; 1 something would; 2 bad input (a file that is missing
or not a notebook). --json prints the same as one JSON document, for CI or a classroom service.
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

import nbformat

EXIT_OK, EXIT_LOSES_POINTS, EXIT_BAD_INPUT = 0, 1, 2
# The course repository, when course_lib is installed from it (editable); a copy of the package
# installed elsewhere has no notebooks/ beside it, and then no release is found.
COURSE_ROOT = Path(__file__).resolve().parent.parent
NBGRADER_KEYS = ("grade", "solution", "locked", "points")
HIDDEN_BEGIN = "BEGIN HIDDEN TESTS"  # nbgrader's delimiter (autograder/nbgrader_config.py)
MESSAGE_LINES = 3      # lines of a failing check's message shown
MESSAGE_CHARS = 300


class BadInput(Exception):
    """The file is missing or is not a notebook: exit status 2."""


@dataclass
class Problem:
    kind: str           # missing_cell, duplicate_cell, unknown_cell, changed_metadata,
                        # edited_locked_cell, changed_cell, no_graded_cells, failed_test,
                        # not_run, not_implemented, error, timeout, kernel_died
    cell: str | None
    message: str


@dataclass
class Test:
    cell: str
    points: float
    hidden: bool        # some of its tests are not in the notebook: decided only at grading
    status: str = "not run"   # passed, failed, missing, not run
    message: str = ""


@dataclass
class Report:
    path: str
    compared_with: str | None = None
    notes: list[str] = field(default_factory=list)
    tests: list[Test] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    seconds: float | None = None
    error: str | None = None

    def problem(self, kind: str, cell: str | None, message: str) -> None:
        self.problems.append(Problem(kind, cell, message))

    @property
    def points(self) -> float:
        return sum((t.points for t in self.tests if not t.hidden and t.status == "passed"), 0.0)

    @property
    def visible_points(self) -> float:
        return sum((t.points for t in self.tests if not t.hidden), 0.0)

    @property
    def hidden_points(self) -> float:
        return sum((t.points for t in self.tests if t.hidden), 0.0)

    @property
    def exit_status(self) -> int:
        return EXIT_BAD_INPUT if self.error else EXIT_LOSES_POINTS if self.problems else EXIT_OK

    def as_json(self) -> dict:
        status = {EXIT_OK: "ok", EXIT_LOSES_POINTS: "loses points", EXIT_BAD_INPUT: "bad input"}
        return {"path": self.path, "status": status[self.exit_status], "exit_status": self.exit_status,
                "error": self.error, "compared_with": self.compared_with, "notes": self.notes,
                "points": self.points, "visible_points": self.visible_points,
                "hidden_points": self.hidden_points, "seconds": self.seconds,
                "tests": [asdict(t) for t in self.tests],
                "problems": [asdict(p) for p in self.problems]}


# --------------------------------------------------------------------------------------------
# reading
# --------------------------------------------------------------------------------------------
def read_notebook(path: Path) -> nbformat.NotebookNode:
    """The notebook at path, or BadInput saying in plain words why it is not one."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BadInput("no such file") from None
    except IsADirectoryError:
        raise BadInput("is a folder, not a notebook") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInput(f"cannot be read ({exc})") from None
    try:
        json.loads(text)
    except ValueError:
        what = "it is empty" if not text.strip() else "it is not JSON"
        raise BadInput(f"is not a notebook: {what} (was it saved from Jupyter as .ipynb?)") from None
    try:
        with warnings.catch_warnings():
            # nbformat repairs missing or duplicate cell ids, with a warning; the duplicates that
            # matter to grading (of nbgrader ids) are reported as problems.
            warnings.simplefilter("ignore")
            nb = nbformat.reads(text, as_version=4)
            nbformat.validate(nb)
    except Exception as exc:  # nbformat raises anything from TypeError to a schema error here
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise BadInput(f"is JSON but not a valid notebook ({first})") from None
    return nb


def nbgrader_meta(cell) -> dict:
    meta = cell.get("metadata", {}).get("nbgrader")
    return meta if isinstance(meta, dict) else {}


def by_grade_id(nb) -> dict[str, list]:
    """grade_id -> the cells carrying it, in notebook order (nbgrader grades the last one)."""
    cells: dict[str, list] = {}
    for cell in nb.cells:
        if grade_id := nbgrader_meta(cell).get("grade_id"):
            cells.setdefault(grade_id, []).append(cell)
    return cells


def points_of(meta: dict) -> float:
    try:
        return float(meta.get("points", 0))
    except (TypeError, ValueError):  # a mangled value: reported as changed metadata
        return 0.0


def has_code(source: str) -> bool:
    return any(line.strip() and not line.strip().startswith("#") for line in source.splitlines())


def points_text(points: float) -> str:
    return f"{points:g} point{'' if points == 1 else 's'}"


def shown(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


# --------------------------------------------------------------------------------------------
# the release
# --------------------------------------------------------------------------------------------
@dataclass
class Release:
    """What the notebook is compared with."""
    cells: dict[str, list]             # grade_id -> cells, of the release (or of its source)
    texts: dict[str, set[str]]         # grade_id -> every accepted text of a locked cell
    hidden: set[str]                   # test cells some of whose tests learners do not see


def find_release(path: Path, root: Path, name: str, report: Report) -> Release | None:
    """The release of assignment `name` in the course at root, noting in the report which."""
    from nbgrader.preprocessors import ClearHiddenTests

    release_path = root / "notebooks" / name / f"{name}.ipynb"
    source_path = root / "solutions" / name / f"{name}.ipynb"
    # A learner working in a clone edits the release file itself: then its source stands in for
    # it (same cells and metadata; a locked cell as released is its source without hidden tests).
    is_release = release_path.is_file() and release_path.samefile(path)
    has_release = release_path.is_file() and not is_release
    release = nbformat.read(release_path, as_version=4) if has_release else None
    source = nbformat.read(source_path, as_version=4) if source_path.is_file() else None
    if release is None and source is None:
        report.notes.append(
            f"this notebook is the release itself and {shown(source_path)} is not here" if is_release
            else f"no release of {name!r} in {shown(root / 'notebooks')} (if the file was renamed, "
                 "pass --assignment NAME)")
        report.notes.append("checked only what the notebook carries (its nbgrader checksums), "
                            "and its run")
        return None
    report.compared_with = shown(release_path if release is not None else source_path)
    report.notes.append(f"compared with {report.compared_with}"
                        + (" (this notebook is the release itself)" if is_release else ""))
    versions = [nb for nb in (release, source) if nb is not None]
    if source is not None:
        versions.append(ClearHiddenTests().preprocess(copy.deepcopy(source), {})[0])
    texts: dict[str, set[str]] = {}
    for nb in versions:
        for grade_id, cells in by_grade_id(nb).items():
            texts.setdefault(grade_id, set()).add(cells[0].source.strip())
    if source is not None:
        hidden = {g for g, cells in by_grade_id(source).items() if HIDDEN_BEGIN in cells[0].source}
    else:  # a test cell with nothing to run had all its tests removed as hidden
        hidden = {g for g, cells in by_grade_id(release).items()
                  if nbgrader_meta(cells[0]).get("grade") and not has_code(cells[0].source)}
    return Release(cells=by_grade_id(release if release is not None else source), texts=texts,
                   hidden=hidden)


def compare(nb, release: Release, report: Report) -> None:
    """Report the differences with the release that cost points or make grading guess."""
    have = by_grade_id(nb)
    for grade_id, (ref,) in release.cells.items():
        meta = ref.metadata.nbgrader
        if grade_id not in have:
            what = "test" if meta.get("grade") else "answer" if meta.get("solution") else "locked"
            points = f" ({points_text(points_of(meta))})" if meta.get("grade") else ""
            report.problem("missing_cell", grade_id, f"{what} cell {grade_id}{points} is missing: "
                           "copy it back from the released notebook")
            continue
        cell = have[grade_id][-1]
        got = nbgrader_meta(cell)
        changed = [f"{k}: {meta.get(k)!r} -> {got.get(k)!r}" for k in NBGRADER_KEYS
                   if meta.get(k) != got.get(k) and not (k == "points" and not meta.get("grade"))]
        if cell.cell_type != ref.cell_type:
            changed.append(f"cell type: {ref.cell_type} -> {cell.cell_type}")
        if changed:
            report.problem("changed_metadata", grade_id, f"nbgrader metadata of cell {grade_id} was "
                           f"changed ({'; '.join(changed)}): grading uses the release's")
        if meta.get("locked") and cell.source.strip() not in release.texts[grade_id]:
            report.problem("edited_locked_cell", grade_id, f"locked cell {grade_id} was edited: "
                           "grading runs it as released, so your edit does not count")
    for grade_id in sorted(have.keys() - release.cells.keys()):
        report.problem("unknown_cell", grade_id, f"cell {grade_id} is not in the release (from "
                       "another release?): it is run as a plain cell and not graded")


def check_checksums(nb, report: Report) -> None:
    """Without a release: locked and test cells must still match the checksums nbgrader gave them."""
    from nbgrader.utils import compute_checksum

    for grade_id, cells in by_grade_id(nb).items():
        for cell in cells:
            meta = nbgrader_meta(cell)
            if meta.get("solution") or not (meta.get("locked") or meta.get("grade")):
                continue  # an answer cell's checksum changes with the answer
            if "checksum" not in meta:
                continue  # a source notebook: nbgrader adds checksums on release
            try:
                intact = compute_checksum(cell) == meta["checksum"]
            except (KeyError, TypeError, ValueError):  # mangled metadata (points that are no number)
                intact = False
            if not intact:
                report.problem("changed_cell", grade_id, f"cell {grade_id} no longer matches its "
                               "nbgrader checksum: it was edited, or its nbgrader metadata was changed")


# --------------------------------------------------------------------------------------------
# running
# --------------------------------------------------------------------------------------------
def execute(nb, folder: Path, timeout: int) -> int | None:
    """Run nb (in place) in a kernel started in folder; the index of the cell the kernel died in."""
    from nbclient import NotebookClient
    from nbclient.exceptions import DeadKernelError

    started: list[int] = []
    # The course's own Python kernel, whatever kernel the notebook last ran in (VS Code and
    # Colab write their own names). A cell past the timeout is interrupted and the run goes on,
    # as in grading.
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", allow_errors=True,
                            interrupt_on_timeout=True, startup_timeout=120,
                            resources={"metadata": {"path": str(folder)}},
                            on_cell_start=lambda cell, cell_index: started.append(cell_index))
    # COURSE_GRADING: a failed check raises, as in grading (course_lib/exercises), not a panel.
    env = {**os.environ, "COURSE_FAST": "1", "COURSE_GRADING": "1"}
    env.setdefault("COURSE_DEVICE", "cpu")  # as grading runs it (autograder/nbgrader_config.py)
    try:
        client.execute(env=env)
    except DeadKernelError:
        return started[-1] if started else 0
    return None


def error_message(out, timeout: int) -> str:
    """One line: the first lines of an error's message (a course check's starts with ❌)."""
    if out.get("ename") == "KeyboardInterrupt":  # what the kernel reports after our interrupt
        return f"ran past the time limit of {timeout} s and was interrupted (an infinite loop?)"
    lines = [line.strip() for line in str(out.get("evalue", "")).splitlines() if line.strip()]
    text = " / ".join(lines[:MESSAGE_LINES])
    if not text.startswith("❌"):  # a check's message says it all; a bare error needs its type
        text = f"{out.get('ename')}: {text}" if text else str(out.get("ename"))
    return text if len(text) <= MESSAGE_CHARS else text[:MESSAGE_CHARS - 1] + "…"


def label(cell, index: int) -> str:
    first = cell.source.strip().splitlines()[0] if cell.source.strip() else ""
    return f"#{index + 1} ({first[:40]}{'…' if len(first) > 40 else ''})"


def examine(nb, release: Release | None, died_at: int | None, timeout: int, report: Report) -> None:
    """Tests and problems from the executed notebook (and the release's tests it lacks)."""
    ref_cells = release.cells if release else {}
    tests: dict[str, Test] = {}
    for grade_id, (ref,) in ref_cells.items():  # in release order; deleted ones stay "missing"
        if ref.metadata.nbgrader.get("grade"):
            tests[grade_id] = Test(grade_id, points_of(ref.metadata.nbgrader),
                                   grade_id in release.hidden, "missing")
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        grade_id = nbgrader_meta(cell).get("grade_id")
        if release is None:
            meta, hidden = nbgrader_meta(cell), not has_code(cell.source)
        else:  # a cell the release does not know is run as a plain cell in grading
            meta = ref_cells[grade_id][0].metadata.nbgrader if grade_id in ref_cells else {}
            hidden = grade_id in release.hidden
        error = next((out for out in cell.get("outputs", []) if out.get("output_type") == "error"), None)
        message = error_message(error, timeout) if error else ""
        if index == died_at:
            message = "the kernel died in it (out of memory? a crash?): the cells after it did not run"
        if meta.get("grade"):
            # A notebook holding the hidden tests themselves (a source) runs them: they count.
            test = Test(grade_id, points_of(meta), hidden and HIDDEN_BEGIN not in cell.source)
            tests[grade_id] = test  # a copied cell replaces the earlier one, as in nbgrader
            if died_at is None or index <= died_at:
                test.status, test.message = ("failed", message) if message else ("passed", "")
            continue
        if not message:
            continue
        where = f"answer cell {grade_id}" if grade_id else f"cell {label(cell, index)}"
        if index == died_at:
            report.problem("kernel_died", grade_id or label(cell, index), f"{where}: {message}")
        elif meta.get("solution") and error.get("ename") == "NotImplementedError":
            report.problem("not_implemented", grade_id, f"{where} is not done yet: it still raises "
                           "NotImplementedError")
        else:
            kind = "timeout" if error.get("ename") == "KeyboardInterrupt" else "error"
            report.problem(kind, grade_id or label(cell, index), f"{where}: {message}")
    report.tests = list(tests.values())
    for test in report.tests:
        if test.status == "failed":
            report.problem("failed_test", test.cell, f"test {test.cell} ({points_text(test.points)}) "
                           f"fails: {test.message}")
        elif test.status == "not run":
            report.problem("not_run", test.cell,
                           f"test {test.cell} ({points_text(test.points)}) did not run")
    if not tests:
        report.problem("no_graded_cells", None, "the notebook has no graded test cells: is it the "
                       "assignment's notebook?")


def validate(path: Path, root: Path = COURSE_ROOT, timeout: int = 300,
             assignment: str | None = None) -> Report:
    """Check one notebook against its release and by running it; never writes the file."""
    report = Report(str(path))
    try:
        nb = read_notebook(path)
    except BadInput as exc:
        report.error = f"{path}: {exc}"
        return report
    release = find_release(path, root, assignment or path.stem, report)
    if release is not None:
        compare(nb, release, report)
    else:
        check_checksums(nb, report)
    for grade_id, cells in by_grade_id(nb).items():
        if len(cells) > 1:
            report.problem("duplicate_cell", grade_id, f"{len(cells)} cells carry the id {grade_id} "
                           "(a copied cell?): grading keeps only the last one")
    started = time.monotonic()
    died_at = execute(nb, path.resolve().parent, timeout)
    report.seconds = round(time.monotonic() - started, 1)
    examine(nb, release, died_at, timeout, report)
    return report


# --------------------------------------------------------------------------------------------
# command line
# --------------------------------------------------------------------------------------------
def print_report(report: Report) -> None:
    if report.error:
        print(f"error: {report.error}", file=sys.stderr)
        return
    print(report.path)
    for note in report.notes:
        print(f"  {note}")
    print(f"  ran in {report.seconds:g} s with COURSE_FAST=1")
    hidden = (f" ({points_text(report.hidden_points)} more depend on hidden tests, run only at grading)"
              if report.hidden_points else "")
    print(f"  visible tests: {report.points:g} of {report.visible_points:g} points{hidden}")
    if not report.problems:
        print("  ✓ nothing would lose points")
        return
    print(f"  ✗ {len(report.problems)} problem(s) would lose points:")
    for problem in report.problems:
        print(f"    - {problem.message}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m course_lib validate",
        description="Would these notebooks lose points? Compare each with its release and run it.")
    parser.add_argument("notebooks", nargs="+", type=Path, metavar="NOTEBOOK")
    parser.add_argument("--timeout", type=int, default=300,
                        help="seconds one cell may run before it is interrupted (default 300)")
    parser.add_argument("--json", action="store_true", help="print the result as one JSON document")
    parser.add_argument("--assignment", metavar="NAME",
                        help="the assignment, when the file name is not NAME.ipynb (a renamed download)")
    parser.add_argument("--course", type=Path, default=COURSE_ROOT, metavar="ROOT",
                        help="the course repository holding notebooks/ and solutions/ "
                             "(default: the one course_lib is installed from)")
    args = parser.parse_args(argv)
    if args.timeout <= 0:
        parser.error("--timeout must be a positive number of seconds")
    reports = []
    for path in args.notebooks:
        if not args.json:
            print(f"validating {path} ...", file=sys.stderr)
        report = validate(path, args.course.resolve(), args.timeout, args.assignment)
        reports.append(report)
        if not args.json:
            print_report(report)
    status = max(r.exit_status for r in reports)
    if args.json:
        print(json.dumps({"exit_status": status, "notebooks": [r.as_json() for r in reports]},
                         indent=1, ensure_ascii=False))
    return status
