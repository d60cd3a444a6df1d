"""Copy the submissions of an assignment from an LMS bulk download into the layout grade.py reads.

    python -m autograder collect ASSIGNMENT SOURCE --to DIR [--roster ROSTER.csv] [--replace]
                                 [--id-from name|number]

SOURCE is the bulk download, as the zip file or unpacked into a folder. Each student's notebook
is copied to DIR/<student>/<ASSIGNMENT>.ipynb, ready for `python -m autograder grade
ASSIGNMENT DIR`. File names are recognised in this order:

  Canvas   <lastfirst>[_LATE]_<user id>_<submission id>_<file>
           student: lastfirst, e.g. smithjane (--id-from number: the user id)
  Moodle   <Full Name>_<id>_assignsubmission_file_/<file> (or flattened into one name)
           student: the id (--id-from name: the name in lowercase, spaces as dots: jane.smith)
  folders  <student>/<file>.ipynb or <student>/<ASSIGNMENT>/<ASSIGNMENT>.ipynb

Only .ipynb files are submissions. Everything worth a look is reported, on the screen and in
DIR/collect-report.csv and DIR/collect-report.json: notebooks submitted under another name, files
that match no layout or are not notebooks, duplicates (the newest is collected: by Canvas
submission id, then the LATE marker, then the file date), empty or unreadable notebooks, with
--roster the students left without a notebook in DIR and the submissions from students not on it.
Nothing is overwritten silently: a different DIR/<student>/<ASSIGNMENT>.ipynb already there is
kept unless --replace is given. Zip entries with unsafe paths (absolute, or with ..) or over 50 MB
uncompressed are refused without being extracted. macOS metadata (__MACOSX/), dot files and
.ipynb_checkpoints/ are ignored.

Exit status: 0 everything collected cleanly; 3 collected, with problems (see the report);
1 bad input (no such SOURCE, a damaged zip, an unknown assignment, an unreadable roster).
"""
from __future__ import annotations

import argparse
import csv
import json
import re
import sys
import time
import unicodedata
import zipfile
import zlib
from collections import Counter, defaultdict
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Callable, Iterator

import nbformat

from autograder import course

# What a student id may be, here and in grade.py (which imports it). Used with fullmatch, so that
# a trailing newline cannot slip through `$`.
STUDENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@+-]*$")
MAX_MB = 50
MAX_BYTES = MAX_MB * 1024 * 1024                # larger entries are refused unread (zip bombs)
REPORT_NAME = "collect-report"

CANVAS = re.compile(r"^(?P<name>[a-z]+)(?P<late>_LATE)?_(?P<user>\d+)_(?P<submission>\d+)_"
                    r"(?P<file>.+)$")
MOODLE_FOLDER = re.compile(r"^(?P<name>.+)_(?P<user>\d+)_assignsubmission_[a-z]+_$")
MOODLE_FLAT = re.compile(r"^(?P<name>.+?)_(?P<user>\d+)_assignsubmission_[a-z]+_(?P<file>.+)$")
# What reading a damaged, encrypted or oddly compressed zip entry raises.
ZIP_READ_ERRORS = (zipfile.BadZipFile, zlib.error, RuntimeError, NotImplementedError, OSError)
EXIT_OK, EXIT_FATAL, EXIT_PROBLEMS = 0, 1, 3


class CollectError(Exception):
    """Bad input: reported as one clear message, exit status 1."""


@dataclass
class Entry:
    """One file in SOURCE."""
    path: str                       # inside SOURCE, as stored there
    size: int                       # bytes, uncompressed
    mtime: float                    # the file's date, for telling duplicates apart
    read: Callable[[], bytes]


@dataclass
class Submission:
    """A notebook attributed to a student."""
    student: str
    entry: Entry
    submitted_as: str               # the file name the student gave it
    submission_id: int = -1         # Canvas only: a later submission has a larger id
    late: bool = False              # Canvas's _LATE marker

    @property
    def recency(self) -> tuple:
        return (self.submission_id, self.late, self.entry.mtime)


@dataclass
class Row:
    """One line of the report."""
    student: str
    source_file: str
    action: str
    problems: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------------------------
# input
# --------------------------------------------------------------------------------------------
def check_assignment(assignment: str) -> None:
    if not STUDENT_ID.fullmatch(assignment):
        raise CollectError(f"{assignment!r} is not an assignment name "
                           "(letters, digits and _ . @ + -)")
    if (course.ROOT / course.SOLUTIONS).is_dir():  # a course without sources collects anything
        try:
            course.find(assignment)
        except course.UnknownAssignment as exc:
            raise CollectError(str(exc)) from None


def folder_entries(folder: Path) -> list[Entry]:
    entries = []
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            stat = path.stat()
            entries.append(Entry(path.relative_to(folder).as_posix(), stat.st_size, stat.st_mtime,
                                 path.read_bytes))
    return entries


@contextmanager
def source_entries(source: Path, given: Path) -> Iterator[list[Entry]]:
    """The files of SOURCE, a folder or a zip file (kept open while they are read)."""
    if source.is_dir():
        yield folder_entries(source)
        return
    try:
        archive = zipfile.ZipFile(source)
    except (zipfile.BadZipFile, OSError) as exc:
        raise CollectError(f"{given} is not a readable zip file ({exc}); expected the LMS bulk "
                           "download: a zip file or a folder")
    with archive:
        # mktime, unlike datetime, accepts the zeroed month and day of entries without a date
        yield [Entry(info.filename, info.file_size, time.mktime((*info.date_time, 0, 0, -1)),
                     partial(archive.read, info))
               for info in archive.infolist() if not info.is_dir()]


def read_roster(path: Path) -> tuple[set[str], str]:
    """The student ids in the roster, and the name of the column they came from.

    The first row is a header; the ids are in the column named `student`, or else the first one."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            rows = [row for row in csv.reader(f) if any(cell.strip() for cell in row)]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise CollectError(f"cannot read the roster {path}: {exc}")
    header = [cell.strip().lower() for cell in rows[0]] if rows else []
    column = header.index("student") if "student" in header else 0
    students = set()
    for line, row in enumerate(rows[1:], start=2):
        student = row[column].strip() if column < len(row) else ""
        if student and not STUDENT_ID.fullmatch(student):
            raise CollectError(f"{path}, row {line}: {student!r} is not a student id (letters, "
                               "digits and _ . @ + - only); the roster needs a header row and a "
                               "column `student` (or the ids in its first column)")
        if student:
            students.add(student)
    if not students:
        raise CollectError(f"the roster {path} lists no students (expected a header row, then one "
                           "student id per row in a column `student` or in the first column)")
    return students, rows[0][column].strip()


# --------------------------------------------------------------------------------------------
# recognising submissions
# --------------------------------------------------------------------------------------------
def unsafe(path: str) -> bool:
    """An absolute path or one that climbs out with .. (a "zip slip")."""
    return (path.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", path) is not None
            or ".." in re.split(r"[/\\]", path))


def system_file(parts: list[str]) -> bool:
    """macOS metadata, dot files and Jupyter checkpoints: never a submission."""
    return any(part == "__MACOSX" or part.startswith(".") for part in parts)


def slug(full_name: str) -> str:
    """'José  Smith-Jones' -> 'jose.smith-jones': lowercase, spaces as dots, accents dropped from
    their letters, other characters that a student id cannot hold removed."""
    text = re.sub(r"\s+", ".", unicodedata.normalize("NFKD", full_name).strip().lower())
    return re.sub(r"[^a-z0-9_.@+-]", "", text)


def identify(entry: Entry, parts: list[str], assignment: str, id_from: str | None
             ) -> Submission | None:
    """Whose file this is and what the student called it, by the layouts in the module docstring.

    None when no layout fits; the student id is not checked here."""
    name = parts[-1]
    if m := CANVAS.match(name):
        return Submission(m["user"] if id_from == "number" else m["name"], entry, m["file"],
                          int(m["submission"]), bool(m["late"]))
    moodle = MOODLE_FLAT.match(name)
    if moodle:
        name = moodle["file"]
    else:
        moodle = next(filter(None, map(MOODLE_FOLDER.match, reversed(parts[:-1]))), None)
    if moodle:
        return Submission(slug(moodle["name"]) if id_from == "name" else moodle["user"], entry, name)
    if len(parts) == 2 or parts[1:] == [assignment, f"{assignment}.ipynb"]:
        return Submission(parts[0], entry, name)
    return None


def sort_entries(entries: list[Entry], assignment: str, id_from: str | None
                 ) -> tuple[list[Row], dict[str, list[Submission]]]:
    """Report rows for the files that are not notebook submissions; the notebooks by student."""
    rows: list[Row] = []
    notebooks: dict[str, list[Submission]] = defaultdict(list)
    for entry in entries:
        if unsafe(entry.path):
            rows.append(Row("", entry.path, "refused", ["unsafe path (absolute or with ..): not "
                                                        "extracted (a zip slip?)"]))
            continue
        parts = [p for p in re.split(r"[/\\]", entry.path) if p not in ("", ".")]
        if system_file(parts):
            rows.append(Row("", entry.path, "ignored"))
            continue
        found = identify(entry, parts, assignment, id_from)
        if found is None:
            rows.append(Row("", entry.path, "unmatched", ["matches no known layout (Canvas, Moodle, "
                                                          "<student>/<file>.ipynb)"]))
        elif not STUDENT_ID.fullmatch(found.student):
            rows.append(Row("", entry.path, "unmatched", [
                f"no usable student id in the path (got {found.student!r}; an id is letters, digits "
                "and _ . @ + -, starting with a letter or digit)"]))
        elif not parts[-1].lower().endswith(".ipynb"):
            rows.append(Row(found.student, entry.path, "ignored", ["not a notebook"]))
        elif entry.size > MAX_BYTES:
            rows.append(Row(found.student, entry.path, "refused", [
                f"{entry.size / 2**20:.0f} MB uncompressed, over the {MAX_MB} MB limit: not "
                "extracted (a zip bomb?)"]))
        else:
            notebooks[found.student].append(found)
    return rows, notebooks


def pick_newest(student: str, subs: list[Submission], dest: Path
                ) -> tuple[Submission | None, list[Row]]:
    """The submission to collect, and report rows for the duplicates left out."""
    subs = sorted(subs, key=lambda s: s.recency)
    newest = subs[-1]
    if len(subs) > 1 and subs[-2].recency == newest.recency:
        return None, [Row(student, s.entry.path, "not collected", [
            f"duplicate: {len(subs)} notebooks and nothing tells which is newest; none collected "
            f"(copy the right one to {dest} by hand)"]) for s in subs]
    return newest, [Row(student, s.entry.path, "not collected",
                        [f"duplicate, not collected: kept the newer {newest.entry.path}"])
                    for s in subs[:-1]]


# --------------------------------------------------------------------------------------------
# collecting
# --------------------------------------------------------------------------------------------
def readable_notebook(data: bytes) -> bool:
    """What grade.py accepts: JSON that nbformat reads, with a list of cells."""
    try:
        return isinstance(nbformat.reads(data.decode("utf-8"), as_version=4).get("cells"), list)
    except Exception:  # not UTF-8, not JSON, not a notebook: nbformat raises many kinds
        return False


def deliver(sub: Submission, assignment: str, dest: Path, replace: bool) -> Row:
    """Copy one submission to dest, never overwriting a different file unless asked to."""
    row = Row(sub.student, sub.entry.path, "collected")
    try:
        data = sub.entry.read()
    except ZIP_READ_ERRORS as exc:
        row.action, row.problems = "refused", [f"cannot be read ({exc})"]
        return row
    if sub.submitted_as != f"{assignment}.ipynb":
        row.problems.append(f"renamed: submitted as {sub.submitted_as}")
    if not data:
        row.problems.append("empty file")  # collected as is: grade.py reports it as unreadable
    elif not readable_notebook(data):
        row.problems.append("not a readable notebook")
    if dest.is_file():
        if dest.read_bytes() == data:
            row.action = "already collected"
            return row
        if not replace:
            row.action = "kept existing"
            row.problems.append("exists, kept (use --replace)")
            return row
        row.action = "replaced"
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_bytes(data)
    return row


def collect(assignment: str, entries: list[Entry], to: Path, id_from: str | None, replace: bool,
            roster: set[str] | None) -> list[Row]:
    rows, notebooks = sort_entries(entries, assignment, id_from)
    for student, subs in notebooks.items():
        dest = to / student / f"{assignment}.ipynb"
        newest, duplicates = pick_newest(student, subs, dest)
        rows += duplicates
        if newest:
            row = deliver(newest, assignment, dest, replace)
            if roster is not None and student not in roster:
                row.problems.append("not on roster")
            rows.append(row)
    for student in sorted(roster or ()):
        if not (to / student / f"{assignment}.ipynb").is_file():
            rows.append(Row(student, "", "missing", ["no notebook collected"]))
    return sorted(rows, key=lambda r: (r.student == "", r.student, r.source_file))


# --------------------------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------------------------
def write_report(rows: list[Row], assignment: str, source: Path, to: Path) -> tuple[Path, Path]:
    csv_path, json_path = to / f"{REPORT_NAME}.csv", to / f"{REPORT_NAME}.json"
    with csv_path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["student", "source file", "action", "problem"])
        writer.writerows([r.student, r.source_file, r.action, "; ".join(r.problems)] for r in rows)
    report = {"assignment": assignment, "source": str(source),
              "collected_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
              "rows": [{"student": r.student, "source_file": r.source_file, "action": r.action,
                        "problems": r.problems} for r in rows]}
    json_path.write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return csv_path, json_path


def print_report(rows: list[Row]) -> None:
    shown = [r for r in rows if r.action != "ignored" or r.problems]  # not every __MACOSX/ file
    table = [("student", "action", "source file", "problem")] + [
        (r.student, r.action, r.source_file, "; ".join(r.problems)) for r in shown]
    widths = [max(len(line[column]) for line in table) for column in range(3)]
    for line in table:
        print("  ".join(cell.ljust(width) for cell, width in zip(line, widths + [0])).rstrip())
    counts = Counter(r.action for r in rows)
    flagged = sum(1 for r in rows if r.problems)
    print(f"\n{', '.join(f'{n} {action}' for action, n in counts.items())}; "
          f"{flagged} with problems")


# --------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Copy the submissions of ASSIGNMENT from an LMS bulk download (zip or folder) "
                    "to DIR/<student>/<ASSIGNMENT>.ipynb and report everything odd (see the "
                    "module docstring and autograder/README.md).")
    parser.add_argument("assignment", help="assignment name, as in solutions/<assignment>/")
    parser.add_argument("source", type=Path, help="the LMS bulk download: a zip file or a folder")
    parser.add_argument("--to", type=Path, required=True, metavar="DIR",
                        help="where the student folders go (the SUBMISSIONS folder of grade.py)")
    parser.add_argument("--roster", type=Path, help="CSV with a header row and the student ids in "
                        "a column `student` (or the first column): report who is missing")
    parser.add_argument("--replace", action="store_true",
                        help="replace notebooks already in DIR that differ from the submission")
    parser.add_argument("--id-from", choices=("name", "number"),
                        help="student id from the LMS name or number (default: Canvas name, "
                             "Moodle number)")
    args = parser.parse_args(argv)

    source, to = args.source.resolve(), args.to.resolve()
    try:
        check_assignment(args.assignment)
        roster = None
        if args.roster:
            roster, column = read_roster(args.roster)
            print(f"roster: {len(roster)} student(s), from the column {column!r} of {args.roster}")
        if not source.exists():
            raise CollectError(f"{args.source} does not exist (expected the LMS bulk download: "
                               "a zip file or a folder)")
        if source.is_dir() and (to == source or source in to.parents):
            raise CollectError(f"--to {args.to} is inside SOURCE {args.source}: choose a folder "
                               "outside it")
        if to.exists() and not to.is_dir():
            raise CollectError(f"--to {args.to} is a file; expected a folder")
        with source_entries(source, args.source) as entries:
            rows = collect(args.assignment, entries, to, args.id_from, args.replace, roster)
    except CollectError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FATAL

    to.mkdir(parents=True, exist_ok=True)
    csv_path, json_path = write_report(rows, args.assignment, source, to)
    print_report(rows)
    print(f"wrote {csv_path} and {json_path}")
    return EXIT_PROBLEMS if any(r.problems for r in rows) else EXIT_OK

