"""Package the student notebooks for upload to an LMS, one zip per assignment.

    python -m autograder release [ASSIGNMENT ...] [--out DIR] [--root ROOT]

For each assignment (default: every solutions/<a>/<a>.ipynb that has a notebooks/<a>/<a>.ipynb)
it writes DIR/<a>.zip (default DIR: autograder/release/, git-ignored) holding only <a>.ipynb, the
student notebook from notebooks/, byte for byte; and DIR/release.json, recording for each
assignment released the notebook's sha256, its graded cells with their points, the total and the
date (entries of assignments not released this time are kept).

It refuses (exit status 1, nothing written) when notebooks/ is out of sync with solutions/
(`python -m autograder generate --check` fails: run `python -m autograder generate`), and,
as a safety net, when a student notebook still holds a solution or hidden-test marker.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import nbformat

from autograder import course

# nbgrader's delimiters (autograder/nbgrader_config.py), fixed here on purpose: the check must
# not depend on the configuration it guards against.
SECRET_MARKERS = ("BEGIN SOLUTION", "BEGIN HIDDEN TESTS")
MANIFEST = "release.json"
EXIT_OK, EXIT_FATAL = 0, 1


class ReleaseError(Exception):
    """Nothing can be released: reported as one clear message, exit status 1."""


@dataclass
class Release:
    assignment: str
    data: bytes                     # the student notebook's bytes, as they go into the zip
    graded_cells: list[dict]        # {"grade_id", "points"} of each grade cell, in order

    @property
    def points(self) -> float:
        return sum(cell["points"] for cell in self.graded_cells)


def find_assignments(root: Path, wanted: list[str]) -> list[str]:
    for name in wanted:
        try:
            course.find(name, root)
        except course.UnknownAssignment as exc:
            raise ReleaseError(str(exc)) from None
    names = wanted or course.assignments(root)
    ungenerated = [n for n in names if not course.student(n, root).is_file()]
    if wanted and ungenerated:
        raise ReleaseError(f"no student notebook for {', '.join(ungenerated)} in notebooks/: run "
                           "`python -m autograder generate` and commit notebooks/")
    for name in ungenerated:
        print(f"note: skipping {name}: no notebooks/{name}/{name}.ipynb yet")
    names = [n for n in names if n not in ungenerated]
    if not names:
        raise ReleaseError(f"nothing to release: no solutions/<a>/<a>.ipynb in {root} has a "
                           "notebooks/<a>/<a>.ipynb")
    return names


def prepare(root: Path, assignment: str) -> Release:
    """Read a student notebook and refuse it if it still holds solutions or hidden tests."""
    path = course.student(assignment, root)
    data = path.read_bytes()
    rel = path.relative_to(root)
    try:
        text = data.decode("utf-8")
        nb = nbformat.reads(text, as_version=4)
    except Exception as exc:  # not UTF-8, not JSON, not a notebook: nbformat raises many kinds
        raise ReleaseError(f"{rel} is not a readable notebook ({exc}): run "
                           "`python -m autograder generate`")
    # in the whole file, not only the cell sources: outputs, attachments and metadata leak too
    leaked = [m for m in SECRET_MARKERS if m in text]
    if leaked:
        cells = [c.get("metadata", {}).get("nbgrader", {}).get("grade_id") or f"#{i}"
                 for i, c in enumerate(nb.cells) if any(m in c.source for m in leaked)]
        where = f" in cell{'s' if len(cells) > 1 else ''} {', '.join(cells)}" if cells else ""
        raise ReleaseError(f"{rel} contains {' and '.join(map(repr, leaked))}{where}: releasing it "
                           "would give away solutions or hidden tests. Check the delimiters in "
                           "autograder/nbgrader_config.py and the markers in solutions/"
                           f"{assignment}/, then run `python -m autograder generate`")
    graded = [{"grade_id": meta["grade_id"], "points": meta.get("points", 0)}
              for meta in (c.get("metadata", {}).get("nbgrader", {}) for c in nb.cells)
              if meta.get("grade")]
    return Release(assignment, data, graded)


def check_in_sync(root: Path, assignments: list[str]) -> None:
    """notebooks/ must be exactly what solutions/ generates, or learners get stale notebooks."""
    proc = subprocess.run([sys.executable, "-m", "autograder", "generate", "--root", str(root),
                           "--check", *assignments], cwd=course.ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        raise ReleaseError("notebooks/ is out of sync with solutions/ "
                           "(`python -m autograder generate --check` failed):\n"
                           f"{(proc.stdout + proc.stderr).strip()}\n"
                           "Run `python -m autograder generate`, commit notebooks/, and "
                           "release again.")


def write_zip(release: Release, out: Path) -> Path:
    path = out / f"{release.assignment}.zip"
    entry = zipfile.ZipInfo(f"{release.assignment}.ipynb", time.localtime()[:6])
    entry.compress_type = zipfile.ZIP_DEFLATED
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(entry, release.data)
    return path


def update_manifest(path: Path, releases: list[Release], released_at: str) -> None:
    """Record what was released; entries of other assignments from earlier releases stay."""
    manifest = {}
    if path.is_file():
        try:
            manifest = json.loads(path.read_text(encoding="utf-8"))
        except ValueError:
            manifest = None
        if not isinstance(manifest, dict):
            print(f"warning: {path} was not a release record; starting it afresh", file=sys.stderr)
            manifest = {}
    for r in releases:
        manifest[r.assignment] = {"zip": f"{r.assignment}.zip", "notebook": f"{r.assignment}.ipynb",
                                  "sha256": hashlib.sha256(r.data).hexdigest(),
                                  "graded_cells": r.graded_cells, "total_points": r.points,
                                  "released_at": released_at}
    path.write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Zip the student notebooks of the given assignments (default: all) for an "
                    "LMS, after checking that notebooks/ is in sync with solutions/.")
    parser.add_argument("assignments", nargs="*", metavar="ASSIGNMENT",
                        help="assignment names, as in solutions/ (default: all with a notebook)")
    parser.add_argument("--root", type=Path, default=course.ROOT, help="course root (default: this "
                        "repository)")
    parser.add_argument("--out", type=Path, help="where the zips and release.json go (default: "
                        "autograder/release/ under the course root)")
    args = parser.parse_args(argv)
    root = args.root.resolve()
    out = args.out or root / course.RELEASES

    try:
        # All checks come before anything is written, the slow sync check last.
        releases = [prepare(root, a) for a in find_assignments(root, args.assignments)]
        check_in_sync(root, [r.assignment for r in releases])
    except ReleaseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FATAL

    out.mkdir(parents=True, exist_ok=True)
    for r in releases:
        path = write_zip(r, out)
        print(f"{path}  {path.stat().st_size / 1024:.1f} KiB  {r.points:g} points "
              f"in {len(r.graded_cells)} graded cells")
    update_manifest(out / MANIFEST, releases, time.strftime("%Y-%m-%dT%H:%M:%S%z"))
    print(f"wrote {out / MANIFEST}")
    return EXIT_OK

