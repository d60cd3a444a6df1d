"""autograder/release.py: one zip per assignment holding only the student notebook, a record of
what was released, and refusals when notebooks/ is stale or gives answers away.

Runs in a throwaway course with the synthetic assignment; nothing is graded."""
from __future__ import annotations

import hashlib
import json
import shutil
import zipfile
from pathlib import Path

import nbformat
import pytest

from conftest import SYNTHETIC, run_step  # noqa: E402  (tests/ is on sys.path under pytest)

from autograder import release  # noqa: E402

S = SYNTHETIC
GRADED_CELLS = [{"grade_id": "add_visible_tests", "points": 1},
                {"grade_id": "add_hidden_tests", "points": 2},
                {"grade_id": "double_visible_tests", "points": 1},
                {"grade_id": "double_hidden_tests", "points": 1},
                {"grade_id": "predict_check", "points": 1}]


def generate(root: Path, *args: str) -> None:
    run_step(root, "generate", *args, check=True)


def student_notebook(root: Path) -> Path:
    return root / "notebooks" / S / f"{S}.ipynb"


@pytest.fixture(scope="module")
def course(course_factory) -> Path:
    """A course whose notebooks/ is in sync; tests that break it work on a copy."""
    root = course_factory("release")
    generate(root, S)
    return root


@pytest.fixture
def course_copy(course, tmp_path) -> Path:
    return shutil.copytree(course, tmp_path / "course")


def test_release_writes_zip_and_record(course, tmp_path, capsys):
    out = tmp_path / "release"
    out.mkdir()
    earlier = {"A_lifecycle": {"sha256": "0" * 64, "total_points": 9}}  # released before: kept
    (out / "release.json").write_text(json.dumps(earlier))

    assert release.main(["--root", str(course), "--out", str(out)]) == 0  # all: the synthetic one
    printed = capsys.readouterr().out
    assert f"{S}.zip" in printed and "6 points in 5 graded cells" in printed

    data = student_notebook(course).read_bytes()
    assert sorted(p.name for p in out.iterdir()) == ["release.json", f"{S}.zip"]
    with zipfile.ZipFile(out / f"{S}.zip") as archive:
        assert archive.namelist() == [f"{S}.ipynb"]
        assert archive.read(f"{S}.ipynb") == data
    assert b"return a + b" not in data and b"hidden-add-check" not in data  # the student version

    record = json.loads((out / "release.json").read_text())
    assert record["A_lifecycle"] == earlier["A_lifecycle"]
    entry = record[S]
    assert entry["sha256"] == hashlib.sha256(data).hexdigest()
    assert entry["graded_cells"] == GRADED_CELLS
    assert entry["total_points"] == 6
    assert entry["zip"] == f"{S}.zip" and entry["released_at"][:2] == "20"


def test_command_line_defaults(course_copy):
    """Without --root and --out: the course of the script, and its autograder/release/."""
    proc = run_step(course_copy, "release", S)
    assert proc.returncode == 0, proc.stderr
    zipped = course_copy / "autograder" / "release" / f"{S}.zip"
    with zipfile.ZipFile(zipped) as archive:
        assert archive.read(f"{S}.ipynb") == student_notebook(course_copy).read_bytes()
    assert str(zipped) in proc.stdout


def test_refuses_when_out_of_sync(course_copy, tmp_path, capsys):
    solution = course_copy / "solutions" / S / f"{S}.ipynb"
    text = solution.read_text()
    assert "add(1, 2) == 3" in text
    solution.write_text(text.replace("add(1, 2) == 3", "add(2, 2) == 4"))  # edited, not regenerated
    out = tmp_path / "release"
    assert release.main(["--root", str(course_copy), "--out", str(out), S]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: notebooks/ is out of sync with solutions/")
    assert f"notebooks/{S}/{S}.ipynb: differs from what solutions/{S} generates" in err
    assert "Run `python -m autograder generate`" in err
    assert not out.exists()


def test_refuses_solution_marker(course_copy, tmp_path, capsys):
    """A student notebook edited by hand to hold a solution."""
    nb = nbformat.read(student_notebook(course_copy), as_version=4)
    answer = next(c for c in nb.cells
                  if c.metadata.get("nbgrader", {}).get("grade_id") == "add_answer")
    answer.source = "def add(a, b):\n    ### BEGIN SOLUTION\n    return a + b\n    ### END SOLUTION"
    nbformat.write(nb, student_notebook(course_copy))
    out = tmp_path / "release"
    assert release.main(["--root", str(course_copy), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: notebooks/{S}/{S}.ipynb contains 'BEGIN SOLUTION' in cell "
                          "add_answer: releasing it would give away solutions or hidden tests")
    assert not out.exists()


def test_refuses_leaked_hidden_tests(course_copy, tmp_path, capsys):
    """A configuration that misses the hidden-test delimiters generates, in sync, a notebook with
    the hidden tests in it: the safety net catches what the sync check cannot."""
    with (course_copy / "autograder" / "nbgrader_config.py").open("a") as config:
        config.write('\nc.ClearHiddenTests.begin_test_delimeter = "BEGIN SECRET TESTS"\n'
                     'c.ClearHiddenTests.end_test_delimeter = "END SECRET TESTS"\n')
    generate(course_copy, S)
    assert "hidden-add-check" in student_notebook(course_copy).read_text()
    out = tmp_path / "release"
    assert release.main(["--root", str(course_copy), "--out", str(out), S]) == 1
    err = capsys.readouterr().err
    assert "contains 'BEGIN HIDDEN TESTS' in cells add_hidden_tests, double_hidden_tests" in err
    assert "autograder/nbgrader_config.py" in err
    assert not out.exists()


@pytest.mark.parametrize("name, message", [
    ("zz_no_such", "unknown assignment 'zz_no_such': there is no "
                   f"solutions/zz_no_such/zz_no_such.ipynb (available: ungenerated, {S})"),
    ("ungenerated", "no student notebook for ungenerated in notebooks/: run "
                    "`python -m autograder generate` and commit notebooks/"),
])
def test_refuses_unknown_or_ungenerated_assignment(course_copy, tmp_path, capsys, name, message):
    (course_copy / "solutions" / "ungenerated").mkdir()
    shutil.copy(course_copy / "solutions" / S / f"{S}.ipynb",
                course_copy / "solutions" / "ungenerated" / "ungenerated.ipynb")
    assert release.main(["--root", str(course_copy), "--out", str(tmp_path / "out"), name]) == 1
    assert capsys.readouterr().err == f"error: {message}\n"
    assert not (tmp_path / "out").exists()
