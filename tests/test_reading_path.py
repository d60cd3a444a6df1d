"""A notebook's reading path: its stated time, its core and optional parts, and A's checkpoint.

A part is optional when its cells carry the tag `optional` (set in the source notebook, kept in the
student version) and its heading says "(optional, ~N min)". That the core path runs without them is
tested by the grading round trip: its solution submission is the source with every optional cell
removed (tests/test_grading.py), and it must score full marks with no cell raising.
"""
from __future__ import annotations

import os
import re

import nbformat
import pytest

from conftest import OPTIONAL, REPO, core_path  # noqa: E402  (tests/ is on sys.path under pytest)

SOURCES = sorted(REPO.glob("solutions/*/*.ipynb"))
OPTIONAL_HEADING = re.compile(r"^#+ .*\(optional, ~(\d+) min\)$", re.M)
TIME_LINE = re.compile(r"\*Time: about .+? hours, reading, running and the exercises together")


def optional_runs(cells) -> list[list[int]]:
    """The optional parts as runs of consecutive cell indices (two parts may follow each other: each
    begins at its own heading)."""
    runs: list[list[int]] = []
    for index, cell in enumerate(cells):
        if OPTIONAL in cell.metadata.get("tags", []):
            if runs and runs[-1][-1] == index - 1 and not OPTIONAL_HEADING.match(cell.source):
                runs[-1].append(index)
            else:
                runs.append([index])
    return runs


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.stem)
def test_every_notebook_states_its_time_and_its_core_path(path):
    cells = nbformat.read(path, as_version=4).cells
    intro = cells[0].source
    assert TIME_LINE.search(intro), f"{path.stem}: its first cell states no time"
    optional_minutes = sum(int(m) for c in cells for m in OPTIONAL_HEADING.findall(c.source))
    if optional_minutes:
        stated = re.search(r"The core path is about .+?; the parts whose heading says “optional” "
                           r"\(about (\d+) minutes together\)", intro)
        assert stated, f"{path.stem}: the time line does not give the core path and the optional parts"
        assert int(stated.group(1)) == optional_minutes, \
            f"{path.stem}: says {stated.group(1)} optional minutes, its headings add up to {optional_minutes}"
    else:
        assert "none is optional" in intro, f"{path.stem}: no optional part, and the time line does not say so"


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.stem)
def test_an_optional_part_is_a_whole_section_with_no_graded_cell(path):
    cells = nbformat.read(path, as_version=4).cells
    runs = optional_runs(cells)
    starts = {run[0] for run in runs}
    for index, cell in enumerate(cells):
        if cell.cell_type == "markdown" and OPTIONAL_HEADING.search(cell.source):
            tagged = OPTIONAL in cell.metadata.get("tags", [])
            assert tagged, f"{path.stem} cell {index}: an optional heading on an untagged cell"
            assert cell.source.startswith("#"), f"{path.stem} cell {index}: the optional heading must open its cell"
    for run in runs:
        first = cells[run[0]]
        assert OPTIONAL_HEADING.match(first.source.splitlines()[0]), \
            f"{path.stem} cell {run[0]}: an optional part must begin with its '(optional, ~N min)' heading"
        level = len(first.source.split(" ")[0])
        for index in run:
            assert not cells[index].metadata.get("nbgrader"), \
                f"{path.stem} cell {index}: a graded or answer cell inside an optional part"
            text = cells[index].source if cells[index].cell_type == "markdown" else ""
            headings = [h for h in re.findall(r"^(#+) ", text, re.M) if len(h) <= level and index not in starts]
            assert not headings, f"{path.stem} cell {index}: a new section inside an optional part"
        after = run[-1] + 1
        while after < len(cells) and cells[after].source.startswith("> "):  # a call-out (A's checkpoint)
            after += 1
        if after < len(cells):
            assert cells[after].cell_type == "markdown" and re.match(r"#+ ", cells[after].source), \
                f"{path.stem}: the optional part ending at cell {run[-1]} is not followed by a heading"
    # The student version keeps the marks: same parts, same headings.
    student = nbformat.read(REPO / "notebooks" / path.parent.name / path.name, as_version=4).cells
    assert [[c.id for c in map(cells.__getitem__, run)] for run in runs] == \
           [[c.id for c in map(student.__getitem__, run)] for run in optional_runs(student)]


def test_the_core_path_drops_only_the_optional_cells():
    nb = nbformat.read(REPO / "solutions" / "E_reinforcement_learning" / "E_reinforcement_learning.ipynb", 4)
    core = core_path(nb)
    assert len(core.cells) == len(nb.cells) - sum(map(len, optional_runs(nb.cells))) < len(nb.cells)
    assert not any(OPTIONAL in c.metadata.get("tags", []) for c in core.cells)


@pytest.mark.slow
def test_notebook_A_resumes_at_its_checkpoint_in_a_fresh_kernel():
    """The second sitting: the setup cell, then everything from the checkpoint at A5 on, as a learner
    who comes back with a fresh kernel runs it (the student version, its exercises untouched)."""
    from nbclient import NotebookClient

    path = REPO / "notebooks" / "A_lifecycle" / "A_lifecycle.ipynb"
    nb = nbformat.read(path, as_version=4)
    ids = [c.id for c in nb.cells]
    first_part = next(i for i, c in enumerate(nb.cells) if c.source.startswith("## A1"))
    checkpoint = ids.index("checkpoint-a5")
    assert "Checkpoint" in nb.cells[checkpoint].source and nb.cells[checkpoint + 1].source.startswith("## A5")
    nb.cells = nb.cells[:first_part] + nb.cells[checkpoint:]
    env = {k: v for k, v in os.environ.items() if k != "COURSE_GRADING"}
    NotebookClient(nb, timeout=600, kernel_name="python3", allow_errors=True,
                   resources={"metadata": {"path": str(path.parent)}}).execute(env={**env, "COURSE_FAST": "1"})
    errors = [f"cell {ids.index(c.id)}: {o.ename}: {o.evalue}" for c in nb.cells if c.cell_type == "code"
              for o in c.outputs if o.output_type == "error"]
    assert errors == [], "cells that fail after a resume at the checkpoint:\n" + "\n".join(errors)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code[-1].execution_count is not None
