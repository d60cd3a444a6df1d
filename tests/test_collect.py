"""autograder/collect.py: LMS bulk downloads (Canvas and Moodle zips, a folder per student) into
DIR/<student>/<ASSIGNMENT>.ipynb, with every oddity reported and nothing overwritten silently.

The submissions are small notebooks written in tmp_path; nothing is graded."""
from __future__ import annotations

import functools
import json
import os
import zipfile
from pathlib import Path

import nbformat
import pytest

from conftest import REPO, run_step, synthetic_solution  # noqa: E402  (tests/ is on sys.path under pytest)

from autograder import collect  # noqa: E402

A = "00_onramp"  # a real assignment: collect checks the name against solutions/
OLD_DATE, NEW_DATE = (2025, 3, 1, 10, 0, 0), (2025, 3, 2, 10, 0, 0)


@functools.cache  # nbformat gives new cells random ids: the same tag must give the same bytes
def notebook(tag: str) -> bytes:
    """A valid notebook whose bytes say which submission it is."""
    nb = synthetic_solution()
    nb.metadata["submission"] = tag
    return nbformat.writes(nb).encode()


def make_zip(path: Path, files: dict, compression=zipfile.ZIP_DEFLATED) -> Path:
    """files: {entry name: bytes, or (bytes, date_time)}."""
    with zipfile.ZipFile(path, "w", compression) as archive:
        for name, content in files.items():
            data, date = content if isinstance(content, tuple) else (content, OLD_DATE)
            archive.writestr(zipfile.ZipInfo(name, date), data, compress_type=compression)
    return path


def make_tree(folder: Path, files: dict[str, bytes]) -> Path:
    for name, data in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    return folder


def run(source: Path, to: Path, *options: str) -> tuple[int, dict[str, dict]]:
    """collect.main in-process; the exit status and the report's rows by source file (missing
    students by 'missing:<student>')."""
    status = collect.main([A, str(source), "--to", str(to), *options])
    report = json.loads((to / "collect-report.json").read_text())
    rows = {r["source_file"] or f"missing:{r['student']}": r for r in report["rows"]}
    return status, rows


def collected(to: Path, student: str) -> bytes:
    return (to / student / f"{A}.ipynb").read_bytes()


def students_in(to: Path) -> set[str]:
    return {p.name for p in to.iterdir() if p.is_dir()}


# --------------------------------------------------------------------------------------------
# Canvas
# --------------------------------------------------------------------------------------------
CANVAS_OLD = f"smithjane_12345_67890_{A}.ipynb"
CANVAS_NEW = f"smithjane_LATE_12345_67891_{A}-2.ipynb"


@pytest.fixture
def canvas_zip(tmp_path) -> Path:
    return make_zip(tmp_path / "canvas.zip", {
        # the older file carries the newer date: the submission id decides, not the date
        CANVAS_OLD: (notebook("smithjane first"), NEW_DATE),
        CANVAS_NEW: (notebook("smithjane resubmitted"), OLD_DATE),
        f"doejohn_23456_67900_{A}.ipynb": notebook("doejohn"),
        "leeann_34567_67901_report.pdf": b"%PDF-1.4 not a notebook",
        f"emptyeve_45678_67902_{A}.ipynb": b"",
        f"brokenbob_56789_67903_{A}.ipynb": b'{"cells": [ this is not JSON',
        f"__MACOSX/._doejohn_23456_67900_{A}.ipynb": b"\0\5\26\7 AppleDouble",
        "instructions.txt": b"read me",
        "stray.ipynb": notebook("nobody"),
    })


def test_canvas_zip(canvas_zip, tmp_path):
    to = tmp_path / "collected"
    status, rows = run(canvas_zip, to)
    assert status == 3
    assert students_in(to) == {"smithjane", "doejohn", "emptyeve", "brokenbob"}

    # duplicates: the later submission (larger id, LATE) is collected and the other named
    assert collected(to, "smithjane") == notebook("smithjane resubmitted")
    assert rows[CANVAS_NEW]["action"] == "collected"
    assert rows[CANVAS_NEW]["problems"] == [f"renamed: submitted as {A}-2.ipynb"]
    assert rows[CANVAS_OLD]["action"] == "not collected"
    assert rows[CANVAS_OLD]["problems"] == [f"duplicate, not collected: kept the newer {CANVAS_NEW}"]

    assert collected(to, "doejohn") == notebook("doejohn")
    assert rows[f"doejohn_23456_67900_{A}.ipynb"] == {
        "student": "doejohn", "source_file": f"doejohn_23456_67900_{A}.ipynb",
        "action": "collected", "problems": []}
    # an empty file and a broken one are collected as they are, for grade.py to score 0
    assert collected(to, "emptyeve") == b""
    assert rows[f"emptyeve_45678_67902_{A}.ipynb"]["problems"] == ["empty file"]
    assert collected(to, "brokenbob") == b'{"cells": [ this is not JSON'
    assert rows[f"brokenbob_56789_67903_{A}.ipynb"]["problems"] == ["not a readable notebook"]
    # a pdf is attributed to its student but not collected
    pdf = rows["leeann_34567_67901_report.pdf"]
    assert (pdf["student"], pdf["action"]) == ("leeann", "ignored")
    assert pdf["problems"] == ["not a notebook"]
    for name in ("instructions.txt", "stray.ipynb"):
        assert rows[name]["action"] == "unmatched" and rows[name]["student"] == ""
    # macOS metadata is ignored without counting as a problem
    assert rows[f"__MACOSX/._doejohn_23456_67900_{A}.ipynb"]["action"] == "ignored"
    assert rows[f"__MACOSX/._doejohn_23456_67900_{A}.ipynb"]["problems"] == []

    # the same report as CSV, one line per row
    lines = (to / "collect-report.csv").read_text().splitlines()
    assert lines[0] == "student,source file,action,problem"
    assert f"emptyeve,emptyeve_45678_67902_{A}.ipynb,collected,empty file" in lines
    assert len(lines) == 1 + len(rows)


def test_canvas_ids_from_user_number(canvas_zip, tmp_path):
    to = tmp_path / "collected"
    run(canvas_zip, to, "--id-from", "number")
    assert students_in(to) == {"12345", "23456", "45678", "56789"}
    assert collected(to, "12345") == notebook("smithjane resubmitted")


# --------------------------------------------------------------------------------------------
# Moodle
# --------------------------------------------------------------------------------------------
MOODLE = {
    f"Jane Smith_1001_assignsubmission_file_/{A}.ipynb": notebook("jane"),
    f"José García_1002_assignsubmission_file_{A} (1).ipynb": notebook("jose"),      # flattened
    f"Ann Lee_1004_assignsubmission_file_/{A}.ipynb": (notebook("ann first"), OLD_DATE),
    f"Ann Lee_1004_assignsubmission_file_/{A} (2).ipynb": (notebook("ann second"), NEW_DATE),
    f"李雷_1003_assignsubmission_file_/{A}.ipynb": notebook("li"),
    "Jane Smith_1001_assignsubmission_onlinetext_/onlinetext.html": b"<p>see my notebook</p>",
}


def test_moodle_zip_ids_from_number(tmp_path):
    to = tmp_path / "collected"
    status, rows = run(make_zip(tmp_path / "moodle.zip", MOODLE), to)
    assert status == 3
    assert students_in(to) == {"1001", "1002", "1003", "1004"}
    assert collected(to, "1001") == notebook("jane")
    assert collected(to, "1002") == notebook("jose")
    assert rows[f"José García_1002_assignsubmission_file_{A} (1).ipynb"]["problems"] == [
        f"renamed: submitted as {A} (1).ipynb"]
    # two files in one submission folder: the one with the newer zip date is collected
    assert collected(to, "1004") == notebook("ann second")
    older = rows[f"Ann Lee_1004_assignsubmission_file_/{A}.ipynb"]
    assert older["action"] == "not collected"
    assert f"kept the newer Ann Lee_1004_assignsubmission_file_/{A} (2).ipynb" in older["problems"][0]
    online = rows["Jane Smith_1001_assignsubmission_onlinetext_/onlinetext.html"]
    assert (online["student"], online["problems"]) == ("1001", ["not a notebook"])


def test_moodle_zip_ids_from_name(tmp_path):
    to = tmp_path / "collected"
    status, rows = run(make_zip(tmp_path / "moodle.zip", MOODLE), to, "--id-from", "name")
    assert status == 3
    assert students_in(to) == {"jane.smith", "jose.garcia", "ann.lee"}
    assert collected(to, "jose.garcia") == notebook("jose")
    # a name that slugs to nothing usable is not guessed at
    li = rows[f"李雷_1003_assignsubmission_file_/{A}.ipynb"]
    assert li["action"] == "unmatched" and "no usable student id" in li["problems"][0]


# --------------------------------------------------------------------------------------------
# a folder per student
# --------------------------------------------------------------------------------------------
@pytest.fixture
def tree(tmp_path) -> Path:
    folder = make_tree(tmp_path / "downloads", {
        f"alice/{A}.ipynb": notebook("alice"),
        f"alice/.ipynb_checkpoints/{A}-checkpoint.ipynb": notebook("alice checkpoint"),
        f"bob/{A}/{A}.ipynb": notebook("bob"),
        "carol/my work.ipynb": notebook("carol"),
        "dave/notes.txt": b"no notebook here",
        f"erin/old/{A}.ipynb": notebook("erin"),
        f"bad name!/{A}.ipynb": notebook("bad name"),
        f"frank/{A}.ipynb": notebook("frank 1"),
        f"frank/{A} copy.ipynb": notebook("frank 2"),
        ".DS_Store": b"\0\0\0\1Bud1",
    })
    for name in (f"frank/{A}.ipynb", f"frank/{A} copy.ipynb"):  # no telling which is newer
        os.utime(folder / name, (1_700_000_000, 1_700_000_000))
    return folder


def test_folder_tree(tree, tmp_path):
    to = tmp_path / "collected"
    status, rows = run(tree, to)
    assert status == 3
    assert students_in(to) == {"alice", "bob", "carol"}
    assert collected(to, "alice") == notebook("alice")      # not the checkpoint
    assert collected(to, "bob") == notebook("bob")
    assert collected(to, "carol") == notebook("carol")
    assert rows[f"alice/{A}.ipynb"]["problems"] == rows[f"bob/{A}/{A}.ipynb"]["problems"] == []
    assert rows["carol/my work.ipynb"]["problems"] == ["renamed: submitted as my work.ipynb"]
    assert rows["dave/notes.txt"]["problems"] == ["not a notebook"]
    assert rows[f"erin/old/{A}.ipynb"]["action"] == "unmatched"          # too deep
    assert rows[f"bad name!/{A}.ipynb"]["action"] == "unmatched"
    assert "no usable student id" in rows[f"bad name!/{A}.ipynb"]["problems"][0]
    for name in (f"alice/.ipynb_checkpoints/{A}-checkpoint.ipynb", ".DS_Store"):
        assert (rows[name]["action"], rows[name]["problems"]) == ("ignored", [])
    # two notebooks with the same date: neither is picked, both are reported
    for name in (f"frank/{A}.ipynb", f"frank/{A} copy.ipynb"):
        assert rows[name]["action"] == "not collected"
        assert "none collected" in rows[name]["problems"][0]
    # exactly the layout grade.py reads, and nothing else
    assert sorted(p.relative_to(to).as_posix() for p in to.rglob("*.ipynb")) == [
        f"{s}/{A}.ipynb" for s in ("alice", "bob", "carol")]


@pytest.mark.parametrize("header", ["student,name", "email,student", "id,name"])
def test_roster(tree, tmp_path, header):
    """The ids come from the column `student`, or else the first one."""
    ids = ["alice", "bob", "dave", "zed"]
    lines = [header] + [(f"{i},{i.title()}" if header != "email,student" else f"{i}@uni.edu,{i}")
                        for i in ids]
    (tmp_path / "roster.csv").write_text("\n".join(lines) + "\n")
    to = tmp_path / "collected"
    status, rows = run(tree, to, "--roster", str(tmp_path / "roster.csv"))
    assert status == 3
    assert {s for s in ids if f"missing:{s}" in rows} == {"dave", "zed"}
    assert rows["missing:zed"]["action"] == "missing"
    # not on the roster, still collected
    assert rows["carol/my work.ipynb"]["problems"][-1] == "not on roster"
    assert collected(to, "carol") == notebook("carol")
    assert "not on roster" not in rows[f"alice/{A}.ipynb"]["problems"]


def test_existing_notebook_kept_unless_replace(tmp_path):
    to = tmp_path / "collected"
    source = make_tree(tmp_path / "downloads", {f"alice/{A}.ipynb": notebook("alice"),
                                                f"bob/{A}.ipynb": notebook("bob")})
    assert run(source, to)[0] == 0                                     # clean
    status, rows = run(source, to)                                      # again: nothing changes
    assert status == 0
    assert {r["action"] for r in rows.values()} == {"already collected"}

    (source / "alice" / f"{A}.ipynb").write_bytes(notebook("alice, second try"))
    status, rows = run(source, to)
    assert status == 3
    assert rows[f"alice/{A}.ipynb"]["action"] == "kept existing"
    assert rows[f"alice/{A}.ipynb"]["problems"] == ["exists, kept (use --replace)"]
    assert collected(to, "alice") == notebook("alice")

    status, rows = run(source, to, "--replace")
    assert status == 0
    assert rows[f"alice/{A}.ipynb"]["action"] == "replaced"
    assert rows[f"bob/{A}.ipynb"]["action"] == "already collected"
    assert collected(to, "alice") == notebook("alice, second try")


# --------------------------------------------------------------------------------------------
# hostile or damaged zips
# --------------------------------------------------------------------------------------------
def test_zip_slip_refused(tmp_path):
    unsafe = ["../evil.ipynb", f"/tmp/{A}.ipynb", f"alice/../../{A}.ipynb", "a\\..\\..\\evil.ipynb"]
    source = make_zip(tmp_path / "slip.zip", {**{name: notebook("evil") for name in unsafe},
                                              f"alice/{A}.ipynb": notebook("alice")})
    to = tmp_path / "deep" / "collected"
    status, rows = run(source, to)
    assert status == 3
    for name in unsafe:
        assert rows[name]["action"] == "refused" and "zip slip" in rows[name]["problems"][0]
    assert students_in(to) == {"alice"}
    written = {p for p in tmp_path.rglob("*.ipynb")}
    assert written == {to / "alice" / f"{A}.ipynb"}


def test_oversized_entry_refused_unread(tmp_path, monkeypatch):
    bomb = f"bob/{A}.ipynb"
    source = make_zip(tmp_path / "bomb.zip", {bomb: bytes(60 * 2**20),
                                              f"alice/{A}.ipynb": notebook("alice")})
    assert source.stat().st_size < 2**20                     # 60 MB of zeros compress to ~60 kB
    opened = []
    real_open = zipfile.ZipFile.open
    monkeypatch.setattr(zipfile.ZipFile, "open", lambda self, name, *a, **k: (
        opened.append(getattr(name, "filename", name)), real_open(self, name, *a, **k))[1])
    to = tmp_path / "collected"
    status, rows = run(source, to)
    assert status == 3
    assert rows[bomb]["action"] == "refused"
    assert rows[bomb]["problems"] == ["60 MB uncompressed, over the 50 MB limit: not extracted "
                                      "(a zip bomb?)"]
    assert bomb not in opened and f"alice/{A}.ipynb" in opened
    assert students_in(to) == {"alice"}


def test_damaged_entry_refused_others_collected(tmp_path):
    data = notebook("bob")
    source = make_zip(tmp_path / "damaged.zip", {f"bob/{A}.ipynb": data,
                                                 f"alice/{A}.ipynb": notebook("alice")},
                      compression=zipfile.ZIP_STORED)
    raw = bytearray(source.read_bytes())
    at = raw.index(data) + 100
    raw[at] ^= 0xFF                                           # breaks bob's CRC only
    source.write_bytes(bytes(raw))
    to = tmp_path / "collected"
    status, rows = run(source, to)
    assert status == 3
    assert rows[f"bob/{A}.ipynb"]["action"] == "refused"
    assert rows[f"bob/{A}.ipynb"]["problems"] == [
        f"cannot be read (Bad CRC-32 for file 'bob/{A}.ipynb')"]
    assert students_in(to) == {"alice"}


# --------------------------------------------------------------------------------------------
# bad input, and the command line
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("case, message", [
    ("missing", "does not exist"),
    ("text file", "is not a readable zip file"),
    ("truncated zip", "is not a readable zip file"),
    ("unknown assignment", "unknown assignment 'zz_no_such_assignment'"),
    ("missing roster", "cannot read the roster"),
    ("to inside source", "is inside SOURCE"),
])
def test_bad_input(tmp_path, capsys, case, message):
    tree = make_tree(tmp_path / "downloads", {f"alice/{A}.ipynb": notebook("alice")})
    good_zip = make_zip(tmp_path / "good.zip", {f"alice/{A}.ipynb": notebook("alice")})
    (tmp_path / "notes.txt").write_text("not a zip")
    (tmp_path / "truncated.zip").write_bytes(good_zip.read_bytes()[:200])
    assignment, to, options = A, tmp_path / "collected", []
    source = {"missing": tmp_path / "nothing.zip", "text file": tmp_path / "notes.txt",
              "truncated zip": tmp_path / "truncated.zip"}.get(case, tree)
    if case == "unknown assignment":
        assignment = "zz_no_such_assignment"
    if case == "missing roster":
        options = ["--roster", str(tmp_path / "no-roster.csv")]
    if case == "to inside source":
        to = tree / "collected"
    status = collect.main([assignment, str(source), "--to", str(to), *options])
    err = capsys.readouterr().err
    assert status == 1
    assert err.startswith("error: ") and message in err and err.count("\n") == 1
    assert not (to / "alice").exists()


def test_command_line(tmp_path):
    source = make_zip(tmp_path / "canvas.zip", {f"smithjane_12345_67890_{A}.ipynb": notebook("jane"),
                                                f"doejohn_23456_67900_{A}.ipynb": notebook("john")})
    to = tmp_path / "collected"
    proc = run_step(REPO, "collect", A, str(source), "--to", str(to), timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert f"smithjane  collected  smithjane_12345_67890_{A}.ipynb" in proc.stdout
    assert "2 collected; 0 with problems" in proc.stdout
    assert collected(to, "doejohn") == notebook("john")
    assert (to / "collect-report.csv").is_file()

    proc = run_step(REPO, "collect", A, str(tmp_path / "nothing.zip"), "--to", str(to), timeout=120)
    assert proc.returncode == 1 and proc.stderr.startswith("error: ") and proc.stdout == ""
