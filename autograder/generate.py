"""Regenerate the student notebooks in notebooks/ from the nbgrader sources in solutions/.

    python -m autograder generate             # strip solutions/, regenerate notebooks/
    python -m autograder generate --check     # change nothing; exit 1 and name the files
                                              # if anything is out of date
    python -m autograder generate 00_onramp   # only some assignments

What it does, for each solutions/<a>/<a>.ipynb:
  1. strips it in place: outputs, execution counts, widget state and volatile metadata go, every
     cell gets a stable id, so solutions are committed clean and diffs stay reviewable; the Colab
     setup cell is written from pyproject.toml (autograder/colab.py), each exercise's hints
     (declared with it in course_lib/exercises) as a folded cell above its answer cell, and the
     notebook's "## Sources" list (course_lib/sources.py) as its last cell;
  2. runs `nbgrader generate_assignment` on a copy, in a temporary course directory with no
     gradebook (so nothing but notebooks/ changes in the repository), strips the result the same
     way, and writes it to notebooks/<a>/ (together with any other files in solutions/<a>/).

Then it writes GLOSSARY.md from course_lib/glossary.py and points the README's "open in Colab"
links at pyproject.toml's Repository.

--check does steps 1 and 2 in memory and in a temporary directory and compares the result with
what is on disk, file by file (notebooks are compared as parsed JSON, so the comparison does not
depend on formatting); it fails when a solution has outputs or is not normalised, when a student
notebook differs from what nbgrader generates, is missing, or has no source any more.
"""
from __future__ import annotations

import argparse
import ast
import copy
import filecmp
import hashlib
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import nbformat
from nbgrader.preprocessors import ClearSolutions

from autograder import colab, course

# Not copied from solutions/<a>/ into notebooks/<a>/ (nbgrader's CourseDirectory.ignore too).
IGNORE = shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__", "*.pyc", ".DS_Store")

# Notebook-level metadata that is per-machine or per-session noise.
DROP_NB_METADATA = ("widgets", "vscode", "varInspector", "toc", "execution")
# Cell-level metadata written by front-ends while running or viewing a notebook.
DROP_CELL_METADATA = ("execution", "ExecuteTime", "collapsed", "scrolled", "trusted", "widgets")


class ClearSolutionsRunAllSafe(ClearSolutions):
    """nbgrader's ClearSolutions, but a solution region at the top level of a cell (a prediction, the
    claims) keeps no `raise NotImplementedError()`: it would stop Run All there. Such a cell declares
    its answers as `name = ...` above the region, and the check of `...` fails as the stub would."""

    def _replace_solution_region(self, cell, language: str) -> bool:
        replaced = super()._replace_solution_region(cell, language)
        if replaced and cell.cell_type == "code":
            cell.source = "\n".join(line for line in cell.source.split("\n") if line != "raise NotImplementedError()")
        return replaced


# --------------------------------------------------------------------------------------------
# stripping
# --------------------------------------------------------------------------------------------
def strip_notebook(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A copy of nb without outputs, execution counts, widget state or volatile metadata.

    Cells without an id (notebook format 4.4 or older) get a stable one derived from their
    position and source, so that repeated runs give byte-identical files.
    """
    nb = copy.deepcopy(nb)
    nb.nbformat, nb.nbformat_minor = 4, max(5, int(nb.get("nbformat_minor", 0)))
    meta = nb.setdefault("metadata", {})
    for key in DROP_NB_METADATA:
        meta.pop(key, None)
    if "language_info" in meta:  # version, mimetype, ... vary from machine to machine
        meta["language_info"] = {"name": meta["language_info"].get("name", "python")}
    if isinstance(meta.get("colab"), dict):
        meta["colab"].pop("provenance", None)

    seen: set[str] = set()
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
        for key in DROP_CELL_METADATA:
            cell.metadata.pop(key, None)
        cell_id = cell.get("id")
        if not cell_id or cell_id in seen:
            digest = hashlib.sha1(f"{index}\0{cell.source}".encode()).hexdigest()[:8]
            cell_id = f"cell-{digest}"
            while cell_id in seen:
                cell_id += "x"
            cell.id = cell_id
        seen.add(cell_id)
    return nb


def checked_exercise(source: str) -> str | None:
    """The exercise a visible test cell checks: `check(fn, ...)` names it by the function, or by
    `exercise="..."`; None for a hidden test cell or a cell without a check."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "check":
            keywords = {k.arg: k.value for k in node.keywords}
            if isinstance(keywords.get("hidden"), ast.Constant) and keywords["hidden"].value:
                return None
            if isinstance(keywords.get("exercise"), ast.Constant):
                return keywords["exercise"].value
            if node.args and isinstance(node.args[0], ast.Name):
                return node.args[0].id
    return None


def write_hint_cells(nb: nbformat.NotebookNode) -> bool:
    """Put each checked exercise's hints, as declared, in a markdown cell (id hints-<name>) right
    above the answer cell before its test; True if anything changed."""
    from course_lib.exercises import EXERCISES  # imports torch: only when generating

    changed = False
    for index in range(len(nb.cells) - 1, -1, -1):
        cell = nb.cells[index]
        if not (cell.cell_type == "code" and cell.metadata.get("nbgrader", {}).get("grade")):
            continue
        declared = EXERCISES.get(checked_exercise(cell.source) or "")
        if declared is None or not declared.hints:
            continue
        answer = next((i for i in range(index - 1, -1, -1)
                       if nb.cells[i].metadata.get("nbgrader", {}).get("solution")), None)
        if answer is None:
            continue
        cell_id, text = f"hints-{declared.name}", declared.hints_markdown()
        existing = next((c for c in nb.cells if c.get("id") == cell_id), None)
        if existing is None:
            nb.cells.insert(answer, nbformat.v4.new_markdown_cell(text, id=cell_id))
            changed = True
        elif existing.source != text:
            existing.source, changed = text, True
    return changed


def write_sources_cell(nb: nbformat.NotebookNode, name: str) -> bool:
    """Make the notebook's last cell its sources list as declared (a markdown cell, id "sources"),
    for a notebook that cites any; True if anything changed."""
    from course_lib import sources

    if name not in sources.NOTEBOOKS:
        return False
    text = sources.markdown(name)
    existing = next((c for c in nb.cells if c.get("id") == sources.CELL_ID), None)
    if existing is not None and existing is nb.cells[-1] and existing.cell_type == "markdown":
        if existing.source == text:
            return False
        existing.source = text
        return True
    nb.cells = [c for c in nb.cells if c is not existing]
    nb.cells.append(nbformat.v4.new_markdown_cell(text, id=sources.CELL_ID))
    return True


def dirt(nb: nbformat.NotebookNode) -> list[str]:
    """What strip_notebook would remove, in words (empty when the notebook is clean)."""
    found = []
    code = [c for c in nb.cells if c.cell_type == "code"]
    if n := sum(1 for c in code if c.get("outputs")):
        found.append(f"{n} cell(s) with outputs")
    if n := sum(1 for c in code if c.get("execution_count") is not None):
        found.append(f"{n} execution count(s)")
    if "widgets" in nb.metadata:
        found.append("widget state")
    if any("id" not in c for c in nb.cells):
        found.append("cells without ids")
    return found


def notebook_text(nb: nbformat.NotebookNode) -> str:
    """The exact bytes nbformat (and Jupyter) write: sorted keys, indent 1, trailing newline."""
    return nbformat.writes(nb) + "\n"


def read_notebook(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(path, as_version=4)


# --------------------------------------------------------------------------------------------
# generation
# --------------------------------------------------------------------------------------------
def find_assignments(root: Path, wanted: list[str]) -> tuple[list[str], list[str]]:
    """(assignments with a source notebook, notes about solutions/ folders without one)."""
    found, solutions = course.assignments(root), root / course.SOLUTIONS
    notes = [f"solutions/{p.name}/ has no {p.name}.ipynb yet: skipped"
             for p in sorted(solutions.iterdir()) if p.is_dir() and not p.name.startswith(".")
             and p.name not in found] if solutions.is_dir() else []
    if wanted:
        unknown = [w for w in wanted if w not in found]
        if unknown:
            raise SystemExit(f"error: no source notebook for {', '.join(unknown)} "
                             f"(looked for solutions/<a>/<a>.ipynb; found: {', '.join(found) or 'none'})")
        found = [w for w in found if w in wanted]
    return found, notes


def generate_into(root: Path, assignments: list[str], work: Path) -> Path:
    """Run nbgrader generate_assignment on stripped copies of the sources; return the release dir.

    Everything happens under `work`: a throwaway course root with its own (unused) gradebook.
    """
    for name in assignments:
        src = root / course.SOLUTIONS / name
        dst = work / course.SOLUTIONS / name
        shutil.copytree(src, dst, ignore=IGNORE)
        nb_path = dst / f"{name}.ipynb"
        nb_path.write_text(notebook_text(strip_notebook(read_notebook(nb_path))), encoding="utf-8")
    proc = course.nbgrader_run("generate_assignment", "*", "--force", "--no-db",
                               f"--CourseDirectory.root={work}",
                               f"--CourseDirectory.db_url=sqlite:///{work / 'unused-gradebook.db'}",
                               "--log-level=WARN")
    if proc.returncode != 0:
        raise SystemExit(f"error: nbgrader generate_assignment failed:\n{proc.stdout}")
    release = work / course.NOTEBOOKS
    for name in assignments:
        out = release / name / f"{name}.ipynb"
        if not out.is_file():
            raise SystemExit(f"error: nbgrader wrote no {out.name}:\n{proc.stdout}")
        out.write_text(notebook_text(strip_notebook(read_notebook(out))), encoding="utf-8")
    return release


def files_under(folder: Path) -> set[Path]:
    if not folder.is_dir():
        return set()
    skip = {".ipynb_checkpoints", "__pycache__"}
    return {p.relative_to(folder) for p in folder.rglob("*")
            if p.is_file() and not skip.intersection(p.relative_to(folder).parts)}


def same_file(a: Path, b: Path) -> bool:
    if a.suffix == ".ipynb":
        try:
            return json.loads(a.read_text(encoding="utf-8")) == json.loads(b.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return False
    return filecmp.cmp(a, b, shallow=False)


def stale_outputs(root: Path, assignments: list[str], all_sources: list[str], notes: list[str]):
    """notebooks/<x>/ folders whose source solutions/<x>/<x>.ipynb does not exist."""
    notebooks = root / course.NOTEBOOKS
    if not notebooks.is_dir():
        return []
    pending = {n.split("/")[1] for n in notes}  # a source folder without its notebook yet
    return sorted(p.name for p in notebooks.iterdir()
                  if p.is_dir() and not p.name.startswith(".") and p.name not in all_sources
                  and p.name not in pending)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("assignments", nargs="*", help="assignment names (default: all in solutions/)")
    parser.add_argument("--check", action="store_true",
                        help="change nothing; exit 1 and name the files that are out of date")
    parser.add_argument("--root", type=Path, default=course.ROOT,
                        help="course root (default: this repository)")
    args = parser.parse_args(argv)
    root = args.root.resolve()

    all_sources, notes = find_assignments(root, [])
    assignments, _ = find_assignments(root, args.assignments)
    for note in notes:
        print(f"note: {note}")
    problems: list[str] = []

    # 1. the sources themselves
    for name in assignments:
        path = course.source(name, root)
        rel = path.relative_to(root)
        try:
            nb = read_notebook(path)
            stripped = strip_notebook(nb)
            nbformat.validate(stripped)
        except Exception as exc:  # unreadable JSON, not a notebook, invalid schema
            raise SystemExit(f"error: {rel} is not a valid notebook: {exc}")
        setup = [c for c in stripped.cells if c.get("id") == colab.SETUP_CELL_ID]
        stale_setup = False
        if setup:
            written = colab.setup_cell(root)
            stale_setup, setup[0].source = setup[0].source != written, written
        stale_hints = write_hint_cells(stripped)
        stale_sources = write_sources_cell(stripped, name)
        clean = notebook_text(stripped)
        if path.read_text(encoding="utf-8") != clean:
            what = ", ".join(dirt(nb) + (["a Colab setup cell out of date with pyproject.toml"] if stale_setup else [])
                             + (["hints out of date with course_lib/exercises"] if stale_hints else [])
                             + (["sources out of date with course_lib/sources.py"] if stale_sources else [])) \
                or "formatting or volatile metadata"
            if args.check:
                problems.append(f"{rel}: not stripped ({what})")
            else:
                path.write_text(clean, encoding="utf-8")
                print(f"stripped {rel} ({what})")

    # 2. the generated student notebooks
    with tempfile.TemporaryDirectory(prefix="generate-notebooks-") as tmp:
        release = generate_into(root, assignments, Path(tmp)) if assignments else None
        for name in assignments:
            fresh, current = release / name, root / course.NOTEBOOKS / name
            want, have = files_under(fresh), files_under(current)
            differ = sorted(f for f in want & have if not same_file(fresh / f, current / f))
            missing, extra = sorted(want - have), sorted(have - want)
            if args.check:
                problems += [f"notebooks/{name}/{f}: differs from what solutions/{name} generates"
                             for f in differ]
                problems += [f"notebooks/{name}/{f}: missing" for f in missing]
                problems += [f"notebooks/{name}/{f}: has no counterpart in solutions/{name}/"
                             for f in extra]
            elif differ or missing or extra:
                if current.exists():
                    shutil.rmtree(current)
                shutil.copytree(fresh, current)
                for f in current.rglob("*"):  # nbgrader writes read-only-ish permissions
                    os.chmod(f, 0o755 if f.is_dir() else 0o644)
                print(f"wrote notebooks/{name}/ ({len(want)} file(s))")
            else:
                print(f"notebooks/{name}/ is up to date")

    # 3. the glossary page, from course_lib/glossary.py
    from course_lib import glossary
    page = root / "GLOSSARY.md"
    if (root / "course_lib").is_dir() and (not page.is_file() or page.read_text(encoding="utf-8") != glossary.markdown()):
        if args.check:
            problems.append("GLOSSARY.md: out of date with course_lib/glossary.py")
        else:
            page.write_text(glossary.markdown(), encoding="utf-8")
            print("wrote GLOSSARY.md")

    # 4. the README's "open in Colab" links
    readme = root / "README.md"
    if readme.is_file() and (root / "pyproject.toml").is_file():
        text = readme.read_text(encoding="utf-8")
        linked = colab.readme_links(text, root)
        if linked != text:
            if args.check:
                problems.append("README.md: its Colab links do not point at pyproject.toml's Repository")
            else:
                readme.write_text(linked, encoding="utf-8")
                print("rewrote README.md's Colab links")

    for name in stale_outputs(root, assignments, all_sources, notes):
        msg = f"notebooks/{name}/: no source solutions/{name}/{name}.ipynb (remove it: git rm -r notebooks/{name})"
        if args.check:
            problems.append(msg)
        else:
            print(f"warning: {msg}", file=sys.stderr)

    if args.check:
        if problems:
            print("Out of sync; run `python -m autograder generate` and commit the result:",
                  file=sys.stderr)
            for problem in problems:
                print(f"  {problem}", file=sys.stderr)
            return 1
        print(f"ok: {len(assignments)} assignment(s) in sync ({', '.join(assignments) or 'none yet'})")
    return 0

