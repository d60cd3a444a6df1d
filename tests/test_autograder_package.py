"""The autograder as a package: one entry point, one module that knows the layout, no import cycle,
no edits of sys.path, and the caches each notebook needs declared (not guessed from its text)."""
from __future__ import annotations

import ast
import re
import subprocess
import sys

import pytest

from autograder import course
from autograder.__main__ import STEPS
from conftest import REPO

PACKAGE = REPO / "autograder"


def imports_of(path) -> set[str]:
    """The autograder modules a module imports, at any depth (imports inside functions included)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module == "autograder":
                found |= {alias.name for alias in node.names}
            elif node.module.startswith("autograder."):
                found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            found |= {a.name.split(".")[1] for a in node.names if a.name.startswith("autograder.")}
    return found


def test_the_package_has_no_import_cycle():
    modules = {p.stem for p in PACKAGE.glob("*.py")} - {"__init__", "__main__", "nbgrader_config"}
    graph = {m: imports_of(PACKAGE / f"{m}.py") & modules for m in modules}
    assert graph["feedback"] == {"course"} and graph["course"] == set()

    def reach(start, seen):
        for nxt in graph[start]:
            if nxt not in seen:
                seen.add(nxt)
                reach(nxt, seen)
        return seen

    cycles = sorted(m for m in modules if m in reach(m, set()))
    assert cycles == [], f"modules importing themselves through others: {cycles} ({graph})"


@pytest.mark.parametrize("folder", ["autograder", "course_lib", "bench", "tests"])
def test_no_code_edits_sys_path(folder):
    edits = []
    for path in sorted((REPO / folder).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Attribute) and node.attr in ("insert", "append", "extend")
                    and isinstance(node.value, ast.Attribute) and node.value.attr == "path"
                    and isinstance(node.value.value, ast.Name) and node.value.value.id == "sys"):
                edits.append(f"{path.relative_to(REPO)}:{node.lineno}")
    assert edits == []


def test_the_entry_point_lists_its_steps_and_refuses_an_unknown_one():
    def run(*args):
        return subprocess.run([sys.executable, "-m", "autograder", *args], cwd=REPO,
                              capture_output=True, text=True, timeout=120)

    listed = run()
    assert listed.returncode == 1
    assert re.findall(r"^  (\w+) ", listed.stderr, flags=re.M) == list(STEPS)
    unknown = run("regrade")
    assert unknown.returncode == 1 and "unknown step 'regrade'" in unknown.stderr
    helped = run("grade", "--help")
    assert helped.returncode == 0 and helped.stdout.startswith("usage: python -m autograder grade ")


def test_every_assignment_declares_the_caches_its_notebook_reads():
    """course.NEEDS is what grading builds before a notebook runs in its read-only sandbox: it must
    name every loader the notebook calls (a missing one fails the notebook in the sandbox)."""
    loaders = {"smollm2": "load_smollm2(", "smollm2_int8": '"int8"', "corpus": "load_corpus("}
    assert set(course.NEEDS) == set(course.assignments())
    for name in course.assignments():
        text = course.source(name).read_text(encoding="utf-8")
        called = {need for need, call in loaders.items() if call in text}
        assert called <= set(course.NEEDS[name]), f"{name} calls {called}, declares {course.NEEDS[name]}"
        assert set(course.NEEDS[name]) <= set(course.WARM_UP)


def test_an_unknown_assignment_names_the_ones_there_are():
    with pytest.raises(course.UnknownAssignment) as caught:
        course.find("F_nothing")
    assert "solutions/F_nothing/F_nothing.ipynb" in str(caught.value)
    assert ", ".join(course.assignments()) in str(caught.value)


def test_the_grading_process_and_the_entry_points_do_not_load_torch():
    """torch takes seconds to import: grading, dispatching a step and finding the cache need none
    (the kernels and the re-check's checks load it themselves)."""
    probe = ("import sys, autograder.grade, autograder.__main__, course_lib.cli, course_lib.paths; "
             "print('torch' in sys.modules)")
    loaded = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert loaded.returncode == 0 and loaded.stdout.strip() == "False", loaded.stderr
