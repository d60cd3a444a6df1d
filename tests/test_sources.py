"""The sources: each notebook ends with its "## Sources" cell as course_lib/sources.py declares it
(in the source and in the student version), and every arXiv id a notebook names is in its list."""
import re
from pathlib import Path

import nbformat
import pytest

from course_lib.sources import ALL, CELL_ID, NOTEBOOKS, SOURCES, cited, markdown

REPO = Path(__file__).resolve().parent.parent
NAMES = sorted(p.stem for p in (REPO / "solutions").glob("*/*.ipynb") if p.stem == p.parent.name)
ARXIV_ID = re.compile(r"arxiv(?:\.org/abs/|:)\s*(\d{4}\.\d{4,5})", re.I)


def test_every_notebook_cites_something_and_every_name_is_a_notebook():
    assert set(NAMES) == set(ALL) == set(NOTEBOOKS)
    assert all(set(s.notebooks) <= set(ALL) and s.notebooks for s in SOURCES)


@pytest.mark.parametrize("top", ["solutions", "notebooks"])
@pytest.mark.parametrize("name", NAMES)
def test_the_last_cell_is_the_notebooks_sources(name, top):
    cells = nbformat.read(REPO / top / name / f"{name}.ipynb", as_version=4).cells
    last = cells[-1]
    assert last.get("id") == CELL_ID and last.cell_type == "markdown", \
        f"{top}/{name}: the last cell is not the sources cell: run `make notebooks`"
    assert last.source == markdown(name), f"{top}/{name}: the sources cell is out of date: run `make notebooks`"
    assert [c.get("id") for c in cells].count(CELL_ID) == 1


@pytest.mark.parametrize("name", NAMES)
def test_every_arxiv_id_a_notebook_names_is_in_its_list(name):
    nb = nbformat.read(REPO / "solutions" / name / f"{name}.ipynb", as_version=4)
    named = {i for cell in nb.cells for i in ARXIV_ID.findall(cell.source)}
    listed = {s.arxiv for s in cited(name)}
    assert named <= listed, f"{name} names arXiv ids its sources do not list: {sorted(named - listed)}"


def test_every_entry_is_complete_and_declared_once():
    assert len({s.key for s in SOURCES}) == len(SOURCES)
    assert len({(s.authors, s.title) for s in SOURCES}) == len(SOURCES)
    for s in SOURCES:
        assert s.authors.strip() and s.title.strip() and s.where.strip() and s.use.strip(), s.key
        assert re.fullmatch(r"\d{4}", str(s.year)) and 1900 < s.year <= 2030, s.key
        assert s.arxiv or not s.where.lower().startswith("arxiv"), f"{s.key}: malformed arXiv id {s.where!r}"
        # an arXiv id starts with the year and month it was posted: the paper's year or the one before
        assert s.arxiv is None or s.year - int(f"20{s.arxiv[:2]}") in (0, 1), \
            f"{s.key}: arXiv id {s.arxiv} does not fit the year {s.year}"


def test_the_list_is_numbered_with_links_and_an_unknown_notebook_is_a_clear_error():
    text = markdown("E_reinforcement_learning")
    assert text.startswith("## Sources\n\n")
    items = re.findall(r"^(\d+)\. ", text, flags=re.M)
    assert items == [str(n) for n in range(1, len(cited("E_reinforcement_learning")) + 1)]
    assert ("Gao, Schulman & Hilton, *Scaling Laws for Reward Model Overoptimization* (2022), "
            "[arXiv:2210.10760](https://arxiv.org/abs/2210.10760).") in text
    with pytest.raises(KeyError, match="no source names the notebook 'zz'"):
        markdown("zz")
